//! The replica side of a replication link: our connection to the master we follow.
//!
//! The core decides what to send (PING, AUTH, REPLCONF, PSYNC, ACKs) and what each reply
//! means; this task only translates between the core's messages and the wire:
//! - outbound [`ToMaster`] messages become RESP commands, exactly as Redis 7.0 sends them;
//! - inbound bytes are, by phase: reply lines to the handshake (each mapped to a
//!   [`ToReplica`]), the snapshot (`$<len>` or `$EOF:<mark>` framing, fed to the streaming
//!   RDB loader; the data set is replaced only when the whole snapshot loaded), then the
//!   stream, handed to the core, which splits it into commands and counts offsets.
//!
//! Empty lines (`\n` keepalives) before a reply or before the snapshot are skipped, as Redis
//! replicas do. A reply that does not fit is the master's fault: the link is closed through
//! the core, which schedules a retry.

use crate::store::{unix_ms, Shared};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use verdis_core::repl::{LinkId, ReplId, ToMaster, ToReplica};
use verdis_core::resp::{parse_frame, Frame};

/// How long connecting to the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the master's next bytes are.
enum Phase {
    /// Replies to what we sent, oldest first.
    Replies,
    /// After `+FULLRESYNC`: the snapshot's `$` line.
    RdbHeader,
    /// Inside the snapshot.
    Rdb {
        loader: Box<crate::rdb::read::RdbLoader>,
        /// `$<len>`: payload bytes still to come; `$EOF:`: None.
        remaining: Option<u64>,
        mark: Option<Vec<u8>>,
    },
    /// After an EOF-framed snapshot: its 40-byte end mark.
    EofMark {
        mark: Vec<u8>,
        loaded: Box<crate::rdb::read::LoadedRdb>,
    },
    /// Streaming commands.
    Stream,
}

/// Which reply each command we sent expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Pong,
    Auth,
    Replconf,
    /// A reply the core does not count (`REPLCONF ip-address`): read and dropped.
    Ignored,
    Psync,
}

/// Encodes a message to our master as the command Redis 7.0 sends.
fn encode(
    msg: &ToMaster,
    auth: &(Option<String>, Option<String>),
    announce_ip: &Option<String>,
) -> (Vec<u8>, Vec<Expect>) {
    let mut out = Vec::new();
    let mut expects = Vec::new();
    let cmd = |args: &[&str], out: &mut Vec<u8>| verdis_core::resp::encode_command(args, out);
    match msg {
        ToMaster::Ping => {
            cmd(&["PING"], &mut out);
            expects.push(Expect::Pong);
        }
        ToMaster::Auth => {
            let (user, pass) = auth;
            let pass = pass.as_deref().unwrap_or("");
            match user {
                Some(u) => cmd(&["AUTH", u, pass], &mut out),
                None => cmd(&["AUTH", pass], &mut out),
            }
            expects.push(Expect::Auth);
        }
        ToMaster::ListeningPort(port) => {
            cmd(&["REPLCONF", "listening-port", &port.to_string()], &mut out);
            expects.push(Expect::Replconf);
            if let Some(ip) = announce_ip {
                // Its reply is read and ignored: the core counts the handshake's replies
                // without it.
                cmd(&["REPLCONF", "ip-address", ip], &mut out);
                expects.push(Expect::Ignored);
            }
        }
        ToMaster::Capa => {
            cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"], &mut out);
            expects.push(Expect::Replconf);
        }
        ToMaster::Psync { req, failover } => {
            let id = req
                .replid
                .map(|r| r.to_hex())
                .unwrap_or_else(|| "?".to_string());
            let off = req.offset.to_string();
            if *failover {
                cmd(&["PSYNC", &id, &off, "FAILOVER"], &mut out);
            } else {
                cmd(&["PSYNC", &id, &off], &mut out);
            }
            expects.push(Expect::Psync);
        }
        ToMaster::Ack { offset } => {
            cmd(&["REPLCONF", "ACK", &offset.to_string()], &mut out);
        }
        ToMaster::Closed => {}
    }
    (out, expects)
}

