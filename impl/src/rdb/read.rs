//! The RDB loader, sans-IO: [`RdbLoader::feed`] takes bytes as they arrive (all of a file at
//! once, or a master's socket reads one by one) and [`RdbLoader::finish`] returns the loaded
//! dataset or the first error.
//!
//! Design:
//! - The input is parsed one record at a time (a header, an aux field, a SELECTDB, one key
//!   with its value...). A record is applied only once all its bytes are there; a record cut
//!   by the end of the bytes fed so far is `Incomplete` and is parsed again from its start
//!   when more bytes arrive (a length check only, no copying, until it is whole). Bytes are
//!   buffered only when a record spans feeds, so a whole file fed at once is parsed in place.
//! - Nothing is allocated from a length read from the input before the bytes it announces
//!   have arrived, and no length may exceed [`LoadOptions::max_string_bytes`]: a corrupt or
//!   hostile length is an error, never an allocation.
//! - The loaded data goes into fresh [`Db`]s that the caller swaps in only on success; on
//!   any error they are dropped, so the old dataset is kept ("never a partial dataset").
//! - Errors are typed ([`RdbError`]) and say at which offset, and for a value Verdis cannot
//!   store, which type and which key.

use super::{enc, opcode, show_key, Crc64Digest, RdbError, ReplAux, CRC64, RDB_VERSION_MAX};
use crate::db::{Db, Value};
use crate::sbytes::SBytes;
use std::borrow::Cow;
use std::io::Read;

/// The most keys a RESIZEDB hint reserves room for (about 64 MiB of tables); a larger data set
/// still loads, its tables grow as keys arrive.
const RESIZE_HINT_MAX_KEYS: u64 = 1 << 20;

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The number of databases (`databases`); a SELECTDB beyond it is an error.
    pub databases: u32,
    /// Drop keys whose expiry time is before this (unix ms), as a master loading its own file
    /// does; `None` keeps them, as a replica does (its master deletes them).
    pub drop_expired_before_ms: Option<i64>,
    /// `rdbchecksum`: verify the CRC64 trailer (a stored 0 is never checked).
    pub verify_checksum: bool,
    /// The longest string accepted.
    pub max_string_bytes: u64,
}

impl LoadOptions {
    pub fn new(databases: u32) -> Self {
        LoadOptions {
            databases,
            drop_expired_before_ms: None,
            verify_checksum: true,
            max_string_bytes: super::MAX_STRING_BYTES,
        }
    }
}

/// A loaded RDB.
pub struct LoadedRdb {
    pub version: u32,
    /// `databases` databases, ready for `Keyspace::replace_all`.
    pub dbs: Vec<Db>,
    /// Every aux field, in file order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// repl-stream-db / repl-id / repl-offset, if the file has repl-id and repl-offset.
    pub repl: Option<ReplAux>,
    pub keys_loaded: u64,
    /// Keys dropped because their time had passed ([`LoadOptions::drop_expired_before_ms`]).
    pub keys_expired: u64,
    /// Whether the CRC64 trailer was verified (false: a 0 trailer, verification off, or a
    /// version before 5 which has no trailer).
    pub checksum_verified: bool,
    /// The length of the RDB in bytes, trailer included.
    pub rdb_bytes: u64,
}

impl LoadedRdb {
    /// An aux field's value.
    pub fn aux_value(&self, key: &str) -> Option<&[u8]> {
        self.aux
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// What [`RdbLoader::feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The RDB is not complete yet.
    NeedMore,
    /// The RDB ended; the last `trailing_bytes` bytes of this feed come after it.
    Done { trailing_bytes: usize },
}

/// Loads a whole RDB held in memory. Bytes after the end of the RDB are ignored.
pub fn load_slice(data: &[u8], opts: &LoadOptions) -> Result<LoadedRdb, RdbError> {
    let mut loader = RdbLoader::new(opts.clone());
    loader.feed(data)?;
    loader.finish()
}

/// Loads an RDB from a reader (a file, a blocking socket), reading 64 KiB at a time and
/// stopping at the end of the RDB. Bytes after the end that came with the last read are
/// dropped; to keep them, drive an [`RdbLoader`] directly.
pub fn load_reader<R: Read>(mut r: R, opts: &LoadOptions) -> Result<LoadedRdb, RdbError> {
    const CHUNK_BYTES: usize = 64 * 1024;
    let mut loader = RdbLoader::new(opts.clone());
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RdbError::Io {
                    offset: loader.offset(),
                    error: e.to_string(),
                })
            }
        };
        if let Progress::Done { .. } = loader.feed(&chunk[..n])? {
            break;
        }
    }
    loader.finish()
}

