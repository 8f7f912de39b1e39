//! LZF compression as Redis 7.0 does it (its `lzf_c.c`: `HLOG` 16, `VERY_FAST`), so a string
//! compresses to the same bytes in a Verdis RDB as in a Redis one.
//!
//! Why our own and not the `lzf` crate's compressor: that one allocates and zeroes a 64 Ki-entry
//! table (512 KiB) on every call, which made encoding a snapshot of a million 100-byte values
//! spend 85% of its time in `memset`. Here one [`Lzf`] keeps its table across calls; a table
//! entry is tagged with the call that wrote it, so an entry left by an earlier string reads as
//! empty, exactly as if the table had been zeroed (the output does not depend on what was
//! compressed before). [`decompress`] is ours too: the crate's copies back references byte by
//! byte into a zeroed buffer; ours copies non-overlapping references with one memcpy.
//!
//! The format (`lzf_c.c`'s comment):
//! ```text
//! 000LLLLL <L+1 bytes>          literal run of L+1 bytes
//! LLLooooo oooooooo             back reference: L+2 bytes from offset o+1 back
//! 111ooooo LLLLLLLL oooooooo    back reference: L+9 bytes
//! ```

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// `FRST(p)`: the first two bytes of the hash.
fn first(input: &[u8], ip: usize) -> u32 {
    (u32::from(input[ip]) << 8) | u32::from(input[ip + 1])
}

/// `NEXT(v, p)`: shifts in the third byte.
fn next(v: u32, input: &[u8], ip: usize) -> u32 {
    (v << 8) | u32::from(input[ip + 2])
}

/// `IDX(h)` of the `VERY_FAST` variant, in 32-bit arithmetic as in C.
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// A reusable LZF compressor: its hash table and output buffer live across calls.
pub struct Lzf {
    /// `(call << 32) | position`; an entry from another call means "empty".
    table: Vec<u64>,
    call: u32,
    out: Vec<u8>,
}

impl Default for Lzf {
    fn default() -> Self {
        Self::new()
    }
}

impl Lzf {
    /// The table is allocated on the first compression, not here.
    pub fn new() -> Self {
        Lzf {
            table: Vec::new(),
            call: 0,
            out: Vec::new(),
        }
    }

    /// Compresses `input` if the result fits in `max_out` bytes, as `lzf_compress(in, len,
    /// out, max_out)` does; None where it returns 0 (empty input, or no room).
    pub fn compress(&mut self, input: &[u8], max_out: usize) -> Option<&[u8]> {
        // Positions are kept in 32 bits; Redis's lengths are `unsigned int` too.
        if input.is_empty() || max_out == 0 || u32::try_from(input.len()).is_err() {
            return None;
        }
        if self.table.is_empty() {
            self.table = vec![0; HSIZE];
        }
        self.call = self.call.wrapping_add(1);
        if self.call == 0 {
            // After 2^32 calls the tags would repeat: start over from a zeroed table.
            self.table.iter_mut().for_each(|e| *e = 0);
            self.call = 1;
        }
        let tag = u64::from(self.call) << 32;
        self.out.clear();
        let done = compress_into(input, max_out, tag, &mut self.table, &mut self.out);
        done.then_some(&self.out[..])
    }
}