/// Maps a reply to what the core understands, given what it answers.
fn reply_to_msg(expect: Expect, frame: &Frame) -> Option<ToReplica> {
    let text = match frame {
        Frame::Simple(b) | Frame::Error(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let is_error = matches!(frame, Frame::Error(_));
    match expect {
        // A PING reply counts if it is a status, or an auth error the AUTH that follows fixes.
        Expect::Pong => {
            if !is_error
                || text.starts_with("NOAUTH")
                || text.starts_with("NOPERM")
                || text.starts_with("ERR operation not permitted")
            {
                Some(ToReplica::Pong)
            } else {
                None
            }
        }
        Expect::Auth => Some(if is_error {
            ToReplica::AuthErr
        } else {
            ToReplica::AuthOk
        }),
        // REPLCONF errors are ignored, as by Redis (an old master without capa support).
        Expect::Replconf => Some(ToReplica::ReplconfOk),
        Expect::Ignored => None,
        Expect::Psync => {
            if let Some(rest) = text.strip_prefix("FULLRESYNC ") {
                let mut parts = rest.split(' ');
                let replid = ReplId::parse_hex(parts.next()?.as_bytes())?;
                let offset: u64 = parts.next()?.trim().parse().ok()?;
                Some(ToReplica::FullResync { replid, offset })
            } else if let Some(rest) = text.strip_prefix("CONTINUE") {
                let id = rest.trim();
                Some(ToReplica::Continue {
                    replid: if id.is_empty() {
                        // No psync2 from the master: the history continues under the same id.
                        ReplId::ZERO
                    } else {
                        ReplId::parse_hex(id.as_bytes())?
                    },
                })
            } else if text.starts_with("NOMASTERLINK") || text.starts_with("LOADING") {
                Some(ToReplica::TryLater)
            } else {
                None
            }
        }
    }
}

/// Runs one connection to our master for `link`, until it closes.
pub async fn run(
    shared: Arc<Shared>,
    addr: (String, u16),
    link: LinkId,
    mut rx: UnboundedReceiver<ToMaster>,
) {
    let target = format!("{}:{}", addr.0, addr.1);
    tracing::info!("Connecting to MASTER {target}");
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("Error condition on socket for SYNC: {e}");
            link_closed(&shared, link);
            return;
        }
        Err(_) => {
            tracing::warn!("Timeout connecting to the MASTER {target}");
            link_closed(&shared, link);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    tracing::info!("MASTER <-> REPLICA sync started");
    // The link shows in CLIENT LIST (flags=M), as Redis's master client does.
    let handle = {
        use std::os::fd::AsRawFd;
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let local = stream.local_addr().unwrap_or(peer);
        let h = Arc::new(crate::client::ClientHandle::new(
            shared.next_client_id(),
            peer,
            local,
            stream.as_raw_fd() as i64,
        ));
        h.mark_master();
        shared.clients.insert(h.clone());
        h
    };
    let (mut rd, mut wr) = stream.into_split();
    let (auth, announce_ip, databases, max_bulk) = {
        let s = shared.store.lock();
        (
            (s.config.masteruser.clone(), s.config.masterauth.clone()),
            s.config.replica_announce_ip.clone(),
            s.config.databases,
            s.config.proto_max_bulk_len,
        )
    };
    let mut expects: std::collections::VecDeque<Expect> = Default::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut phase = Phase::Replies;
    'link: loop {
        // Everything complete in the buffer first.
        loop {
            match step(
                &shared,
                link,
                &mut phase,
                &mut buf,
                &mut expects,
                databases,
                max_bulk,
            ) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(why) => {
                    tracing::warn!("Replication link error: {why}");
                    let mut store = shared.store.lock();
                    let now = unix_ms() as u64;
                    let cfg = store.repl.cfg.clone();
                    let effects = store.repl.node.handle_link_error(link, now, &cfg);
                    store.repl_step(
                        &shared,
                        super::trace::TraceInput::LinkError { link },
                        effects,
                        now,
                    );
                    break 'link;
                }
            }
        }
        // Read in large chunks: a large command split over many small reads would make the
        // stream splitter re-read it many times.
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(256 * 1024);
        }
        tokio::select! {
            msg = rx.recv() => match msg {
                None | Some(ToMaster::Closed) => break 'link,
                Some(m) => {
                    let (bytes, exp) = encode(&m, &auth, &announce_ip);
                    expects.extend(exp);
                    if wr.write_all(&bytes).await.is_err() {
                        break 'link;
                    }
                }
            },
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    tracing::info!("Connection with master lost.");
                    break 'link;
                }
                Ok(_) => {
                    shared.store.lock().repl.last_master_io_ms = unix_ms() as u64;
                }
            },
        }
    }
    let _ = wr.shutdown().await;
    shared.clients.remove(handle.id);
    link_closed(&shared, link);
}

