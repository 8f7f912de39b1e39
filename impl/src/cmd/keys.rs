//! Generic keyspace commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RANDOMKEY, KEYS, SCAN,
//! the EXPIRE family, TTL family, PERSIST, TOUCH, OBJECT.
//!
//! Every EXPIRE variant is propagated as `PEXPIREAT key <abs ms>`; an expiry time already in
//! the past deletes the key and is propagated as `DEL key`, as Redis 7.0 does.

use super::{container, flags::*, is, parse_int, spec, CommandSpec, Ctx};
use crate::db::Value;
use crate::error::{CmdError, CmdResult};
use crate::glob::glob_match;
use crate::reply::i64_bytes;
use bytes::Bytes;

const KW: &[&str] = &["keyspace", "write", "slow"];
const KWF: &[&str] = &["keyspace", "write", "fast"];
const KRF: &[&str] = &["keyspace", "read", "fast"];
const KRS: &[&str] = &["keyspace", "read", "slow", "dangerous"];
const G: &str = "generic";

pub static OBJECT_SUBCOMMANDS: [CommandSpec; 3] = [
    spec(
        "object|encoding",
        3,
        READONLY,
        (2, 2, 1),
        &["keyspace", "read", "slow"],
        G,
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
        object_encoding,
    ),
    spec(
        "object|refcount",
        3,
        READONLY,
        (2, 2, 1),
        &["keyspace", "read", "slow"],
        G,
        "2.2.3",
        "Returns the reference count of a value of a key.",
        object_refcount,
    ),
    spec(
        "object|help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["keyspace", "slow"],
        G,
        "6.2.0",
        "Returns helpful text about the different subcommands.",
        object_help,
    ),
];

pub static COMMANDS: [CommandSpec; 25] = [
    spec("del", -2, WRITE, (1, -1, 1), KW, G, "1.0.0", "Deletes one or more keys.", del),
    spec("unlink", -2, WRITE | FAST, (1, -1, 1), KWF, G, "4.0.0", "Asynchronously deletes one or more keys.", del),
    spec("exists", -2, READONLY | FAST, (1, -1, 1), KRF, G, "1.0.0", "Determines whether one or more keys exist.", exists),
    spec("touch", -2, READONLY | FAST, (1, -1, 1), KRF, G, "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", exists),
    spec("type", 2, READONLY | FAST, (1, 1, 1), KRF, G, "1.0.0", "Determines the type of value stored at a key.", type_cmd),
    spec("rename", 3, WRITE, (1, 2, 1), KW, G, "1.0.0", "Renames a key and overwrites the destination.", rename),
    spec("renamenx", 3, WRITE | FAST, (1, 2, 1), KWF, G, "1.0.0", "Renames a key only when the target key name doesn't exist.", renamenx),
    spec("randomkey", 1, READONLY, (0, 0, 0), &["keyspace", "read", "slow"], G, "1.0.0", "Returns a random key name from the database.", randomkey),
    spec("keys", 2, READONLY, (0, 0, 0), KRS, G, "1.0.0", "Returns all key names that match a pattern.", keys),
    spec("scan", -2, READONLY, (0, 0, 0), &["keyspace", "read", "slow"], G, "2.8.0", "Iterates over the key names in the database.", scan),
    spec("expire", -3, WRITE | FAST, (1, 1, 1), KWF, G, "1.0.0", "Sets the expiration time of a key in seconds.", expire),
    spec("pexpire", -3, WRITE | FAST, (1, 1, 1), KWF, G, "2.6.0", "Sets the expiration time of a key in milliseconds.", pexpire),
    spec("expireat", -3, WRITE | FAST, (1, 1, 1), KWF, G, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", expireat),
    spec("pexpireat", -3, WRITE | FAST, (1, 1, 1), KWF, G, "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", pexpireat),
    spec("ttl", 2, READONLY | FAST, (1, 1, 1), KRF, G, "1.0.0", "Returns the expiration time in seconds of a key.", ttl),
    spec("pttl", 2, READONLY | FAST, (1, 1, 1), KRF, G, "2.6.0", "Returns the expiration time in milliseconds of a key.", pttl),
    spec("expiretime", 2, READONLY | FAST, (1, 1, 1), KRF, G, "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", expiretime),
    spec("pexpiretime", 2, READONLY | FAST, (1, 1, 1), KRF, G, "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", pexpiretime),
    spec("persist", 2, WRITE | FAST, (1, 1, 1), KWF, G, "2.2.0", "Removes the expiration time of a key.", persist),
    spec("copy", -3, WRITE | DENYOOM, (1, 2, 1), KW, G, "6.2.0", "Copies the value of a key to a new key.", copy),
    spec("move", 3, WRITE | FAST, (1, 1, 1), KWF, G, "1.0.0", "Moves a key to another database.", move_cmd),
    spec("swapdb", 3, WRITE | FAST, (0, 0, 0), &["keyspace", "write", "fast", "dangerous"], "server", "4.0.0", "Swaps two Redis databases.", swapdb),
    spec("dump", 2, READONLY, (1, 1, 1), &["keyspace", "read", "slow"], G, "2.6.0", "Returns a serialized representation of the value stored at a key.", unsupported),
    spec("restore", -4, WRITE | DENYOOM, (1, 1, 1), KW, G, "2.6.0", "Creates a key from the serialized representation of a value.", unsupported),
    container("object", -2, G, "2.2.3", "A container for object introspection commands.", &OBJECT_SUBCOMMANDS),
];

fn unsupported(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Err(CmdError::err(format!(
        "'{}' is not supported by Verdis yet",
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    )))
}

fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if ctx.store.ks.delete(db, k, ctx.now_ms) {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let now = ctx.now_ms;
    let n = args[1..]
        .iter()
        .filter(|k| ctx.store.ks.exists(db, k, now))
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let t = ctx
        .store
        .ks
        .peek(db, &args[1], ctx.now_ms)
        .map(|v| v.type_name())
        .unwrap_or("none");
    ctx.out.simple(t);
    Ok(())
}

/// RENAME/RENAMENX: moves the value and its TTL. Returns false when `nx` and dst exists.
fn rename_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], nx: bool) -> CmdResult<bool> {
    let db = ctx.db();
    let Some(value) = ctx.store.ks.peek(db, src, ctx.now_ms).cloned() else {
        return Err(CmdError::NoSuchKey);
    };
    if src == dst {
        return Ok(!nx);
    }
    if nx && ctx.store.ks.exists(db, dst, ctx.now_ms) {
        return Ok(false);
    }
    let ttl = ctx.store.ks.expire_at(db, src);
    ctx.store.ks.delete(db, dst, ctx.now_ms);
    ctx.store.ks.set(db, dst, value, false);
    if let Some(at) = ttl {
        ctx.store.ks.set_expire(db, dst, at);
    }
    ctx.store.ks.delete(db, src, ctx.now_ms);
    Ok(true)
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, &args[1], &args[2], false)?;
    ctx.out.ok();
    Ok(())
}

fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let done = rename_generic(ctx, &args[1], &args[2], true)?;
    ctx.out.int(done as i64);
    Ok(())
}

fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut dst_db = ctx.db();
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "REPLACE") {
            replace = true;
        } else if is(&args[i], "DB") && i + 1 < args.len() {
            let d = parse_int(&args[i + 1])?;
            if d < 0 || d >= ctx.store.ks.db_count() as i64 {
                return Err(CmdError::DbIndexOutOfRange);
            }
            dst_db = d as u32;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    if db == dst_db && args[1] == args[2] {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(value) = ctx.store.ks.peek(db, &args[1], ctx.now_ms).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    if ctx.store.ks.exists(dst_db, &args[2], ctx.now_ms) {
        if !replace {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.store.ks.delete(dst_db, &args[2], ctx.now_ms);
    }
    let ttl = ctx.store.ks.expire_at(db, &args[1]);
    ctx.store.ks.set(dst_db, &args[2], value, false);
    if let Some(at) = ttl {
        ctx.store.ks.set_expire(dst_db, &args[2], at);
    }
    ctx.out.int(1);
    Ok(())
}

fn move_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let dst = parse_int(&args[2])?;
    if dst < 0 || dst >= ctx.store.ks.db_count() as i64 {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let dst = dst as u32;
    if dst == db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(value) = ctx.store.ks.peek(db, &args[1], ctx.now_ms).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    if ctx.store.ks.exists(dst, &args[1], ctx.now_ms) {
        ctx.out.int(0);
        return Ok(());
    }
    let ttl = ctx.store.ks.expire_at(db, &args[1]);
    ctx.store.ks.set(dst, &args[1], value, false);
    if let Some(at) = ttl {
        ctx.store.ks.set_expire(dst, &args[1], at);
    }
    ctx.store.ks.delete(db, &args[1], ctx.now_ms);
    ctx.out.int(1);
    Ok(())
}

fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = parse_int(&args[1]).map_err(|_| CmdError::err("invalid first DB index"))?;
    let b = parse_int(&args[2]).map_err(|_| CmdError::err("invalid second DB index"))?;
    let n = ctx.store.ks.db_count() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.store.ks.swap_dbs(a as u32, b as u32);
    ctx.out.ok();
    Ok(())
}

fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    match ctx.store.ks.random_key(db, ctx.now_ms) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let pattern = args[1].clone();
    let all = &pattern[..] == b"*";
    let found = ctx
        .store
        .ks
        .keys(db, ctx.now_ms, |k| all || glob_match(&pattern, k, false));
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor_text = std::str::from_utf8(&args[1]).map_err(|_| CmdError::InvalidCursor)?;
    let cursor: u64 = cursor_text.parse().map_err(|_| CmdError::InvalidCursor)?;
    let mut pattern: Option<Bytes> = None;
    let mut count: i64 = 10;
    let mut type_filter: Option<Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(&args[i], "COUNT") && has_value {
            count = parse_int(&args[i + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(&args[i], "MATCH") && has_value {
            pattern = Some(args[i + 1].clone());
        } else if is(&args[i], "TYPE") && has_value {
            type_filter = Some(args[i + 1].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let db = ctx.db();
    let (next, found) = ctx
        .store
        .ks
        .scan(db, cursor, count.min(1 << 20) as usize, ctx.now_ms);
    let mut keys = Vec::with_capacity(found.len());
    for k in found {
        if let Some(p) = &pattern {
            if &p[..] != b"*" && !glob_match(p, &k, false) {
                continue;
            }
        }
        if let Some(t) = &type_filter {
            let ty = ctx.store.ks.db(db).get(&k[..]).map(|v| v.type_name());
            if !ty.is_some_and(|ty| t.eq_ignore_ascii_case(ty.as_bytes())) {
                continue;
            }
        }
        keys.push(k);
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(keys.len());
    for k in &keys {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// EXPIRE and friends. `unit_ms` is 1000 for seconds; `absolute` for the *AT forms.
fn expire_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    unit_ms: i64,
    absolute: bool,
    cmd: &'static str,
) -> CmdResult {
    let n = parse_int(&args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if is(a, "GT") {
            gt = true;
        } else if is(a, "LT") {
            lt = true;
        } else {
            return Err(CmdError::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let ms = n.checked_mul(unit_ms).ok_or(CmdError::InvalidExpire(cmd))?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(ctx.now_ms)
            .ok_or(CmdError::InvalidExpire(cmd))?
    };
    let db = ctx.db();
    let key = &args[1];
    if !ctx.store.ks.exists(db, key, ctx.now_ms) {
        ctx.out.int(0);
        return Ok(());
    }
    let current = ctx.store.ks.expire_at(db, key);
    // A key without a TTL counts as an infinite TTL for GT and LT.
    let allowed = match current {
        Some(cur) => !(nx || (gt && at <= cur) || (lt && at >= cur)),
        None => !xx && !gt,
    };
    if !allowed {
        ctx.out.int(0);
        return Ok(());
    }
    if at <= ctx.now_ms && ctx.store.policy_is_master() {
        ctx.store.ks.delete(db, key, ctx.now_ms);
        ctx.rewrite = Some(vec![Bytes::from_static(b"DEL"), key.clone()]);
    } else {
        ctx.store.ks.set_expire(db, key, at);
        // As Redis: the command becomes PEXPIREAT with the absolute time; options stay, and a
        // PEXPIREAT is propagated exactly as sent.
        if cmd != "pexpireat" {
            let mut form = args.to_vec();
            form[0] = Bytes::from_static(b"PEXPIREAT");
            form[2] = Bytes::from(i64_bytes(at));
            ctx.rewrite = Some(form);
        }
    }
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// The TTL family: -2 if the key is missing, -1 without TTL.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], f: impl Fn(i64, i64) -> i64) -> CmdResult {
    let db = ctx.db();
    if !ctx.store.ks.exists(db, key, ctx.now_ms) {
        ctx.out.int(-2);
        return Ok(());
    }
    match ctx.store.ks.expire_at(db, key) {
        None => ctx.out.int(-1),
        Some(at) => ctx.out.int(f(at, ctx.now_ms)),
    }
    Ok(())
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, now| ((at - now).max(0) + 500) / 1000)
}

fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, now| (at - now).max(0))
}

fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, _| at / 1000)
}

fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, _| at)
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    if !ctx.store.ks.exists(db, &args[1], ctx.now_ms) {
        ctx.out.int(0);
        return Ok(());
    }
    let had = ctx.store.ks.persist(db, &args[1]);
    ctx.out.int(had as i64);
    Ok(())
}

fn object_value(ctx: &mut Ctx, key: &[u8]) -> Option<Value> {
    let db = ctx.db();
    ctx.store.ks.peek(db, key, ctx.now_ms).cloned()
}

fn object_encoding(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match object_value(ctx, &args[2]) {
        Some(v) => ctx.out.bulk(v.encoding().as_bytes()),
        None => ctx.out.null(),
    }
    Ok(())
}

fn object_refcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match object_value(ctx, &args[2]) {
        // Redis shares the objects of small integers (0..10000) and reports INT_MAX for them.
        Some(Value::Str(s))
            if verdis_core::resp::parse_i64(&s).is_some_and(|v| (0..10_000).contains(&v)) =>
        {
            ctx.out.int(i32::MAX as i64)
        }
        Some(_) => ctx.out.int(1),
        None => ctx.out.null(),
    }
    Ok(())
}

fn object_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let lines: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    super::help_reply(ctx, lines)
}