/// `lzf_compress`'s body; `out` starts empty. False where the C returns 0.
fn compress_into(
    input: &[u8],
    max_out: usize,
    tag: u64,
    table: &mut [u64],
    out: &mut Vec<u8>,
) -> bool {
    let in_len = input.len();
    // The position a table slot holds for this call; 0 (the input's start, never a valid
    // reference: `ref > in_data`) for a slot another call wrote.
    let lookup = |table: &[u64], slot: usize| -> usize {
        let e = table[slot];
        if e & !0xffff_ffff == tag {
            (e & 0xffff_ffff) as usize
        } else {
            0
        }
    };
    // Closes the literal run whose length byte is `lit + 1` bytes back (`op[-lit-1] = lit-1`).
    let stop_run = |out: &mut Vec<u8>, lit: usize| {
        let at = out.len() - lit - 1;
        out[at] = (lit as u8).wrapping_sub(1);
    };
    // One more literal byte; a full run (MAX_LIT bytes) is closed and a new one started.
    let literal = |out: &mut Vec<u8>, lit: &mut usize, byte: u8| {
        *lit += 1;
        out.push(byte);
        if *lit == MAX_LIT {
            stop_run(out, *lit);
            *lit = 0;
            out.push(0); // start run
        }
    };
    let mut lit = 0usize;
    out.push(0); // start run
    let mut ip = 0usize;
    let mut hval = if in_len >= 2 { first(input, 0) } else { 0 };
    while in_len >= 3 && ip < in_len - 2 {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = lookup(table, slot);
        table[slot] = tag | ip as u64;
        // Redis 7.0.15's copy (liblzf 3.6) lets a match start at the last three bytes; later
        // copies add `ip + 4 < in_end` here, which would change the output.
        let is_match =
            r > 0 && r < ip && ip - r - 1 < MAX_OFF && input[r..r + 3] == input[ip..ip + 3];
        if is_match {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            stop_run(out, lit);
            if lit == 0 {
                out.pop(); // undo the run: it is empty
            }
            if out.len() + 3 + 1 >= max_out {
                return false;
            }
            // The match length, as lzf_c.c's loop finds it: sixteen unchecked-against-maxlen
            // steps first when maxlen > 16 (a match may then run to the input's end), then
            // byte by byte up to maxlen.
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // L: the reference copies L + 2 bytes
            ip += 1;
            if len < 7 {
                out.push(((off >> 8) + (len << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((len - 7) as u8);
            }
            out.push(off as u8);
            lit = 0;
            out.push(0); // start run
            ip += len + 1;
            if ip >= in_len - 2 {
                break;
            }
            // VERY_FAST: hash the two positions before the new one.
            ip -= 2;
            hval = first(input, ip);
            hval = next(hval, input, ip);
            table[idx(hval)] = tag | ip as u64;
            ip += 1;
            hval = next(hval, input, ip);
            table[idx(hval)] = tag | ip as u64;
            ip += 1;
        } else {
            if out.len() >= max_out {
                return false;
            }
            literal(out, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if out.len() + 3 > max_out {
        return false;
    }
    while ip < in_len {
        literal(out, &mut lit, input[ip]);
        ip += 1;
    }
    stop_run(out, lit); // end run
    if lit == 0 {
        out.pop();
    }
    true
}

/// Decompresses LZF data that must expand to exactly `len` bytes; None if it is malformed (a
/// run or reference past either end, or a different length), never a panic.
pub fn decompress(packed: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut ip = 0usize;
    while ip < packed.len() {
        let ctrl = usize::from(packed[ip]);
        ip += 1;
        if ctrl < 1 << 5 {
            // A literal run of ctrl + 1 bytes.
            let run = packed.get(ip..ip + ctrl + 1)?;
            if out.len() + run.len() > len {
                return None;
            }
            out.extend_from_slice(run);
            ip += run.len();
            continue;
        }
        let mut n = ctrl >> 5;
        if n == 7 {
            n += usize::from(*packed.get(ip)?);
            ip += 1;
        }
        n += 2;
        let back = ((ctrl & 0x1f) << 8) + usize::from(*packed.get(ip)?) + 1;
        ip += 1;
        if back > out.len() || out.len() + n > len {
            return None;
        }
        let from = out.len() - back;
        if back >= n {
            out.extend_from_within(from..from + n);
        } else {
            // Overlapping: the output repeats the `back` bytes from `from` on. Copying from
            // `from` keeps that period as long as what was copied is a whole number of
            // periods, so each step can copy everything written since `from` (doubling).
            let mut left = n;
            while left > 0 {
                let step = left.min(out.len() - from);
                out.extend_from_within(from..from + step);
                left -= step;
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator of compressible and incompressible inputs.
    fn inputs() -> Vec<Vec<u8>> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut v: Vec<Vec<u8>> = vec![
            vec![b'a'; 100],
            b"abc".repeat(300),
            (0..=255u8).collect(),
            vec![0; 70_000],
        ];
        for _ in 0..400 {
            let len = (rnd() % 3000) as usize + 1;
            let alphabet = (rnd() % 8) as u8 + 1;
            v.push(
                (0..len)
                    .map(|_| b'a' + (rnd() % u64::from(alphabet)) as u8)
                    .collect(),
            );
        }
        for _ in 0..50 {
            let len = (rnd() % 20_000) as usize + 1;
            v.push((0..len).map(|_| rnd() as u8).collect());
        }
        v
    }

    #[test]
    fn every_output_decompresses_to_its_input() {
        let mut z = Lzf::new();
        let mut compressed = 0;
        for input in inputs() {
            for max_out in [
                input.len(),
                input.len().saturating_sub(4),
                input.len() * 2 + 16,
            ] {
                if let Some(packed) = z.compress(&input, max_out) {
                    assert!(packed.len() <= max_out);
                    let back = lzf::decompress(packed, input.len()).expect("valid LZF");
                    assert_eq!(back, input);
                    assert_eq!(decompress(packed, input.len()).as_ref(), Some(&input));
                    compressed += 1;
                }
            }
        }
        assert!(compressed > 800, "{compressed}");
    }

    #[test]
    fn the_output_does_not_depend_on_earlier_calls() {
        // Why: the table is reused; an entry from another string must read as empty.
        let all = inputs();
        let mut warm = Lzf::new();
        for input in &all {
            let from_warm = warm
                .compress(input, input.len() * 2 + 16)
                .map(<[u8]>::to_vec);
            let from_fresh = Lzf::new()
                .compress(input, input.len() * 2 + 16)
                .map(<[u8]>::to_vec);
            assert_eq!(from_warm, from_fresh);
        }
    }

    #[test]
    fn malformed_input_is_refused_not_a_panic() {
        let packed = Lzf::new()
            .compress(&b"abc".repeat(100), 296)
            .map(<[u8]>::to_vec);
        let packed = packed.expect("compressible");
        // Every truncation, a wrong length, and every single-byte corruption.
        for cut in 0..packed.len() {
            assert_eq!(decompress(&packed[..cut], 300), None, "cut at {cut}");
        }
        assert_eq!(decompress(&packed, 299), None);
        assert_eq!(decompress(&packed, 301), None);
        for at in 0..packed.len() {
            for b in [0x00, 0x1f, 0x20, 0xe0, 0xff] {
                let mut bad = packed.clone();
                bad[at] = b;
                if let Some(out) = decompress(&bad, 300) {
                    assert_eq!(out.len(), 300);
                }
            }
        }
        // A reference before the start.
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x05], 4), None);
        assert_eq!(decompress(&[], 0), Some(Vec::new()));
    }

    #[test]
    fn redis_known_outputs() {
        let mut z = Lzf::new();
        // 100 'a's, from the Redis 7.0 capture alltypes.rdb (key `lzf`).
        assert_eq!(
            z.compress(&[b'a'; 100], 96),
            Some(&[0x01, 0x61, 0x61, 0xe0, 0x57, 0x00, 0x01, 0x61, 0x61][..])
        );
        // No room: None, as lzf_compress returns 0.
        assert_eq!(z.compress(&(0..=255u8).collect::<Vec<_>>(), 252), None);
        assert_eq!(z.compress(b"", 10), None);
        // A single byte is a one-byte literal run.
        assert_eq!(z.compress(b"x", 10), Some(&[0x00, b'x'][..]));
    }
}