fn link_closed(shared: &Arc<Shared>, link: LinkId) {
    let mut store = shared.store.lock();
    let now = unix_ms() as u64;
    // A transfer cut short leaves nothing to report.
    store.repl.transfer = None;
    // master_link_down_since_seconds counts from the loss of a link that was up.
    if store
        .repl
        .node
        .link()
        .is_some_and(|l| l.link == link && l.phase == verdis_core::repl::LinkPhase::Streaming)
    {
        store.repl.link_down_since_ms = Some(now);
    }
    let cfg = store.repl.cfg.clone();
    let effects = store.repl.node.handle_link_closed(link, now, &cfg);
    store.repl_step(
        shared,
        super::trace::TraceInput::LinkClosed { link },
        effects,
        now,
    );
}

/// Consumes what it can from `buf` in the current phase. Ok(true) if it made progress.
fn step(
    shared: &Arc<Shared>,
    link: LinkId,
    phase: &mut Phase,
    buf: &mut BytesMut,
    expects: &mut std::collections::VecDeque<Expect>,
    databases: u32,
    max_bulk: u64,
) -> Result<bool, String> {
    match phase {
        Phase::Replies => {
            while buf.first() == Some(&b'\n') {
                buf.advance(1);
            }
            if buf.is_empty() {
                return Ok(false);
            }
            let Some((frame, n)) = parse_frame(buf).map_err(|e| e.to_string())? else {
                return Ok(false);
            };
            buf.advance(n);
            let Some(expect) = expects.pop_front() else {
                return Err("unexpected reply from the master".into());
            };
            if expect == Expect::Ignored {
                return Ok(true);
            }
            let Some(mut msg) = reply_to_msg(expect, &frame) else {
                return Err(format!("master replied {frame:?} to {expect:?}"));
            };
            let mut store = shared.store.lock();
            let now = unix_ms() as u64;
            if let ToReplica::Continue { replid } = &mut msg {
                if *replid == ReplId::ZERO {
                    *replid = store.repl.node.identity.replid;
                }
            }
            let full = matches!(msg, ToReplica::FullResync { .. });
            let streaming = matches!(msg, ToReplica::Continue { .. });
            let cfg = store.repl.cfg.clone();
            let traced = super::trace::from_master_msg(&msg);
            let effects = store
                .repl
                .node
                .handle_from_master(link, msg, now, &cfg, &mut super::OsIds)
                .map_err(|e| format!("{e:?}"))?;
            store.repl_step(
                shared,
                super::trace::TraceInput::FromMaster { link, msg: traced },
                effects,
                now,
            );
            if full {
                tracing::info!("Full resync from master");
                *phase = Phase::RdbHeader;
            } else if streaming {
                tracing::info!("Successful partial resynchronization with master.");
                *phase = Phase::Stream;
            }
            Ok(true)
        }
        Phase::RdbHeader => {
            while buf.first() == Some(&b'\n') {
                buf.advance(1);
            }
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() > 1024 {
                    return Err("no snapshot header from the master".into());
                }
                return Ok(false);
            };
            let line = String::from_utf8_lossy(&buf[..nl]).trim_end().to_string();
            buf.advance(nl + 1);
            let mut opts = crate::rdb::read::LoadOptions::new(databases);
            opts.drop_expired_before_ms = None;
            opts.max_string_bytes = max_bulk.max(opts.max_string_bytes);
            let loader = Box::new(crate::rdb::read::RdbLoader::new(opts));
            if let Some(mark) = line.strip_prefix("$EOF:") {
                if mark.len() != 40 {
                    return Err(format!("bad snapshot mark line {line:?}"));
                }
                *phase = Phase::Rdb {
                    loader,
                    remaining: None,
                    mark: Some(mark.as_bytes().to_vec()),
                };
                shared.store.lock().repl.transfer = Some((0, 0, unix_ms() as u64));
            } else if let Some(len) = line.strip_prefix('$') {
                let len: u64 = len
                    .parse()
                    .map_err(|_| format!("bad snapshot length line {line:?}"))?;
                *phase = Phase::Rdb {
                    loader,
                    remaining: Some(len),
                    mark: None,
                };
                shared.store.lock().repl.transfer = Some((len, 0, unix_ms() as u64));
            } else {
                return Err(format!("expected the snapshot, got {line:?}"));
            }
            Ok(true)
        }
        Phase::Rdb {
            loader,
            remaining,
            mark,
        } => {
            if buf.is_empty() {
                return Ok(false);
            }
            let take = match remaining {
                Some(r) => (*r).min(buf.len() as u64) as usize,
                None => buf.len(),
            };
            let chunk = buf.split_to(take);
            if let Some(t) = shared.store.lock().repl.transfer.as_mut() {
                t.1 += take as u64;
                t.2 = unix_ms() as u64;
            }
            let progress = loader.feed(&chunk).map_err(|e| e.to_string())?;
            if let Some(r) = remaining {
                *r -= take as u64;
            }
            let done = match progress {
                crate::rdb::read::Progress::Done { trailing_bytes } => {
                    // Bytes after the RDB belong to what follows (the EOF mark).
                    let tail = chunk[chunk.len() - trailing_bytes..].to_vec();
                    let mut rest = BytesMut::from(&tail[..]);
                    rest.extend_from_slice(buf);
                    *buf = rest;
                    true
                }
                crate::rdb::read::Progress::NeedMore => false,
            };
            if !done {
                if *remaining == Some(0) {
                    return Err("the snapshot ended before its RDB did".into());
                }
                return Ok(true);
            }
            let taken = std::mem::replace(
                loader,
                Box::new(crate::rdb::read::RdbLoader::new(
                    crate::rdb::read::LoadOptions::new(1),
                )),
            );
            let loaded = taken.finish().map_err(|e| e.to_string())?;
            match mark.take() {
                Some(mark) => {
                    *phase = Phase::EofMark {
                        mark,
                        loaded: Box::new(loaded),
                    };
                    Ok(true)
                }
                None => {
                    if remaining.is_some_and(|r| r > 0) {
                        return Err("bytes left in the snapshot after its RDB".into());
                    }
                    install(shared, link, loaded)?;
                    *phase = Phase::Stream;
                    Ok(true)
                }
            }
        }
        Phase::EofMark { mark, .. } => {
            if buf.len() < mark.len() {
                return Ok(false);
            }
            if buf[..mark.len()] != mark[..] {
                return Err("the snapshot's end mark does not match".into());
            }
            buf.advance(mark.len());
            let Phase::EofMark { loaded, .. } = std::mem::replace(phase, Phase::Stream) else {
                unreachable!("matched above");
            };
            install(shared, link, *loaded)?;
            Ok(true)
        }
        Phase::Stream => {
            if buf.is_empty() {
                return Ok(false);
            }
            let bytes = buf.split().freeze();
            let mut store = shared.store.lock();
            let now = unix_ms() as u64;
            let cfg = store.repl.cfg.clone();
            let traced = serde_json::json!({ "Stream": bytes.len() });
            let effects = store
                .repl
                .node
                .handle_from_master(link, ToReplica::Stream(bytes), now, &cfg, &mut super::OsIds)
                .map_err(|e| format!("{e:?}"))?;
            store.repl_step(
                shared,
                super::trace::TraceInput::FromMaster { link, msg: traced },
                effects,
                now,
            );
            Ok(true)
        }
    }
}

