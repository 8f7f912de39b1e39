//! CLIENT: ID, SETNAME, GETNAME, LIST, KILL, INFO, HELP.

use super::{container, flags::*, is, parse_int, spec, CommandSpec, Ctx};
use crate::error::{CmdError, CmdResult};
use bytes::Bytes;
use std::time::Instant;

const CS: &[&str] = &["slow", "connection"];
const CA: &[&str] = &["admin", "slow", "dangerous", "connection"];
const G: &str = "connection";
const F: u32 = NOSCRIPT | LOADING | STALE;

pub static CLIENT_SUBCOMMANDS: [CommandSpec; 8] = [
    spec(
        "client|id",
        2,
        F,
        (0, 0, 0),
        CS,
        G,
        "5.0.0",
        "Returns the unique client ID of the connection.",
        client_id,
    ),
    spec(
        "client|setname",
        3,
        F,
        (0, 0, 0),
        CS,
        G,
        "2.6.9",
        "Sets the connection name.",
        client_setname,
    ),
    spec(
        "client|getname",
        2,
        F,
        (0, 0, 0),
        CS,
        G,
        "2.6.9",
        "Returns the name of the connection.",
        client_getname,
    ),
    spec(
        "client|list",
        -2,
        ADMIN | F,
        (0, 0, 0),
        CA,
        G,
        "2.4.0",
        "Lists open connections.",
        client_list,
    ),
    spec(
        "client|kill",
        -3,
        ADMIN | F,
        (0, 0, 0),
        CA,
        G,
        "2.4.0",
        "Terminates open connections.",
        client_kill,
    ),
    spec(
        "client|info",
        2,
        F,
        (0, 0, 0),
        CS,
        G,
        "6.2.0",
        "Returns information about the connection.",
        client_info,
    ),
    spec(
        "client|setinfo",
        4,
        F,
        (0, 0, 0),
        CS,
        G,
        "7.2.0",
        "Sets information specific to the client or connection.",
        client_setinfo,
    ),
    spec(
        "client|help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["slow", "connection"],
        G,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        client_help,
    ),
];

pub static COMMANDS: [CommandSpec; 1] = [container(
    "client",
    -2,
    G,
    "2.4.0",
    "A container for client connection commands.",
    &CLIENT_SUBCOMMANDS,
)];

/// Client names: printable ASCII without spaces, as Redis requires.
pub fn validate_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_id(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(ctx.client.id as i64);
    Ok(())
}

fn client_setname(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    validate_name(&args[2])?;
    ctx.client.name = if args[2].is_empty() {
        None
    } else {
        Some(args[2].clone())
    };
    ctx.out.ok();
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !(is(&args[2], "LIB-NAME") || is(&args[2], "LIB-VER")) {
        return Err(CmdError::err(format!(
            "Unrecognized option '{}'",
            String::from_utf8_lossy(&args[2])
        )));
    }
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    match &ctx.client.name {
        Some(n) => {
            let n = n.clone();
            ctx.out.bulk(&n)
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn client_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "TYPE") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !(is(t, "normal")
                || is(t, "master")
                || is(t, "replica")
                || is(t, "slave")
                || is(t, "pubsub"))
            {
                return Err(CmdError::err(format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                )));
            }
            if !is(t, "normal") {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if is(&args[i], "ID") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                let id = parse_int(a).map_err(|_| CmdError::err("Invalid client ID"))?;
                v.push(id as u64);
            }
            ids = Some(v);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // Our own entry shows this command.
    ctx.client.publish();
    let now = Instant::now();
    let mut text = String::new();
    for h in ctx.shared.clients.all() {
        if let Some(ids) = &ids {
            if !ids.contains(&h.id) {
                continue;
            }
        }
        text.push_str(&h.info_line(now));
        text.push('\n');
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.publish();
    let mut line = ctx.client.handle.info_line(Instant::now());
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = ctx.shared.clients.all();
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port.
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let Some(h) = all.iter().find(|h| h.addr.to_string() == addr) else {
            return Err(CmdError::err("No such client"));
        };
        if h.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            h.kill();
        }
        ctx.out.ok();
        return Ok(());
    }
    // New form: filters, all of which must match.
    let mut id: Option<u64> = None;
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut skipme = true;
    let mut maxage: Option<u64> = None;
    // Which kind of connection the TYPE filter asks for: normal clients or replica links.
    let mut want_replicas = false;
    let mut type_matches_nothing = false;
    let mut kill_master = false;
    let mut i = 2;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        if is(&args[i], "ID") {
            let n =
                parse_int(v).map_err(|_| CmdError::err("client-id should be greater than 0"))?;
            if n <= 0 {
                return Err(CmdError::err("client-id should be greater than 0"));
            }
            id = Some(n as u64);
        } else if is(&args[i], "ADDR") {
            addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if is(&args[i], "LADDR") {
            laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if is(&args[i], "SKIPME") {
            skipme = if is(v, "yes") {
                true
            } else if is(v, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else if is(&args[i], "MAXAGE") {
            maxage = Some(parse_int(v)?.max(0) as u64);
        } else if is(&args[i], "TYPE") {
            if is(v, "normal") {
                want_replicas = false;
            } else if is(v, "replica") || is(v, "slave") {
                want_replicas = true;
            } else if is(v, "master") {
                kill_master = true;
                type_matches_nothing = true;
            } else if is(v, "pubsub") {
                type_matches_nothing = true;
            } else {
                return Err(CmdError::err(format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(v)
                )));
            }
        } else if is(&args[i], "USER") {
            if &v[..] != b"default" {
                return Err(CmdError::err(format!(
                    "No such user '{}'",
                    String::from_utf8_lossy(v)
                )));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    if i != args.len() {
        return Err(CmdError::Syntax);
    }
    let now = Instant::now();
    let mut killed = 0;
    for h in all {
        if type_matches_nothing || h.is_master() || h.is_replica() != want_replicas {
            continue;
        }
        if id.is_some_and(|id| id != h.id)
            || addr.as_ref().is_some_and(|a| *a != h.addr.to_string())
            || laddr.as_ref().is_some_and(|a| *a != h.laddr.to_string())
            || maxage.is_some_and(|m| now.duration_since(h.created).as_secs() < m)
        {
            continue;
        }
        if h.id == ctx.client.id {
            if skipme {
                continue;
            }
            ctx.client.close_after_reply = true;
        } else {
            h.kill();
        }
        killed += 1;
    }
    if kill_master {
        // Our link to the master we replicate from: closed, and the core reconnects.
        let link = ctx.store.repl.node.link().map(|l| (l.link, l.phase));
        if let Some((link, phase)) = link {
            if phase != verdis_core::repl::LinkPhase::Down {
                let now = ctx.now_ms as u64;
                let cfg = ctx.store.repl.cfg.clone();
                let effects = ctx.store.repl.node.handle_link_killed(link, now, &cfg);
                ctx.store.repl_step(
                    ctx.shared,
                    crate::replication::trace::TraceInput::LinkKilled { link },
                    effects,
                    now,
                );
                killed += 1;
            }
        }
    }
    ctx.out.int(killed);
    Ok(())
}

fn client_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let lines: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
        "LIST [options ...]",
        "    Return information about client connections. Options: TYPE, ID.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Prints this help.",
    ];
    super::help_reply(ctx, lines)
}
