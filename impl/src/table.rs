//! [`KeyTable`]: the hash table of one keyspace shard (keys to values, keys to expiry times).
//!
//! It behaves like an `IndexMap` whose removal is `swap_remove`, which the keyspace relied on
//! before: entries sit in a vector in insertion order, a removal moves the last entry into the
//! hole, and a position in that vector is what SCAN's cursor, RANDOMKEY and the expiry sampler
//! use ([`crate::db::Db::scan`] says why SCAN's guarantee holds under that rule).
//!
//! What it changes is the index in front of the entries, for the sake of the cache:
//! - **One slot, two dependent loads.** A slot is one `u64` holding the entry's position and 32
//!   bits of the key's hash, in an open-addressing array probed linearly. A lookup reads the
//!   slot (the hash bits filter out other keys) and then the entry: two memory loads that
//!   depend on each other. A hashbrown table in front of a vector (indexmap) waits on three:
//!   its control bytes, its index slot, the entry.
//! - **The hash comes from outside.** The caller hashes a key once ([`hash_key`]) and uses the
//!   same hash to pick the shard and to probe its tables, instead of hashing it once per step.
//! - **Staged prefetch.** Because a slot's address is computed from the hash alone, a batch of
//!   lookups can be prefetched in stages ([`KeyTable::prefetch_slot`] for every key, then
//!   [`KeyTable::prefetch_entry`] for every key): the memory waits of a whole batch overlap,
//!   where a loop of complete lookups overlaps only the few that fit the processor's window.
//!
//! The probe sequence ends at an empty slot, so the table is kept at most three quarters
//! full. Removal shifts the slots after the hole back (no tombstones), so a table that sees
//! many deletions does not slow down.

use crate::sbytes::SBytes;
use std::sync::OnceLock;

/// The largest number of entries in one table: a slot keeps an entry's position in 32 bits.
/// A keyspace shard would need hundreds of gigabytes to come near it.
const MAX_ENTRIES: usize = (u32::MAX - 1) as usize;
/// The smallest slot array a table allocates.
const MIN_SLOTS: usize = 8;

static KEY_SEEDS: OnceLock<ahash::RandomState> = OnceLock::new();

/// The hash of a key: ahash with per-process random seeds (keys come from clients, so the
/// hash must not be predictable). Its top bits pick the shard (`crate::db`), its low 32 bits
/// the slot and the slot's filter.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    KEY_SEEDS.get_or_init(ahash::RandomState::new).hash_one(key)
}

/// One slot: 0 when empty, else the low 32 bits of the key's hash (high half) and the
/// entry's position plus one (low half).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Slot(u64);

impl Slot {
    const EMPTY: Slot = Slot(0);

