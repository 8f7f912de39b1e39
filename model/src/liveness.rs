//! # An exact liveness checker under weak fairness, for any stateright `Model`
//!
//! stateright's `eventually` is only evaluated at terminal states: a path that loops, or
//! joins a state seen before, is never reported, and it knows no fairness. This module checks
//! "every fair execution eventually reaches a converged state" exactly, for models whose
//! reachable state graph fits in memory.
//!
//! ## Method
//! 1. Build the reachable state graph through the public `Model` API (`init_states`,
//!    `actions`, `next_state`), breadth first, with a bound on the number of states. Converged
//!    states are not expanded: once one is reached, the execution has done what was asked.
//! 2. Every expanded state is a non-converged state. A non-converged state with no successor
//!    is a **deadlock**: the execution stops short of convergence.
//! 3. Compute the strongly connected components of the non-converged subgraph with an
//!    iterative Tarjan (no recursion, so deep graphs cannot overflow the stack).
//! 4. Each action has a fairness **class**, given by the caller (`(Deliver, link)`,
//!    `(Timeout, node)`, ...) or `None` for actions the environment may withhold forever
//!    (faults: message loss, crashes). Weak fairness: a class that stays enabled forever is
//!    eventually taken. A non-trivial SCC `C` holds a fair execution that stays in `C` forever
//!    iff every class enabled in *every* state of `C` is taken by some edge *inside* `C`:
//!    then the cycle through every edge of `C` is fair (a class not enabled everywhere is
//!    disabled infinitely often on it); otherwise some class is enabled throughout and never
//!    taken by any execution confined to `C`, and no sub-component can escape that. Edges
//!    leading to converged states count as enabled, never as taken inside.
//! 5. The first deadlock or fair SCC (smallest breadth-first index) is returned as a
//!    [`Lasso`]: a shortest prefix from an initial state and a cycle inside the component
//!    that takes every class the component must take (empty for a deadlock).
//!
//! ## Limits
//! - Exact only for the explored graph: if the state bound is hit, or a non-converged state
//!   lies outside `within_boundary`, the answer is [`Outcome::Incomplete`], never a pass.
//! - Weak fairness only, per class: a property that needs strong fairness (an action enabled
//!   infinitely often but not continuously) is reported as violated; choose classes and
//!   models (fault budgets, a synchronous phase) so weak fairness is the intended assumption.
//! - The graph is held in memory: a 64-bit fingerprint per state (a collision merges two
//!   states, as in stateright's own checkers), every edge with its action, and the states
//!   not yet expanded. A counterexample is rebuilt by replaying its actions, so `next_state`
//!   must be deterministic (stateright requires that too). Hundreds of thousands of states
//!   are fine; tens of millions are not.
//! - "Eventually converged" is checked, not "eventually always": stability after convergence
//!   is a safety property and belongs in an `always` property.

use stateright::Model;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A 64-bit fingerprint of a state (deterministic across runs).
fn fingerprint<S: Hash>(state: &S) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// A counterexample: `prefix` from an initial state, then `cycle` forever (empty: deadlock).
#[derive(Clone, Debug)]
pub struct Lasso<S, A> {
    pub init: S,
    /// Steps from `init` to the first state of the loop (or the deadlock).
    pub prefix: Vec<(A, S)>,
    /// Steps from the loop state back to itself; empty for a deadlock.
    pub cycle: Vec<(A, S)>,
}

impl<S, A> Lasso<S, A> {
    pub fn is_deadlock(&self) -> bool {
        self.cycle.is_empty()
    }
}

/// The verdict.
#[derive(Clone, Debug)]
pub enum Outcome<S, A> {
    /// Every fair execution of the whole reachable graph converges.
    Holds,
    /// A fair execution that never converges.
    Violated(Lasso<S, A>),
    /// The graph was not fully explored; nothing is claimed.
    Incomplete { reason: String },
}

/// The verdict with the size of the explored graph.
#[derive(Clone, Debug)]
pub struct LivenessReport<S, A> {
    pub states: usize,
    pub edges: usize,
    /// Non-trivial SCCs (cycles) among non-converged states, fair or not.
    pub components: usize,
    pub outcome: Outcome<S, A>,
}

impl<S, A> LivenessReport<S, A> {
    pub fn holds(&self) -> bool {
        matches!(self.outcome, Outcome::Holds)
    }
    pub fn violation(&self) -> Option<&Lasso<S, A>> {
        match &self.outcome {
            Outcome::Violated(lasso) => Some(lasso),
            _ => None,
        }
    }
}

