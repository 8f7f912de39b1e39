//! Comparing what a real node shows with what the model allows.
//!
//! The abstraction mapping (model state -> INFO fields) is [`verdis_model::report::observe`]
//! on the model side and [`crate::cluster::RealNode`] on the real side; see
//! docs/conformance.md. Replication ids are random in a real run and minted in the model, so
//! they are compared up to a consistent renaming: a [`Binding`] pairs each model replid with
//! the real one it stands for, fixed at first sight and checked ever after (both ways).

use crate::cluster::RealNode;
use std::collections::{BTreeMap, BTreeSet};
use verdis_model::report::Observed;
use verdis_model::settled::Projection;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// Model replid <-> real replid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    to_real: BTreeMap<String, String>,
    to_model: BTreeMap<String, String>,
}

impl Binding {
    /// Pairs `model` with `real` if consistent with earlier pairs.
    fn bind(&mut self, model: &str, real: &str) -> bool {
        if model == ZERO || real == ZERO {
            return model == real;
        }
        match (self.to_real.get(model), self.to_model.get(real)) {
            (Some(r), _) => r == real,
            (None, Some(_)) => false,
            (None, None) => {
                self.to_real.insert(model.to_string(), real.to_string());
                self.to_model.insert(real.to_string(), model.to_string());
                true
            }
        }
    }
}

/// Compares one projection with the real nodes; the extended binding if they agree, else
/// the differences.
pub fn compare(
    expect: &Projection,
    real: &[RealNode],
    binding: &Binding,
) -> Result<Binding, Vec<String>> {
    let mut b = binding.clone();
    let mut diffs = Vec::new();
    for (m, r) in expect.nodes.iter().zip(real) {
        compare_node(m, r, &mut b, &mut diffs);
    }
    if diffs.is_empty() {
        Ok(b)
    } else {
        Err(diffs)
    }
}

fn compare_node(m: &Observed, r: &RealNode, b: &mut Binding, diffs: &mut Vec<String>) {
    let n = m.node;
    let mut differ = |what: &str, model: String, real: String| {
        if model != real {
            diffs.push(format!("node {n} {what}: model {model}, real {real}"));
        }
    };
    differ("up", m.up.to_string(), r.up.to_string());
    if !m.up || !r.up {
        return;
    }
    differ("role", m.role.clone(), r.role.clone());
    differ(
        "master",
        format!("{:?}", m.master.map(|x| x as usize)),
        format!("{:?}", r.master),
    );
    differ(
        "master_link_status",
        format!("{:?}", m.link_status),
        format!("{:?}", r.link_status),
    );
    differ(
        "master_repl_offset",
        m.master_repl_offset.to_string(),
        r.offset.to_string(),
    );
    differ(
        "second_repl_offset",
        m.second_repl_offset.to_string(),
        r.second_offset.to_string(),
    );
    differ(
        "sync_full",
        m.sync_full.to_string(),
        r.sync_full.to_string(),
    );
    differ(
        "sync_partial_ok",
        m.sync_partial_ok.to_string(),
        r.sync_partial_ok.to_string(),
    );
    differ(
        "sync_partial_err",
        m.sync_partial_err.to_string(),
        r.sync_partial_err.to_string(),
    );
    let model_set: BTreeSet<u8> = m.dataset.iter().copied().collect();
    differ(
        "dataset",
        format!("{model_set:?}"),
        format!("{:?}", r.dataset),
    );
    if !r.strays.is_empty() {
        diffs.push(format!(
            "node {n} unexpected keys or values: {:?}",
            r.strays
        ));
    }
    if !b.bind(&m.master_replid, &r.replid) {
        diffs.push(format!(
            "node {n} master_replid: model {} does not map to real {}",
            m.master_replid, r.replid
        ));
    }
    if !b.bind(&m.master_replid2, &r.replid2) {
        diffs.push(format!(
            "node {n} master_replid2: model {} does not map to real {}",
            m.master_replid2, r.replid2
        ));
    }
}

/// The first projection in `expect` that `real` agrees with, and its binding; else the
/// differences from the closest one.
pub fn matching(
    expect: &[Projection],
    real: &[RealNode],
    binding: &Binding,
) -> Result<(usize, Binding), Vec<String>> {
    let mut best: Option<Vec<String>> = None;
    for (i, p) in expect.iter().enumerate() {
        match compare(p, real, binding) {
            Ok(b) => return Ok((i, b)),
            Err(d) => {
                if best.as_ref().is_none_or(|bd| d.len() < bd.len()) {
                    best = Some(d);
                }
            }
        }
    }
    Err(best.unwrap_or_else(|| vec!["the model allows no state here".to_string()]))
}

#[cfg(test)]
mod tests {
    use super::Binding;

    #[test]
    fn a_binding_is_a_consistent_renaming() {
        let mut b = Binding::default();
        assert!(b.bind("a1", "r1"));
        assert!(b.bind("a1", "r1"));
        assert!(!b.bind("a1", "r2"), "one model id, two real ids");
        assert!(!b.bind("a2", "r1"), "two model ids, one real id");
        assert!(b.bind(super::ZERO, super::ZERO));
        assert!(!b.bind(super::ZERO, "r3"));
    }
}
