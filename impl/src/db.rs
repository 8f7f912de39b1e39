//! The keyspace: 16 (by default) databases of keys, their expiry times, and the bookkeeping
//! that every write needs (WATCH, the replication stream, change counters).
//!
//! Each [`Db`] is split into [`SHARDS_PER_DB`] shards by a hash of the key, and each shard
//! keeps two tables, as Redis does: `dict` (key -> value) and `expires` (key -> absolute unix
//! time in ms) for keys with a TTL. Both are [`KeyTable`]s: hash tables whose entries keep
//! positions, which gives O(1) random sampling (RANDOMKEY, the active expiry cycle) and a SCAN
//! cursor over positions; see [`Db::scan`] for why that cursor keeps SCAN's guarantee. A key
//! is hashed once per operation ([`hash_key`]): the top bits of the hash pick the shard, the
//! low bits the slot in the shard's tables.
//!
//! Shards are the unit of copy-on-write: a shard sits behind an `Arc`, a snapshot of the
//! whole data set ([`Keyspace::snapshot`]) clones the `Arc`s only, and the first write to a
//! shard that a snapshot still holds copies that one shard (`Arc::make_mut`). This is how
//! Verdis gets what Redis gets from `fork()` for BGSAVE and full resyncs: the snapshot is taken
//! in O(number of shards) under the lock, written out by another thread, and a writer waits at
//! most for the copy of one shard (1/256 of a db).
//!
//! Expiry follows Redis: on a master a key past its time is deleted when touched (lazy) or when
//! the active cycle samples it, and the deletion is propagated as `DEL key`; on a replica
//! ([`ExpiryPolicy::Hide`]) expired keys are hidden from normal reads but only the master's
//! `DEL` removes them.
//!
//! Every mutation goes through a [`Keyspace`] method so that WATCH and the change counter
//! cannot be forgotten by a command.

use crate::sbytes::SBytes;
use crate::table::{hash_key, prefetch_line, KeyTable};
use bytes::Bytes;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Requests whose keys [`Db::prefetch`] looks up at a time, ahead of running them: enough
/// to overlap many lookups, few enough that their entries are still cached when they run.
pub const PREFETCH_WINDOW: usize = 32;

/// Shards per database (a power of two).
pub const SHARDS_PER_DB: usize = 256;

/// The shard of a key, from the top bits of its hash (the tables inside a shard probe with
/// the low bits, so the keys of one shard still spread over a whole table).
fn shard_index(hash: u64) -> usize {
    (hash >> 56) as usize & (SHARDS_PER_DB - 1)
}

/// A stored value. Verdis stores strings today; other types arrive with their own variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(SBytes),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The encoding OBJECT ENCODING replies with, as Redis 7.0 chooses it for strings.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && verdis_core::resp::parse_i64(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }
}

/// What happens to a key whose time has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// A master: delete it and propagate `DEL`.
    Delete,
    /// A replica: hide it from clients, keep it until the master's `DEL` arrives.
    Hide,
}

/// One shard of a database.
#[derive(Clone, Default)]
pub struct Shard {
    pub dict: KeyTable<Value>,
    pub expires: KeyTable<i64>,
}

/// One database: [`SHARDS_PER_DB`] copy-on-write shards.
#[derive(Clone)]
pub struct Db {
    shards: Vec<Arc<Shard>>,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            shards: (0..SHARDS_PER_DB)
                .map(|_| Arc::new(Shard::default()))
                .collect(),
        }
    }
}

/// Cursor encoding for SCAN: shard index in the high bits, position in the low bits.
const CURSOR_POS_BITS: u32 = 40;
const CURSOR_POS_MASK: u64 = (1 << CURSOR_POS_BITS) - 1;

