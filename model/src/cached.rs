//! A node's state with its hash computed once.
//!
//! The checker fingerprints every state it generates (about 3.5 per unique state in the
//! default configuration) by hashing all of it, and most of a state is the nodes' states. A
//! step changes one actor; the others are the same `Arc`s as in the parent state. `Cached`
//! keeps the hash of the value beside it, so an unchanged node costs one `write_u64` to the
//! fingerprint instead of a walk over its backlog, replica table and data set.
//!
//! The cache cannot go stale: `Clone` and every mutable access (`DerefMut`) drop it, and only
//! `&self` methods fill it. Equality compares the values (two values with cached hashes that
//! differ are unequal without the walk).

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub struct Cached<T> {
    value: T,
    hash: OnceLock<u64>,
}

impl<T> Cached<T> {
    pub fn new(value: T) -> Self {
        Cached {
            value,
            hash: OnceLock::new(),
        }
    }
}

impl<T: Hash> Cached<T> {
    /// The value's hash, computed on first use with fixed keys (the same in every run, as
    /// the checker's own fingerprints are).
    fn digest(&self) -> u64 {
        *self.hash.get_or_init(|| {
            ahash::RandomState::with_seeds(0x7665_7264_6973, 0x6e6f_6465, 0x6361_6368, 0x6564)
                .hash_one(&self.value)
        })
    }
}

impl<T> Deref for Cached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Cached<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.hash = OnceLock::new();
        &mut self.value
    }
}

impl<T: Clone> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached::new(self.value.clone())
    }
}

impl<T: Hash> Hash for Cached<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest());
    }
}

impl<T: PartialEq> PartialEq for Cached<T> {
    fn eq(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (self.hash.get(), other.hash.get()) {
            if a != b {
                return false;
            }
        }
        self.value == other.value
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

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Cached<T> {
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
    fn a_mutation_through_deref_mut_drops_the_cached_hash() {
        let mut c = Cached::new(vec![1u8, 2, 3]);
        let before = fingerprint(&c);
        c.push(4);
        assert_ne!(fingerprint(&c), before);
        assert_eq!(
            fingerprint(&c),
            fingerprint(&Cached::new(vec![1u8, 2, 3, 4]))
        );
    }

    #[test]
    fn a_clone_recomputes_and_equality_compares_values() {
        let a = Cached::new(vec![1u8, 2]);
        let _ = fingerprint(&a);
        let mut b = a.clone();
        assert_eq!(a, b);
        b.push(3);
        let _ = fingerprint(&b);
        assert_ne!(a, b);
        b.pop();
        assert_eq!(a, b, "equal values are equal whatever their caches hold");
    }
}