struct Edge<A, K> {
    to: u32,
    action: A,
    class: Option<K>,
}

/// Checks that every weakly fair execution of `model` reaches a state where `converged`
/// holds. `class` gives each action's fairness class (`None`: no fairness). At most
/// `max_states` states are explored.
pub fn check_eventually<M, K>(
    model: &M,
    converged: impl Fn(&M::State) -> bool,
    class: impl Fn(&M::State, &M::Action) -> Option<K>,
    max_states: usize,
) -> LivenessReport<M::State, M::Action>
where
    M: Model,
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
    K: Clone + Hash + Eq,
{
    // A state is kept only until it is expanded; the index holds 64-bit fingerprints (as
    // stateright's own checkers do), and a counterexample is rebuilt by replaying actions.
    let mut states: Vec<Option<M::State>> = Vec::new();
    let mut inits: HashMap<u32, M::State> = HashMap::new();
    let mut index: HashMap<u64, u32> = HashMap::new();
    let mut parent: Vec<Option<(u32, usize)>> = Vec::new();
    let mut edges: Vec<Vec<Edge<M::Action, K>>> = Vec::new();
    let mut is_converged: Vec<bool> = Vec::new();
    let mut queue = VecDeque::new();
    let mut incomplete: Option<String> = None;

    for s in model.init_states() {
        if let Entry::Vacant(slot) = index.entry(fingerprint(&s)) {
            let id = states.len() as u32;
            slot.insert(id);
            is_converged.push(converged(&s));
            inits.insert(id, s.clone());
            states.push(Some(s));
            parent.push(None);
            edges.push(Vec::new());
            queue.push_back(id);
        }
    }
    let mut actions = Vec::new();
    let mut edge_count = 0usize;
    while let Some(id) = queue.pop_front() {
        let u = id as usize;
        let Some(state) = states[u].take() else {
            continue;
        };
        if is_converged[u] {
            continue;
        }
        if !model.within_boundary(&state) {
            incomplete.get_or_insert_with(|| {
                "a non-converged state lies outside the model's boundary".to_string()
            });
            continue;
        }
        actions.clear();
        model.actions(&state, &mut actions);
        let mut out = Vec::with_capacity(actions.len());
        for action in actions.drain(..) {
            let Some(next) = model.next_state(&state, action.clone()) else {
                continue;
            };
            let k = class(&state, &action);
            let to = match index.get(&fingerprint(&next)) {
                Some(&to) => to,
                None => {
                    if states.len() >= max_states {
                        incomplete.get_or_insert_with(|| {
                            format!("the state bound of {max_states} was reached")
                        });
                        continue;
                    }
                    let to = states.len() as u32;
                    index.insert(fingerprint(&next), to);
                    is_converged.push(converged(&next));
                    states.push(Some(next));
                    parent.push(Some((id, out.len())));
                    edges.push(Vec::new());
                    queue.push_back(to);
                    to
                }
            };
            out.push(Edge {
                to,
                action,
                class: k,
            });
        }
        edge_count += out.len();
        edges[u] = out;
    }
    drop(index);

    if let Some(reason) = incomplete {
        // Missing edges make enabledness and deadlocks unreliable: claim nothing.
        return LivenessReport {
            states: states.len(),
            edges: edge_count,
            components: 0,
            outcome: Outcome::Incomplete { reason },
        };
    }
    let sccs = tarjan(&edges, &is_converged);
    let components = sccs.len();
    let mut best: Option<(u32, Vec<u32>)> = None; // (entry state, component; empty = deadlock)
    for (u, out) in edges.iter().enumerate() {
        if !is_converged[u] && out.is_empty() {
            best = Some((u as u32, Vec::new()));
            break;
        }
    }
    for comp in &sccs {
        if !is_fair_component(comp, &edges) {
            continue;
        }
        let entry = *comp.iter().min().expect("components are not empty");
        if best.as_ref().is_none_or(|(b, _)| entry < *b) {
            best = Some((entry, comp.clone()));
        }
    }
    let outcome = match best {
        Some((entry, comp)) => {
            Outcome::Violated(build_lasso(model, entry, &comp, &inits, &edges, &parent))
        }
        None => Outcome::Holds,
    };
    LivenessReport {
        states: states.len(),
        edges: edge_count,
        components,
        outcome,
    }
}

