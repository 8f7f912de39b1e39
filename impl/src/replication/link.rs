//! The master side of one replica connection, after its `PSYNC` / `SYNC`.
//!
//! The task drains the connection's [`PeerOut`] queue in order: status lines, the snapshot,
//! stream bytes. A snapshot is encoded on a thread of its own from the copy-on-write snapshot
//! taken under the lock at the PSYNC, and framed as:
//! - `$EOF:<40 random hex>\r\n<rdb><same 40 chars>` for a diskless sync to a replica that
//!   announced `capa eof`: written to the socket by the encoder's thread while it is encoded,
//!   in 256 KiB chunks, so the replica loads while the master encodes. Such a replica finds
//!   the end of the payload by the last 40 bytes it read, so no stream byte may follow until
//!   it acknowledges the snapshot with its first `REPLCONF ACK`, exactly as Redis 7.0 waits.
//! - `$<len>\r\n<rdb>` (disk-style) otherwise: the length comes first, so the payload is
//!   encoded into memory (Verdis writes no file for it) and then sent.
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

/// Bytes of encoded snapshot handed to the socket at a time when streaming.
const STREAM_CHUNK_BYTES: usize = 256 * 1024;
/// Stream bytes gathered into one socket write, at most (more if a single message is larger).
const BATCH_BYTES: usize = 256 * 1024;

/// Encodes a snapshot as an RDB payload to `out`; returns the bytes written.
fn encode<W: std::io::Write>(job: &RdbJob, out: W) -> std::io::Result<u64> {
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
    crate::rdb::write::write_rdb(out, &job.dbs, &opts)
}

/// `$<len>\r\n<rdb>`: the length comes first, so the whole payload is encoded (on a blocking
/// thread) before anything is sent.
async fn send_in_one(wr: &mut OwnedWriteHalf, job: RdbJob) -> std::io::Result<u64> {
    let payload = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(1024);
        encode(&job, &mut out).map(|_| out)
    })
    .await
    .map_err(std::io::Error::other)??;
    wr.write_all(format!("${}\r\n", payload.len()).as_bytes())
        .await?;
    wr.write_all(&payload).await?;
    Ok(payload.len() as u64)
}

