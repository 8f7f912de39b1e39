//! RDB codec tests: byte-exact against the Redis 7.0 captures, round trips of any dataset,
//! and hostile input (any bytes, every truncation, corrupted checksums) that must error
//! cleanly, never panic or allocate what a length claims.

use super::lzf::Lzf;
use super::read::{load_reader, load_slice, LoadOptions, LoadedRdb, Progress, RdbLoader};
use super::write::{put_string, write_rdb, Encoder, WriteOptions};
use super::*;
use crate::db::{Db, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A file of the Redis 7.0 captures (shared/reference, beside the repository).
fn capture(rel: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/reference/redis-7.0-captures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("the Redis 7.0 capture {path}: {e}"))
}

type Dump = Vec<BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)>>;

/// A dataset as plain maps, for comparisons.
fn dump(dbs: &[Db]) -> Dump {
    dbs.iter()
        .map(|db| {
            db.iter()
                .map(|(k, v, at)| {
                    let Value::Str(s) = v;
                    (k.to_vec(), (s.to_vec(), at))
                })
                .collect()
        })
        .collect()
}

fn dbs_from(dump: &Dump) -> Vec<Db> {
    dump.iter()
        .map(|m| {
            let mut db = Db::default();
            for (k, (v, at)) in m {
                db.insert(k, Value::Str(crate::sbytes::SBytes::new(v)));
                if let Some(at) = at {
                    db.set_expire(k, *at);
                }
            }
            db
        })
        .collect()
}

fn load(data: &[u8]) -> Result<LoadedRdb, RdbError> {
    load_slice(data, &LoadOptions::new(16))
}

fn opts(compression: bool, checksum: bool) -> WriteOptions {
    WriteOptions {
        compression,
        checksum,
        ctime_unix: 1_795_289_967,
        used_mem_bytes: 1_136_960,
        repl: None,
    }
}

fn entries(l: &LoadedRdb, db: usize) -> BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)> {
    dump(&l.dbs)[db].clone()
}

#[test]
fn crc64_is_redis_jones_check_value() {
    // Why: the trailer must be the CRC Redis computes, or every file is refused by Redis.
    assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
}

#[test]
fn strings_capture_loads_with_its_keys_ttl_and_aux() {
    let l = load(&capture("rdb/strings.rdb")).expect("loads");
    assert_eq!(l.version, 10);
    assert!(l.checksum_verified);
    assert_eq!(l.keys_loaded, 3);
    assert_eq!(l.aux_value("redis-ver"), Some(&b"7.0.15"[..]));
    assert_eq!(l.aux_value("redis-bits"), Some(&b"64"[..]));
    assert_eq!(l.aux_value("ctime"), Some(&b"1795289967"[..]));
    assert!(l.repl.is_none());
    let db0 = entries(&l, 0);
    assert_eq!(db0[&b"n1"[..]], (b"12345".to_vec(), None));
    assert_eq!(db0[&b"s1"[..]], (b"hello".to_vec(), None));
    assert_eq!(
        db0[&b"ttlkey"[..]],
        (b"v".to_vec(), Some(4_102_444_800_000))
    );
    assert_eq!(l.rdb_bytes, 130);
}

#[test]
fn strings_capture_is_reencoded_byte_for_byte() {
    // Why: Redis's integer encodings, aux fields and CRC must be written exactly as 7.0 does.
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, true);
    e.header(10).unwrap();
    e.aux(b"redis-ver", b"7.0.15").unwrap();
    e.aux_int(b"redis-bits", 64).unwrap();
    e.aux_int(b"ctime", 1_795_289_967).unwrap();
    e.aux_int(b"used-mem", 1_136_960).unwrap();
    e.aux_int(b"aof-base", 0).unwrap();
    e.select_db(0).unwrap();
    e.resize_db(3, 1).unwrap();
    e.string_entry(b"n1", b"12345", None).unwrap();
    e.string_entry(b"ttlkey", b"v", Some(4_102_444_800_000))
        .unwrap();
    e.string_entry(b"s1", b"hello", None).unwrap();
    let (_, n) = e.finish(true).unwrap();
    assert_eq!(n, 130);
    assert_eq!(out, capture("rdb/strings.rdb"));
}

