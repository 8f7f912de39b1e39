//! The replication backlog: the tail of the stream a master keeps so a replica that lost its
//! link can resume with a partial resync instead of a full one.
//!
//! The backlog holds the bytes at offsets `first_byte_offset .. first_byte_offset + histlen`
//! (offsets count from 1: the byte at offset 1 is the first byte ever produced under a replid,
//! and `master_repl_offset` is the offset of the last byte). It is bounded by `size_bytes`
//! (`repl-backlog-size`): appending past the bound drops the oldest bytes and moves
//! `first_byte_offset` forward. Redis 7.0 lets the backlog grow past its size while replicas
//! lag (it shares buffers with replica output); Verdis keeps the hard bound and documents it.
//!
//! Invariant while attached to a node: `first_byte_offset + histlen == master_repl_offset + 1`.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A byte-bounded window over the end of the replication stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    size_bytes: u64,
    first_byte_offset: u64,
    bytes: VecDeque<u8>,
}

/// Hashes the bytes in chunks rather than one `write_u8` per byte (what `VecDeque`'s own `Hash`
/// does): the model checker fingerprints every state, backlogs included. Chunk boundaries
/// follow logical positions, not the deque's internal split, so equal backlogs hash equally.
impl std::hash::Hash for Backlog {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.size_bytes.hash(state);
        self.first_byte_offset.hash(state);
        state.write_usize(self.bytes.len());
        let mut chunk = [0u8; 64];
        let mut filled = 0;
        for &b in &self.bytes {
            chunk[filled] = b;
            filled += 1;
            if filled == chunk.len() {
                state.write(&chunk);
                filled = 0;
            }
        }
        state.write(&chunk[..filled]);
    }
}

impl Backlog {
    /// A backlog created when the node's stream stands at `master_repl_offset`: the next byte
    /// produced will have offset `master_repl_offset + 1`.
    pub fn new(size_bytes: u64, master_repl_offset: u64) -> Backlog {
        assert!(
            size_bytes > 0,
            "repl-backlog-size must be validated as positive"
        );
        Backlog {
            size_bytes,
            first_byte_offset: master_repl_offset + 1,
            bytes: VecDeque::new(),
        }
    }

    /// `repl_backlog_size`.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// `repl_backlog_first_byte_offset`.
    pub fn first_byte_offset(&self) -> u64 {
        self.first_byte_offset
    }

    /// `repl_backlog_histlen`.
    pub fn histlen(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The offset of the last byte held (equals `master_repl_offset`).
    pub fn end_offset(&self) -> u64 {
        self.first_byte_offset + self.histlen() - 1
    }

    /// Appends stream bytes, dropping the oldest ones beyond `size_bytes`.
    pub fn append(&mut self, stream: &[u8]) {
        self.bytes.extend(stream.iter().copied());
        let excess = self.histlen().saturating_sub(self.size_bytes);
        if excess > 0 {
            self.bytes.drain(..excess as usize);
            self.first_byte_offset += excess;
        }
        debug_assert!(self.histlen() <= self.size_bytes);
    }

    /// True when a replica asking for the byte at `from_offset` can be served from here:
    /// `first_byte_offset <= from_offset <= first_byte_offset + histlen` (the upper bound is
    /// "nothing missing, nothing to send").
    pub fn covers(&self, from_offset: u64) -> bool {
        from_offset >= self.first_byte_offset
            && from_offset <= self.first_byte_offset + self.histlen()
    }

    /// The bytes from `from_offset` to the end, or `None` when the range is not held.
    pub fn read_from(&self, from_offset: u64) -> Option<Vec<u8>> {
        if !self.covers(from_offset) {
            return None;
        }
        let skip = (from_offset - self.first_byte_offset) as usize;
        Some(self.bytes.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(b: &Backlog) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        b.hash(&mut h);
        h.finish()
    }

    /// The model checker tells states apart by their hash: equal backlogs must hash equally
    /// whatever the deque's internal layout, and a backlog's bytes, in every 64-byte chunk and
    /// in the tail, must count.
    #[test]
    fn backlog_hash_follows_the_bytes_not_the_layout() {
        let stream: Vec<u8> = (0..200u8).collect();
        let mut one_go = Backlog::new(150, 0);
        one_go.append(&stream);
        // Appended in pieces past the bound: the deque wraps around inside.
        let mut pieces = Backlog::new(150, 0);
        for part in stream.chunks(7) {
            pieces.append(part);
        }
        assert_eq!(one_go, pieces);
        assert_eq!(hash_of(&one_go), hash_of(&pieces));
        for at in [0usize, 63, 64, 130, 149] {
            let mut other = stream.clone();
            other[50 + at] ^= 0xff;
            let mut changed = Backlog::new(150, 0);
            changed.append(&other);
            assert_ne!(
                hash_of(&changed),
                hash_of(&one_go),
                "byte {at} of the window"
            );
        }
    }

    #[test]
    fn backlog_reports_its_configured_size() {
        let mut b = Backlog::new(100, 0);
        b.append(&[7; 150]);
        assert_eq!((b.size_bytes(), b.histlen()), (100, 100));
    }

    #[test]
    fn backlog_starts_after_the_current_offset() {
        let b = Backlog::new(100, 494);
        assert_eq!((b.first_byte_offset(), b.histlen()), (495, 0));
        assert!(b.covers(495));
        assert!(!b.covers(494) && !b.covers(496));
        assert_eq!(b.read_from(495), Some(vec![]));
    }

    #[test]
    fn backlog_drops_oldest_bytes_beyond_its_size() {
        let mut b = Backlog::new(8, 0);
        b.append(b"abcde");
        assert_eq!(
            (b.first_byte_offset(), b.histlen(), b.end_offset()),
            (1, 5, 5)
        );
        b.append(b"fghij");
        assert_eq!(
            (b.first_byte_offset(), b.histlen(), b.end_offset()),
            (3, 8, 10)
        );
        assert_eq!(b.read_from(3), Some(b"cdefghij".to_vec()));
        assert_eq!(b.read_from(9), Some(b"ij".to_vec()));
        assert_eq!(b.read_from(11), Some(vec![]));
        assert_eq!(b.read_from(2), None);
        assert_eq!(b.read_from(12), None);
    }
}
