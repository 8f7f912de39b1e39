//! RDB: Redis's snapshot format, version 10 as Redis 7.0 writes it, for the types Verdis
//! stores (strings).
//!
//! Module map:
//! - this file: the format's constants, the error type, and the pieces both sides share.
//! - [`write`]: [`write::write_rdb`] writes a `&[Db]` snapshot to any `std::io::Write`
//!   (a file, a socket), with Redis's integer (C0/C1/C2) and LZF (C3) string encodings and
//!   the CRC64 trailer. [`write::Encoder`] is the record-level writer underneath.
//! - [`lzf`]: LZF compression as Redis's `lzf_c.c` does it, with a table reused across strings.
//! - [`read`]: a sans-IO loader, [`read::RdbLoader`], fed bytes as they arrive (from a file or a
//!   master's socket); [`read::load_slice`] and [`read::load_reader`] wrap it.
//! - [`save`]: the server side: SAVE, BGSAVE, save points, loading at start-up.
//!
//! The file, as Redis 7.0 writes it (see the Redis 7.0 captures, `rdb/annotated.txt`):
//!
//! ```text
//! "REDIS0010"
//! FA <key> <value>            aux fields: redis-ver, redis-bits, ctime, used-mem,
//!                             [repl-stream-db, repl-id, repl-offset], aof-base
//! per non-empty db:
//!   FE <dbid>                 SELECTDB
//!   FB <keys> <expires>       RESIZEDB
//!   [FC <i64 LE ms>] 00 <key> <value>      one string key, with its expiry if it has one
//! FF <crc64 LE>               CRC-64/REDIS of every byte before it; 0 = not computed
//! ```
//!
//! Lengths: `00xxxxxx` (6 bits), `01xxxxxx yyyyyyyy` (14 bits BE), `80` + u32 BE, `81` + u64 BE;
//! `11xxxxxx` introduces a special string encoding: C0 int8, C1 int16 LE, C2 int32 LE,
//! C3 LZF `<compressed len> <plain len> <data>`.

pub mod lzf;
pub mod read;
pub mod save;
pub mod write;

use std::fmt;

/// The RDB version Verdis writes (Redis 7.0's).
pub const RDB_VERSION: u32 = 10;
/// The newest version Verdis reads. Redis 7.0 refuses 11 (Redis 7.2's) the same way.
pub const RDB_VERSION_MAX: u32 = 10;
/// `redis-ver` in the files Verdis writes: the Redis version whose format it follows.
pub const REDIS_VER_AUX: &str = "7.0.15";

/// Opcodes (Redis's `RDB_OPCODE_*`).
pub mod opcode {
    pub const FUNCTION2: u8 = 0xF5;
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// The string value type, the only one Verdis stores today.
pub const TYPE_STRING: u8 = 0;

/// Special string encodings after a `11xxxxxx` length byte.
pub mod enc {
    pub const INT8: u8 = 0;
    pub const INT16: u8 = 1;
    pub const INT32: u8 = 2;
    pub const LZF: u8 = 3;
}

/// The longest string the loader accepts (Redis's default proto-max-bulk-len, 512 MB).
pub const MAX_STRING_BYTES: u64 = 512 * 1024 * 1024;

/// CRC-64/REDIS (Jones polynomial, reflected, init 0): the trailer of every RDB. Slicing by
/// 16 tables: the CRC runs over every byte of a snapshot.
pub static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// A CRC64 in progress.
pub type Crc64Digest = crc::Digest<'static, u64, crc::Table<16>>;

/// The name of an RDB value type, as Redis's source names it.
pub fn type_name(t: u8) -> &'static str {
    match t {
        0 => "string",
        1 => "list (linked list)",
        2 => "set",
        3 => "zset",
        4 => "hash",
        5 => "zset (v2)",
        6 => "module (pre-GA)",
        7 => "module",
        9 => "hash (zipmap)",
        10 => "list (ziplist)",
        11 => "set (intset)",
        12 => "zset (ziplist)",
        13 => "hash (ziplist)",
        14 => "list (quicklist)",
        15 => "stream (listpacks)",
        16 => "hash (listpack)",
        17 => "zset (listpack)",
        18 => "list (quicklist v2)",
        19 => "stream (listpacks v2)",
        20 => "set (listpack)",
        21 => "stream (listpacks v3)",
        _ => "unknown",
    }
}

/// Replication state stored in (and read back from) the aux fields of an RDB, so that a
/// restarted master or replica can resume with `PSYNC <repl_id> <repl_offset + 1>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplAux {
    /// The db the replication stream had selected when the snapshot was taken.
    pub stream_db: u32,
    /// 40 hex characters.
    pub repl_id: String,
    pub repl_offset: i64,
}