    fn new(hash: u64, index: usize) -> Slot {
        debug_assert!(index < MAX_ENTRIES);
        Slot((hash << 32) | (index as u64 + 1))
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The low 32 bits of the key's hash.
    fn hash32(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn index(self) -> usize {
        (self.0 as u32 as usize).wrapping_sub(1)
    }
}

/// An entry fills one cache line of its own (56 bytes unaligned would straddle two lines in
/// six cases of eight), so a lookup that misses the cache waits for one line, not two.
#[derive(Clone, Debug)]
#[repr(align(64))]
struct Entry<V> {
    hash: u64,
    key: SBytes,
    value: V,
}

/// A hash table from keys to `V` with positions (see the module docs).
#[derive(Clone, Debug)]
pub struct KeyTable<V> {
    /// Insertion order; a removal moves the last entry into the hole.
    entries: Vec<Entry<V>>,
    /// Empty, or a power of two long and at most three quarters full.
    slots: Vec<Slot>,
}

impl<V> Default for KeyTable<V> {
    fn default() -> Self {
        KeyTable {
            entries: Vec::new(),
            slots: Vec::new(),
        }
    }
}

impl<V> KeyTable<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where the probe for `hash` starts. The slot array has at most 2^32 slots (see
    /// [`MAX_ENTRIES`]), so the low 32 bits of the hash, kept in the slot, give it back.
    fn home(&self, hash32: u32) -> usize {
        hash32 as usize & self.mask()
    }

    /// The slot position and entry position of `key`.
    fn find(&self, hash: u64, key: &[u8]) -> Option<(usize, usize)> {
        self.probe(hash, |index| self.entries[index].key.as_slice() == key)
    }

    /// Walks the probe sequence of `hash` to the first slot whose hash bits match and whose
    /// entry `accept` takes; its slot and entry positions.
    #[inline(always)]
    fn probe(&self, hash: u64, accept: impl Fn(usize) -> bool) -> Option<(usize, usize)> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = hash as u32;
        let mut pos = self.home(tag);
        loop {
            let slot = self.slots[pos];
            if slot.is_empty() {
                return None;
            }
            if slot.hash32() == tag && accept(slot.index()) {
                return Some((pos, slot.index()));
            }
            pos = (pos + 1) & self.mask();
        }
    }

    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        self.find(hash, key).map(|(_, i)| &self.entries[i].value)
    }

    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        let (_, i) = self.find(hash, key)?;
        Some(&mut self.entries[i].value)
    }

    pub fn contains_key(&self, hash: u64, key: &[u8]) -> bool {
        self.find(hash, key).is_some()
    }

    /// Stores `value` at `key`; returns the value it replaced.
    pub fn insert(&mut self, hash: u64, key: &[u8], value: V) -> Option<V> {
        match self.find(hash, key) {
            Some((_, i)) => Some(std::mem::replace(&mut self.entries[i].value, value)),
            None => {
                self.push(hash, SBytes::new(key), value);
                None
            }
        }
    }

    /// Stores a key that must be new: false, and nothing changed, if it exists.
    pub fn insert_new(&mut self, hash: u64, key: &[u8], value: V) -> bool {
        if self.find(hash, key).is_some() {
            return false;
        }
        self.push(hash, SBytes::new(key), value);
        true
    }

    /// Appends an entry for a key known to be absent.
    fn push(&mut self, hash: u64, key: SBytes, value: V) {
        self.reserve(1);
        let index = self.entries.len();
        self.entries.push(Entry { hash, key, value });
        self.place(Slot::new(hash, index));
    }

    /// Puts `slot` in the first empty slot of its probe sequence.
    fn place(&mut self, slot: Slot) {
        let mut pos = self.home(slot.hash32());
        while !self.slots[pos].is_empty() {
            pos = (pos + 1) & self.mask();
        }
        self.slots[pos] = slot;
    }

    /// Removes `key`; the last entry takes its position.
    pub fn swap_remove(&mut self, hash: u64, key: &[u8]) -> Option<V> {
        let (pos, index) = self.find(hash, key)?;
        self.clear_slot(pos);
        let last = self.entries.len() - 1;
        if index != last {
            let moved = self.entries[last].hash;
            let at = self.slot_of(moved, last);
            self.slots[at] = Slot::new(moved, index);
        }
        Some(self.entries.swap_remove(index).value)
    }

    /// The slot position that points at entry `index` (whose hash is `hash`).
    fn slot_of(&self, hash: u64, index: usize) -> usize {
        let mut pos = self.home(hash as u32);
        loop {
            let slot = self.slots[pos];
            debug_assert!(!slot.is_empty(), "entry {index} has no slot");
            if slot.index() == index {
                return pos;
            }
            pos = (pos + 1) & self.mask();
        }
    }

    /// Empties the slot at `hole` and shifts back the slots after it whose probe sequence
    /// passes the hole, so every probe sequence stays unbroken (linear probing's deletion
    /// without tombstones).
    fn clear_slot(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut pos = hole;
        loop {
            pos = (pos + 1) & mask;
            let slot = self.slots[pos];
            if slot.is_empty() {
                break;
            }
            let home = self.home(slot.hash32());
            // The slot may fill the hole if the hole lies between its home and where it is.
            if pos.wrapping_sub(home) & mask >= pos.wrapping_sub(hole) & mask {
                self.slots[hole] = slot;
                hole = pos;
            }
        }
        self.slots[hole] = Slot::EMPTY;
    }

    /// Makes room for `additional` more entries: the entry vector, and the slot array so that
    /// it stays at most three quarters full.
    pub fn reserve(&mut self, additional: usize) {
        let needed = self.entries.len().saturating_add(additional);
        assert!(
            needed <= MAX_ENTRIES,
            "a keyspace shard cannot hold {needed} keys"
        );
        self.entries.reserve(additional);
        if needed * 4 <= self.slots.len() * 3 {
            return;
        }
        let mut size = self.slots.len().max(MIN_SLOTS);
        while needed * 4 > size * 3 {
            size *= 2;
        }
        self.slots = vec![Slot::EMPTY; size];
        for index in 0..self.entries.len() {
            self.place(Slot::new(self.entries[index].hash, index));
        }
    }

    /// Every entry in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&SBytes, &V)> {
        self.entries.iter().map(|e| (&e.key, &e.value))
    }

    /// The entry at `index` in position order.
    pub fn get_index(&self, index: usize) -> Option<(&SBytes, &V)> {
        self.entries.get(index).map(|e| (&e.key, &e.value))
    }

    /// First prefetch stage: brings in the slot where the probe for `hash` starts.
    pub fn prefetch_slot(&self, hash: u64) {
        if !self.slots.is_empty() {
            let slot: *const Slot = &self.slots[self.home(hash as u32)];
            prefetch_line(slot.cast());
        }
    }

    /// Second stage: brings in the entry of the first slot whose hash bits match (the key is
    /// compared when the command runs; a rare false match only wastes the prefetch).
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some(index) = self.candidate(hash) {
            let at: *const Entry<V> = &self.entries[index];
            prefetch_line(at.cast());
        }
    }

    /// The value of the first entry whose hash bits match, without comparing keys: for a
    /// third prefetch stage that follows the value's own pointer.
    pub fn candidate_value(&self, hash: u64) -> Option<&V> {
        self.candidate(hash).map(|i| &self.entries[i].value)
    }

    fn candidate(&self, hash: u64) -> Option<usize> {
        self.probe(hash, |_| true).map(|(_, index)| index)
    }
}

