//! Commands: the table, the dispatcher, and one module per command family.
//!
//! A handler gets a [`Ctx`] (the store, the calling client, the reply writer, the time of the
//! batch) and the arguments, writes its reply, and returns `Ok` or a typed [`CmdError`] that
//! the dispatcher renders. Handlers do no I/O.
//!
//! Propagation, the seam with replication: a write command is propagated iff it changed the
//! dataset (the keyspace's `dirty` counter moved) or it asked to be (`ctx.force_propagate`),
//! in its original form or in the form it set with `ctx.rewrite` (`SET k v PX n` ->
//! `SET k v PXAT <ms>`, `EXPIRE` -> `PEXPIREAT`...). Keys expired on access are propagated as
//! `DEL` by the keyspace itself, before the command. When one top-level call (EXEC) propagates
//! more than one command, they are wrapped in `MULTI` ... `EXEC`, as Redis 7.0 does. The
//! result lands in `Keyspace::propagated`, in execution order, for the replication layer.
//!
//! Modules: [`connection`] (PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET), [`strings`],
//! [`keys`] (generic keyspace commands and expiry), [`multi`] (transactions), [`server`]
//! (INFO, CONFIG, DEBUG, FLUSH*, COMMAND...), [`client`] (CLIENT), [`persistence`] (SAVE, BGSAVE).

pub mod client;
pub mod connection;
pub mod keys;
pub mod multi;
pub mod persistence;
pub mod replication;
pub mod server;
pub mod strings;

use crate::client::Client;
use crate::error::{CmdError, CmdResult};
use crate::reply::ReplyWriter;
use crate::store::{Shared, Store};
use bytes::Bytes;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;

/// Everything a handler may touch.
pub struct Ctx<'a, 'w> {
    pub store: &'a mut Store,
    pub shared: &'a Arc<Shared>,
    pub client: &'a mut Client,
    pub out: &'a mut ReplyWriter<'w>,
    /// Unix time in ms, read once per batch (Redis caches it per command the same way).
    pub now_ms: i64,
    /// The form this call propagates in, if not its own arguments.
    pub rewrite: Option<Vec<Bytes>>,
    /// Propagate even if nothing changed (FLUSHALL on an empty dataset).
    pub force_propagate: bool,
}

impl Ctx<'_, '_> {
    pub fn db(&self) -> u32 {
        self.client.db
    }
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// Command flags as COMMAND INFO shows them, and as the dispatcher uses them.
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const NO_AUTH: u32 = 1 << 8;
    pub const NO_MULTI: u32 = 1 << 9;
    pub const ALLOW_BUSY: u32 = 1 << 10;
    pub const SKIP_MONITOR: u32 = 1 << 11;
    pub const SKIP_SLOWLOG: u32 = 1 << 12;
    pub const BLOCKING: u32 = 1 << 13;
    pub const SENTINEL: u32 = 1 << 14;
    pub const PROTECTED: u32 = 1 << 15;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (SENTINEL, "sentinel"),
        (PROTECTED, "protected"),
    ];
}

/// One command (or subcommand) of the table.
pub struct CommandSpec {
    /// Lower case; a subcommand's name is `parent|sub`.
    pub name: &'static str,
    /// Redis arity: positive = exact argument count (with the name), negative = at least.
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL categories without the `@`.
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    /// None for a container command (CONFIG, CLIENT...): its subcommands have the handlers.
    pub handler: Option<Handler>,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    /// The name used in arity errors: `get`, or `config|get` for a subcommand.
    pub fn full_name(&self) -> &'static str {
        self.name
    }

    /// The subcommand name without its parent.
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    pub fn find_subcommand(&self, sub: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(sub))
    }
}

/// Builds a table entry (positional, to keep the table compact and greppable).
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        acl,
        group,
        summary,
        since,
        complexity: "",
        handler: Some(handler),
        subcommands: &[],
    }
}

/// A container command whose behaviour lives in its subcommands.
pub const fn container(
    name: &'static str,
    arity: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &[],
        group,
        summary,
        since,
        complexity: "",
        handler: None,
        subcommands,
    }
}

/// Every top-level command Verdis implements.
pub fn table() -> &'static [&'static CommandSpec] {
    static TABLE: OnceLock<Vec<&'static CommandSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: Vec<&'static CommandSpec> = Vec::new();
        t.extend(connection::COMMANDS.iter());
        t.extend(strings::COMMANDS.iter());
        t.extend(keys::COMMANDS.iter());
        t.extend(multi::COMMANDS.iter());
        t.extend(server::COMMANDS.iter());
        t.extend(client::COMMANDS.iter());
        t.extend(replication::COMMANDS.iter());
        t.extend(persistence::COMMANDS.iter());
        t
    })
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // A pipeline mostly repeats one command: the thread's last hit is compared first.
    thread_local! {
        static LAST: Cell<Option<&'static CommandSpec>> = const { Cell::new(None) };
    }
    let last = LAST.get();
    if let Some(spec) = last {
        if spec.name.as_bytes().eq_ignore_ascii_case(name) {
            return last;
        }
    }
    let found = lookup_in_table(name);
    if found.is_some() {
        LAST.set(found);
    }
    found
}