#[test]
fn write_rdb_of_a_one_key_dataset_matches_the_capture_layout() {
    // The whole-snapshot writer: same header and aux order as Redis's SAVE.
    let l = load(&capture("rdb/strings.rdb")).unwrap();
    let mut out = Vec::new();
    write_rdb(&mut out, &l.dbs, &opts(true, true)).unwrap();
    let again = load(&out).expect("our file loads");
    assert!(again.checksum_verified);
    assert_eq!(dump(&again.dbs), dump(&l.dbs));
    // Header and aux fields are byte-identical to the capture's, up to SELECTDB.
    let cap = capture("rdb/strings.rdb");
    assert_eq!(out[..82], cap[..82]);
}

#[test]
fn minimal_captures_are_reencoded_with_and_without_checksum() {
    let write = |checksum: bool| {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, true);
        e.header(10).unwrap();
        e.select_db(0).unwrap();
        e.string_entry(b"plain", b"value1", None).unwrap();
        e.string_entry(b"withttl", b"value2", Some(4_102_444_800_000))
            .unwrap();
        e.select_db(3).unwrap();
        e.string_entry(b"indb3", b"v3", None).unwrap();
        e.finish(checksum).unwrap();
        out
    };
    assert_eq!(write(true), capture("rdb/minimal_crc.rdb"));
    assert_eq!(write(false), capture("rdb/minimal_nocrc.rdb"));
}