/// Why a record could not be parsed from the bytes at hand.
enum Stop {
    /// More bytes are needed; says what was being read.
    Incomplete(&'static str),
    Invalid(RdbError),
}

impl From<RdbError> for Stop {
    fn from(e: RdbError) -> Self {
        Stop::Invalid(e)
    }
}

type Parse<T> = Result<T, Stop>;

/// A read position in the bytes at hand.
struct Cur<'a> {
    data: &'a [u8],
    pos: usize,
    /// The stream offset of `data[0]`.
    base: u64,
}

/// A length field: a length, or the code of a special string encoding.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Cur<'a> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn corrupt(&self, what: impl Into<String>) -> Stop {
        Stop::Invalid(RdbError::Corrupt {
            offset: self.offset(),
            what: what.into(),
        })
    }

    fn take(&mut self, n: u64, what: &'static str) -> Parse<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(Stop::Incomplete(what));
        }
        let n = n as usize;
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Parse<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Parse<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, what)?);
        Ok(a)
    }

    /// Redis's rdbLoadLenByRef.
    fn len_or_enc(&mut self, what: &'static str) -> Parse<Len> {
        let at = self.offset();
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3F) as u64),
            1 => Len::Plain((((b & 0x3F) as u64) << 8) | self.u8(what)? as u64),
            3 => Len::Encoded(b & 0x3F),
            _ => match b {
                0x80 => Len::Plain(u32::from_be_bytes(self.array(what)?) as u64),
                0x81 => Len::Plain(u64::from_be_bytes(self.array(what)?)),
                _ => {
                    return Err(Stop::Invalid(RdbError::Corrupt {
                        offset: at,
                        what: format!("unknown length encoding 0x{b:02X} in {what}"),
                    }))
                }
            },
        })
    }

    /// A plain length (SELECTDB, RESIZEDB, IDLE).
    fn len(&mut self, what: &'static str) -> Parse<u64> {
        let at = self.offset();
        match self.len_or_enc(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(e) => Err(Stop::Invalid(RdbError::Corrupt {
                offset: at,
                what: format!("string encoding {e} where a length was expected ({what})"),
            })),
        }
    }

    /// A string in any of its encodings (Redis's rdbGenericLoadStringObject).
    fn string(&mut self, limit: u64, what: &'static str) -> Parse<Cow<'a, [u8]>> {
        let at = self.offset();
        let n = match self.len_or_enc(what)? {
            Len::Plain(n) => n,
            Len::Encoded(enc::INT8) => {
                let v = i8::from_le_bytes(self.array(what)?);
                return Ok(Cow::Owned(v.to_string().into_bytes()));
            }
            Len::Encoded(enc::INT16) => {
                let v = i16::from_le_bytes(self.array(what)?);
                return Ok(Cow::Owned(v.to_string().into_bytes()));
            }
            Len::Encoded(enc::INT32) => {
                let v = i32::from_le_bytes(self.array(what)?);
                return Ok(Cow::Owned(v.to_string().into_bytes()));
            }
            Len::Encoded(enc::LZF) => return self.lzf(limit, what).map(Cow::Owned),
            Len::Encoded(e) => {
                return Err(Stop::Invalid(RdbError::Corrupt {
                    offset: at,
                    what: format!("unknown string encoding type {e} in {what}"),
                }))
            }
        };
        if n > limit {
            return Err(Stop::Invalid(RdbError::TooLong {
                offset: at,
                len: n,
                limit,
            }));
        }
        Ok(Cow::Borrowed(self.take(n, what)?))
    }

    /// An LZF string: `<compressed len> <plain len> <data>`.
    fn lzf(&mut self, limit: u64, what: &'static str) -> Parse<Vec<u8>> {
        // One LZF back reference (3 bytes) expands to at most 264 bytes.
        const MAX_EXPANSION: u64 = 88;
        let at = self.offset();
        let clen = self.len(what)?;
        let ulen = self.len(what)?;
        if clen > limit || ulen > limit {
            return Err(Stop::Invalid(RdbError::TooLong {
                offset: at,
                len: clen.max(ulen),
                limit,
            }));
        }
        if clen == 0 || ulen == 0 || ulen > clen.saturating_mul(MAX_EXPANSION) {
            return Err(Stop::Invalid(RdbError::Corrupt {
                offset: at,
                what: format!("impossible LZF lengths (compressed {clen}, plain {ulen}) in {what}"),
            }));
        }
        let packed = self.take(clen, what)?;
        match super::lzf::decompress(packed, ulen as usize) {
            Some(plain) => Ok(plain),
            None => Err(Stop::Invalid(RdbError::Corrupt {
                offset: at,
                what: format!("invalid LZF compressed string in {what}"),
            })),
        }
    }
}

