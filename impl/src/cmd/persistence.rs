//! Persistence commands: SAVE and BGSAVE (LASTSAVE and SHUTDOWN live in [`super::server`]).
//! The work is in [`crate::rdb::save`].

use super::{flags::*, is, spec, CommandSpec, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::rdb::save::{self, BgsaveRefused};
use bytes::Bytes;

const ADM: &[&str] = &["admin", "slow", "dangerous"];
const G: &str = "server";

pub static COMMANDS: [CommandSpec; 2] = [
    spec(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Synchronously saves the database(s) to disk.",
        save_cmd,
    ),
    spec(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Asynchronously saves the database(s) to disk.",
        bgsave,
    ),
];

fn save_cmd(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.store.persist.bgsave.is_some() {
        return Err(CmdError::err("Background save already in progress"));
    }
    // Redis answers a bare `-ERR` and logs the reason.
    save::save_sync(ctx.store).map_err(|_| CmdError::Coded("ERR".into()))?;
    ctx.out.ok();
    Ok(())
}

fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(&args[1], "SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    // Verdis has no other background job (AOF rewrite) to wait for, so SCHEDULE starts at
    // once like a plain BGSAVE; both are refused while a BGSAVE runs, as in Redis.
    let _ = schedule;
    match save::start_bgsave(ctx.shared, ctx.store) {
        Ok(()) => {
            ctx.out.simple("Background saving started");
            Ok(())
        }
        Err(BgsaveRefused::InProgress) => Err(CmdError::err("Background save already in progress")),
        Err(BgsaveRefused::Spawn(_)) => Err(CmdError::Coded("ERR".into())),
    }
}