#[test]
fn minimal_captures_load_v9_v10_and_refuse_v11() {
    for f in [
        "rdb/minimal_crc.rdb",
        "rdb/minimal_nocrc.rdb",
        "rdb/minimal_v9.rdb",
    ] {
        let l = load(&capture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(l.keys_loaded, 3, "{f}");
        assert_eq!(entries(&l, 3)[&b"indb3"[..]], (b"v3".to_vec(), None));
    }
    assert!(
        !load(&capture("rdb/minimal_nocrc.rdb"))
            .unwrap()
            .checksum_verified
    );
    assert_eq!(load(&capture("rdb/minimal_v9.rdb")).unwrap().version, 9);
    let e = load(&capture("rdb/minimal_v11.rdb")).err().unwrap();
    assert_eq!(e, RdbError::UnsupportedVersion(11));
    assert_eq!(e.to_string(), "Can't handle RDB format version 11");
}

#[test]
fn captures_with_other_types_are_refused_naming_type_and_key() {
    // Why: loading only the strings of a file would be a silent partial dataset.
    let cases = [
        ("rdb/alltypes.rdb", 16, "hash"),
        ("cap/diskless_fullsync.rdb", 11, "si"),
        ("cap/disk_fullsync.rdb", 11, "si"),
        ("cap/expire_unlink.rdb", 11, "si"),
        ("cap/wait_getack.rdb", 11, "si"),
    ];
    for (f, t, k) in cases {
        match load(&capture(f)) {
            Err(RdbError::UnsupportedType {
                type_id, key, db, ..
            }) => {
                assert_eq!((type_id, key.as_str(), db), (t, k, 0), "{f}");
            }
            other => panic!("{f}: {:?}", other.map(|l| l.keys_loaded)),
        }
    }
    let msg = load(&capture("rdb/alltypes.rdb"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("type 16 (hash (listpack))") && msg.contains("key 'hash'"),
        "{msg}"
    );
}

#[test]
fn replication_capture_yields_repl_id_and_offset() {
    let l = load(&capture("cap/multi_eval_stream.rdb")).expect("loads");
    assert_eq!(l.keys_loaded, 0);
    assert_eq!(
        l.repl,
        Some(ReplAux {
            stream_db: 0,
            repl_id: "ebdfbc9896fc942767dd058ff86cd4adcb001592".into(),
            repl_offset: 0,
        })
    );
}

#[test]
fn repl_aux_is_written_in_redis_order_and_read_back() {
    let mut o = opts(true, true);
    o.repl = Some(ReplAux {
        stream_db: 0,
        repl_id: "77cdbdd21862bb9e49fec50d21bd9ef02d731e04".into(),
        repl_offset: 254,
    });
    let mut out = Vec::new();
    write_rdb(&mut out, &[Db::default()], &o).unwrap();
    // The replication aux fields exactly as the diskless capture has them.
    let cap = capture("cap/diskless_fullsync.rdb");
    let from = |d: &[u8]| {
        let i = d
            .windows(16)
            .position(|w| w == b"\xfa\x0erepl-stream-db")
            .unwrap();
        d[i..i + 18 + 50 + 16 + 12].to_vec()
    };
    assert_eq!(from(&out), from(&cap));
    let l = load_slice(&out, &LoadOptions::new(1)).unwrap();
    assert_eq!(l.repl, o.repl);
}

#[test]
fn lzf_and_integer_encodings_match_redis() {
    // The `lzf` key of alltypes.rdb: 100 'a's compress to Redis's exact bytes.
    let cap = capture("rdb/alltypes.rdb");
    let record = [
        0x00, 0x03, b'l', b'z', b'f', 0xc3, 0x09, 0x40, 0x64, 0x01, 0x61, 0x61, 0xe0, 0x57, 0x00,
        0x01, 0x61, 0x61,
    ];
    assert!(cap.windows(record.len()).any(|w| w == record));
    let mut buf = vec![0x00];
    let mut z = Lzf::new();
    put_string(&mut buf, b"lzf", Some(&mut z));
    put_string(&mut buf, &[b'a'; 100], Some(&mut z));
    assert_eq!(buf, record);
    // Without compression: the plain bytes.
    let mut plain = Vec::new();
    put_string(&mut plain, &[b'a'; 100], None);
    assert_eq!(plain[..2], [0x40, 100]);
    // Integer encodings: C0/C1/C2 for canonical integers in range, text otherwise.
    let cases: &[(&[u8], &[u8])] = &[
        (b"0", &[0xc0, 0x00]),
        (b"-1", &[0xc0, 0xff]),
        (b"100", &[0xc0, 0x64]),
        (b"128", &[0xc1, 0x80, 0x00]),
        (b"12345", &[0xc1, 0x39, 0x30]),
        (b"-32768", &[0xc1, 0x00, 0x80]),
        (b"32768", &[0xc2, 0x00, 0x80, 0x00, 0x00]),
        (b"1000000", &[0xc2, 0x40, 0x42, 0x0f, 0x00]),
        (b"-2147483648", &[0xc2, 0x00, 0x00, 0x00, 0x80]),
        (b"2147483648", b"\x0a2147483648"),
        (b"12345678901", b"\x0b12345678901"),
        (b"007", b"\x03007"),
        (b"+1", b"\x02+1"),
        (b"-0", b"\x02-0"),
        (b"", b"\x00"),
    ];
    for (s, want) in cases {
        let mut b = Vec::new();
        put_string(&mut b, s, Some(&mut z));
        assert_eq!(&b[..], *want, "{}", String::from_utf8_lossy(s));
    }
}

#[test]
fn every_truncation_of_a_file_is_a_clean_error() {
    // Why: a master dying mid-transfer or a half-written file must never load partially.
    for f in ["rdb/strings.rdb", "rdb/minimal_v9.rdb", "rdb/alltypes.rdb"] {
        let data = capture(f);
        for cut in 0..data.len() {
            let r = load(&data[..cut]);
            assert!(r.is_err(), "{f} cut at {cut} loaded");
        }
    }
    let data = capture("rdb/strings.rdb");
    match load(&data[..100]) {
        Err(RdbError::Truncated { offset: 100, .. }) => {}
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_checksum_mismatch_is_reported_and_can_be_skipped() {
    let mut data = capture("rdb/strings.rdb");
    let i = data.windows(5).position(|w| w == b"hello").unwrap();
    data[i + 4] = b'p';
    let e = load(&data).err().unwrap();
    assert!(
        matches!(e, RdbError::ChecksumMismatch { expected, .. } if expected == 0x455dbd08044afb51)
    );
    assert!(e.to_string().starts_with("Wrong RDB checksum"));
    let mut o = LoadOptions::new(16);
    o.verify_checksum = false;
    let l = load_slice(&data, &o).expect("unchecked load");
    assert_eq!(entries(&l, 0)[&b"s1"[..]].0, b"hellp");
}

#[test]
fn lengths_are_checked_before_any_allocation() {
    // A string claiming u64::MAX bytes, and one claiming 400 MB with 3 bytes present.
    let mut huge = b"REDIS0010\xfe\x00\x00\x01k\x81".to_vec();
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(load(&huge), Err(RdbError::TooLong { .. })));
    let mut big = b"REDIS0010\xfe\x00\x00\x01k\x80".to_vec();
    big.extend_from_slice(&400_000_000u32.to_be_bytes());
    big.extend_from_slice(b"abc");
    assert!(matches!(load(&big), Err(RdbError::Truncated { .. })));
    // LZF claiming a plain length far beyond what its compressed bytes can expand to.
    let lzf = b"REDIS0010\xfe\x00\x00\x01k\xc3\x01\x80\x10\x00\x00\x00\x00\xff";
    assert!(matches!(load(lzf), Err(RdbError::Corrupt { .. })));
}

#[test]
fn structural_errors_name_what_and_where() {
    let dup = b"REDIS0010\xfe\x00\x00\x01k\x01a\x00\x01k\x01b\xff\0\0\0\0\0\0\0\0";
    let e = load(dup).err().unwrap();
    assert_eq!(
        e,
        RdbError::DuplicateKey {
            offset: 16,
            db: 0,
            key: "k".into()
        }
    );
    let far = b"REDIS0010\xfe\x10\xff\0\0\0\0\0\0\0\0";
    assert!(matches!(
        load(far),
        Err(RdbError::DbOutOfRange { db: 16, .. })
    ));
    let module = b"REDIS0010\xf7\x00";
    assert!(matches!(
        load(module),
        Err(RdbError::UnsupportedOpcode { opcode: 0xF7, .. })
    ));
    let function = b"REDIS0010\xf5\x00";
    assert!(load(function)
        .err()
        .unwrap()
        .to_string()
        .contains("function library"));
    let unknown = b"REDIS0010\x08\x01k";
    assert_eq!(
        load(unknown).err(),
        Some(RdbError::UnknownType {
            offset: 9,
            type_id: 8
        })
    );
    assert_eq!(load(b"RUBIS0010").err(), Some(RdbError::BadMagic));
    assert_eq!(
        load(b"REDIS0000").err(),
        Some(RdbError::UnsupportedVersion(0))
    );
}

#[test]
fn expired_keys_are_dropped_only_when_asked() {
    let data = capture("rdb/minimal_crc.rdb");
    let mut o = LoadOptions::new(16);
    o.drop_expired_before_ms = Some(4_102_444_800_001);
    let l = load_slice(&data, &o).unwrap();
    assert_eq!((l.keys_loaded, l.keys_expired), (2, 1));
    o.drop_expired_before_ms = Some(4_102_444_800_000);
    let l = load_slice(&data, &o).unwrap();
    assert_eq!((l.keys_loaded, l.keys_expired), (3, 0));
}

#[test]
fn seconds_expiry_and_lru_lfu_hints_are_understood() {
    // FD <i32 LE s>, F8 <idle>, F9 <freq>, RESIZEDB, version 5 with checksum 0.
    let data = b"REDIS0005\xfe\x00\xfb\x02\x01\xfd\x10\x00\x00\x00\xf8\x05\x00\x01a\x01x\xf9\x07\x00\x01b\x01y\xff\0\0\0\0\0\0\0\0";
    let l = load(data).expect("loads");
    let db0 = entries(&l, 0);
    assert_eq!(db0[&b"a"[..]], (b"x".to_vec(), Some(16_000)));
    assert_eq!(db0[&b"b"[..]], (b"y".to_vec(), None));
    // Version 4 files have no checksum after FF.
    assert_eq!(
        load(b"REDIS0004\xfe\x00\x00\x01k\x01v\xff")
            .unwrap()
            .keys_loaded,
        1
    );
}

#[test]
fn feeding_byte_by_byte_gives_the_same_result_and_reports_trailing_bytes() {
    let data = capture("rdb/strings.rdb");
    let mut loader = RdbLoader::new(LoadOptions::new(16));
    for (i, b) in data.iter().enumerate() {
        let p = loader.feed(std::slice::from_ref(b)).unwrap();
        let last = i + 1 == data.len();
        assert_eq!(p == Progress::NeedMore, !last, "at {i}");
    }
    let l = loader.finish().unwrap();
    assert_eq!(dump(&l.dbs), dump(&load(&data).unwrap().dbs));
    let mut loader = RdbLoader::new(LoadOptions::new(16));
    let mut with_tail = data.clone();
    with_tail.extend_from_slice(b"+PING\r\n");
    assert_eq!(
        loader.feed(&with_tail).unwrap(),
        Progress::Done { trailing_bytes: 7 }
    );
}

#[test]
fn load_reader_reads_a_stream_and_reports_io_errors_with_the_offset() {
    let data = capture("rdb/strings.rdb");
    let l = load_reader(&data[..], &LoadOptions::new(16)).expect("loads");
    assert_eq!(l.keys_loaded, 3);
    /// Yields 40 bytes, then fails.
    struct Failing<'a>(&'a [u8]);
    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    match load_reader(Failing(&data[..40]), &LoadOptions::new(16)) {
        Err(RdbError::Io { offset, error }) => {
            assert!(offset <= 40);
            assert_eq!(error, "disk on fire");
        }
        other => panic!("{:?}", other.err()),
    }
}

fn dataset_strategy() -> impl Strategy<Value = Dump> {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        (-3_000_000_000i64..3_000_000_000).prop_map(|v| v.to_string().into_bytes()),
        (any::<u8>(), 21usize..300).prop_map(|(b, n)| vec![b; n]),
        "[a-c]{0,120}".prop_map(|s| s.into_bytes()),
    ];
    let ttl = prop::option::of(0i64..5_000_000_000_000);
    let db = prop::collection::btree_map(bytes.clone(), (bytes, ttl), 0..12);
    prop::collection::vec(db, 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Round trip: any dataset written (any options) loads back identical, whole or fed in
    /// pieces. Why: the file is the only copy of the data after a restart.
    #[test]
    fn any_dataset_round_trips(d in dataset_strategy(), compression: bool, checksum: bool, chunk in 1usize..64) {
        let dbs = dbs_from(&d);
        let mut out = Vec::new();
        write_rdb(&mut out, &dbs, &opts(compression, checksum)).unwrap();
        let l = load_slice(&out, &LoadOptions::new(4)).unwrap();
        prop_assert_eq!(&dump(&l.dbs), &d);
        prop_assert_eq!(l.checksum_verified, checksum);
        prop_assert_eq!(l.keys_loaded, d.iter().map(|m| m.len() as u64).sum::<u64>());
        let mut loader = RdbLoader::new(LoadOptions::new(4));
        for piece in out.chunks(chunk) {
            loader.feed(piece).unwrap();
        }
        prop_assert_eq!(&dump(&loader.finish().unwrap().dbs), &d);
    }

    /// Any byte string either loads or errors, never panics. Why: input comes from disk and
    /// from the network.
    #[test]
    fn any_bytes_load_or_error(tail in prop::collection::vec(any::<u8>(), 0..200), header: bool) {
        let mut data = if header { b"REDIS0010".to_vec() } else { Vec::new() };
        data.extend_from_slice(&tail);
        let _ = load(&data);
    }

    /// Any corruption of a valid file loads or errors, never panics.
    #[test]
    fn corrupted_files_load_or_error(d in dataset_strategy(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut out = Vec::new();
        write_rdb(&mut out, &dbs_from(&d), &opts(true, false)).unwrap();
        for (i, b) in flips {
            let i = i.index(out.len());
            out[i] = b;
        }
        let _ = load_slice(&out, &LoadOptions::new(4));
    }
}
