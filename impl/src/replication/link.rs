//! The master side of one replica connection, after its `PSYNC` / `SYNC`.
//!
//! The task drains the connection's [`PeerOut`] queue in order: status lines, the snapshot,
//! stream bytes. A snapshot is encoded on a blocking thread from the copy-on-write snapshot
//! taken under the lock at the PSYNC, and framed as:
//! - `$<len>\r\n<rdb>` (disk-style; Verdis encodes into memory rather than a file), or
//! - `$EOF:<40 random hex>\r\n<rdb><same 40 chars>` for a diskless sync to a replica that
//!   announced `capa eof`. Such a replica finds the end of the payload by the last 40 bytes it
//!   read, so no stream byte may follow until it acknowledges the snapshot with its first
//!   `REPLCONF ACK`, exactly as Redis 7.0 waits.
//!
//! From the replica the task reads `REPLCONF ACK <offset>` (and ignores the bare newlines a
//! loading replica sends). Every event goes to the protocol core under the store lock.

use super::{PeerOut, RdbJob};
use crate::store::{unix_ms, Shared};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc::UnboundedReceiver;
use verdis_core::repl::{LinkId, NodeId, ToMaster};
use verdis_core::resp::{Limits, RequestParser};

/// Encodes a snapshot as an RDB payload.
fn encode(job: &RdbJob) -> std::io::Result<Vec<u8>> {
    let opts = crate::rdb::write::WriteOptions {
        compression: job.compression,
        checksum: job.checksum,
        ctime_unix: unix_ms() / 1000,
        used_mem_bytes: crate::alloc::allocated_bytes(),
        repl: Some(crate::rdb::ReplAux {
            stream_db: 0,
            repl_id: job.replid.to_hex(),
            repl_offset: job.offset as i64,
        }),
    };
    let mut out = Vec::with_capacity(1024);
    crate::rdb::write::write_rdb(&mut out, &job.dbs, &opts)?;
    Ok(out)
}

/// 40 random hex characters for the `$EOF:` mark.
fn eof_mark() -> String {
    use verdis_core::repl::IdSource;
    super::OsIds.fresh_replid().to_hex()
}

/// Serves one replica connection until it closes.
#[allow(clippy::too_many_arguments)]
pub async fn serve_replica(
    shared: Arc<Shared>,
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut rbuf: BytesMut,
    node: NodeId,
    link: LinkId,
    mut rx: UnboundedReceiver<PeerOut>,
    queued: Arc<super::outbuf::OutputAccount>,
    handle: Arc<crate::client::ClientHandle>,
) {
    let mut parser = RequestParser::new();
    // After an EOF-framed snapshot, nothing more is sent until the replica's first ACK.
    let mut hold_until_ack = false;
    'link: loop {
        // Handle what the replica sent (acks) before waiting again.
        loop {
            match parser.next_request(&mut rbuf, &Limits::default()) {
                Ok(Some(req)) => {
                    if let Some(offset) = parse_ack(&req.args) {
                        hold_until_ack = false;
                        let mut store = shared.store.lock();
                        let now = unix_ms() as u64;
                        let cfg = store.repl.cfg.clone();
                        let effects = store.repl.node.handle_from_replica(
                            node,
                            link,
                            ToMaster::Ack { offset },
                            now,
                            &cfg,
                            &mut super::OsIds,
                        );
                        store.repl_step(
                            &shared,
                            super::trace::TraceInput::FromReplica {
                                replica: node,
                                link,
                                msg: &ToMaster::Ack { offset },
                            },
                            effects,
                            now,
                        );
                        drop(store);
                        shared.repl_acks.notify_waiters();
                    }
                    // Anything else a replica sends on its link is ignored, as by Redis.
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("Protocol error from replica {node}: {e}");
                    break 'link;
                }
            }
        }
        tokio::select! {
            msg = rx.recv(), if !hold_until_ack => match msg {
                None | Some(PeerOut::Close) => break 'link,
                Some(PeerOut::Bytes(b)) => {
                    let n = b.len() as u64;
                    if wr.write_all(&b).await.is_err() {
                        break 'link;
                    }
                    queued.written(n);
                }
                Some(PeerOut::Rdb(job)) => {
                    let eof = job.eof_framing;
                    for _ in 0..job.delay_secs {
                        // A keepalive newline each second while the transfer waits.
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        if wr.write_all(b"\n").await.is_err() {
                            break 'link;
                        }
                    }
                    let started = std::time::Instant::now();
                    let encoded = tokio::task::spawn_blocking(move || encode(&job)).await;
                    let payload = match encoded {
                        Ok(Ok(p)) => p,
                        Ok(Err(e)) => {
                            tracing::warn!("Encoding the snapshot for replica {node} failed: {e}");
                            break 'link;
                        }
                        Err(e) => {
                            tracing::warn!("The snapshot encoder for replica {node} failed: {e}");
                            break 'link;
                        }
                    };
                    let sent = if eof {
                        let mark = eof_mark();
                        let mut framed = Vec::with_capacity(payload.len() + 100);
                        framed.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes());
                        framed.extend_from_slice(&payload);
                        framed.extend_from_slice(mark.as_bytes());
                        wr.write_all(&framed).await
                    } else {
                        let header = format!("${}\r\n", payload.len());
                        match wr.write_all(header.as_bytes()).await {
                            Ok(()) => wr.write_all(&payload).await,
                            Err(e) => Err(e),
                        }
                    };
                    if sent.is_err() {
                        break 'link;
                    }
                    tracing::info!(
                        "Synchronization with replica {node} succeeded ({} bytes in {} ms)",
                        payload.len(),
                        started.elapsed().as_millis()
                    );
                    {
                        let mut store = shared.store.lock();
                        store.repl.node.handle_rdb_sent(node, link);
                        let now = unix_ms() as u64;
                        store.repl_step(&shared, super::trace::TraceInput::RdbSent { replica: node, link }, Vec::new(), now);
                    }
                    hold_until_ack = eof;
                }
            },
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) | Err(_) => break 'link,
                Ok(_) => {}
            },
            _ = handle.killed() => break 'link,
        }
    }
    let _ = wr.shutdown().await;
    let mut store = shared.store.lock();
    let now = unix_ms() as u64;
    let cfg = store.repl.cfg.clone();
    let effects = store.repl.node.handle_from_replica(
        node,
        link,
        ToMaster::Closed,
        now,
        &cfg,
        &mut super::OsIds,
    );
    store.repl_step(
        &shared,
        super::trace::TraceInput::FromReplica {
            replica: node,
            link,
            msg: &ToMaster::Closed,
        },
        effects,
        now,
    );
    if store.repl.peers.get(&node).is_some_and(|p| p.link == link) {
        store.repl.peers.remove(&node);
    }
    tracing::info!("Connection with replica {node} lost.");
}

/// `REPLCONF ACK <offset> [FACK <offset>]` -> the offset.
fn parse_ack(args: &[bytes::Bytes]) -> Option<u64> {
    if args.len() >= 3
        && args[0].eq_ignore_ascii_case(b"REPLCONF")
        && args[1].eq_ignore_ascii_case(b"ACK")
    {
        let v = verdis_core::resp::parse_i64(&args[2])?;
        return u64::try_from(v).ok();
    }
    None
}
