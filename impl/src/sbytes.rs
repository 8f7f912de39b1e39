//! [`SBytes`]: the byte string that keys and string values are stored as.
//!
//! 24 bytes in the table; strings up to 22 bytes live inline (no allocation), longer ones in
//! one boxed slice. Most keys and many values in real data sets are short, so a million keys
//! cost one table entry each and no per-key allocation. It hashes and compares exactly like
//! `[u8]`, so the keyspace can be looked up with a borrowed `&[u8]`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// The longest string stored inline.
pub const INLINE_MAX_BYTES: usize = 22;

#[derive(Clone)]
pub enum SBytes {
    Inline {
        len: u8,
        data: [u8; INLINE_MAX_BYTES],
    },
    Heap(Box<[u8]>),
}

impl SBytes {
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_MAX_BYTES {
            let mut data = [0u8; INLINE_MAX_BYTES];
            data[..bytes.len()].copy_from_slice(bytes);
            SBytes::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            SBytes::Heap(bytes.into())
        }
    }

    pub fn from_vec(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_MAX_BYTES {
            Self::new(&v)
        } else {
            SBytes::Heap(v.into_boxed_slice())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SBytes::Inline { len, data } => &data[..*len as usize],
            SBytes::Heap(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated outside the table for this string (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            SBytes::Inline { .. } => 0,
            SBytes::Heap(b) => b.len(),
        }
    }
}

impl std::ops::Deref for SBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for SBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for SBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash like `[u8]` for `Borrow<[u8]>` lookups.
        self.as_slice().hash(state)
    }
}

impl PartialEq for SBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SBytes {}

impl std::fmt::Debug for SBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl From<&[u8]> for SBytes {
    fn from(b: &[u8]) -> Self {
        SBytes::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn h<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut s = DefaultHasher::new();
        v.hash(&mut s);
        s.finish()
    }

    #[test]
    fn inline_and_heap_strings_hash_and_compare_like_slices() {
        assert_eq!(std::mem::size_of::<SBytes>(), 24);
        for len in [0usize, 1, 22, 23, 100] {
            let v: Vec<u8> = (0..len as u8).collect();
            let s = SBytes::new(&v);
            assert_eq!(&*s, &v[..]);
            assert_eq!(h(&s), h(&v[..]));
            assert_eq!(s, SBytes::from_vec(v.clone()));
            assert_eq!(s.heap_bytes() > 0, len > INLINE_MAX_BYTES);
        }
    }
}