/// What one parsed record asks the loader to do.
enum Record<'a> {
    Header(u32),
    Aux(Cow<'a, [u8]>, Cow<'a, [u8]>),
    SelectDb(u32),
    Expire(i64),
    /// RESIZEDB's key count: the tables are sized for it up front.
    Resize(u64),
    /// IDLE, FREQ: hints Verdis does not need.
    Skip,
    Str {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
        at: u64,
    },
    /// EOF, with the stored checksum (None before version 5).
    Eof(Option<u64>),
}

/// The incremental loader.
pub struct RdbLoader {
    opts: LoadOptions,
    /// Bytes of a record that spans feeds.
    buf: Vec<u8>,
    /// The stream offset of the first byte not consumed yet (`buf[0]` when buffering).
    offset: u64,
    crc: Crc64Digest,
    version: Option<u32>,
    db: u32,
    pending_expire_ms: Option<i64>,
    dbs: Vec<Db>,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    keys_loaded: u64,
    keys_expired: u64,
    checksum_verified: bool,
    /// What the last incomplete record was reading.
    incomplete: &'static str,
    done: bool,
    failed: Option<RdbError>,
}

impl RdbLoader {
    pub fn new(opts: LoadOptions) -> Self {
        assert!(opts.databases >= 1);
        let dbs = (0..opts.databases).map(|_| Db::default()).collect();
        RdbLoader {
            opts,
            buf: Vec::new(),
            offset: 0,
            crc: CRC64.digest(),
            version: None,
            db: 0,
            pending_expire_ms: None,
            dbs,
            aux: Vec::new(),
            keys_loaded: 0,
            keys_expired: 0,
            checksum_verified: false,
            incomplete: "the RDB header",
            done: false,
            failed: None,
        }
    }

    /// Bytes consumed so far (the offset the next record starts at).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Keys loaded so far (for progress reporting).
    pub fn keys_loaded(&self) -> u64 {
        self.keys_loaded
    }

