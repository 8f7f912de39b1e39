//! Server commands: INFO, CONFIG, COMMAND, DEBUG, DBSIZE, FLUSHDB, FLUSHALL, TIME, LASTSAVE,
//! SHUTDOWN.

use super::{container, flags::*, help_reply, is, parse_int, spec, table, CommandSpec, Ctx};
use crate::error::{CmdError, CmdResult};
use bytes::Bytes;

const ADM: &[&str] = &["admin", "slow", "dangerous"];
const G: &str = "server";
const CFG_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static CONFIG_SUBCOMMANDS: [CommandSpec; 5] = [
    spec(
        "config|get",
        -3,
        CFG_FLAGS,
        (0, 0, 0),
        ADM,
        G,
        "2.0.0",
        "Returns the effective values of configuration parameters.",
        config_get,
    ),
    spec(
        "config|set",
        -4,
        CFG_FLAGS,
        (0, 0, 0),
        ADM,
        G,
        "2.0.0",
        "Sets configuration parameters in-flight.",
        config_set,
    ),
    spec(
        "config|resetstat",
        2,
        CFG_FLAGS,
        (0, 0, 0),
        ADM,
        G,
        "2.0.0",
        "Resets the server's statistics.",
        config_resetstat,
    ),
    spec(
        "config|rewrite",
        2,
        CFG_FLAGS,
        (0, 0, 0),
        ADM,
        G,
        "2.8.0",
        "Persists the effective configuration to file.",
        config_rewrite,
    ),
    spec(
        "config|help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow"],
        G,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        config_help,
    ),
];

pub static COMMAND_SUBCOMMANDS: [CommandSpec; 5] = [
    spec(
        "command|count",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "2.8.13",
        "Returns a count of commands.",
        command_count,
    ),
    spec(
        "command|info",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "2.8.13",
        "Returns information about one, multiple or all commands.",
        command_info,
    ),
    spec(
        "command|docs",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
        command_docs,
    ),
    spec(
        "command|list",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "7.0.0",
        "Returns a list of command names.",
        command_list,
    ),
    spec(
        "command|help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        command_help,
    ),
];

pub static DEBUG_SUBCOMMANDS: [CommandSpec; 4] = [
    spec(
        "debug|digest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Returns the dataset digest.",
        debug_digest,
    ),
    spec(
        "debug|digest-value",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Returns the digest of values.",
        debug_digest_value,
    ),
    spec(
        "debug|sleep",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Blocks the server for the given seconds.",
        debug_sleep,
    ),
    spec(
        "debug|set-active-expire",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Turns the active expiry cycle on or off.",
        debug_set_active_expire,
    ),
];

pub static COMMANDS: [CommandSpec; 10] = [
    spec(
        "info",
        -1,
        LOADING | STALE | SENTINEL,
        (0, 0, 0),
        &["slow", "dangerous"],
        G,
        "1.0.0",
        "Returns information and statistics about the server.",
        info,
    ),
    spec(
        "dbsize",
        1,
        READONLY | FAST,
        (0, 0, 0),
        &["keyspace", "read", "fast"],
        G,
        "1.0.0",
        "Returns the number of keys in the database.",
        dbsize,
    ),
    spec(
        "flushdb",
        -1,
        WRITE,
        (0, 0, 0),
        &["keyspace", "write", "slow", "dangerous"],
        G,
        "1.0.0",
        "Removes all keys from the current database.",
        flushdb,
    ),
    spec(
        "flushall",
        -1,
        WRITE,
        (0, 0, 0),
        &["keyspace", "write", "slow", "dangerous"],
        G,
        "1.0.0",
        "Removes all keys from all databases.",
        flushall,
    ),
    spec(
        "time",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        &["fast"],
        G,
        "2.6.0",
        "Returns the server time.",
        time,
    ),
    spec(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        &["fast", "dangerous"],
        G,
        "1.0.0",
        "Returns the Unix timestamp of the last successful save to disk.",
        lastsave,
    ),
    spec(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        shutdown,
    ),
    container(
        "config",
        -2,
        G,
        "2.0.0",
        "A container for server configuration commands.",
        &CONFIG_SUBCOMMANDS,
    ),
    CommandSpec {
        handler: Some(command_all),
        ..container(
            "command",
            -1,
            G,
            "2.8.13",
            "Returns detailed information about all commands.",
            &COMMAND_SUBCOMMANDS,
        )
    },
    container(
        "debug",
        -2,
        G,
        "1.0.0",
        "A container for debugging commands.",
        &DEBUG_SUBCOMMANDS,
    ),
];

fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sections: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let text = crate::info::render(ctx.shared, ctx.store, &sections);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.store.ks.db(ctx.db()).len();
    ctx.out.int(n as i64);
    Ok(())
}

