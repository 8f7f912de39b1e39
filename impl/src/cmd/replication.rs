//! Replication commands: REPLCONF, PSYNC, SYNC, WAIT, ROLE.
//!
//! PSYNC and SYNC do no I/O here: they record the request on the client, and the connection
//! task hands the connection to the replication driver once the batch's replies are written
//! (`net.rs`). WAIT that cannot answer at once marks the client blocked; the connection task
//! answers when enough replicas acknowledged or the timeout passed.

use super::{flags::*, is, parse_int, spec, CommandSpec, Ctx};
use crate::client::{Blocked, PsyncStart};
use crate::error::{CmdError, CmdResult};
use bytes::Bytes;
use verdis_core::repl::{PsyncRequest, ReplId, Role};

const G: &str = "server";
const ADM: &[&str] = &["admin", "slow", "dangerous"];

pub static COMMANDS: [CommandSpec; 8] = [
    spec(
        "failover",
        -1,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        ADM,
        G,
        "6.2.0",
        "Starts a coordinated failover from a server to one of its replicas.",
        failover,
    ),
    spec(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_MULTI,
        (0, 0, 0),
        ADM,
        G,
        "5.0.0",
        "Configures a server as replica of another, or promotes it to a master.",
        replicaof,
    ),
    spec(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_MULTI,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "Sets a Redis server as a replica of another, or promotes it to being a master.",
        replicaof,
    ),
    spec(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        (0, 0, 0),
        ADM,
        G,
        "3.0.0",
        "An internal command for configuring the replication stream.",
        replconf,
    ),
    spec(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        ADM,
        G,
        "2.8.0",
        "An internal command used in replication.",
        psync,
    ),
    spec(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        ADM,
        G,
        "1.0.0",
        "An internal command used in replication.",
        sync,
    ),
    spec(
        "wait",
        3,
        NOSCRIPT,
        (0, 0, 0),
        &["slow", "connection"],
        "generic",
        "3.0.0",
        "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
        wait,
    ),
    spec(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST | SENTINEL,
        (0, 0, 0),
        &["admin", "fast", "dangerous"],
        G,
        "2.8.12",
        "Returns the replication role.",
        role,
    ),
];