impl Db {
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.dict.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.dict.is_empty())
    }

    /// Keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.shards.iter().map(|s| s.expires.len()).sum()
    }

    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_index(hash)]
    }

    /// The shard of a hash, for writing: copied first if a snapshot still shares it.
    fn shard_mut(&mut self, hash: u64) -> &mut Shard {
        Arc::make_mut(&mut self.shards[shard_index(hash)])
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        let h = hash_key(key);
        self.shard(h).dict.get(h, key)
    }

    /// Prefetches what running the next [`PREFETCH_WINDOW`] requests of a pipelined batch
    /// will read of the key table, taking each request's first argument as its key: the
    /// first argument is the key of nearly every data command; for the others (`CONFIG GET
    /// name`) the prefetch is wasted, never wrong: it reads only.
    ///
    /// A lookup in a table larger than the cache waits on two dependent memory loads (the
    /// slot, then the entry) and a third for a value stored outside the table (a GET copies
    /// it, a SET's free reads the allocator's header just before it). Between commands those
    /// waits come one after another. Here each stage is issued for every key before the next
    /// stage starts, so the waits of the whole window overlap (docs/performance.md):
    /// the slots, then the entries (and TTLs), then the values.
    pub fn prefetch<'a>(&self, requests: impl Iterator<Item = &'a [Bytes]>) {
        let mut hashes = [0u64; PREFETCH_WINDOW];
        let mut n = 0;
        for key in requests
            .filter_map(|args| args.get(1))
            .take(PREFETCH_WINDOW)
        {
            let h = hash_key(key);
            let shard = self.shard(h);
            shard.dict.prefetch_slot(h);
            if !shard.expires.is_empty() {
                shard.expires.prefetch_slot(h);
            }
            hashes[n] = h;
            n += 1;
        }
        for &h in &hashes[..n] {
            let shard = self.shard(h);
            shard.dict.prefetch_entry(h);
            if !shard.expires.is_empty() {
                shard.expires.prefetch_entry(h);
            }
        }
        for &h in &hashes[..n] {
            if let Some(Value::Str(SBytes::Heap(bytes))) = self.shard(h).dict.candidate_value(h) {
                let at = bytes.as_ptr();
                prefetch_line(at.wrapping_sub(16));
                prefetch_line(at);
                if bytes.len() > 64 {
                    prefetch_line(at.wrapping_add(64));
                }
            }
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let h = hash_key(key);
        self.shard(h).dict.contains_key(h, key)
    }

    /// A value to modify in place; None (and no copy) if the key is absent.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let h = hash_key(key);
        if !self.shard(h).dict.contains_key(h, key) {
            return None;
        }
        self.shard_mut(h).dict.get_mut(h, key)
    }

    /// Stores a value (a new key or a replacement); the TTL is left as it is.
    pub fn insert(&mut self, key: &[u8], value: Value) {
        self.set(key, value, true);
    }

    /// Stores a key that must be new (loading a snapshot): one lookup, not two. False, and
    /// nothing changed, if the key exists.
    pub fn insert_new(&mut self, key: &[u8], value: Value) -> bool {
        let h = hash_key(key);
        self.shard_mut(h).dict.insert_new(h, key, value)
    }

    /// Makes room for `keys` more keys, spread evenly over the shards (a snapshot's RESIZEDB).
    pub fn reserve(&mut self, keys: usize) {
        let per_shard = keys.div_ceil(SHARDS_PER_DB);
        for shard in &mut self.shards {
            Arc::make_mut(shard).dict.reserve(per_shard);
        }
    }

    /// SET's store: the value, and without `keep_ttl` no TTL; one shard lookup for both.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        let h = hash_key(key);
        let shard = self.shard_mut(h);
        shard.dict.insert(h, key, value);
        if !keep_ttl && !shard.expires.is_empty() {
            shard.expires.swap_remove(h, key);
        }
    }

    /// The absolute expiry time of `key` in unix ms, if it has one.
    pub fn expire_at(&self, key: &[u8]) -> Option<i64> {
        let h = hash_key(key);
        let shard = self.shard(h);
        if shard.expires.is_empty() {
            return None;
        }
        shard.expires.get(h, key).copied()
    }

    fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_at(key), Some(at) if at <= now_ms)
    }

    /// Sets the expiry of an existing key.
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) {
        let h = hash_key(key);
        let shard = self.shard_mut(h);
        debug_assert!(shard.dict.contains_key(h, key));
        shard.expires.insert(h, key, at_ms);
    }

    /// Removes the TTL of a key; returns whether it had one.
    pub fn remove_expire(&mut self, key: &[u8]) -> bool {
        let h = hash_key(key);
        // Looked up first, so that a shard a snapshot shares is not copied for nothing.
        if !self.shard(h).expires.contains_key(h, key) {
            return false;
        }
        self.shard_mut(h).expires.swap_remove(h, key).is_some()
    }

    /// Removes a key and its TTL.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let h = hash_key(key);
        if !self.shard(h).dict.contains_key(h, key) {
            return None;
        }
        let shard = self.shard_mut(h);
        let v = shard.dict.swap_remove(h, key)?;
        if !shard.expires.is_empty() {
            shard.expires.swap_remove(h, key);
        }
        Some(v)
    }

    /// Every key with its value and expiry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&SBytes, &Value, Option<i64>)> {
        self.shards.iter().flat_map(|s| {
            s.dict.iter().map(move |(k, v)| {
                let at = if s.expires.is_empty() {
                    None
                } else {
                    s.expires.get(hash_key(k), k).copied()
                };
                (k, v, at)
            })
        })
    }

    /// One step of SCAN: visits up to `count` table positions and returns the next cursor
    /// (0 when done) and the keys at those positions. Shards are visited in order, each from its
    /// last position down to 0.
    ///
    /// Why downwards: a table removes by moving the last entry into the hole. Entries not yet
    /// visited sit at positions below the cursor; only the last entry ever moves, and it moves
    /// down, so an entry not yet visited stays below the cursor and an entry already visited
    /// can at worst be visited twice. That is SCAN's guarantee: every key present for the whole
    /// iteration is returned at least once, some may be returned twice.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<SBytes>) {
        let mut shard = (cursor >> CURSOR_POS_BITS) as usize;
        let low = cursor & CURSOR_POS_MASK;
        // Cursor 0 starts shard 0 from its top; a low part of all ones does the same for
        // the shard named in the high bits.
        let mut pos = if cursor == 0 || low == CURSOR_POS_MASK {
            u64::MAX
        } else {
            low
        };
        let mut out = Vec::with_capacity(count.min(1024));
        let mut visited = 0;
        while shard < SHARDS_PER_DB {
            let s = &self.shards[shard];
            let len = s.dict.len() as u64;
            if pos > len {
                pos = len;
            }
            while pos > 0 && visited < count {
                pos -= 1;
                visited += 1;
                if let Some((k, _)) = s.dict.get_index(pos as usize) {
                    out.push(k.clone());
                }
            }
            if pos > 0 {
                return (((shard as u64) << CURSOR_POS_BITS) | pos, out);
            }
            shard += 1;
            pos = u64::MAX;
            if visited >= count {
                break;
            }
        }
        if shard >= SHARDS_PER_DB {
            return (0, out);
        }
        (((shard as u64) << CURSOR_POS_BITS) | CURSOR_POS_MASK, out)
    }

    /// A random key, or None if the db is empty.
    pub fn random_key(&self, rng: &mut impl Rng) -> Option<SBytes> {
        for _ in 0..SHARDS_PER_DB * 2 {
            let s = &self.shards[rng.gen_range(0..SHARDS_PER_DB)];
            if s.dict.is_empty() {
                continue;
            }
            return s
                .dict
                .get_index(rng.gen_range(0..s.dict.len()))
                .map(|(k, _)| k.clone());
        }
        // Sparse db: fall back to the first non-empty shard from a random start.
        let start = rng.gen_range(0..SHARDS_PER_DB);
        (0..SHARDS_PER_DB)
            .map(|i| &self.shards[(start + i) % SHARDS_PER_DB])
            .find(|s| !s.dict.is_empty())
            .and_then(|s| s.dict.get_index(rng.gen_range(0..s.dict.len())))
            .map(|(k, _)| k.clone())
    }

    /// A random key with a TTL and its expiry time.
    pub fn random_volatile(&self, rng: &mut impl Rng) -> Option<(SBytes, i64)> {
        let start = rng.gen_range(0..SHARDS_PER_DB);
        (0..SHARDS_PER_DB)
            .map(|i| &self.shards[(start + i) % SHARDS_PER_DB])
            .find(|s| !s.expires.is_empty())
            .and_then(|s| s.expires.get_index(rng.gen_range(0..s.expires.len())))
            .map(|(k, at)| (k.clone(), *at))
    }
}