/// Non-trivial SCCs (more than one state, or a self loop) of the non-converged subgraph,
/// by an iterative Tarjan.
fn tarjan<A, K>(edges: &[Vec<Edge<A, K>>], converged: &[bool]) -> Vec<Vec<u32>> {
    const NONE: u32 = u32::MAX;
    let n = edges.len();
    let mut order = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, usize)> = Vec::new(); // (node, next edge to look at)
    let mut next_order = 0u32;
    let mut result = Vec::new();
    for root in 0..n {
        if order[root] != NONE || converged[root] {
            continue;
        }
        call.push((root as u32, 0));
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root as u32);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = call.last_mut() {
            let v = v as usize;
            if let Some(edge) = edges[v].get(*i) {
                *i += 1;
                let w = edge.to as usize;
                if converged[w] {
                    continue;
                }
                if order[w] == NONE {
                    order[w] = next_order;
                    low[w] = next_order;
                    next_order += 1;
                    stack.push(w as u32);
                    on_stack[w] = true;
                    call.push((w as u32, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p as usize] = low[p as usize].min(low[v]);
            }
            if low[v] == order[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w as usize] = false;
                    comp.push(w);
                    if w as usize == v {
                        break;
                    }
                }
                let self_loop = edges[v].iter().any(|e| e.to as usize == v);
                if comp.len() > 1 || self_loop {
                    result.push(comp);
                }
            }
        }
    }
    result
}

/// Whether every class enabled in every state of `comp` is taken by an edge inside `comp`.
fn is_fair_component<A, K: Clone + Hash + Eq>(comp: &[u32], edges: &[Vec<Edge<A, K>>]) -> bool {
    let members: HashSet<u32> = comp.iter().copied().collect();
    let mut throughout: Option<HashSet<K>> = None;
    let mut taken: HashSet<K> = HashSet::new();
    for &u in comp {
        let enabled: HashSet<K> = edges[u as usize]
            .iter()
            .filter_map(|e| e.class.clone())
            .collect();
        for e in &edges[u as usize] {
            if let (true, Some(k)) = (members.contains(&e.to), &e.class) {
                taken.insert(k.clone());
            }
        }
        throughout = Some(match throughout {
            None => enabled,
            Some(t) => t.intersection(&enabled).cloned().collect(),
        });
    }
    throughout.unwrap_or_default().is_subset(&taken)
}

fn build_lasso<M, K>(
    model: &M,
    entry: u32,
    comp: &[u32],
    inits: &HashMap<u32, M::State>,
    edges: &[Vec<Edge<M::Action, K>>],
    parent: &[Option<(u32, usize)>],
) -> Lasso<M::State, M::Action>
where
    M: Model,
    M::State: Clone,
    M::Action: Clone,
    K: Clone + Hash + Eq,
{
    let mut prefix_edges = Vec::new();
    let mut root = entry;
    while let Some((p, i)) = parent[root as usize] {
        prefix_edges.push((p, i));
        root = p;
    }
    prefix_edges.reverse();
    let mut cycle_edges = Vec::new();
    if !comp.is_empty() {
        let members: HashSet<u32> = comp.iter().copied().collect();
        // One inside edge per class that must be taken (or any inside edge).
        let mut required: Vec<(u32, usize)> = Vec::new();
        let mut seen: HashSet<K> = HashSet::new();
        for &u in comp {
            for (i, e) in edges[u as usize].iter().enumerate() {
                if let (true, Some(k)) = (members.contains(&e.to), &e.class) {
                    if seen.insert(k.clone()) {
                        required.push((u, i));
                    }
                }
            }
        }
        if required.is_empty() {
            let i = edges[entry as usize]
                .iter()
                .position(|e| members.contains(&e.to))
                .expect("a component's states have an edge inside it");
            required.push((entry, i));
        }
        let mut at = entry;
        for (u, i) in required {
            cycle_edges.extend(path_within(at, u, &members, edges));
            cycle_edges.push((u, i));
            at = edges[u as usize][i].to;
        }
        cycle_edges.extend(path_within(at, entry, &members, edges));
    }
    // Replay the actions from the initial state: next_state is deterministic.
    let init = inits[&root].clone();
    let replay = |from: &M::State, steps: &[(u32, usize)]| {
        let mut cur = from.clone();
        let mut out = Vec::with_capacity(steps.len());
        for &(u, i) in steps {
            let action = edges[u as usize][i].action.clone();
            cur = model
                .next_state(&cur, action.clone())
                .expect("a recorded edge replays");
            out.push((action, cur.clone()));
        }
        out
    };
    let prefix = replay(&init, &prefix_edges);
    let loop_state = prefix.last().map_or(init.clone(), |(_, s)| s.clone());
    let cycle = replay(&loop_state, &cycle_edges);
    Lasso {
        init,
        prefix,
        cycle,
    }
}

