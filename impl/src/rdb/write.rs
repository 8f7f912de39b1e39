//! The RDB writer: a snapshot (`&[Db]`) to any `std::io::Write`, byte for byte as Redis 7.0
//! writes the same data (the key order aside, which is the table's order in both).
//!
//! It never touches the store: the caller takes the snapshot under the lock
//! ([`crate::db::Keyspace::snapshot`], O(shards)) and writes it from wherever it likes, a
//! background thread for BGSAVE or a socket for a full sync. Output goes through a 64 KiB
//! buffer; the CRC64 is computed on the way.

use super::lzf::Lzf;
use super::{canonical_int, enc, opcode, Crc64Digest, ReplAux, CRC64, REDIS_VER_AUX, TYPE_STRING};
use crate::db::{Db, Value};
use std::io::{self, Write};

/// Bytes buffered before a write to the output.
const FLUSH_BYTES: usize = 64 * 1024;

/// What goes into the header besides the data.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF for strings longer than 20 bytes when it saves space.
    pub compression: bool,
    /// `rdbchecksum`: the CRC64 trailer (`no` writes 0, which loaders accept unchecked).
    pub checksum: bool,
    /// The `ctime` aux field: unix seconds when the snapshot was taken.
    pub ctime_unix: i64,
    /// The `used-mem` aux field, in bytes.
    pub used_mem_bytes: u64,
    /// repl-stream-db, repl-id and repl-offset, for an RDB a master sends or a node that can
    /// resume replication after a restart.
    pub repl: Option<ReplAux>,
}

/// Writes `dbs` as a complete RDB v10 to `out`. Returns the number of bytes written.
pub fn write_rdb<W: Write>(out: W, dbs: &[Db], opts: &WriteOptions) -> io::Result<u64> {
    let mut e = Encoder::new(out, opts.compression);
    e.header(super::RDB_VERSION)?;
    e.aux(b"redis-ver", REDIS_VER_AUX.as_bytes())?;
    e.aux_int(b"redis-bits", 64)?;
    e.aux_int(b"ctime", opts.ctime_unix)?;
    e.aux_int(b"used-mem", opts.used_mem_bytes as i64)?;
    if let Some(r) = &opts.repl {
        e.aux_int(b"repl-stream-db", r.stream_db as i64)?;
        e.aux(b"repl-id", r.repl_id.as_bytes())?;
        e.aux_int(b"repl-offset", r.repl_offset)?;
    }
    e.aux_int(b"aof-base", 0)?;
    for (id, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        e.select_db(id as u32)?;
        e.resize_db(db.len() as u64, db.expires_len() as u64)?;
        for (key, value, expire_at_ms) in db.iter() {
            match value {
                Value::Str(s) => e.string_entry(key, s, expire_at_ms)?,
            }
        }
    }
    let (_, written) = e.finish(opts.checksum)?;
    Ok(written)
}

/// The record-level writer: each method appends one RDB record.
pub struct Encoder<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: Crc64Digest,
    written_bytes: u64,
    /// The LZF compressor when `rdbcompression` is on (its table is reused across strings).
    lzf: Option<Lzf>,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W, compression: bool) -> Self {
        Encoder {
            out,
            buf: Vec::with_capacity(FLUSH_BYTES + 1024),
            crc: CRC64.digest(),
            written_bytes: 0,
            lzf: compression.then(Lzf::new),
        }
    }

    /// `REDIS` and the version as four digits.
    pub fn header(&mut self, version: u32) -> io::Result<()> {
        debug_assert!(version <= 9999);
        self.buf
            .extend_from_slice(format!("REDIS{version:04}").as_bytes());
        self.maybe_flush()
    }

    /// An aux field (`FA key value`).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(opcode::AUX);
        self.put_string(key);
        self.put_string(value);
        self.maybe_flush()
    }

    /// An aux field with an integer value, written as Redis's rdbSaveAuxFieldStrInt does:
    /// the decimal text, which the string encoder turns into an integer encoding if it fits.
    pub fn aux_int(&mut self, key: &[u8], value: i64) -> io::Result<()> {
        self.aux(key, value.to_string().as_bytes())
    }

    pub fn select_db(&mut self, db: u32) -> io::Result<()> {
        self.buf.push(opcode::SELECTDB);
        put_len(&mut self.buf, db as u64);
        self.maybe_flush()
    }

    pub fn resize_db(&mut self, keys: u64, expires: u64) -> io::Result<()> {
        self.buf.push(opcode::RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
        self.maybe_flush()
    }

    /// One string key: `[FC <ms LE>] 00 <key> <value>`.
    pub fn string_entry(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<i64>,
    ) -> io::Result<()> {
        if let Some(at) = expire_at_ms {
            self.buf.push(opcode::EXPIRETIME_MS);
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        self.buf.push(TYPE_STRING);
        self.put_string(key);
        self.put_string(value);
        self.maybe_flush()
    }

    /// `FF` and the CRC64 trailer (0 without `checksum`); flushes. Returns the output and the
    /// number of bytes written in all.
    pub fn finish(mut self, checksum: bool) -> io::Result<(W, u64)> {
        self.buf.push(opcode::EOF);
        self.flush_buf()?;
        let crc = if checksum { self.crc.finalize() } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.written_bytes += 8;
        self.out.flush()?;
        Ok((self.out, self.written_bytes))
    }

    fn put_string(&mut self, s: &[u8]) {
        put_string(&mut self.buf, s, self.lzf.as_mut());
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.written_bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Redis's rdbSaveLen.
pub fn put_len(buf: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        buf.push(len as u8);
    } else if len < 1 << 14 {
        buf.push(0x40 | (len >> 8) as u8);
        buf.push(len as u8);
    } else if len <= u32::MAX as u64 {
        buf.push(0x80);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        buf.push(0x81);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// Redis's rdbSaveRawString: an integer encoding if the string is a small canonical integer,
/// else LZF if a compressor is given (`rdbcompression yes`), the string is longer than 20
/// bytes and compresses to at most its length - 4 (rdbSaveLzfStringObject), else the bytes.
pub fn put_string(buf: &mut Vec<u8>, s: &[u8], lzf: Option<&mut Lzf>) {
    if let Some(v) = canonical_int(s) {
        if put_int(buf, v) {
            return;
        }
    }
    if let Some(lzf) = lzf.filter(|_| s.len() > 20) {
        if let Some(packed) = lzf.compress(s, s.len() - 4) {
            buf.push(0xC0 | enc::LZF);
            put_len(buf, packed.len() as u64);
            put_len(buf, s.len() as u64);
            buf.extend_from_slice(packed);
            return;
        }
    }
    put_len(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// Redis's rdbEncodeInteger: C0/C1/C2 for values that fit 8, 16 or 32 bits.
fn put_int(buf: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        buf.push(0xC0 | enc::INT8);
        buf.push(b as u8);
    } else if let Ok(h) = i16::try_from(v) {
        buf.push(0xC0 | enc::INT16);
        buf.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        buf.push(0xC0 | enc::INT32);
        buf.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}
