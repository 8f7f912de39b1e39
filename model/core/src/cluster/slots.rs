//! Hash slots: which slot a key lives in, and who owns each slot.
//!
//! A key maps to one of 16384 slots by CRC16-XMODEM (polynomial 0x1021, initial value 0, no
//! reflection) masked to 14 bits. If the key has a hash tag (the first `{`, followed later by a
//! `}` with at least one byte between them), only the tag is hashed, so `{user1000}.following`
//! and `{user1000}.followers` share a slot.
//!
//! The [`SlotTable`] is what a master owns: every slot maps to an owner and the configEpoch under
//! which that owner claimed it. A claim replaces an owner only if it carries a strictly higher
//! configEpoch; this is the whole of Redis Cluster's rule for resolving slot conflicts ("the
//! higher configEpoch wins"). The table always covers all 16384 slots as sorted,
//! non-overlapping, maximal runs, so two tables with the same meaning compare equal.

use super::NodeId;
use serde::{Deserialize, Serialize};

/// The number of hash slots.
pub const SLOT_COUNT: u16 = 16384;

/// CRC16-XMODEM, the checksum Redis Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key, honouring hash tags exactly as Redis 7.0 does.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            // `{}`: an empty tag is no tag, the whole key is hashed.
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16(hashed) & (SLOT_COUNT - 1)
}

/// An inclusive run of slots, `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    /// A run of slots; panics on a reversed or out-of-range run (a programmer error).
    pub fn new(start: u16, end: u16) -> SlotRange {
        assert!(start <= end, "reversed slot range {start}-{end}");
        assert!(end < SLOT_COUNT, "slot {end} out of range");
        SlotRange { start, end }
    }

    pub fn contains(&self, slot: u16) -> bool {
        self.start <= slot && slot <= self.end
    }
}

/// One maximal run of slots with the same owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotRun {
    pub range: SlotRange,
    /// `None`: nobody serves these slots.
    pub owner: Option<NodeId>,
    /// The configEpoch under which `owner` claimed the run (0 when unowned).
    pub config_epoch: u64,
}

/// What a claim did to the table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimOutcome {
    /// Some slot changed owner.
    pub changed: bool,
    /// Some claimed slot is held under a strictly higher configEpoch than the claim: the claimer
    /// is stale and should be told (Redis sends it an UPDATE).
    pub stale_against: Option<SlotRun>,
}

/// Owner and configEpoch of every slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotTable {
    runs: Vec<SlotRun>,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable::new()
    }
}

impl SlotTable {
    /// A table where no slot is served.
    pub fn new() -> SlotTable {
        SlotTable {
            runs: vec![SlotRun {
                range: SlotRange::new(0, SLOT_COUNT - 1),
                owner: None,
                config_epoch: 0,
            }],
        }
    }

    /// The runs, sorted and covering every slot.
    pub fn runs(&self) -> &[SlotRun] {
        &self.runs
    }

    /// Unconditionally sets the owner of a run (configuration at start-up, CLUSTER ADDSLOTS).
    pub fn assign(&mut self, range: SlotRange, owner: NodeId, config_epoch: u64) {
        self.split_at(range);
        for run in self.runs.iter_mut().filter(|r| within(r.range, range)) {
            run.owner = Some(owner);
            run.config_epoch = config_epoch;
        }
        self.normalize();
    }

    /// A claim by `owner` under `config_epoch`: every slot held by nobody or under a strictly
    /// lower configEpoch moves to `owner`; slots held under a higher configEpoch stay and are
    /// reported in [`ClaimOutcome::stale_against`]. Equal epochs by different owners are a
    /// collision, resolved by epoch bumping (see the node), never here.
    pub fn claim(&mut self, range: SlotRange, owner: NodeId, config_epoch: u64) -> ClaimOutcome {
        let mut outcome = ClaimOutcome::default();
        self.split_at(range);
        for run in self.runs.iter_mut().filter(|r| within(r.range, range)) {
            if run.owner == Some(owner) && run.config_epoch >= config_epoch {
                continue;
            }
            if run.owner.is_none() || run.config_epoch < config_epoch {
                outcome.changed |= run.owner != Some(owner) || run.config_epoch != config_epoch;
                run.owner = Some(owner);
                run.config_epoch = config_epoch;
            } else if run.config_epoch > config_epoch && outcome.stale_against.is_none() {
                outcome.stale_against = Some(run.clone());
            }
        }
        self.normalize();
        outcome
    }

    /// The run holding `slot`.
    pub fn owner_of(&self, slot: u16) -> &SlotRun {
        assert!(slot < SLOT_COUNT, "slot {slot} out of range");
        self.runs
            .iter()
            .find(|r| r.range.contains(slot))
            .expect("the table covers every slot")
    }

    /// The highest configEpoch of any owner within `range`.
    pub fn max_epoch_within(&self, range: SlotRange) -> u64 {
        self.runs
            .iter()
            .filter(|r| overlaps(r.range, range))
            .map(|r| r.config_epoch)
            .max()
            .unwrap_or(0)
    }

    /// The runs `node` owns.
    pub fn ranges_of(&self, node: NodeId) -> Vec<SlotRange> {
        self.runs
            .iter()
            .filter(|r| r.owner == Some(node))
            .map(|r| r.range)
            .collect()
    }