/// `$EOF:<mark>\r\n<rdb><mark>`: the replica finds the end by the mark, so the payload is sent
/// while it is encoded, and the replica loads while the master encodes (as a Redis master
/// streams from its fork).
///
/// The encoder's own thread writes the payload to the socket, [`STREAM_CHUNK_BYTES`] at a
/// time, through a second handle on it: the worker that serves the clients never carries the
/// snapshot's bytes, so a write arriving during a full sync finds it idle, not busy copying
/// chunks to the socket. The socket stays non-blocking (the worker still reads the replica's
/// half); a write that would block waits in `poll` for the socket to drain. The task waits
/// for the thread's result; if the replica's connection is killed meanwhile, it shuts the
/// socket down, which fails the thread's next write. The thread stops as soon as nobody waits
/// for its result (the kill, or the task dropped).
async fn send_streamed(
    wr: &mut OwnedWriteHalf,
    job: RdbJob,
    handle: &crate::client::ClientHandle,
) -> std::io::Result<u64> {
    let mark = eof_mark();
    wr.write_all(format!("$EOF:{mark}\r\n").as_bytes()).await?;
    let socket = socket2::SockRef::from(wr.as_ref()).try_clone()?;
    let (done, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("verdis-rdb-send".into())
        .spawn(move || {
            let mut out = SocketWriter {
                socket,
                buf: Vec::with_capacity(STREAM_CHUNK_BYTES),
                sent: 0,
                done,
            };
            let result = encode(&job, &mut out)
                .and_then(|_| out.send())
                .map(|_| out.sent);
            // The snapshot's shards are released before the task hears the result.
            drop(job);
            let _ = out.done.send(result);
        })?;
    let sent = tokio::select! {
        r = done_rx => r.map_err(|_| std::io::Error::other("the snapshot thread ended without a result"))??,
        _ = handle.killed() => {
            let _ = socket2::SockRef::from(wr.as_ref()).shutdown(std::net::Shutdown::Both);
            return Err(std::io::Error::other("the replica's connection was killed"));
        }
    };
    wr.write_all(mark.as_bytes()).await?;
    Ok(sent)
}

/// An `io::Write` that writes [`STREAM_CHUNK_BYTES`] chunks straight to the replica's socket
/// from the encoder's thread.
struct SocketWriter {
    socket: socket2::Socket,
    buf: Vec<u8>,
    sent: u64,
    /// Where the result goes; closed once the link's task no longer waits for it.
    done: tokio::sync::oneshot::Sender<std::io::Result<u64>>,
}

impl SocketWriter {
    /// Writes what is buffered, waiting while the socket is full.
    fn send(&mut self) -> std::io::Result<()> {
        let mut at = 0;
        while at < self.buf.len() {
            if self.done.is_closed() {
                return Err(std::io::Error::other(
                    "the replica's link stopped waiting for the snapshot",
                ));
            }
            match self.socket.send(&self.buf[at..]) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "the replica link closed during the transfer",
                    ))
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    wait_writable(&self.socket)?
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.sent += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl std::io::Write for SocketWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STREAM_CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits up to 100 ms for `socket` to accept more bytes (the caller checks for a kill and
/// tries again).
fn wait_writable(socket: &socket2::Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `fd` is one valid pollfd that outlives the call, and the count says one.
    let n = unsafe { libc::poll(&mut fd, 1, 100) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
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
    // A message taken from the queue while batching stream bytes, handled next.
    let mut carried: Option<PeerOut> = None;
    let mut batch: Vec<u8> = Vec::new();
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
        let msg = match carried.take() {
            Some(m) => m,
            None => tokio::select! {
                msg = rx.recv(), if !hold_until_ack => match msg {
                    Some(m) => m,
                    None => break 'link,
                },
                r = rd.read_buf(&mut rbuf) => match r {
                    Ok(0) | Err(_) => break 'link,
                    Ok(_) => continue 'link,
                },
                _ = handle.killed() => break 'link,
            },
        };
        match msg {
            PeerOut::Close => break 'link,
            PeerOut::Bytes(b) => {
                // Everything already queued goes out in one write, as Redis writes a
                // replica's output buffer once per event loop turn: under load, one
                // syscall carries many commands instead of one each.
                // First let every other ready task run (tokio defers a yielded task until
                // the runtime has polled its I/O): the client batches that are ready now
                // queue their writes too, and this link writes them all at once, like
                // Redis's beforeSleep. Without it, each client batch woke this task and
                // cost one socket write (and one wake-up of the replica process).
                tokio::task::yield_now().await;
                batch.clear();
                batch.extend_from_slice(&b);
                while batch.len() < BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(PeerOut::Bytes(more)) => batch.extend_from_slice(&more),
                        Ok(other) => {
                            carried = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // A replica that stopped reading blocks this write; a kill (its output-buffer
                // limit, CLIENT KILL) still ends the link at once.
                let written = tokio::select! {
                    r = wr.write_all(&batch) => r.is_ok(),
                    _ = handle.killed() => false,
                };
                if !written {
                    break 'link;
                }
                queued.written(batch.len() as u64);
                if batch.capacity() > BATCH_BYTES * 2 {
                    batch = Vec::new();
                }
            }
            PeerOut::Rdb(job) => {
                let eof = job.eof_framing;
                for _ in 0..job.delay_secs {
                    // A keepalive newline each second while the transfer waits.
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if wr.write_all(b"\n").await.is_err() {
                        break 'link;
                    }
                }
                let started = std::time::Instant::now();
                let sent = if eof {
                    send_streamed(&mut wr, job, &handle).await
                } else {
                    send_in_one(&mut wr, job).await
                };
                let bytes = match sent {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!("Sending the snapshot to replica {node} failed: {e}");
                        break 'link;
                    }
                };
                tracing::info!(
                    "Synchronization with replica {node} succeeded ({bytes} bytes in {} ms)",
                    started.elapsed().as_millis()
                );
                {
                    let mut store = shared.store.lock();
                    store.repl.node.handle_rdb_sent(node, link);
                    let now = unix_ms() as u64;
                    store.repl_step(
                        &shared,
                        super::trace::TraceInput::RdbSent {
                            replica: node,
                            link,
                        },
                        Vec::new(),
                        now,
                    );
                }
                hold_until_ack = eof;
            }
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