fn lookup_in_table(name: &[u8]) -> Option<&'static CommandSpec> {
    // ahash, not SipHash: every request looks its command up here (no untrusted key is
    // ever inserted: the table is fixed).
    type Index = HashMap<&'static str, &'static CommandSpec, ahash::RandomState>;
    static INDEX: OnceLock<Index> = OnceLock::new();
    let index = INDEX.get_or_init(|| table().iter().map(|c| (c.name, *c)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&lower[..name.len()]).ok()?;
    index.get(lower).copied()
}

/// Resolves the command to run for `args`: the command itself, or for a container the
/// subcommand named by `args[1]`. Errors are Redis's unknown-command / unknown-subcommand /
/// arity errors.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let Some(cmd) = lookup(&args[0]) else {
        return Err(CmdError::UnknownCommand {
            name: args[0].to_vec(),
            args: args[1..].iter().take(20).map(|a| a.to_vec()).collect(),
        });
    };
    // A plain command, or a container called bare that has its own handler (COMMAND).
    if cmd.handler.is_some() && (cmd.subcommands.is_empty() || args.len() == 1) {
        if !cmd.arity_ok(args.len()) {
            return Err(CmdError::WrongArity(cmd.full_name().to_string()));
        }
        return Ok(cmd);
    }
    // A container: CONFIG GET, CLIENT LIST...
    if args.len() < 2 {
        return Err(CmdError::WrongArity(cmd.full_name().to_string()));
    }
    // DEBUG is one command in Redis 7.0, with its own message for both failures.
    if cmd.name == "debug" {
        match cmd.find_subcommand(&args[1]) {
            Some(sub) if sub.arity_ok(args.len()) => return Ok(sub),
            _ => {
                return Err(CmdError::UnknownSubcommandOrArity {
                    sub: args[1].to_vec(),
                    command: "DEBUG",
                })
            }
        }
    }
    let Some(sub) = cmd.find_subcommand(&args[1]) else {
        return Err(CmdError::UnknownSubcommand {
            sub: args[1].to_vec(),
            command: container_help_name(cmd.name),
        });
    };
    if !sub.arity_ok(args.len()) {
        return Err(CmdError::WrongArity(sub.full_name().to_string()));
    }
    Ok(sub)
}

fn container_help_name(name: &str) -> &'static str {
    match name {
        "config" => "CONFIG",
        "client" => "CLIENT",
        "object" => "OBJECT",
        "command" => "COMMAND",
        "debug" => "DEBUG",
        _ => "the command",
    }
}

/// Parses an integer argument (Redis's getLongLongFromObjectOrReply).
pub fn parse_int(arg: &[u8]) -> CmdResult<i64> {
    verdis_core::resp::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a float argument (Redis's getLongDoubleFromObject: no spaces, no NaN).
pub fn parse_float(arg: &[u8]) -> CmdResult<f64> {
    let s = std::str::from_utf8(arg).map_err(|_| CmdError::NotFloat)?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NotFloat);
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().map_err(|_| CmdError::NotFloat)?,
    };
    if v.is_nan() {
        return Err(CmdError::NotFloat);
    }
    Ok(v)
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// A HELP reply: one status line per element.
pub fn help_reply(ctx: &mut Ctx, lines: &[&str]) -> CmdResult {
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_the_last_hit_never_answers_for_another_name() {
        let names: [&[u8]; 8] = [
            b"GET", b"get", b"Set", b"GET", b"GETSET", b"GE", b"NOPE", b"gEt",
        ];
        let want = [
            Some("get"),
            Some("get"),
            Some("set"),
            Some("get"),
            Some("getset"),
            None,
            None,
            Some("get"),
        ];
        for (name, want) in names.iter().zip(want) {
            assert_eq!(
                lookup(name).map(|c| c.name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        // Every command, after any other: the table and the last hit agree.
        for spec in table() {
            assert_eq!(lookup(b"ping").map(|c| c.name), Some("ping"));
            let upper = spec.name.to_ascii_uppercase();
            assert_eq!(lookup(upper.as_bytes()).map(|c| c.name), Some(spec.name));
            assert_eq!(
                lookup(spec.name.as_bytes()).map(|c| c.name),
                Some(spec.name)
            );
        }
        assert!(lookup(&[b'a'; 40]).is_none());
    }
}