    /// Parses and applies every complete record in `bytes` (after any buffered ones).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Progress, RdbError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.done {
            return Ok(Progress::Done {
                trailing_bytes: bytes.len(),
            });
        }
        let result = if self.buf.is_empty() {
            self.parse_all(bytes).map(|used| {
                if !self.done {
                    self.buf.extend_from_slice(&bytes[used..]);
                }
                bytes.len() - used
            })
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(bytes);
            let r = self.parse_all(&buf).map(|used| {
                let left = buf.len() - used;
                buf.drain(..used);
                left
            });
            if !self.done {
                self.buf = buf;
            }
            r
        };
        match result {
            Ok(left) if self.done => Ok(Progress::Done {
                trailing_bytes: left,
            }),
            Ok(_) => Ok(Progress::NeedMore),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The loaded RDB, or why there is none (an error fed earlier, or a truncation).
    pub fn finish(self) -> Result<LoadedRdb, RdbError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !self.done {
            return Err(RdbError::Truncated {
                offset: self.offset + self.buf.len() as u64,
                reading: self.incomplete,
            });
        }
        let repl = repl_aux(&self.aux);
        Ok(LoadedRdb {
            version: self.version.unwrap_or(0),
            dbs: self.dbs,
            aux: self.aux,
            repl,
            keys_loaded: self.keys_loaded,
            keys_expired: self.keys_expired,
            checksum_verified: self.checksum_verified,
            rdb_bytes: self.offset,
        })
    }

    /// Parses records from `data` until it runs out or the RDB ends; returns the bytes used.
    fn parse_all(&mut self, data: &[u8]) -> Result<usize, RdbError> {
        let mut pos = 0usize;
        while !self.done {
            let mut cur = Cur {
                data: &data[pos..],
                pos: 0,
                base: self.offset,
            };
            let record = match self.parse_record(&mut cur) {
                Ok(r) => r,
                Err(Stop::Incomplete(what)) => {
                    self.incomplete = what;
                    break;
                }
                Err(Stop::Invalid(e)) => return Err(e),
            };
            let used = cur.pos;
            let bytes = &data[pos..pos + used];
            self.apply(record, bytes)?;
            pos += used;
            self.offset += used as u64;
        }
        Ok(pos)
    }

    fn parse_record<'a>(&self, cur: &mut Cur<'a>) -> Parse<Record<'a>> {
        let Some(version) = self.version else {
            return parse_header(cur);
        };
        let limit = self.opts.max_string_bytes;
        let at = cur.offset();
        let op = cur.u8("a record type")?;
        Ok(match op {
            opcode::AUX => {
                let k = cur.string(limit, "an aux field name")?;
                let v = cur.string(limit, "an aux field value")?;
                Record::Aux(k, v)
            }
            opcode::SELECTDB => {
                let db = cur.len("SELECTDB")?;
                if db >= self.opts.databases as u64 {
                    return Err(Stop::Invalid(RdbError::DbOutOfRange {
                        offset: at,
                        db,
                        databases: self.opts.databases,
                    }));
                }
                Record::SelectDb(db as u32)
            }
            opcode::RESIZEDB => {
                let keys = cur.len("RESIZEDB")?;
                cur.len("RESIZEDB")?;
                Record::Resize(keys)
            }
            opcode::EXPIRETIME_MS => {
                Record::Expire(i64::from_le_bytes(cur.array("an expiry time (ms)")?))
            }
            opcode::EXPIRETIME => {
                let secs = i32::from_le_bytes(cur.array("an expiry time (s)")?);
                Record::Expire(secs as i64 * 1000)
            }
            opcode::IDLE => {
                cur.len("an LRU idle time")?;
                Record::Skip
            }
            opcode::FREQ => {
                cur.u8("an LFU frequency")?;
                Record::Skip
            }
            opcode::EOF => {
                if version >= 5 {
                    Record::Eof(Some(u64::from_le_bytes(cur.array("the checksum")?)))
                } else {
                    Record::Eof(None)
                }
            }
            opcode::MODULE_AUX => return Err(unsupported_op(at, op, "module auxiliary data")),
            opcode::FUNCTION2 | opcode::FUNCTION_PRE_GA => {
                return Err(unsupported_op(at, op, "function library"))
            }
            super::TYPE_STRING => {
                let key = cur.string(limit, "a key")?;
                let value = cur.string(limit, "a string value")?;
                Record::Str { key, value, at }
            }
            t if is_object_type(t) => {
                // Read the key so the error can name it.
                let key = cur.string(limit, "a key")?;
                return Err(Stop::Invalid(RdbError::UnsupportedType {
                    offset: at,
                    type_id: t,
                    key: show_key(&key),
                    db: self.db,
                }));
            }
            t => {
                return Err(Stop::Invalid(RdbError::UnknownType {
                    offset: at,
                    type_id: t,
                }))
            }
        })
    }

    /// Applies a parsed record; `bytes` are its bytes, for the checksum.
    fn apply(&mut self, record: Record, bytes: &[u8]) -> Result<(), RdbError> {
        match record {
            Record::Eof(stored) => {
                self.crc.update(&bytes[..1]);
                self.done = true;
                let computed = self.crc.clone().finalize();
                match stored {
                    Some(0) | None => {}
                    Some(_) if !self.opts.verify_checksum => {}
                    Some(expected) if expected == computed => self.checksum_verified = true,
                    Some(expected) => {
                        return Err(RdbError::ChecksumMismatch { expected, computed })
                    }
                }
                return Ok(());
            }
            Record::Header(v) => self.version = Some(v),
            Record::Aux(k, v) => self.aux.push((k.into_owned(), v.into_owned())),
            Record::SelectDb(db) => self.db = db,
            Record::Expire(ms) => self.pending_expire_ms = Some(ms),
            Record::Resize(keys) => {
                // A hint from the file: capped, so a corrupt count cannot claim the memory.
                let keys = keys.min(RESIZE_HINT_MAX_KEYS) as usize;
                self.dbs[self.db as usize].reserve(keys);
            }
            Record::Skip => {}
            Record::Str { key, value, at } => self.insert(&key, value, at)?,
        }
        self.crc.update(bytes);
        Ok(())
    }

    fn insert(&mut self, key: &[u8], value: Cow<[u8]>, at: u64) -> Result<(), RdbError> {
        let expire = self.pending_expire_ms.take();
        if let (Some(e), Some(now)) = (expire, self.opts.drop_expired_before_ms) {
            if e < now {
                self.keys_expired += 1;
                return Ok(());
            }
        }
        let db = &mut self.dbs[self.db as usize];
        let value = match value {
            Cow::Borrowed(b) => SBytes::new(b),
            Cow::Owned(v) => SBytes::from_vec(v),
        };
        if !db.insert_new(key, Value::Str(value)) {
            return Err(RdbError::DuplicateKey {
                offset: at,
                db: self.db,
                key: show_key(key),
            });
        }
        if let Some(e) = expire {
            db.set_expire(key, e);
        }
        self.keys_loaded += 1;
        Ok(())
    }
}