/// A command in the form it is propagated to replicas, and the db it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Propagated {
    pub db: u32,
    pub args: Vec<Bytes>,
}

impl Propagated {
    pub fn new(db: u32, args: Vec<Bytes>) -> Self {
        Propagated { db, args }
    }
}

#[derive(Clone, Debug, Default)]
pub struct KeyspaceStats {
    pub expired_keys: u64,
    pub expired_stale_perc: f64,
    pub expired_time_cap_reached_count: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
}

/// Client ids, as CLIENT ID returns them.
pub type ClientId = u64;

/// All databases plus the bookkeeping every write shares.
pub struct Keyspace {
    dbs: Vec<Db>,
    pub policy: ExpiryPolicy,
    /// Set while a command of our master's stream runs: expired keys are still present.
    pub master_access: bool,
    /// Writes in propagated form, in execution order, waiting for the replication layer.
    pub propagated: Vec<Propagated>,
    /// Changes since the last save (INFO rdb_changes_since_last_save).
    pub dirty: u64,
    pub stats: KeyspaceStats,
    /// WATCHed keys -> the clients watching them.
    watched: HashMap<(u32, SBytes), Vec<ClientId>>,
    /// Clients whose watched keys changed: their EXEC fails.
    watch_broken: HashSet<ClientId>,
}

