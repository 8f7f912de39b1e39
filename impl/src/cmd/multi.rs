//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands were resolved (name, arity) when queued, so EXEC only re-resolves them to
//! find their handlers. A refused command while queueing makes EXEC answer EXECABORT; a
//! WATCHed key changed since WATCH makes it answer a null array.

use super::{flags::*, spec, CommandSpec, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::sbytes::SBytes;
use bytes::Bytes;

const T: &[&str] = &["fast", "transaction"];
const G: &str = "transactions";

pub static COMMANDS: [CommandSpec; 5] = [
    spec(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        T,
        G,
        "1.2.0",
        "Starts a transaction.",
        multi,
    ),
    spec(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        (0, 0, 0),
        &["slow", "transaction"],
        G,
        "1.2.0",
        "Executes all commands in a transaction.",
        exec,
    ),
    spec(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        T,
        G,
        "2.0.0",
        "Discards a transaction.",
        discard,
    ),
    spec(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (1, -1, 1),
        T,
        G,
        "2.2.0",
        "Monitors changes to keys to determine the execution of a transaction.",
        watch,
    ),
    spec(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        T,
        G,
        "2.2.0",
        "Forgets about watched keys of a transaction.",
        unwatch,
    ),
];

fn multi(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::NestedMulti);
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.out.ok();
    Ok(())
}

/// Leaves MULTI state without running anything.
pub fn discard_transaction(ctx: &mut Ctx) {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
}

/// Forgets every WATCH of the client.
pub fn unwatch_all(ctx: &mut Ctx) {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.store.ks.unwatch(ctx.client.id, &watched);
}

fn exec(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else {
        return Err(CmdError::ExecWithoutMulti);
    };
    let aborted = ctx.client.multi_error;
    ctx.client.multi_error = false;
    let broken = ctx.store.ks.watch_is_broken(ctx.client.id);
    unwatch_all(ctx);
    if aborted {
        return Err(CmdError::ExecAbort);
    }
    if broken {
        ctx.out.null_array();
        return Ok(());
    }
    let mark = ctx.store.ks.propagated.len();
    ctx.out.array(queue.len());
    ctx.client.multi_exec_running = true;
    for args in &queue {
        match super::resolve(args) {
            Ok(spec) => {
                ctx.store
                    .call(ctx.shared, ctx.client, spec, args, ctx.now_ms, ctx.out);
            }
            // Queueing resolved it already; a config change cannot remove a command.
            Err(e) => ctx.out.error(&e),
        }
    }
    ctx.client.multi_exec_running = false;
    // More than one propagated command from one EXEC: wrap them as MULTI ... EXEC.
    let added = ctx.store.ks.propagated.len() - mark;
    if added > 1 {
        let db = ctx.store.ks.propagated[mark].db;
        let last_db = ctx.store.ks.propagated[ctx.store.ks.propagated.len() - 1].db;
        ctx.store.ks.propagated.insert(
            mark,
            crate::db::Propagated::new(db, vec![Bytes::from_static(b"MULTI")]),
        );
        ctx.store
            .ks
            .propagate(last_db, vec![Bytes::from_static(b"EXEC")]);
    }
    Ok(())
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::DiscardWithoutMulti);
    }
    discard_transaction(ctx);
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::WatchInMulti);
    }
    let db = ctx.db();
    for k in &args[1..] {
        let entry = (db, SBytes::new(k));
        if !ctx.client.watched.contains(&entry) {
            ctx.store.ks.watch(ctx.client.id, db, k);
            ctx.client.watched.push(entry);
        }
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}
