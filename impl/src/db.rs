//! The keyspace: 16 (by default) databases of keys, their expiry times, and the bookkeeping
//! that every write needs (WATCH, the replication stream, change counters).
//!
//! Each [`Db`] keeps two tables, as Redis does: `dict` (key -> value) and `expires`
//! (key -> absolute unix time in ms) for keys with a TTL. Both are insertion-ordered hash maps
//! (indexmap), which gives O(1) random sampling (RANDOMKEY, the active expiry cycle) and a SCAN
//! cursor over positions; see [`Db::scan`] for why that cursor keeps SCAN's guarantee.
//!
//! Expiry follows Redis: on a master a key past its time is deleted when touched (lazy) or when
//! the active cycle samples it, and the deletion is propagated as `DEL key`; on a replica
//! ([`ExpiryPolicy::Hide`]) expired keys are hidden from normal reads but only the master's
//! `DEL` removes them.
//!
//! Every mutation goes through a [`Keyspace`] method so that WATCH and the change counter
//! cannot be forgotten by a command.

use crate::sbytes::SBytes;
use bytes::Bytes;
use indexmap::IndexMap;
use rand::Rng;
use std::collections::{HashMap, HashSet};

pub type Map<K, V> = IndexMap<K, V, ahash::RandomState>;

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

/// One database.
#[derive(Default)]
pub struct Db {
    pub dict: Map<SBytes, Value>,
    pub expires: Map<SBytes, i64>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// The absolute expiry time of `key` in unix ms, if it has one.
    pub fn expire_at(&self, key: &[u8]) -> Option<i64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_at(key), Some(at) if at <= now_ms)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let v = self.dict.swap_remove(key)?;
        if !self.expires.is_empty() {
            self.expires.swap_remove(key);
        }
        Some(v)
    }

    /// One step of SCAN: visits up to `count` table positions starting below `cursor` and going
    /// down, and returns the next cursor (0 when done) and the keys at those positions.
    ///
    /// Why downwards: indexmap removes by moving the last entry into the hole. Entries not yet
    /// visited sit at positions below the cursor; only the last entry ever moves, and it moves
    /// down, so an entry not yet visited stays below the cursor and an entry already visited
    /// can at worst be visited twice. That is SCAN's guarantee: every key present for the whole
    /// iteration is returned at least once, some may be returned twice.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<SBytes>) {
        let len = self.dict.len() as u64;
        let mut next = if cursor == 0 || cursor > len {
            len
        } else {
            cursor
        };
        let mut out = Vec::with_capacity(count.min(1024));
        let mut visited = 0;
        while next > 0 && visited < count {
            next -= 1;
            visited += 1;
            if let Some((k, _)) = self.dict.get_index(next as usize) {
                out.push(k.clone());
            }
        }
        (next, out)
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
            ExpiryPolicy::Hide => true,
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
        let v = self.dbs[db as usize].dict.get(key);
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
        self.dbs[db as usize].dict.get(key)
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
        let d = &mut self.dbs[db as usize];
        match d.dict.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                d.dict.insert(SBytes::new(key), value);
            }
        }
        if !keep_ttl && !d.expires.is_empty() {
            d.expires.swap_remove(key);
        }
        self.touch(db, key);
        self.dirty += 1;
    }

    /// Replaces the value of an existing key in place, keeping its TTL (APPEND, INCR...).
    /// Returns false if the key does not exist.
    pub fn overwrite(&mut self, db: u32, key: &[u8], value: Value) -> bool {
        let Some(slot) = self.dbs[db as usize].dict.get_mut(key) else {
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
        let d = &mut self.dbs[db as usize];
        debug_assert!(d.dict.contains_key(key));
        match d.expires.get_mut(key) {
            Some(slot) => *slot = at_ms,
            None => {
                d.expires.insert(SBytes::new(key), at_ms);
            }
        }
        self.touch(db, key);
        self.dirty += 1;
    }

    /// Removes the TTL of a key. Returns whether it had one.
    pub fn persist(&mut self, db: u32, key: &[u8]) -> bool {
        let removed = self.dbs[db as usize].expires.swap_remove(key).is_some();
        if removed {
            self.touch(db, key);
            self.dirty += 1;
        }
        removed
    }

    /// Empties one database. Returns the number of keys removed.
    pub fn flush_db(&mut self, db: u32) -> u64 {
        let d = &mut self.dbs[db as usize];
        let n = d.dict.len() as u64;
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
        // Bounded: a db full of expired keys on a replica would otherwise loop forever.
        for _ in 0..100 {
            let d = &self.dbs[db as usize];
            if d.dict.is_empty() {
                return None;
            }
            let i = rand::thread_rng().gen_range(0..d.dict.len());
            let key = d.dict.get_index(i).map(|(k, _)| k.clone())?;
            if !self.expire_if_needed(db, &key, now_ms) {
                return Some(key);
            }
        }
        None
    }

    /// Live keys of `db` matching `filter`; expired keys are expired on the way.
    pub fn keys(&mut self, db: u32, now_ms: i64, filter: impl Fn(&[u8]) -> bool) -> Vec<SBytes> {
        let d = &self.dbs[db as usize];
        let candidates: Vec<SBytes> = d.dict.keys().filter(|k| filter(k)).cloned().collect();
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
                let d = &self.dbs[db as usize];
                let n = d.expires.len();
                if n == 0 {
                    break;
                }
                let mut expired_here = 0usize;
                let sample = KEYS_PER_LOOP.min(n);
                for _ in 0..sample {
                    let d = &self.dbs[db as usize];
                    if d.expires.is_empty() {
                        break;
                    }
                    let i = rng.gen_range(0..d.expires.len());
                    let Some((k, &at)) = d.expires.get_index(i) else {
                        break;
                    };
                    if at <= now_ms {
                        let k = k.clone();
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
            if d.dict.is_empty() {
                continue;
            }
            mix_digest(&mut final_digest, &(id as u32).to_be_bytes());
            for (k, v) in d.dict.iter() {
                let mut digest = [0u8; 20];
                mix_digest(&mut digest, k);
                mix_object_digest(&mut digest, v, d.expire_at(k).is_some());
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
        if let Some(v) = d.dict.get(key) {
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