impl Keyspace {
    pub fn new(databases: u32) -> Self {
        assert!(databases >= 1);
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            policy: ExpiryPolicy::Delete,
            master_access: false,
            propagated: Vec::new(),
            dirty: 0,
            stats: KeyspaceStats::default(),
            watched: HashMap::new(),
            watch_broken: HashSet::new(),
        }
    }

    pub fn db_count(&self) -> u32 {
        self.dbs.len() as u32
    }

    pub fn db(&self, db: u32) -> &Db {
        &self.dbs[db as usize]
    }

    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Replaces all databases at once (a loaded snapshot). Every watcher is invalidated.
    pub fn replace_all(&mut self, dbs: Vec<Db>) {
        assert_eq!(dbs.len(), self.dbs.len());
        self.dbs = dbs;
        self.break_all_watches();
    }

    pub fn total_keys(&self) -> u64 {
        self.dbs.iter().map(|d| d.len() as u64).sum()
    }

    /// Records a propagated write.
    pub fn propagate(&mut self, db: u32, args: Vec<Bytes>) {
        self.propagated.push(Propagated::new(db, args));
    }

    /// Takes the writes propagated since the last call.
    pub fn take_propagated(&mut self) -> Vec<Propagated> {
        std::mem::take(&mut self.propagated)
    }

    /// Expires `key` if its time has passed. Returns true if the key is (now) logically absent
    /// because of expiry.
    fn expire_if_needed(&mut self, db: u32, key: &[u8], now_ms: i64) -> bool {
        let d = &self.dbs[db as usize];
        if !d.is_expired(key, now_ms) {
            return false;
        }
        match self.policy {
            // The master's own commands see the key until the master deletes it.
            ExpiryPolicy::Hide => !self.master_access,
            ExpiryPolicy::Delete => {
                self.delete_expired(db, key);
                true
            }
        }
    }

    fn delete_expired(&mut self, db: u32, key: &[u8]) {
        let removed = self.dbs[db as usize].remove(key);
        debug_assert!(removed.is_some());
        self.stats.expired_keys += 1;
        self.touch(db, key);
        self.propagate(
            db,
            vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)],
        );
    }

    /// Looks up a key for reading: expired keys are absent; counts hits and misses.
    pub fn get(&mut self, db: u32, key: &[u8], now_ms: i64) -> Option<&Value> {
        if self.expire_if_needed(db, key, now_ms) {
            self.stats.keyspace_misses += 1;
            return None;
        }
        let v = self.dbs[db as usize].get(key);
        if v.is_some() {
            self.stats.keyspace_hits += 1;
        } else {
            self.stats.keyspace_misses += 1;
        }
        v
    }

    /// Looks up a key without touching the hit/miss counters (TYPE, EXISTS, TTL...).
    pub fn peek(&mut self, db: u32, key: &[u8], now_ms: i64) -> Option<&Value> {
        if self.expire_if_needed(db, key, now_ms) {
            return None;
        }
        self.dbs[db as usize].get(key)
    }

    /// What a write's key lookup does first (Redis's lookupKeyWrite): a key past its time is
    /// deleted now (and `DEL` propagated) on a master. For writers that do not need to know
    /// whether the key exists, this is the whole lookup.
    pub fn expire_if_stale(&mut self, db: u32, key: &[u8], now_ms: i64) {
        self.expire_if_needed(db, key, now_ms);
    }

    /// Whether `key` exists (expired keys do not).
    pub fn exists(&mut self, db: u32, key: &[u8], now_ms: i64) -> bool {
        self.peek(db, key, now_ms).is_some()
    }

    /// The expiry time of a key that exists.
    pub fn expire_at(&self, db: u32, key: &[u8]) -> Option<i64> {
        self.dbs[db as usize].expire_at(key)
    }

    /// Stores `value` at `key`. Without `keep_ttl` any TTL is removed, as SET does.
    pub fn set(&mut self, db: u32, key: &[u8], value: Value, keep_ttl: bool) {
        self.dbs[db as usize].set(key, value, keep_ttl);
        self.touch(db, key);
        self.dirty += 1;
    }

    /// Replaces the value of an existing key in place, keeping its TTL (APPEND, INCR...).
    /// Returns false if the key does not exist.
    pub fn overwrite(&mut self, db: u32, key: &[u8], value: Value) -> bool {
        let Some(slot) = self.dbs[db as usize].get_mut(key) else {
            return false;
        };
        *slot = value;
        self.touch(db, key);
        self.dirty += 1;
        true
    }

    /// Deletes a key (expired or not). Returns whether it was logically present.
    pub fn delete(&mut self, db: u32, key: &[u8], now_ms: i64) -> bool {
        let was_live = !self.dbs[db as usize].is_expired(key, now_ms);
        match self.dbs[db as usize].remove(key) {
            Some(_) => {
                self.touch(db, key);
                self.dirty += 1;
                was_live
            }
            None => false,
        }
    }

    /// Sets the absolute expiry of an existing key.
    pub fn set_expire(&mut self, db: u32, key: &[u8], at_ms: i64) {
        self.dbs[db as usize].set_expire(key, at_ms);
        self.touch(db, key);
        self.dirty += 1;
    }

    /// Removes the TTL of a key. Returns whether it had one.
    pub fn persist(&mut self, db: u32, key: &[u8]) -> bool {
        let removed = self.dbs[db as usize].remove_expire(key);
        if removed {
            self.touch(db, key);
            self.dirty += 1;
        }
        removed
    }

    /// Empties one database. Returns the number of keys removed.
    pub fn flush_db(&mut self, db: u32) -> u64 {
        let d = &mut self.dbs[db as usize];
        let n = d.len() as u64;
        *d = Db::default();
        self.break_watches_in_db(db);
        self.dirty += n;
        n
    }

    /// SWAPDB: exchanges two databases; watchers of both are invalidated.
    pub fn swap_dbs(&mut self, a: u32, b: u32) {
        self.dbs.swap(a as usize, b as usize);
        self.break_watches_in_db(a);
        self.break_watches_in_db(b);
        self.dirty += 1;
    }

    pub fn flush_all(&mut self) -> u64 {
        (0..self.db_count()).map(|db| self.flush_db(db)).sum()
    }

    /// A random live key, or None. Expired keys met on the way are expired.
    pub fn random_key(&mut self, db: u32, now_ms: i64) -> Option<SBytes> {
        let mut rng = rand::thread_rng();
        // Bounded: a db full of expired keys on a replica would otherwise loop forever.
        for _ in 0..100 {
            let key = self.dbs[db as usize].random_key(&mut rng)?;
            if !self.expire_if_needed(db, &key, now_ms) {
                return Some(key);
            }
        }
        None
    }

    /// A cheap copy of every database that later writes do not change (copy-on-write shards).
    pub fn snapshot(&self) -> Vec<Db> {
        self.dbs.clone()
    }

    /// Live keys of `db` matching `filter`; expired keys are expired on the way.
    pub fn keys(&mut self, db: u32, now_ms: i64, filter: impl Fn(&[u8]) -> bool) -> Vec<SBytes> {
        let d = &self.dbs[db as usize];
        let candidates: Vec<SBytes> = d
            .iter()
            .map(|(k, _, _)| k)
            .filter(|k| filter(k))
            .cloned()
            .collect();
        candidates
            .into_iter()
            .filter(|k| !self.expire_if_needed(db, k, now_ms))
            .collect()
    }

    /// SCAN: see [`Db::scan`]. Expired keys are expired and left out.
    pub fn scan(&mut self, db: u32, cursor: u64, count: usize, now_ms: i64) -> (u64, Vec<SBytes>) {
        let (next, keys) = self.dbs[db as usize].scan(cursor, count);
        let keys = keys
            .into_iter()
            .filter(|k| !self.expire_if_needed(db, k, now_ms))
            .collect();
        (next, keys)
    }

    /// One run of the active expiry cycle (Redis's activeExpireCycle, slow mode): samples keys
    /// with a TTL in every db, 20 at a time, and repeats on a db while more than 10% of a
    /// sample was expired, within `budget_us` of work. Only a master expires actively.
    pub fn active_expire_cycle(&mut self, now_ms: i64, budget_us: u64) {
        const KEYS_PER_LOOP: usize = 20;
        const ACCEPTABLE_STALE_PERC: usize = 10;
        if self.policy == ExpiryPolicy::Hide {
            return;
        }
        let start = std::time::Instant::now();
        let mut sampled_total = 0u64;
        let mut expired_total = 0u64;
        let mut rng = rand::thread_rng();
        for db in 0..self.db_count() {
            loop {
                let n = self.dbs[db as usize].expires_len();
                if n == 0 {
                    break;
                }
                let mut expired_here = 0usize;
                let sample = KEYS_PER_LOOP.min(n);
                for _ in 0..sample {
                    let Some((k, at)) = self.dbs[db as usize].random_volatile(&mut rng) else {
                        break;
                    };
                    if at <= now_ms {
                        self.delete_expired(db, &k);
                        expired_here += 1;
                    }
                }
                sampled_total += sample as u64;
                expired_total += expired_here as u64;
                if start.elapsed().as_micros() as u64 > budget_us {
                    self.stats.expired_time_cap_reached_count += 1;
                    break;
                }
                if expired_here * 100 <= sample * ACCEPTABLE_STALE_PERC {
                    break;
                }
            }
        }
        if sampled_total > 0 {
            let perc = expired_total as f64 / sampled_total as f64;
            self.stats.expired_stale_perc = perc * 0.05 + self.stats.expired_stale_perc * 0.95;
        }
    }

    /// WATCH: `client` watches `key` in `db`.
    pub fn watch(&mut self, client: ClientId, db: u32, key: &[u8]) {
        let watchers = self.watched.entry((db, SBytes::new(key))).or_default();
        if !watchers.contains(&client) {
            watchers.push(client);
        }
    }

    /// UNWATCH (also on EXEC, DISCARD, disconnect): forgets the client's watches.
    pub fn unwatch(&mut self, client: ClientId, keys: &[(u32, SBytes)]) {
        for k in keys {
            if let Some(w) = self.watched.get_mut(k) {
                w.retain(|c| *c != client);
                if w.is_empty() {
                    self.watched.remove(k);
                }
            }
        }
        self.watch_broken.remove(&client);
    }

    /// Whether a watched key of `client` changed since WATCH.
    pub fn watch_is_broken(&self, client: ClientId) -> bool {
        self.watch_broken.contains(&client)
    }

    /// Marks watchers of `key` as broken (Redis's signalModifiedKey).
    fn touch(&mut self, db: u32, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(w) = self.watched.get(&(db, SBytes::new(key))) {
            self.watch_broken.extend(w.iter().copied());
        }
    }

    fn break_watches_in_db(&mut self, db: u32) {
        for ((d, _), w) in self.watched.iter() {
            if *d == db {
                self.watch_broken.extend(w.iter().copied());
            }
        }
    }

    fn break_all_watches(&mut self) {
        for w in self.watched.values() {
            self.watch_broken.extend(w.iter().copied());
        }
    }

    /// DEBUG DIGEST: Redis 7.0's dataset digest, so equal datasets give equal digests on
    /// Verdis and on redis-server alike. 40 zeros for an empty dataset.
    pub fn digest(&self) -> [u8; 20] {
        let mut final_digest = [0u8; 20];
        for (id, d) in self.dbs.iter().enumerate() {
            if d.is_empty() {
                continue;
            }
            mix_digest(&mut final_digest, &(id as u32).to_be_bytes());
            for (k, v, at) in d.iter() {
                let mut digest = [0u8; 20];
                mix_digest(&mut digest, k);
                mix_object_digest(&mut digest, v, at.is_some());
                // Redis's xorDigest hashes what it mixes in: final ^= SHA1(key-value digest).
                xor_digest(&mut final_digest, &digest);
            }
        }
        final_digest
    }

    /// DEBUG DIGEST-VALUE: the digest of one value (and whether it has a TTL), or zeros.
    pub fn value_digest(&self, db: u32, key: &[u8]) -> [u8; 20] {
        let d = &self.dbs[db as usize];
        let mut digest = [0u8; 20];
        if let Some(v) = d.get(key) {
            mix_object_digest(&mut digest, v, d.expire_at(key).is_some());
        }
        digest
    }
}

