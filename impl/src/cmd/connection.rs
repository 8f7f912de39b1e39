//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

use super::{flags::*, is, parse_int, spec, CommandSpec, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::reply::Protocol;
use bytes::Bytes;

const CONN: &[&str] = &["connection"];

pub static COMMANDS: [CommandSpec; 7] = [
    spec(
        "ping",
        -1,
        FAST | SENTINEL,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Returns the server's liveliness response.",
        ping,
    ),
    spec(
        "echo",
        2,
        FAST,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Returns the given string.",
        echo,
    ),
    spec(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        (0, 0, 0),
        CONN,
        "connection",
        "6.0.0",
        "Handshakes with the Redis server.",
        hello,
    ),
    spec(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Authenticates the connection.",
        auth,
    ),
    spec(
        "select",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Changes the selected database.",
        select,
    ),
    spec(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Closes the connection.",
        quit,
    ),
    spec(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        CONN,
        "connection",
        "6.2.0",
        "Resets the connection.",
        reset,
    ),
];

fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(CmdError::wrong_arity("ping")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

/// Checks a password for `user` against requirepass (Verdis has the `default` user only).
fn check_password(ctx: &Ctx, user: Option<&[u8]>, pass: &[u8]) -> CmdResult {
    let required = ctx
        .store
        .config
        .requirepass
        .as_deref()
        .unwrap_or("")
        .as_bytes();
    if let Some(u) = user {
        if u != b"default" {
            return Err(CmdError::WrongPass);
        }
    }
    if required.is_empty() {
        // The default user has `nopass`: AUTH <pass> alone is an error, AUTH default <any> works.
        return match user {
            None => Err(CmdError::AuthNotConfigured),
            Some(_) => Ok(()),
        };
    }
    if required == pass {
        Ok(())
    } else {
        Err(CmdError::WrongPass)
    }
}

fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1][..]), &args[2]),
        _ => return Err(CmdError::Syntax),
    };
    check_password(ctx, user, pass)?;
    ctx.client.authenticated = true;
    ctx.out.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut proto = ctx.client.proto;
    let mut i = 1;
    if args.len() >= 2 {
        let v = parse_int(&args[1])
            .map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        proto = match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::NoProto),
        };
        i = 2;
    }
    let mut setname = None;
    let mut authed = false;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "AUTH") && more >= 2 {
            check_password(ctx, Some(&args[i + 1]), &args[i + 2])?;
            authed = true;
            i += 3;
        } else if is(&args[i], "SETNAME") && more >= 1 {
            super::client::validate_name(&args[i + 1])?;
            setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if !ctx.client.authenticated && !authed {
        return Err(CmdError::Coded(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if authed {
        ctx.client.authenticated = true;
    }
    if let Some(name) = setname {
        ctx.client.name = if name.is_empty() { None } else { Some(name) };
    }
    ctx.client.proto = proto;
    ctx.out.proto = proto;
    let role = if ctx.store.is_replica() {
        "replica"
    } else {
        "master"
    };
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(crate::REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(proto.number());
    ctx.out.bulk(b"id");
    ctx.out.int(ctx.client.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(role.as_bytes());
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = parse_int(&args[1])?;
    if db < 0 || db >= ctx.store.ks.db_count() as i64 {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.client.db = db as u32;
    ctx.out.ok();
    Ok(())
}

fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::multi::discard_transaction(ctx);
    super::multi::unwatch_all(ctx);
    ctx.client.db = 0;
    ctx.client.proto = Protocol::Resp2;
    ctx.out.proto = Protocol::Resp2;
    ctx.client.name = None;
    ctx.client.authenticated = !ctx.store.requires_auth();
    ctx.out.simple("RESET");
    Ok(())
}