/// `REDIS` and four digits; versions 1..=10 are read, as Redis 7.0 reads them.
fn parse_header<'a>(cur: &mut Cur<'a>) -> Parse<Record<'a>> {
    let magic = cur.take(5, "the RDB header")?;
    if magic != b"REDIS" {
        return Err(Stop::Invalid(RdbError::BadMagic));
    }
    let digits = cur.take(4, "the RDB version")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(cur.corrupt(format!(
            "the version '{}' is not four digits",
            show_key(digits)
        )));
    }
    let v = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32);
    if !(1..=RDB_VERSION_MAX).contains(&v) {
        return Err(Stop::Invalid(RdbError::UnsupportedVersion(v)));
    }
    Ok(Record::Header(v))
}

/// Redis 7.0's rdbIsObjectType: the value types 0-7 and 9-19.
fn is_object_type(t: u8) -> bool {
    t <= 7 || (9..=19).contains(&t)
}

fn unsupported_op(offset: u64, opcode: u8, what: &'static str) -> Stop {
    Stop::Invalid(RdbError::UnsupportedOpcode {
        offset,
        opcode,
        what,
    })
}

/// The replication aux fields, if repl-id and repl-offset are both there and readable.
fn repl_aux(aux: &[(Vec<u8>, Vec<u8>)]) -> Option<ReplAux> {
    let get = |name: &str| {
        aux.iter()
            .rev()
            .find(|(k, _)| k == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let repl_id = get("repl-id")?.to_string();
    let repl_offset = get("repl-offset")?.parse().ok()?;
    let stream_db = get("repl-stream-db")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some(ReplAux {
        stream_db,
        repl_id,
        repl_offset,
    })
}