    /// Whether `node` serves at least one slot.
    pub fn serves_slots(&self, node: NodeId) -> bool {
        self.runs.iter().any(|r| r.owner == Some(node))
    }

    /// The masters that serve at least one slot, sorted: the electorate of failure detection and
    /// of failover elections.
    pub fn masters_with_slots(&self) -> Vec<NodeId> {
        let mut owners: Vec<NodeId> = self.runs.iter().filter_map(|r| r.owner).collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Splits runs so that `range.start` and `range.end + 1` fall on run boundaries.
    fn split_at(&mut self, range: SlotRange) {
        for cut in [range.start, range.end.saturating_add(1)] {
            if cut == 0 || cut >= SLOT_COUNT {
                continue;
            }
            if let Some(i) = self
                .runs
                .iter()
                .position(|r| r.range.start < cut && cut <= r.range.end)
            {
                let mut tail = self.runs[i].clone();
                tail.range.start = cut;
                self.runs[i].range.end = cut - 1;
                self.runs.insert(i + 1, tail);
            }
        }
    }

    /// Merges neighbouring runs with the same owner and epoch, so equal tables compare equal.
    fn normalize(&mut self) {
        let mut merged: Vec<SlotRun> = Vec::with_capacity(self.runs.len());
        for run in self.runs.drain(..) {
            match merged.last_mut() {
                Some(last) if last.owner == run.owner && last.config_epoch == run.config_epoch => {
                    last.range.end = run.range.end;
                }
                _ => merged.push(run),
            }
        }
        self.runs = merged;
        debug_assert_eq!(self.runs.first().map(|r| r.range.start), Some(0));
        debug_assert_eq!(self.runs.last().map(|r| r.range.end), Some(SLOT_COUNT - 1));
    }
}

fn within(inner: SlotRange, outer: SlotRange) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn overlaps(a: SlotRange, b: SlotRange) -> bool {
    a.start <= b.end && b.start <= a.end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn key_slots_match_redis_7_0_including_hash_tags() {
        let cases: [(&[u8], u16); 8] = [
            (b"foo", 12182),
            (b"bar", 5061),
            (b"hello", 866),
            (b"{user1000}.following", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{}foo", 9500),
        ];
        for (key, slot) in cases {
            assert_eq!(key_hash_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn a_claim_wins_only_with_a_strictly_higher_config_epoch() {
        let (a, b) = (NodeId::from_index(1), NodeId::from_index(2));
        let mut table = SlotTable::new();
        table.assign(SlotRange::new(0, 99), a, 3);
        let equal = table.claim(SlotRange::new(0, 99), b, 3);
        assert!(!equal.changed);
        assert_eq!(equal.stale_against, None, "a collision, not a stale claim");
        assert_eq!(table.owner_of(50).owner, Some(a));
        let lower = table.claim(SlotRange::new(0, 99), b, 2);
        assert_eq!(lower.stale_against.map(|r| r.config_epoch), Some(3));
        let higher = table.claim(SlotRange::new(10, 19), b, 4);
        assert!(higher.changed);
        assert_eq!(table.owner_of(9).owner, Some(a));
        assert_eq!(table.owner_of(10).owner, Some(b));
        assert_eq!(table.owner_of(20).owner, Some(a));
        assert_eq!(table.ranges_of(a).len(), 2);
        assert_eq!(table.max_epoch_within(SlotRange::new(0, 99)), 4);
    }

    #[test]
    fn an_owner_reclaiming_its_slots_moves_up_to_a_higher_epoch_only() {
        let a = NodeId::from_index(1);
        let mut table = SlotTable::new();
        let fresh = table.claim(SlotRange::new(0, 9), a, 0);
        assert!(fresh.changed, "unowned slots are taken even at epoch 0");
        assert_eq!(table.owner_of(5).owner, Some(a));
        table.assign(SlotRange::new(0, 9), a, 3);
        let lower = table.claim(SlotRange::new(0, 9), a, 2);
        assert!(!lower.changed);
        assert_eq!(
            lower.stale_against, None,
            "our own older claim is not stale"
        );
        let higher = table.claim(SlotRange::new(0, 9), a, 5);
        assert!(higher.changed);
        assert_eq!(table.owner_of(5).config_epoch, 5);
    }

    #[test]
    fn runs_of_one_owner_at_different_epochs_stay_apart() {
        let a = NodeId::from_index(1);
        let mut table = SlotTable::new();
        table.assign(SlotRange::new(0, 9), a, 1);
        table.assign(SlotRange::new(10, 19), a, 2);
        assert_eq!(table.owner_of(5).config_epoch, 1);
        assert_eq!(table.owner_of(15).config_epoch, 2);
    }

    #[test]
    fn tables_with_the_same_owners_compare_equal_after_split_and_merge() {
        let a = NodeId::from_index(1);
        let mut split = SlotTable::new();
        split.assign(SlotRange::new(0, 9), a, 1);
        split.assign(SlotRange::new(10, 19), a, 1);
        let mut whole = SlotTable::new();
        whole.assign(SlotRange::new(0, 19), a, 1);
        assert_eq!(split, whole);
        assert_eq!(whole.runs().len(), 2);
    }
}