/// Redis's xorObjectDigest: the type, the value, and a mark for a TTL.
fn mix_object_digest(digest: &mut [u8; 20], v: &Value, has_expire: bool) {
    match v {
        Value::Str(s) => {
            const OBJ_STRING: u32 = 0;
            mix_digest(digest, &OBJ_STRING.to_be_bytes());
            mix_digest(digest, s);
        }
    }
    if has_expire {
        xor_digest(digest, b"!!expire!!");
    }
}

fn xor_digest(digest: &mut [u8; 20], data: &[u8]) {
    use sha1::{Digest, Sha1};
    let h = Sha1::digest(data);
    for (a, b) in digest.iter_mut().zip(h.iter()) {
        *a ^= b;
    }
}

fn mix_digest(digest: &mut [u8; 20], data: &[u8]) {
    use sha1::{Digest, Sha1};
    xor_digest(digest, data);
    let h = Sha1::digest(&digest[..]);
    digest.copy_from_slice(&h);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(SBytes::new(v.as_bytes()))
    }

    #[test]
    fn prefetch_reads_only_and_copies_no_shard_a_snapshot_shares() {
        let mut db = Db::default();
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), s("v"), false);
        }
        let snapshot = db.clone();
        let requests: Vec<Vec<Bytes>> = (0..2000)
            .map(|i| vec![Bytes::from_static(b"SET"), Bytes::from(format!("k{i}"))])
            .chain([vec![Bytes::from_static(b"PING")], vec![]])
            .collect();
        db.prefetch(requests.iter().map(|r| &r[..]));
        assert_eq!(db.len(), 1000, "absent keys are not created");
        for (a, b) in db.shards.iter().zip(&snapshot.shards) {
            assert!(Arc::ptr_eq(a, b), "a prefetch must not copy a shared shard");
        }
    }

    #[test]
    fn lazy_expiry_deletes_and_propagates_del_on_a_master() {
        let mut ks = Keyspace::new(16);
        ks.set(0, b"k", s("v"), false);
        ks.set_expire(0, b"k", 1000);
        assert!(ks.get(0, b"k", 999).is_some());
        assert!(ks.get(0, b"k", 1000).is_none());
        assert_eq!(ks.db(0).len(), 0);
        assert_eq!(ks.stats.expired_keys, 1);
        let p = ks.take_propagated();
        assert_eq!(p, vec![Propagated::new(0, vec!["DEL".into(), "k".into()])]);
    }

    #[test]
    fn a_replica_hides_expired_keys_but_keeps_them() {
        let mut ks = Keyspace::new(16);
        ks.policy = ExpiryPolicy::Hide;
        ks.set(0, b"k", s("v"), false);
        ks.set_expire(0, b"k", 1000);
        assert!(ks.get(0, b"k", 2000).is_none());
        assert_eq!(ks.db(0).len(), 1);
        assert!(ks.take_propagated().is_empty());
    }

    #[test]
    fn scan_returns_every_key_present_throughout_despite_deletions() {
        let mut ks = Keyspace::new(1);
        for i in 0..1000 {
            ks.set(0, format!("k{i}").as_bytes(), s("v"), false);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, keys) = ks.scan(0, cursor, 10, 0);
            seen.extend(keys.into_iter().map(|k| k.to_vec()));
            // Delete keys with odd numbers as we go; even ones must all be seen.
            let victim = format!("k{}", step * 2 + 1);
            ks.delete(0, victim.as_bytes(), 0);
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in (0..1000).step_by(2) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }

    #[test]
    fn a_snapshot_does_not_see_later_writes() {
        let mut ks = Keyspace::new(2);
        for i in 0..2000 {
            ks.set(0, format!("k{i}").as_bytes(), s("old"), false);
        }
        ks.set_expire(0, b"k1", 99);
        let snap = ks.snapshot();
        for i in 0..2000 {
            ks.set(0, format!("k{i}").as_bytes(), s("new"), false);
        }
        ks.delete(0, b"k5", 0);
        ks.set(1, b"other", s("x"), false);
        assert_eq!(snap[0].len(), 2000);
        assert!(snap[0].iter().all(|(_, v, _)| *v == s("old")));
        assert_eq!(snap[0].expire_at(b"k1"), Some(99));
        assert_eq!(ks.expire_at(0, b"k1"), None);
        assert!(snap[1].is_empty());
        assert_eq!(ks.db(0).len(), 1999);
    }

    #[test]
    fn scan_visits_each_key_once_when_nothing_changes() {
        let mut ks = Keyspace::new(1);
        for i in 0..5000 {
            ks.set(0, format!("k{i}").as_bytes(), s("v"), false);
        }
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = ks.scan(0, cursor, 100, 0);
            assert!(keys.len() <= 100);
            seen.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 5000);
        let unique: HashSet<_> = seen.into_iter().collect();
        assert_eq!(unique.len(), 5000);
    }

    #[test]
    fn active_expiry_reclaims_expired_keys() {
        let mut ks = Keyspace::new(1);
        for i in 0..500 {
            let k = format!("k{i}");
            ks.set(0, k.as_bytes(), s("v"), false);
            ks.set_expire(0, k.as_bytes(), 10);
        }
        ks.set(0, b"keep", s("v"), false);
        for _ in 0..100 {
            ks.active_expire_cycle(20, 1_000_000);
        }
        assert_eq!(ks.db(0).len(), 1);
        assert_eq!(ks.stats.expired_keys, 500);
    }

    #[test]
    fn watch_breaks_on_write_and_flush() {
        let mut ks = Keyspace::new(2);
        ks.watch(7, 0, b"a");
        ks.set(0, b"b", s("v"), false);
        assert!(!ks.watch_is_broken(7));
        ks.set(0, b"a", s("v"), false);
        assert!(ks.watch_is_broken(7));
        ks.unwatch(7, &[(0, SBytes::new(b"a"))]);
        ks.watch(7, 1, b"x");
        ks.flush_db(1);
        assert!(ks.watch_is_broken(7));
    }

    #[test]
    fn digest_matches_redis_7_0() {
        // Vectors read from redis-server 7.0.15's DEBUG DIGEST and DEBUG DIGEST-VALUE.
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut ks = Keyspace::new(16);
        ks.set(0, b"foo", s("bar"), false);
        assert_eq!(hex(ks.digest()), "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a");
        ks.set(0, b"n", s("11"), false);
        assert_eq!(hex(ks.digest()), "f4a7fb4c075157072f20cd001c3a89372ea5bc74");
        ks.delete(0, b"n", 0);
        ks.set_expire(0, b"foo", i64::MAX);
        assert_eq!(hex(ks.digest()), "8b0c6d22108f15467022bc27c005787072eb4c4b");
        assert_eq!(
            hex(ks.value_digest(0, b"foo")),
            "8ec3828f7209dd3abdf6ee448de8b0c0bd53265f"
        );
    }

    #[test]
    fn digest_is_zero_for_empty_and_order_independent() {
        let mut a = Keyspace::new(16);
        assert_eq!(a.digest(), [0u8; 20]);
        let mut b = Keyspace::new(16);
        a.set(0, b"x", s("1"), false);
        a.set(0, b"y", s("2"), false);
        b.set(0, b"y", s("2"), false);
        b.set(0, b"x", s("1"), false);
        assert_eq!(a.digest(), b.digest());
        b.set(0, b"x", s("3"), false);
        assert_ne!(a.digest(), b.digest());
    }
}