/// A shortest path from `from` to `to` inside `members`, as (state, edge index) steps.
fn path_within<A, K>(
    from: u32,
    to: u32,
    members: &HashSet<u32>,
    edges: &[Vec<Edge<A, K>>],
) -> Vec<(u32, usize)> {
    let mut back: HashMap<u32, (u32, usize)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = HashSet::from([from]);
    while let Some(u) = queue.pop_front() {
        if u == to {
            break;
        }
        for (i, e) in edges[u as usize].iter().enumerate() {
            if members.contains(&e.to) && seen.insert(e.to) {
                back.insert(e.to, (u, i));
                queue.push_back(e.to);
            }
        }
    }
    let mut path = Vec::new();
    let mut cur = to;
    while cur != from {
        let (u, i) = back[&cur];
        path.push((u, i));
        cur = u;
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy: a counter the scheduler may spin (`Spin`, mod 3), a `Finish` that converges,
    /// a `Fault` that the environment may or may not take, and optional planted defects.
    #[derive(Clone)]
    struct Toy {
        finish_enabled: bool,
        deadlock_at_two: bool,
        spin_only_by_fault: bool,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Act {
        Spin,
        Finish,
        Fault,
    }

    impl Model for Toy {
        type State = (u8, bool);
        type Action = Act;
        fn init_states(&self) -> Vec<(u8, bool)> {
            vec![(0, false)]
        }
        fn actions(&self, s: &(u8, bool), out: &mut Vec<Act>) {
            if self.deadlock_at_two && s.0 == 2 {
                return;
            }
            if self.spin_only_by_fault {
                out.push(Act::Fault);
            } else {
                out.push(Act::Spin);
            }
            if self.finish_enabled {
                out.push(Act::Finish);
            }
        }
        fn next_state(&self, s: &(u8, bool), a: Act) -> Option<(u8, bool)> {
            match a {
                Act::Spin | Act::Fault => Some(((s.0 + 1) % 3, s.1)),
                Act::Finish => Some((s.0, true)),
            }
        }
    }

    fn run(toy: &Toy) -> LivenessReport<(u8, bool), Act> {
        check_eventually(
            toy,
            |s| s.1,
            |_, a| match a {
                Act::Fault => None,
                other => Some(*other),
            },
            1000,
        )
    }

    #[test]
    fn a_planted_livelock_is_reported_as_a_lasso() {
        let toy = Toy {
            finish_enabled: false,
            deadlock_at_two: false,
            spin_only_by_fault: false,
        };
        let report = run(&toy);
        let lasso = report.violation().expect("the spin cycle never converges");
        assert!(lasso.prefix.is_empty());
        assert_eq!(lasso.cycle.len(), 3);
        assert_eq!(lasso.cycle.last().map(|s| s.1), Some((0, false)));
    }

    #[test]
    fn a_cycle_that_starves_an_always_enabled_action_is_not_fair_and_not_reported() {
        let toy = Toy {
            finish_enabled: true,
            deadlock_at_two: false,
            spin_only_by_fault: false,
        };
        let report = run(&toy);
        assert!(report.holds(), "{:?}", report.outcome);
        assert_eq!(report.states, 6);
    }

    #[test]
    fn a_deadlock_short_of_convergence_is_reported_with_its_prefix() {
        let toy = Toy {
            finish_enabled: false,
            deadlock_at_two: true,
            spin_only_by_fault: false,
        };
        let lasso = run(&toy).violation().cloned().expect("deadlock at 2");
        assert!(lasso.is_deadlock());
        assert_eq!(lasso.prefix.len(), 2);
    }

    #[test]
    fn a_cycle_of_unfair_actions_alone_is_still_an_execution_the_environment_may_choose() {
        let toy = Toy {
            finish_enabled: false,
            deadlock_at_two: false,
            spin_only_by_fault: true,
        };
        assert!(run(&toy).violation().is_some());
    }

    #[test]
    fn hitting_the_state_bound_is_incomplete_never_a_pass() {
        let toy = Toy {
            finish_enabled: true,
            deadlock_at_two: false,
            spin_only_by_fault: false,
        };
        let report = check_eventually(&toy, |s| s.1, |_, a| Some(*a), 2);
        assert!(matches!(report.outcome, Outcome::Incomplete { .. }));
    }
}