/// Why an RDB could not be loaded. Every variant says where (`offset` = bytes from the start
/// of the RDB) and, where there is one, which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdbError {
    /// The input does not start with `REDIS`.
    BadMagic,
    /// A version other than 1..=10 (Redis 7.0's own message).
    UnsupportedVersion(u32),
    /// The input ended before the RDB did.
    Truncated { offset: u64, reading: &'static str },
    /// A byte sequence that is not valid RDB.
    Corrupt { offset: u64, what: String },
    /// A length beyond what Verdis accepts.
    TooLong { offset: u64, len: u64, limit: u64 },
    /// A value type Verdis does not store yet; the whole load is refused.
    UnsupportedType {
        offset: u64,
        type_id: u8,
        key: String,
        db: u32,
    },
    /// A type byte that is no RDB type at all.
    UnknownType { offset: u64, type_id: u8 },
    /// Functions or module data, which Verdis cannot load.
    UnsupportedOpcode {
        offset: u64,
        opcode: u8,
        what: &'static str,
    },
    /// SELECTDB beyond the configured number of databases.
    DbOutOfRange {
        offset: u64,
        db: u64,
        databases: u32,
    },
    /// The same key twice in one db.
    DuplicateKey { offset: u64, db: u32, key: String },
    /// The CRC64 trailer does not match the content.
    ChecksumMismatch { expected: u64, computed: u64 },
    /// Reading the input failed (a file or socket error), at `offset`.
    Io { offset: u64, error: String },
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::BadMagic => write!(f, "Wrong signature trying to load DB (no REDIS header)"),
            RdbError::UnsupportedVersion(v) => write!(f, "Can't handle RDB format version {v}"),
            RdbError::Truncated { offset, reading } => write!(
                f,
                "Short read: the RDB ends at offset {offset} while reading {reading}"
            ),
            RdbError::Corrupt { offset, what } => {
                write!(f, "Corrupt RDB at offset {offset}: {what}")
            }
            RdbError::TooLong { offset, len, limit } => write!(
                f,
                "Corrupt RDB at offset {offset}: length {len} exceeds the limit of {limit} bytes"
            ),
            RdbError::UnsupportedType {
                offset,
                type_id,
                key,
                db,
            } => write!(
                f,
                "Unsupported RDB value type {type_id} ({}) for key '{key}' in db {db} at offset {offset}: Verdis stores strings only",
                type_name(*type_id)
            ),
            RdbError::UnknownType { offset, type_id } => {
                write!(f, "Unknown object type {type_id} in RDB at offset {offset}")
            }
            RdbError::UnsupportedOpcode {
                offset,
                opcode,
                what,
            } => write!(
                f,
                "Unsupported RDB record {what} (opcode 0x{opcode:02X}) at offset {offset}: Verdis cannot load it"
            ),
            RdbError::DbOutOfRange {
                offset,
                db,
                databases,
            } => write!(
                f,
                "Data file was created with a server configured to handle more than {databases} databases (SELECTDB {db} at offset {offset})"
            ),
            RdbError::DuplicateKey { offset, db, key } => write!(
                f,
                "RDB has duplicated key '{key}' in DB {db} (offset {offset})"
            ),
            RdbError::ChecksumMismatch { expected, computed } => write!(
                f,
                "Wrong RDB checksum expected: ({expected:x}) got ({computed:x})"
            ),
            RdbError::Io { offset, error } => {
                write!(f, "Read error at offset {offset} of the RDB: {error}")
            }
        }
    }
}

impl std::error::Error for RdbError {}

/// A key for an error message: printable ASCII as is, other bytes as `\xNN`, at most 128
/// bytes shown (like Redis's sdscatrepr, shortened).
pub fn show_key(key: &[u8]) -> String {
    const SHOWN_BYTES: usize = 128;
    let mut s = String::new();
    for &b in key.iter().take(SHOWN_BYTES) {
        match b {
            b'\\' | b'\'' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if key.len() > SHOWN_BYTES {
        s.push_str(&format!("...({} bytes)", key.len()));
    }
    s
}

/// The integer a string is, if Redis would store it with an integer encoding in an RDB:
/// at most 11 bytes, the canonical decimal form of an i64 (no `+`, no leading zeros, no `-0`).
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: i64 = text.parse().ok()?;
    (v.to_string().as_bytes() == s).then_some(v)
}

#[cfg(test)]
mod tests;
