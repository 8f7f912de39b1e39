//! String commands: GET, SET and its variants, MGET/MSET, counters, APPEND, ranges.
//!
//! Propagated forms follow Redis 7.0: a SET with a relative or EXAT expiry (and SETEX,
//! PSETEX) becomes `SET k v PXAT <ms>`; GETEX with an expiry becomes `PEXPIREAT`, with PERSIST
//! `PERSIST`; GETDEL becomes `DEL`; GETSET becomes `SET`; INCRBYFLOAT becomes
//! `SET k <result> KEEPTTL`, so replicas never recompute floats or clocks.

use super::{flags::*, is, parse_float, parse_int, spec, CommandSpec, Ctx};
use crate::db::Value;
use crate::error::{CmdError, CmdResult};
use crate::reply::i64_bytes;
use crate::sbytes::SBytes;
use bytes::Bytes;

const W: &[&str] = &["write", "string", "slow"];
const WF: &[&str] = &["write", "string", "fast"];
const RF: &[&str] = &["read", "string", "fast"];
const RS: &[&str] = &["read", "string", "slow"];
const G: &str = "string";

pub static COMMANDS: [CommandSpec; 22] = [
    spec("get", 2, READONLY | FAST, (1, 1, 1), RF, G, "1.0.0", "Returns the string value of a key.", get),
    spec("set", -3, WRITE | DENYOOM, (1, 1, 1), W, G, "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
    spec("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Set the string value of a key only when the key doesn't exist.", setnx),
    spec("setex", 4, WRITE | DENYOOM, (1, 1, 1), W, G, "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", setex),
    spec("psetex", 4, WRITE | DENYOOM, (1, 1, 1), W, G, "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", psetex),
    spec("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Returns the previous string value of a key after setting it to a new value.", getset),
    spec("getdel", 2, WRITE | FAST, (1, 1, 1), WF, G, "6.2.0", "Returns the string value of a key after deleting the key.", getdel),
    spec("getex", -2, WRITE | FAST, (1, 1, 1), WF, G, "6.2.0", "Returns the string value of a key after setting its expiration time.", getex),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), RF, G, "1.0.0", "Atomically returns the string values of one or more keys.", mget),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), W, G, "1.0.1", "Atomically creates or modifies the string values of one or more keys.", mset),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), W, G, "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", msetnx),
    spec("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", incr),
    spec("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", decr),
    spec("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrby),
    spec("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", decrby),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrbyfloat),
    spec("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), WF, G, "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", append),
    spec("strlen", 2, READONLY | FAST, (1, 1, 1), RF, G, "2.2.0", "Returns the length of a string value.", strlen),
    spec("getrange", 4, READONLY, (1, 1, 1), RS, G, "2.4.0", "Returns a substring of the string stored at a key.", getrange),
    spec("substr", 4, READONLY, (1, 1, 1), RS, G, "1.0.0", "Returns a substring from a string value.", getrange),
    spec("setrange", 4, WRITE | DENYOOM, (1, 1, 1), W, G, "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", setrange),
    spec("lcs", -3, READONLY, (1, 2, 1), RS, G, "7.0.0", "Finds the longest common substring.", lcs),
];

fn string_value(v: &Value) -> &SBytes {
    match v {
        Value::Str(s) => s,
    }
}

/// Reads a key that must hold a string (or be absent).
fn get_string<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a SBytes>> {
    let db = ctx.db();
    match ctx.store.ks.get(db, key, ctx.now_ms) {
        None => Ok(None),
        Some(v @ Value::Str(_)) => Ok(Some(string_value(v))),
    }
}

fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    match ctx.store.ks.get(db, &args[1], ctx.now_ms) {
        None => ctx.out.null(),
        Some(Value::Str(s)) => ctx.out.bulk(s),
    }
    Ok(())
}

/// The expiry options shared by SET and GETEX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpireOpt {
    None,
    Keep,
    Persist,
    /// Absolute unix ms.
    At(i64),
}

