//! A node's state with its hash computed once.
//!
//! The checker fingerprints every state it generates (about 3.5 per unique state in the
//! default configuration) by hashing all of it, and most of a state is the nodes' states. A
//! step changes one actor; the others are the same `Arc`s as in the parent state. `Cached`
//! keeps the hash of the value beside it, so an unchanged node costs one `write_u64` to the
//! fingerprint instead of a walk over its backlog, replica table and data set.
//!
//! The cache cannot go stale: the value is read-only once wrapped (there is no `DerefMut`; a
//! step builds a new value and wraps it), and the hash is computed when it is wrapped. Every
//! wrapped node state is fingerprinted (a step that changes a node yields a state the checker
//! hashes), so computing it at once costs nothing extra, and a plain `u64` saves the
//! once-only initialisation a lazily filled cell pays on every new node state. Equality
//! compares the hashes first (different hashes: unequal without the walk), then the values.

use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub struct Cached<T> {
    value: T,
    hash: u64,
}

impl<T: Hash> Cached<T> {
    /// Wraps `value` with its hash, computed with fixed keys (the same in every run, as the
    /// checker's own fingerprints are).
    pub fn new(value: T) -> Self {
        let hash =
            ahash::RandomState::with_seeds(0x7665_7264_6973, 0x6e6f_6465, 0x6361_6368, 0x6564)
                .hash_one(&value);
        Cached { value, hash }
    }
}

impl<T> Deref for Cached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached {
            value: self.value.clone(),
            hash: self.hash,
        }
    }
}

impl<T> Hash for Cached<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<T: PartialEq> PartialEq for Cached<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.value == other.value
    }
}

impl<T: Eq> Eq for Cached<T> {}

impl<T: std::fmt::Debug> std::fmt::Debug for Cached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Cached<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Hash + Deserialize<'de>> Deserialize<'de> for Cached<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Cached::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint<T: Hash>(v: &T) -> u64 {
        ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(v)
    }

    #[test]
    fn equal_values_hash_equally_and_a_clone_keeps_the_hash() {
        let a = Cached::new(vec![1u8, 2, 3]);
        let b = Cached::new(vec![1u8, 2, 3]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(a, b);
        let c = a.clone();
        assert_eq!(fingerprint(&c), fingerprint(&a));
        assert_eq!(a, c);
    }

    #[test]
    fn different_values_are_unequal_and_hash_differently() {
        let a = Cached::new(vec![1u8, 2]);
        let b = Cached::new(vec![1u8, 2, 3]);
        assert_ne!(a, b);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(*b, vec![1u8, 2, 3], "the value reads through");
    }
}