/// Asks the processor to bring the cache line holding `at` into its caches. A hint only: it
/// reads nothing the program sees and cannot fault, so `at` may be any address.
#[inline(always)]
pub fn prefetch_line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads no memory architecturally and never faults, whatever the
    // address (it is not dereferenced).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use proptest::prelude::*;

    /// A hash that collides on purpose: few distinct low bits, so probe sequences run long,
    /// wrap around the array and cross each other, and removals shift many slots.
    fn weak_hash(key: &[u8]) -> u64 {
        let k = key.first().copied().unwrap_or(0) as u64;
        (k % 5) | ((k % 3) << 33)
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u32),
        InsertNew(u8, u32),
        Remove(u8),
        Reserve(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            1 => (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::InsertNew(k, v)),
            3 => (0u8..40).prop_map(Op::Remove),
            1 => (0u8..40).prop_map(Op::Reserve),
        ]
    }

    fn check_same(t: &KeyTable<u32>, m: &IndexMap<Vec<u8>, u32>, hash: fn(&[u8]) -> u64) {
        assert_eq!(t.len(), m.len());
        for (i, (k, v)) in m.iter().enumerate() {
            let (tk, tv) = t.get_index(i).expect("position present");
            assert_eq!((tk.as_slice(), tv), (k.as_slice(), v), "position {i}");
            assert_eq!(t.get(hash(k), k), Some(v));
        }
        let occupied = t.slots.iter().filter(|s| !s.is_empty()).count();
        assert_eq!(occupied, t.len(), "one slot per entry");
        assert!(t.len() * 4 <= t.slots.len() * 3 || t.slots.is_empty());
    }

    fn run(ops: &[Op], hash: fn(&[u8]) -> u64) {
        let mut t: KeyTable<u32> = KeyTable::default();
        let mut m: IndexMap<Vec<u8>, u32> = IndexMap::new();
        for op in ops {
            match *op {
                Op::Insert(k, v) => {
                    let key = vec![k, b'x'];
                    assert_eq!(t.insert(hash(&key), &key, v), m.insert(key, v));
                }
                Op::InsertNew(k, v) => {
                    let key = vec![k, b'x'];
                    let new = !m.contains_key(&key);
                    if new {
                        m.insert(key.clone(), v);
                    }
                    assert_eq!(t.insert_new(hash(&key), &key, v), new);
                }
                Op::Remove(k) => {
                    let key = vec![k, b'x'];
                    assert_eq!(t.swap_remove(hash(&key), &key), m.swap_remove(&key));
                }
                Op::Reserve(n) => t.reserve(n as usize),
            }
            check_same(&t, &m, hash);
        }
        for k in 0..=255u8 {
            let key = vec![k, b'x'];
            assert_eq!(t.get(hash(&key), &key), m.get(&key));
        }
    }

    proptest! {
        /// The table is an IndexMap with swap_remove: the same values and the same positions
        /// after any sequence of operations, with a real hash and with one that collides.
        #[test]
        fn behaves_as_an_indexmap_with_swap_remove(ops in proptest::collection::vec(op(), 0..300)) {
            run(&ops, hash_key);
            run(&ops, weak_hash);
        }
    }

    #[test]
    fn grows_past_many_keys_and_finds_every_one() {
        let mut t: KeyTable<usize> = KeyTable::default();
        for i in 0..100_000usize {
            let k = format!("key:{i}");
            assert_eq!(t.insert(hash_key(k.as_bytes()), k.as_bytes(), i), None);
        }
        for i in (0..100_000usize).step_by(2) {
            let k = format!("key:{i}");
            assert_eq!(t.swap_remove(hash_key(k.as_bytes()), k.as_bytes()), Some(i));
        }
        assert_eq!(t.len(), 50_000);
        for i in 0..100_000usize {
            let k = format!("key:{i}");
            let expect = (i % 2 == 1).then_some(i);
            assert_eq!(t.get(hash_key(k.as_bytes()), k.as_bytes()).copied(), expect);
        }
    }

    #[test]
    fn the_prefetch_stages_read_only() {
        let mut t: KeyTable<u32> = KeyTable::default();
        // An empty table has no slots: every stage is a no-op.
        t.prefetch_slot(7);
        t.prefetch_entry(7);
        assert_eq!(t.candidate_value(7), None);
        t.insert(hash_key(b"a"), b"a", 1);
        t.prefetch_slot(hash_key(b"a"));
        t.prefetch_entry(hash_key(b"a"));
        assert_eq!(t.candidate_value(hash_key(b"a")), Some(&1));
        assert_eq!(t.candidate_value(hash_key(b"b")), None);
        assert_eq!(t.len(), 1);
    }
}