fn replconf(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut i = 1;
    while i < args.len() {
        let (opt, val) = (&args[i], &args[i + 1]);
        if is(opt, "listening-port") {
            let port = parse_int(val)?;
            ctx.client.repl.listening_port = u16::try_from(port).unwrap_or(0);
        } else if is(opt, "ip-address") {
            ctx.client.repl.announced_ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "capa") {
            if is(val, "eof") {
                ctx.client.repl.capa_eof = true;
            } else if is(val, "psync2") {
                ctx.client.repl.capa_psync2 = true;
            }
            // Unknown capabilities are ignored, as by Redis.
        } else if is(opt, "ack") || is(opt, "getack") {
            // Only meaningful on a replication link; a plain client gets no reply.
            return Ok(());
        } else if is(opt, "rdb-only") || is(opt, "rdb-filter-only") {
            // Accepted for compatibility with redis-cli --rdb.
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
        i += 2;
    }
    ctx.out.ok();
    Ok(())
}

/// Checks common to PSYNC and SYNC. Replies with the Redis error when refused.
fn sync_allowed(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.repl.is_replica_link {
        // Already a replica link: ignore, as Redis does.
        return Err(CmdError::err("Replica already connected"));
    }
    if !ctx.out.buf.is_empty() {
        return Err(CmdError::err(
            "SYNC and PSYNC are invalid with pending output",
        ));
    }
    if let Role::Replica(link) = &ctx.store.repl.node.role {
        if !link.phase.is_up() {
            return Err(CmdError::Coded(
                "NOMASTERLINK Can't SYNC while not connected with my master".into(),
            ));
        }
    }
    Ok(())
}

fn psync(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sync_allowed(ctx)?;
    let offset = parse_int(&args[2])?;
    let replid = if &args[1][..] == b"?" {
        None
    } else {
        // An id that is not 40 hex characters matches no history: a full resync.
        Some(ReplId::parse_hex(&args[1]).unwrap_or(ReplId::ZERO))
    };
    let failover = match args.get(3) {
        None => false,
        Some(a) if is(a, "FAILOVER") && args.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    ctx.client.repl.psync = Some(PsyncStart {
        req: PsyncRequest { replid, offset },
        failover,
        legacy: false,
    });
    Ok(())
}

fn sync(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    sync_allowed(ctx)?;
    ctx.client.repl.psync = Some(PsyncStart {
        req: PsyncRequest {
            replid: None,
            offset: -1,
        },
        failover: false,
        legacy: true,
    });
    Ok(())
}

fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !ctx.store.repl.is_master() {
        return Err(CmdError::err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let numreplicas = parse_int(&args[1])?;
    let timeout_ms = parse_int(&args[2])
        .map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
    if timeout_ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let offset = ctx.client.woff;
    let acked = ctx.store.repl.node.wait_count(offset) as i64;
    if acked >= numreplicas || ctx.client.multi_exec_running {
        ctx.out.int(acked);
        return Ok(());
    }
    // Ask every replica for an ack now, then block until enough arrive or time runs out.
    let effects = ctx.store.repl.node.request_acks();
    ctx.store.repl_step(
        ctx.shared,
        crate::replication::trace::TraceInput::RequestAcks,
        effects,
        ctx.now_ms as u64,
    );
    ctx.client.blocked = Some(Blocked::Wait {
        numreplicas,
        offset,
        deadline_ms: if timeout_ms == 0 {
            None
        } else {
            Some(ctx.now_ms.saturating_add(timeout_ms))
        },
    });
    Ok(())
}

fn role(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let node = &ctx.store.repl.node;
    match &node.role {
        Role::Master => {
            let replicas: Vec<(String, u16, u64)> = node
                .replicas
                .iter()
                .filter(|e| e.state != verdis_core::repl::ReplicaState::Handshake)
                .map(|e| {
                    let (ip, port) = ctx
                        .store
                        .repl
                        .peers
                        .get(&e.node)
                        .map(|p| (p.ip.to_string(), p.listening_port))
                        .unwrap_or_default();
                    (ip, port, e.ack_offset)
                })
                .collect();
            ctx.out.array(3);
            ctx.out.bulk(b"master");
            ctx.out.int(node.identity.master_repl_offset as i64);
            ctx.out.array(replicas.len());
            for (ip, port, off) in replicas {
                ctx.out.array(3);
                ctx.out.bulk(ip.as_bytes());
                ctx.out.bulk(port.to_string().as_bytes());
                ctx.out.bulk(off.to_string().as_bytes());
            }
        }
        Role::Replica(link) => {
            let (host, port) = ctx.store.repl.master_addr();
            ctx.out.array(5);
            ctx.out.bulk(b"slave");
            ctx.out.bulk(host.as_bytes());
            ctx.out.int(port as i64);
            ctx.out.bulk(link.phase.role_state().as_bytes());
            let offset = if link.phase.is_up() {
                node.identity.master_repl_offset as i64
            } else {
                -1
            };
            ctx.out.int(offset);
        }
    }
    Ok(())
}

/// Makes this server a replica of `master`, or a master again (`None`). Returns false when
/// it already follows that master. Used by REPLICAOF and by `replicaof` in the config.
pub fn set_master(
    store: &mut crate::store::Store,
    shared: &std::sync::Arc<crate::store::Shared>,
    master: Option<(String, u16)>,
    now_ms: u64,
) -> bool {
    let cfg = store.repl.cfg.clone();
    match master {
        None => {
            let effects = store.repl.node.handle_replicaof_no_one(
                now_ms,
                &cfg,
                &mut crate::replication::OsIds,
            );
            store.repl_step(
                shared,
                crate::replication::trace::TraceInput::ReplicaOfNoOne,
                effects,
                now_ms,
            );
            if store.repl.master.take().is_some() {
                tracing::info!("MASTER MODE enabled (user request)");
            }
            store.repl.upstream = None;
            store.ks.policy = crate::db::ExpiryPolicy::Delete;
            true
        }
        Some(addr) => {
            if store.repl.master.as_ref() == Some(&addr) && !store.repl.is_master() {
                return false;
            }
            tracing::info!("REPLICAOF {}:{} enabled", addr.0, addr.1);
            store.repl.master = Some(addr);
            store.repl.master_node += 1;
            store.ks.policy = crate::db::ExpiryPolicy::Hide;
            let master_node = store.repl.master_node;
            let effects = store.repl.node.handle_replicaof(master_node, now_ms, &cfg);
            store.repl_step(
                shared,
                crate::replication::trace::TraceInput::ReplicaOf {
                    master: master_node,
                },
                effects,
                now_ms,
            );
            true
        }
    }
}

fn replicaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as u64;
    if is(&args[1], "NO") && is(&args[2], "ONE") {
        set_master(ctx.store, ctx.shared, None, now);
        ctx.out.ok();
        return Ok(());
    }
    let port = parse_int(&args[2])
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::err("Invalid master port"))?;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if set_master(ctx.store, ctx.shared, Some((host, port)), now) {
        ctx.out.ok();
    } else {
        ctx.out.simple("OK Already connected to specified master");
    }
    Ok(())
}

/// `FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | FAILOVER ABORT`: the coordinated switchover
/// run by the core: writes pause, the target catches up, this master becomes its replica and
/// hands over with `PSYNC <replid> <offset> FAILOVER`.
fn failover(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as u64;
    let cfg = ctx.store.repl.cfg.clone();
    if args.len() == 2 && is(&args[1], "ABORT") {
        let effects = ctx
            .store
            .repl
            .node
            .handle_failover_abort()
            .map_err(|e| CmdError::Coded(e.to_string().trim_start_matches('-').to_string()))?;
        ctx.store.repl_step(
            ctx.shared,
            crate::replication::trace::TraceInput::FailoverAbort,
            effects,
            now,
        );
        ctx.out.ok();
        return Ok(());
    }
    let mut target: Option<(String, u16)> = None;
    let mut timeout_ms: i64 = 0;
    let mut force = false;
    let mut i = 1;
    while i < args.len() {
        if is(&args[i], "TO") && i + 2 < args.len() && target.is_none() {
            let port = parse_int(&args[i + 2])
                .ok()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(CmdError::NotInteger)?;
            target = Some((String::from_utf8_lossy(&args[i + 1]).into_owned(), port));
            i += 3;
        } else if is(&args[i], "TIMEOUT") && i + 1 < args.len() && timeout_ms == 0 {
            timeout_ms = parse_int(&args[i + 1])?;
            if timeout_ms <= 0 {
                return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
            }
            i += 2;
        } else if is(&args[i], "FORCE") && !force {
            force = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let target_node = match &target {
        None => None,
        Some((host, port)) => {
            let found = ctx.store.repl.peers.iter().find(|(_, p)| {
                p.listening_port == *port
                    && (p.ip.to_string() == *host || (host == "localhost" && p.ip.is_loopback()))
            });
            match found {
                Some((id, _)) => Some(*id),
                // Not one of our replicas: the core answers with Redis's error.
                None => Some(u32::MAX),
            }
        }
    };
    let req = verdis_core::repl::FailoverRequest {
        target: target_node,
        timeout_ms: timeout_ms as u64,
        force,
    };
    let effects = ctx
        .store
        .repl
        .node
        .handle_failover(req, now, &cfg)
        .map_err(|e| CmdError::Coded(e.to_string()))?;
    ctx.store.repl_step(
        ctx.shared,
        crate::replication::trace::TraceInput::Failover,
        effects,
        now,
    );
    tracing::info!("FAILOVER requested");
    ctx.out.ok();
    Ok(())
}