/// FLUSHDB/FLUSHALL take an optional ASYNC or SYNC.
fn flush_mode_ok(args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if is(&args[1], "ASYNC") || is(&args[1], "SYNC") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    flush_mode_ok(args)?;
    ctx.store.ks.flush_db(ctx.db());
    ctx.force_propagate = true;
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    flush_mode_ok(args)?;
    ctx.store.ks.flush_all();
    ctx.force_propagate = true;
    ctx.out.ok();
    Ok(())
}

fn time(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let us = crate::store::unix_us();
    ctx.out.array(2);
    ctx.out.bulk((us / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((us % 1_000_000).to_string().as_bytes());
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(ctx.store.lastsave_unix);
    Ok(())
}

fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut abort, mut save, mut nosave, mut force) = (false, false, false, false);
    for a in &args[1..] {
        if is(a, "NOSAVE") {
            nosave = true;
        } else if is(a, "SAVE") {
            save = true;
        } else if is(a, "FORCE") {
            force = true;
        } else if is(a, "NOW") {
            continue;
        } else if is(a, "ABORT") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && args.len() != 2) || (save && nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return Err(CmdError::err("No shutdown in progress."));
    }
    tracing::warn!("User requested shutdown...");
    // Saves when save points are configured (unless NOSAVE) or with SAVE; a failed save
    // keeps the server running unless FORCE, as in Redis.
    if crate::rdb::save::shutdown_save(ctx.store, save, nosave).is_err() && !force {
        return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
    }
    // The connection closes without a reply, as Redis's does when it exits.
    ctx.shared.shutdown.notify_one();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let pairs = ctx.store.config.get(&patterns);
    ctx.out.map(pairs.len());
    for (k, v) in &pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("config|set"));
    }
    let pairs: Vec<(&[u8], &[u8])> = args[2..]
        .chunks(2)
        .map(|p| (&p[0][..], &p[1][..]))
        .collect();
    // Validate on a copy; listeners are re-bound before the copy is committed, so a port that
    // cannot be bound leaves every setting as it was.
    let local = ctx.client.handle.addr.ip().is_loopback();
    let mut next = ctx.store.config.clone();
    let changed = next
        .set_from(&pairs, local)
        .map_err(|msg| CmdError::Coded(msg.strip_prefix('-').unwrap_or(&msg).to_string()))?;
    if changed.contains(&"port") || changed.contains(&"bind") {
        crate::net::rebind(ctx.shared, next.port, &next.bind).map_err(|e| {
            let arg = if changed.contains(&"port") {
                "port"
            } else {
                "bind"
            };
            CmdError::err(format!(
                "CONFIG SET failed (possibly related to argument '{arg}') - {e}"
            ))
        })?;
    }
    ctx.store.config = next;
    if changed.contains(&"loglevel") {
        if let Some(set) = ctx.shared.set_log_level.lock().as_ref() {
            set(ctx.store.config.loglevel);
        }
    }
    ctx.store.apply_config_change(&changed);
    ctx.out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.store.stats = Default::default();
    ctx.store.ks.stats = Default::default();
    ctx.out.ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let Some(path) = ctx.shared.config_file.clone() else {
        return Err(CmdError::err("The server is running without a config file"));
    };
    ctx.store
        .config
        .rewrite(&path)
        .map_err(|e| CmdError::err(format!("Rewriting config file: {e}")))?;
    tracing::info!("CONFIG REWRITE executed with success.");
    ctx.out.ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help_reply(
        ctx,
        &[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ],
    )
}

fn command_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help_reply(
        ctx,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "HELP",
            "    Prints this help.",
        ],
    )
}

fn command_count(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(table().len() as i64);
    Ok(())
}