/// The snapshot loaded completely: the core switches to the master's history and the data
/// set is replaced (its `LoadRdb` effect picks up `loaded`).
fn install(
    shared: &Arc<Shared>,
    link: LinkId,
    loaded: crate::rdb::read::LoadedRdb,
) -> Result<(), String> {
    let mut store = shared.store.lock();
    let now = unix_ms() as u64;
    tracing::info!(
        "MASTER <-> REPLICA sync: Loading DB in memory ({} keys)",
        loaded.keys_loaded
    );
    store.repl.loaded_snapshot = Some((link, loaded.dbs));
    let cfg = store.repl.cfg.clone();
    let effects = store
        .repl
        .node
        .handle_rdb_loaded(link, now, &cfg)
        .map_err(|e| format!("{e:?}"));
    let effects = match effects {
        Ok(e) => e,
        Err(e) => {
            store.repl.loaded_snapshot = None;
            return Err(e);
        }
    };
    store.repl_step(
        shared,
        super::trace::TraceInput::RdbLoaded { link },
        effects,
        now,
    );
    store.repl.loaded_snapshot = None;
    store.repl.transfer = None;
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The handshake bytes, compared with what a real redis-server 7.0.15 replica sent in the
    //! captures (`fakemaster_disk.log`: masteruser repluser, masterauth secret,
    //! listening-port 17004, replica-announce-ip 127.0.0.9).
    use super::*;
    use verdis_core::repl::PsyncRequest;

    fn wire(msg: ToMaster) -> Vec<u8> {
        let auth = (Some("repluser".to_string()), Some("secret".to_string()));
        encode(&msg, &auth, &Some("127.0.0.9".to_string())).0
    }

    #[test]
    fn the_handshake_is_byte_identical_to_a_redis_replica() {
        assert_eq!(wire(ToMaster::Ping), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            wire(ToMaster::Auth),
            b"*3\r\n$4\r\nAUTH\r\n$8\r\nrepluser\r\n$6\r\nsecret\r\n"
        );
        let mut both = wire(ToMaster::ListeningPort(17004));
        both.extend(wire(ToMaster::Capa));
        assert_eq!(
            both,
            &b"*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$5\r\n17004\r\n*3\r\n$8\r\nREPLCONF\r\n$10\r\nip-address\r\n$9\r\n127.0.0.9\r\n*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"[..]
        );
        let first = ToMaster::Psync {
            req: PsyncRequest {
                replid: None,
                offset: -1,
            },
            failover: false,
        };
        assert_eq!(wire(first), b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n");
        assert_eq!(
            wire(ToMaster::Ack { offset: 439 }),
            b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\n439\r\n"
        );
    }

    #[test]
    fn psync_replies_map_to_the_core_messages() {
        let full = Frame::Simple("FULLRESYNC 77cdbdd21862bb9e49fec50d21bd9ef02d731e04 254".into());
        match reply_to_msg(Expect::Psync, &full) {
            Some(ToReplica::FullResync { replid, offset }) => {
                assert_eq!(replid.to_hex(), "77cdbdd21862bb9e49fec50d21bd9ef02d731e04");
                assert_eq!(offset, 254);
            }
            other => panic!("{other:?}"),
        }
        let cont = Frame::Simple("CONTINUE 9e36c1bc4be4d1a2d6d8ac2a5e2b1d53d0e4b4ff".into());
        assert!(matches!(
            reply_to_msg(Expect::Psync, &cont),
            Some(ToReplica::Continue { .. })
        ));
        let busy =
            Frame::Error("NOMASTERLINK Can't SYNC while not connected with my master".into());
        assert_eq!(
            reply_to_msg(Expect::Psync, &busy),
            Some(ToReplica::TryLater)
        );
        let noauth = Frame::Error("NOAUTH Authentication required.".into());
        assert_eq!(reply_to_msg(Expect::Pong, &noauth), Some(ToReplica::Pong));
        assert_eq!(
            reply_to_msg(Expect::Psync, &Frame::Error("ERR x".into())),
            None
        );
        // A malformed id or offset is the master's fault, not a crash.
        let bad = Frame::Simple("FULLRESYNC nothex 12".into());
        assert_eq!(reply_to_msg(Expect::Psync, &bad), None);
    }
}