/// Parses `EX|PX|EXAT|PXAT <n>` at `args[i]` into an absolute time. `cmd` names the command
/// in the error. `Ok(None)` if `args[i]` is not one of those options.
fn parse_expire_opt(
    args: &[Bytes],
    i: usize,
    now_ms: i64,
    cmd: &'static str,
) -> CmdResult<Option<(i64, bool)>> {
    let unit_ms: i64;
    let absolute: bool;
    let a = &args[i];
    if is(a, "EX") {
        unit_ms = 1000;
        absolute = false;
    } else if is(a, "PX") {
        unit_ms = 1;
        absolute = false;
    } else if is(a, "EXAT") {
        unit_ms = 1000;
        absolute = true;
    } else if is(a, "PXAT") {
        unit_ms = 1;
        absolute = true;
    } else {
        return Ok(None);
    }
    let Some(v) = args.get(i + 1) else {
        return Err(CmdError::Syntax);
    };
    let n = parse_int(v)?;
    if n <= 0 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let ms = n.checked_mul(unit_ms).ok_or(CmdError::InvalidExpire(cmd))?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now_ms).ok_or(CmdError::InvalidExpire(cmd))?
    };
    // `absolute && unit is ms` means the client already sent PXAT: propagate as is.
    Ok(Some((at, absolute && unit_ms == 1)))
}

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut nx = false;
    let mut xx = false;
    let mut want_get = false;
    let mut expire = ExpireOpt::None;
    let mut is_pxat = false;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "NX") && !xx {
            nx = true;
        } else if is(a, "XX") && !nx {
            xx = true;
        } else if is(a, "GET") {
            want_get = true;
        } else if is(a, "KEEPTTL") && expire == ExpireOpt::None {
            expire = ExpireOpt::Keep;
        } else if expire == ExpireOpt::None
            && [&b"EX"[..], b"PX", b"EXAT", b"PXAT"]
                .iter()
                .any(|o| a.eq_ignore_ascii_case(o))
        {
            match parse_expire_opt(args, i, ctx.now_ms, "set")? {
                Some((at, pxat)) => {
                    expire = ExpireOpt::At(at);
                    is_pxat = pxat;
                    i += 1;
                }
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    set_generic(ctx, &args[1], &args[2], nx, xx, want_get, expire)?;
    let relative_expiry = matches!(expire, ExpireOpt::At(_)) && !is_pxat;
    if let (true, ExpireOpt::At(at)) = (relative_expiry, expire) {
        ctx.rewrite = Some(set_pxat_form(&args[1], &args[2], at));
    } else if want_get {
        // Replicas need no GET: Redis 7.0 drops that one argument from the propagated form.
        let mut form = args.to_vec();
        if let Some(i) = (3..form.len()).find(|&i| is(&form[i], "GET")) {
            form.remove(i);
        }
        ctx.rewrite = Some(form);
    }
    Ok(())
}

fn set_pxat_form(key: &Bytes, value: &Bytes, at_ms: i64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        value.clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(i64_bytes(at_ms)),
    ]
}

/// SET's core, shared with SETNX/SETEX/PSETEX/GETSET. Replies with OK / the old value / null.
fn set_generic(
    ctx: &mut Ctx,
    key: &[u8],
    value: &[u8],
    nx: bool,
    xx: bool,
    want_get: bool,
    expire: ExpireOpt,
) -> CmdResult {
    let db = ctx.db();
    let old = if want_get {
        get_string(ctx, key)?.cloned()
    } else {
        None
    };
    // Redis looks the key up even for a plain SET (an expired key is deleted and its DEL
    // propagated first); whether it exists matters only to NX and XX.
    let blocked = if nx || xx {
        let exists = ctx.store.ks.exists(db, key, ctx.now_ms);
        (nx && exists) || (xx && !exists)
    } else {
        ctx.store.ks.expire_if_stale(db, key, ctx.now_ms);
        false
    };
    if blocked {
        if want_get {
            match old {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            }
        } else {
            ctx.out.null();
        }
        return Ok(());
    }
    let keep_ttl = expire == ExpireOpt::Keep;
    ctx.store
        .ks
        .set(db, key, Value::Str(SBytes::new(value)), keep_ttl);
    if let ExpireOpt::At(at) = expire {
        ctx.store.ks.set_expire(db, key, at);
    }
    if want_get {
        match old {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    if ctx.store.ks.exists(db, &args[1], ctx.now_ms) {
        ctx.out.int(0);
    } else {
        ctx.store
            .ks
            .set(db, &args[1], Value::Str(SBytes::new(&args[2])), false);
        ctx.out.int(1);
    }
    Ok(())
}

fn setex_generic(ctx: &mut Ctx, args: &[Bytes], unit_ms: i64, cmd: &'static str) -> CmdResult {
    let n = parse_int(&args[2])?;
    if n <= 0 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let at = n
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(ctx.now_ms))
        .ok_or(CmdError::InvalidExpire(cmd))?;
    set_generic(
        ctx,
        &args[1],
        &args[3],
        false,
        false,
        false,
        ExpireOpt::At(at),
    )?;
    ctx.rewrite = Some(set_pxat_form(&args[1], &args[3], at));
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, 1, "psetex")
}

fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_generic(ctx, &args[1], &args[2], false, false, true, ExpireOpt::None)?;
    ctx.rewrite = Some(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        args[2].clone(),
    ]);
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let Some(v) = get_string(ctx, &args[1])?.cloned() else {
        ctx.out.null();
        return Ok(());
    };
    ctx.store.ks.delete(db, &args[1], ctx.now_ms);
    ctx.out.bulk(&v);
    ctx.rewrite = Some(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
    Ok(())
}

fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut opt = ExpireOpt::None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "PERSIST") && opt == ExpireOpt::None {
            opt = ExpireOpt::Persist;
        } else if opt == ExpireOpt::None {
            match parse_expire_opt(args, i, ctx.now_ms, "getex")? {
                Some((at, _)) => {
                    opt = ExpireOpt::At(at);
                    i += 1;
                }
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    let Some(v) = get_string(ctx, &args[1])?.cloned() else {
        ctx.out.null();
        return Ok(());
    };
    match opt {
        ExpireOpt::At(at) if at <= ctx.now_ms => {
            // Already in the past: the key goes, as a DEL.
            ctx.store.ks.delete(db, &args[1], ctx.now_ms);
            ctx.rewrite = Some(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
        }
        ExpireOpt::At(at) => {
            ctx.store.ks.set_expire(db, &args[1], at);
            ctx.rewrite = Some(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                Bytes::from(i64_bytes(at)),
            ]);
        }
        ExpireOpt::Persist => {
            if ctx.store.ks.persist(db, &args[1]) {
                ctx.rewrite = Some(vec![Bytes::from_static(b"PERSIST"), args[1].clone()]);
            }
        }
        ExpireOpt::None | ExpireOpt::Keep => {}
    }
    ctx.out.bulk(&v);
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    ctx.out.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.store.ks.get(db, k, ctx.now_ms) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("mset"));
    }
    let db = ctx.db();
    for pair in args[1..].chunks(2) {
        ctx.store
            .ks
            .set(db, &pair[0], Value::Str(SBytes::new(&pair[1])), false);
    }
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("msetnx"));
    }
    let db = ctx.db();
    let now = ctx.now_ms;
    if args[1..]
        .chunks(2)
        .any(|p| ctx.store.ks.exists(db, &p[0], now))
    {
        ctx.out.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks(2) {
        ctx.store
            .ks
            .set(db, &pair[0], Value::Str(SBytes::new(&pair[1])), false);
    }
    ctx.out.int(1);
    Ok(())
}

/// INCR/DECR/INCRBY/DECRBY: adds `by` to the integer at `key` (0 if absent), keeping the TTL.
fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let db = ctx.db();
    let current = match get_string(ctx, key)? {
        None => 0,
        Some(s) => verdis_core::resp::parse_i64(s).ok_or(CmdError::NotInteger)?,
    };
    let new = current.checked_add(by).ok_or(CmdError::Overflow)?;
    let v = Value::Str(SBytes::new(&i64_bytes(new)));
    if !ctx.store.ks.overwrite(db, key, v.clone()) {
        ctx.store.ks.set(db, key, v, false);
    }
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = parse_int(&args[2])?;
    incr_by(ctx, &args[1], by)
}

fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = parse_int(&args[2])?;
    if by == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_by(ctx, &args[1], -by)
}

/// Formats an INCRBYFLOAT result: plain decimal notation, the shortest text that reads back
/// as the same double. Redis computes in long double and prints 17 significant digits, so a
/// result like 0.1 + 0.2 prints as 0.3 there and as 0.30000000000000004 here: a documented
/// difference that only shows in the last digit.
pub fn format_incr_float(v: f64) -> String {
    format!("{v}")
}

fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let by = parse_float(&args[2])?;
    let current = match get_string(ctx, &args[1])? {
        None => 0.0,
        Some(s) => parse_float(s)?,
    };
    let new = current + by;
    if new.is_nan() || new.is_infinite() {
        return Err(CmdError::NanOrInfinity);
    }
    let text = format_incr_float(new);
    let v = Value::Str(SBytes::new(text.as_bytes()));
    if !ctx.store.ks.overwrite(db, &args[1], v.clone()) {
        ctx.store.ks.set(db, &args[1], v, false);
    }
    ctx.out.bulk(text.as_bytes());
    ctx.rewrite = Some(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        Bytes::from(text.into_bytes()),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Ok(())
}

fn check_size(ctx: &Ctx, len: u64) -> CmdResult {
    if len > ctx.store.config.proto_max_bulk_len {
        return Err(CmdError::StringTooLong);
    }
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let new = match get_string(ctx, &args[1])? {
        None => args[2].to_vec(),
        Some(s) => {
            let mut v = Vec::with_capacity(s.len() + args[2].len());
            v.extend_from_slice(s);
            v.extend_from_slice(&args[2]);
            v
        }
    };
    check_size(ctx, new.len() as u64)?;
    let len = new.len() as i64;
    let v = Value::Str(SBytes::from_vec(new));
    if !ctx.store.ks.overwrite(db, &args[1], v.clone()) {
        ctx.store.ks.set(db, &args[1], v, false);
    }
    ctx.out.int(len);
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let len = get_string(ctx, &args[1])?.map(|s| s.len()).unwrap_or(0);
    ctx.out.int(len as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = parse_int(&args[2])?;
    let end = parse_int(&args[3])?;
    let Some(s) = get_string(ctx, &args[1])?.cloned() else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let len = s.len() as i64;
    // Redis: both negative and start > end -> empty; negatives count from the end.
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if end < 0 {
        end = 0;
    }
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let offset = parse_int(&args[2])?;
    if offset < 0 {
        return Err(CmdError::OffsetOutOfRange);
    }
    let value = &args[3];
    let current = get_string(ctx, &args[1])?.cloned();
    let cur_len = current.as_ref().map(|s| s.len()).unwrap_or(0);
    if value.is_empty() {
        // Nothing to write: reply with the current length and create nothing.
        ctx.out.int(cur_len as i64);
        return Ok(());
    }
    let new_len = (offset as u64).saturating_add(value.len() as u64);
    check_size(ctx, new_len)?;
    let mut buf = current.map(|s| s.to_vec()).unwrap_or_default();
    let offset = offset as usize;
    if buf.len() < offset + value.len() {
        buf.resize(offset + value.len(), 0);
    }
    buf[offset..offset + value.len()].copy_from_slice(value);
    let len = buf.len() as i64;
    let v = Value::Str(SBytes::from_vec(buf));
    if !ctx.store.ks.overwrite(db, &args[1], v.clone()) {
        ctx.store.ks.set(db, &args[1], v, false);
    }
    ctx.out.int(len);
    Ok(())
}

/// LCS key1 key2 [LEN]: the longest common subsequence (plain and LEN forms).
fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut want_len = false;
    for a in &args[3..] {
        if is(a, "LEN") {
            want_len = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let a = get_string(ctx, &args[1])?
        .map(|s| s.to_vec())
        .unwrap_or_default();
    let b = get_string(ctx, &args[2])?
        .map(|s| s.to_vec())
        .unwrap_or_default();
    // Bounded: the table is (|a|+1) x (|b|+1) u32 cells, as in Redis.
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    if cells > (u32::MAX as u64) {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let w = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let n = t[a.len() * w + b.len()] as usize;
    if want_len {
        ctx.out.int(n as i64);
        return Ok(());
    }
    let mut res = vec![0u8; n];
    let (mut i, mut j, mut k) = (a.len(), b.len(), n);
    while k > 0 && i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            res[k - 1] = a[i - 1];
            i -= 1;
            j -= 1;
            k -= 1;
        } else if t[(i - 1) * w + j] > t[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    ctx.out.bulk(&res);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_incr_float;

    #[test]
    fn incrbyfloat_results_print_like_redis() {
        assert_eq!(format_incr_float(10.5), "10.5");
        assert_eq!(format_incr_float(3.0), "3");
        assert_eq!(format_incr_float(5.0e3), "5000");
    }
}