/// One COMMAND INFO entry, in Redis 7.0's ten-element shape.
fn write_command_info(ctx: &mut Ctx, c: &CommandSpec) {
    ctx.out.array(10);
    ctx.out.bulk(c.name.as_bytes());
    ctx.out.int(c.arity as i64);
    let names: Vec<&str> = super::flags::NAMES
        .iter()
        .filter(|(bit, _)| c.flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    ctx.out.set(names.len());
    for n in names {
        ctx.out.simple(n);
    }
    ctx.out.int(c.first_key as i64);
    ctx.out.int(c.last_key as i64);
    ctx.out.int(c.step as i64);
    ctx.out.set(c.acl.len());
    for a in c.acl {
        ctx.out.simple(&format!("@{a}"));
    }
    ctx.out.array(0); // tips
                      // Key specs, derived from first/last/step.
    if c.first_key > 0 {
        let write = c.flags & WRITE != 0;
        ctx.out.array(1);
        ctx.out.map(3);
        ctx.out.bulk(b"flags");
        ctx.out.set(2);
        ctx.out.simple(if write { "RW" } else { "RO" });
        ctx.out.simple(if write { "update" } else { "access" });
        ctx.out.bulk(b"begin_search");
        ctx.out.map(2);
        ctx.out.bulk(b"type");
        ctx.out.bulk(b"index");
        ctx.out.bulk(b"spec");
        ctx.out.map(1);
        ctx.out.bulk(b"index");
        ctx.out.int(c.first_key as i64);
        ctx.out.bulk(b"find_keys");
        ctx.out.map(2);
        ctx.out.bulk(b"type");
        ctx.out.bulk(b"range");
        ctx.out.bulk(b"spec");
        ctx.out.map(3);
        ctx.out.bulk(b"lastkey");
        let last = if c.last_key < 0 {
            c.last_key
        } else {
            c.last_key - c.first_key
        };
        ctx.out.int(last as i64);
        ctx.out.bulk(b"keystep");
        ctx.out.int(c.step as i64);
        ctx.out.bulk(b"limit");
        ctx.out.int(0);
    } else {
        ctx.out.array(0);
    }
    ctx.out.array(c.subcommands.len());
    for s in c.subcommands {
        write_command_info(ctx, s);
    }
}

fn command_all(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() != 1 {
        return Err(CmdError::UnknownSubcommand {
            sub: args[1].to_vec(),
            command: "COMMAND",
        });
    }
    let t = table();
    ctx.out.array(t.len());
    for c in t {
        write_command_info(ctx, c);
    }
    Ok(())
}

/// Finds a command or `parent|sub` by name for COMMAND INFO / DOCS.
fn find_by_name(name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        None => super::lookup(name),
        Some((parent, _)) => super::lookup(parent.as_bytes())?
            .subcommands
            .iter()
            .find(|s| s.name == lower),
    }
}

fn command_info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, &args[..1]);
    }
    ctx.out.array(args.len() - 2);
    for name in &args[2..] {
        match find_by_name(name) {
            Some(c) => write_command_info(ctx, c),
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

fn write_docs(ctx: &mut Ctx, c: &CommandSpec) {
    ctx.out.bulk(c.name.as_bytes());
    let subs = !c.subcommands.is_empty();
    ctx.out.map(if subs { 5 } else { 4 });
    ctx.out.bulk(b"summary");
    ctx.out.bulk(c.summary.as_bytes());
    ctx.out.bulk(b"since");
    ctx.out.bulk(c.since.as_bytes());
    ctx.out.bulk(b"group");
    ctx.out.bulk(c.group.as_bytes());
    ctx.out.bulk(b"complexity");
    ctx.out.bulk(if c.complexity.is_empty() {
        b"O(1)"
    } else {
        c.complexity.as_bytes()
    });
    if subs {
        ctx.out.bulk(b"subcommands");
        ctx.out.map(c.subcommands.len());
        for s in c.subcommands {
            write_docs(ctx, s);
        }
    }
}

fn command_docs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cmds: Vec<&'static CommandSpec> = if args.len() == 2 {
        table().to_vec()
    } else {
        args[2..].iter().filter_map(|n| find_by_name(n)).collect()
    };
    ctx.out.map(cmds.len());
    for c in cmds {
        write_docs(ctx, c);
    }
    Ok(())
}

fn command_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        // FILTERBY is not supported yet.
        return Err(CmdError::Syntax);
    }
    let t = table();
    ctx.out.array(t.len());
    for c in t {
        ctx.out.bulk(c.name.as_bytes());
    }
    Ok(())
}

/// DEBUG is refused unless enable-debug-command allows it, as in Redis 7.0.
fn debug_allowed(ctx: &Ctx) -> CmdResult {
    let peer_local = ctx.client.handle.addr.ip().is_loopback();
    use crate::config::ProtectedAction;
    let allowed = match ctx.store.config.enable_debug_command {
        ProtectedAction::Yes => true,
        ProtectedAction::Local => peer_local,
        ProtectedAction::No => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(CmdError::err("DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."))
    }
}

fn debug_digest(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    debug_allowed(ctx)?;
    let d = ctx.store.ks.digest();
    ctx.out.simple(&hex(&d));
    Ok(())
}

fn debug_digest_value(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    debug_allowed(ctx)?;
    ctx.out.array(args.len() - 2);
    let db = ctx.db();
    for k in &args[2..] {
        let d = ctx.store.ks.value_digest(db, k);
        ctx.out.simple(&hex(&d));
    }
    Ok(())
}

fn debug_sleep(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    debug_allowed(ctx)?;
    let secs = super::parse_float(&args[2])?;
    // Like Redis, DEBUG SLEEP blocks the whole server: the keyspace lock is held.
    let secs = secs.clamp(0.0, 3600.0);
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    ctx.out.ok();
    Ok(())
}

fn debug_set_active_expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    debug_allowed(ctx)?;
    let v = parse_int(&args[2])?;
    ctx.store.active_expire_enabled = v != 0;
    ctx.out.ok();
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
