//! The tokio driver: listeners, one task per connection, and the server cron.
//!
//! A connection task reads what the socket has, parses every complete request, takes the
//! store lock once for the whole batch, executes, releases the lock, and writes the replies.
//! Parsing and socket I/O of different clients run in parallel; execution is serial.
//! Before a client authenticates, requests are executed one at a time, so that AUTH lifts
//! the tight unauthenticated parsing limits for the very next request, as in Redis.

use crate::client::{Blocked, Client, ClientHandle};
use crate::config::BindAddr;
use crate::db::PREFETCH_WINDOW;
use crate::error::CmdError;
use crate::reply::ReplyWriter;
use crate::store::{unix_ms, Shared};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use verdis_core::resp::{Limits, RequestParser};

/// The most requests executed under one lock acquisition, so one pipelining client cannot
/// hold the lock for long.
const MAX_BATCH_REQUESTS: usize = 1024;
/// A connection's first read size. While reads fill the buffer it doubles, up to
/// [`READ_MAX_BYTES`], so a pipelined batch of large values (16 SETs of 1 KiB: 17 KiB) is read
/// at once and answered with one write, not two of each (Redis too grows a client's query
/// buffer greedily and reads all that fits). [`SMALL_READS_TO_SHRINK`] reads in a row under an
/// eighth of it halve it again, and the grown buffer is given back once it is empty.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Reads in a row that use under an eighth of the read size before it halves: one short read
/// (the tail of a batch the client was still sending) must not shrink a pipelining client's.
const SMALL_READS_TO_SHRINK: u32 = 32;
/// The largest read size a connection grows to.
const READ_MAX_BYTES: usize = 256 * 1024;

/// Binds every configured address (synchronously, so CONFIG SET can report a failure).
/// Optional (`-`-prefixed) addresses may fail. Must run inside the tokio runtime.
pub fn bind_all(port: u16, binds: &[BindAddr]) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    for b in binds {
        let host = match b.addr.as_str() {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let bound = std::net::TcpListener::bind(&addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .and_then(TcpListener::from_std);
        match bound {
            Ok(l) => listeners.push(l),
            Err(e) if b.optional => {
                tracing::warn!("Warning: Could not create server TCP listening socket {addr}: {e} (optional address, skipped)");
            }
            Err(e) => {
                return Err(format!(
                    "Could not create server TCP listening socket {addr}: {e}"
                ))
            }
        }
    }
    if listeners.is_empty() {
        return Err("Unable to listen on this port".into());
    }
    Ok(listeners)
}

/// Binds the configured addresses and starts accepting on them, replacing (closing) any
/// listeners from before: start-up and CONFIG SET port/bind.
pub fn rebind(shared: &Arc<Shared>, port: u16, binds: &[BindAddr]) -> Result<(), String> {
    let listeners = bind_all(port, binds)?;
    if let Some(Ok(a)) = listeners.first().map(|l| l.local_addr()) {
        shared
            .port
            .store(a.port() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let mut tasks = shared.listeners.lock();
    for t in tasks.drain(..) {
        t.abort();
    }
    for l in listeners {
        tasks.push(tokio::spawn(accept_loop(shared.clone(), l)).abort_handle());
    }
    Ok(())
}

/// Accepts connections on one listener forever.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            on_accept(shared, stream, peer).await;
        });
    }
}

const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

async fn on_accept(shared: Arc<Shared>, mut stream: TcpStream, peer: std::net::SocketAddr) {
    let (maxclients, protected, requires_auth, keepalive) = {
        let mut s = shared.store.lock();
        s.stats.total_connections_received += 1;
        (
            s.config.maxclients as usize,
            s.config.protected_mode,
            s.requires_auth(),
            s.config.tcp_keepalive_secs,
        )
    };
    if shared.clients.len() >= maxclients {
        shared.store.lock().stats.rejected_connections += 1;
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    if protected && !requires_auth && !peer.ip().is_loopback() {
        shared.store.lock().stats.rejected_connections += 1;
        let _ = stream.write_all(DENIED).await;
        return;
    }
    let _ = stream.set_nodelay(true);
    if keepalive > 0 {
        let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive as u64));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    }
    let laddr = stream.local_addr().unwrap_or(peer);
    let fd = {
        use std::os::fd::AsRawFd;
        stream.as_raw_fd() as i64
    };
    let handle = Arc::new(ClientHandle::new(shared.next_client_id(), peer, laddr, fd));
    shared.clients.insert(handle.clone());
    let client = Client::new(handle.clone(), !requires_auth);
    serve(&shared, stream, client).await;
    shared.clients.remove(handle.id);
}

/// How much a connection reads at a time: [`READ_CHUNK_BYTES`] at first, doubled by a read
/// that fills the room, halved by [`SMALL_READS_TO_SHRINK`] short reads in a row.
struct ReadSize {
    bytes: usize,
    small_reads: u32,
    /// Halved since the buffer was last replaced: the grown buffer goes once it is empty.
    shrunk: bool,
}

impl ReadSize {
    fn new() -> ReadSize {
        ReadSize {
            bytes: READ_CHUNK_BYTES,
            small_reads: 0,
            shrunk: false,
        }
    }

    /// Makes room in `buf` for the next read (at least the read size); returns how much.
    fn make_room(&mut self, buf: &mut BytesMut) -> usize {
        if self.shrunk && buf.is_empty() {
            // Requests still pending keep their part of the old buffer alive.
            *buf = BytesMut::with_capacity(self.bytes);
            self.shrunk = false;
        }
        if buf.capacity() - buf.len() < self.bytes {
            // Free of charge when the requests read before are gone: the buffer starts over.
            buf.reserve(self.bytes);
        }
        buf.capacity() - buf.len()
    }

    /// Learns from a read of `n` bytes into `room`.
    fn after_read(&mut self, n: usize, room: usize) {
        if n == room {
            self.bytes = (self.bytes * 2).min(READ_MAX_BYTES);
        }
        if n < self.bytes / 8 && self.bytes > READ_CHUNK_BYTES {
            self.small_reads += 1;
            if self.small_reads == SMALL_READS_TO_SHRINK {
                self.bytes /= 2;
                self.shrunk = true;
                self.small_reads = 0;
            }
        } else {
            self.small_reads = 0;
        }
    }
}

/// The connection loop.
async fn serve(shared: &Arc<Shared>, stream: TcpStream, mut client: Client) {
    let (mut rd, mut wr) = stream.into_split();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut parser = RequestParser::new();
    // Parsed requests not executed yet (behind a blocked WAIT, or past a batch's limit).
    let mut pending: VecDeque<Vec<Bytes>> = VecDeque::new();
    let handle = client.handle.clone();
    let (mut max_bulk, mut query_limit) = {
        let s = shared.store.lock();
        (
            s.config.proto_max_bulk_len,
            s.config.client_query_buffer_limit,
        )
    };
    let mut read_size = ReadSize::new();
    'conn: loop {
        let room = read_size.make_room(&mut rbuf);
        let read = tokio::select! {
            r = rd.read_buf(&mut rbuf) => r,
            _ = handle.killed() => break 'conn,
        };
        let n = match read {
            Ok(0) | Err(_) => break 'conn,
            Ok(n) => n,
        };
        read_size.after_read(n, room);
        let mut input_bytes = n as u64;
        // Execute everything complete in the buffer, in batches.
        loop {
            let limits = Limits {
                max_bulk_bytes: max_bulk,
                authenticated: client.authenticated,
            };
            let batch_max = if client.authenticated {
                MAX_BATCH_REQUESTS
            } else {
                1
            };
            let mut proto_err = None;
            while pending.len() < batch_max {
                match parser.next_request(&mut rbuf, &limits) {
                    Ok(Some(r)) => pending.push_back(r.args),
                    Ok(None) => break,
                    Err(e) => {
                        proto_err = Some(e);
                        break;
                    }
                }
            }
            if pending.is_empty() && proto_err.is_none() {
                break;
            }
            {
                let mut store = shared.store.lock();
                let now = unix_ms();
                let mut out = ReplyWriter::new(&mut wbuf, client.proto);
                let mut executed = 0;
                while executed < batch_max {
                    if executed % PREFETCH_WINDOW == 0 && pending.len() > 1 {
                        let ahead = pending.range(..PREFETCH_WINDOW.min(pending.len()));
                        store.ks.db(client.db).prefetch(ahead.map(|a| &a[..]));
                    }
                    let Some(args) = pending.pop_front() else {
                        break;
                    };
                    if !client.is_master_link && client.multi.is_none() && store.write_paused(&args)
                    {
                        // FAILOVER pauses writes: this one waits, and everything behind it.
                        pending.push_front(args);
                        client.blocked = Some(Blocked::Paused);
                        break;
                    }
                    store.execute(shared, &mut client, &args, now, &mut out);
                    parser.recycle(args);
                    executed += 1;
                    if client.close_after_reply
                        || client.blocked.is_some()
                        || client.repl.psync.is_some()
                    {
                        break;
                    }
                }
                if let Some(e) = &proto_err {
                    if !client.close_after_reply && pending.is_empty() && client.blocked.is_none() {
                        tracing::debug!("Protocol error ({e}) from client id={}", client.id);
                        out.error(&CmdError::Err(e.to_string()));
                        store.stats.total_error_replies += 1;
                        client.close_after_reply = true;
                    }
                }
                store.flush_replication(shared, &mut client, now);
                store.stats.total_net_input_bytes += input_bytes;
                store.stats.total_reads_processed += 1;
                store.stats.total_net_output_bytes += wbuf.len() as u64;
                input_bytes = 0;
                max_bulk = store.config.proto_max_bulk_len;
                query_limit = store.config.client_query_buffer_limit;
            }
            client.publish();
            if client.close_after_reply {
                break;
            }
            if client.repl.psync.is_some() {
                // The connection becomes a replica link once the replies so far are out.
                if !wbuf.is_empty() && wr.write_all(&wbuf).await.is_err() {
                    break 'conn;
                }
                wbuf.clear();
                if let Some(start) = client.repl.psync.take() {
                    crate::replication::attach_replica(shared, client, start, rd, wr, rbuf).await;
                }
                return;
            }
            if client.blocked.is_some() {
                if !wbuf.is_empty() {
                    if wr.write_all(&wbuf).await.is_err() {
                        break 'conn;
                    }
                    wbuf.clear();
                }
                if !wait_unblocked(shared, &mut client, &mut wbuf).await {
                    break 'conn;
                }
            }
        }
        if !wbuf.is_empty() {
            if wr.write_all(&wbuf).await.is_err() {
                break 'conn;
            }
            wbuf.clear();
        }
        if client.close_after_reply {
            break 'conn;
        }
        if rbuf.len() as u64 > query_limit {
            tracing::warn!(
                "Closing client that reached max query buffer length: id={} addr={} (qbuf={})",
                client.id,
                handle.addr,
                rbuf.len()
            );
            break 'conn;
        }
    }
    let _ = wr.shutdown().await;
    // Forget the client's watches.
    if !client.watched.is_empty() {
        let mut store = shared.store.lock();
        store.ks.unwatch(client.id, &client.watched);
    }
}

/// Waits until a blocked client can be answered (WAIT: enough acks, or its timeout), writes
/// the answer into `wbuf`. False if the client was killed meanwhile.
async fn wait_unblocked(shared: &Arc<Shared>, client: &mut Client, wbuf: &mut BytesMut) -> bool {
    let handle = client.handle.clone();
    loop {
        let notified = shared.repl_acks.notified();
        {
            let store = shared.store.lock();
            let now = unix_ms();
            match client.blocked {
                Some(Blocked::Wait {
                    numreplicas,
                    offset,
                    deadline_ms,
                }) => {
                    let acked = store.repl.node.wait_count(offset) as i64;
                    if acked >= numreplicas || deadline_ms.is_some_and(|d| now >= d) {
                        ReplyWriter::new(wbuf, client.proto).int(acked);
                        client.blocked = None;
                        return true;
                    }
                }
                Some(Blocked::Paused) => {
                    if !store.repl.node.failover.pauses_writes() {
                        client.blocked = None;
                        return true;
                    }
                }
                None => return true,
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = handle.killed() => return false,
        }
    }
}

/// The server cron, `hz` times a second: active expiry, ops/sec sampling, idle client timeouts.
pub async fn cron(shared: Arc<Shared>) {
    let mut ticks: u64 = 0;
    loop {
        let hz = shared.store.lock().config.hz.clamp(1, 500);
        tokio::time::sleep(Duration::from_millis(1000 / hz as u64)).await;
        ticks += 1;
        let timeout_secs;
        {
            let mut store = shared.store.lock();
            let now = unix_ms();
            if store.active_expire_enabled {
                // Redis's slow cycle: at most 25% of the cron period.
                let budget_us = 250_000 / hz as u64;
                store.ks.active_expire_cycle(now, budget_us);
                store.feed_replication(&shared, now);
            }
            crate::replication::run_timers(&mut store, &shared, now as u64);
            crate::replication::enforce_output_limits(&mut store, &shared, now as u64);
            let commands = store.stats.total_commands_processed;
            store.ops.sample(now, commands);
            timeout_secs = store.config.timeout_secs;
        }
        crate::alloc::allocated_bytes();
        if timeout_secs > 0 && ticks.is_multiple_of(hz as u64) {
            let now = std::time::Instant::now();
            for h in shared.clients.all() {
                let m = h.meta.lock().clone();
                if !m.flag_multi
                    && now.duration_since(m.last_interaction).as_secs() > timeout_secs as u64
                {
                    tracing::debug!("Closing idle client id={}", h.id);
                    h.kill();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills the room as a read of `n` bytes would, then hands the bytes out as parsed
    /// requests do; returns the room there was.
    fn read(rs: &mut ReadSize, buf: &mut BytesMut, n: Option<usize>) -> usize {
        let room = rs.make_room(buf);
        let n = n.unwrap_or(room).min(room);
        buf.extend_from_slice(&vec![b'x'; n]);
        rs.after_read(n, room);
        drop(buf.split());
        room
    }

    #[test]
    fn the_read_size_grows_with_full_reads_and_shrinks_only_after_many_short_ones() {
        let mut rs = ReadSize::new();
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        assert_eq!(read(&mut rs, &mut buf, Some(100)), READ_CHUNK_BYTES);
        assert_eq!(
            rs.bytes, READ_CHUNK_BYTES,
            "a short read at the first size changes nothing"
        );

        // Reads that fill the room double the size, up to the cap.
        for _ in 0..8 {
            read(&mut rs, &mut buf, None);
        }
        assert_eq!(rs.bytes, READ_MAX_BYTES);
        assert!(read(&mut rs, &mut buf, Some(READ_MAX_BYTES / 2)) >= READ_MAX_BYTES);

        // One short read (the tail of a batch) keeps the size; a run of them halves it.
        for _ in 0..SMALL_READS_TO_SHRINK - 1 {
            read(&mut rs, &mut buf, Some(10));
        }
        read(&mut rs, &mut buf, Some(READ_MAX_BYTES / 4));
        for _ in 0..SMALL_READS_TO_SHRINK - 1 {
            read(&mut rs, &mut buf, Some(10));
        }
        assert_eq!(
            rs.bytes, READ_MAX_BYTES,
            "a longer read in between restarts the count"
        );
        read(&mut rs, &mut buf, Some(10));
        assert_eq!(rs.bytes, READ_MAX_BYTES / 2);

        // The grown buffer is given back: the next room is the new size, not the old one.
        assert_eq!(read(&mut rs, &mut buf, Some(10)), READ_MAX_BYTES / 2);

        // It never falls under the first size.
        for _ in 0..10 * SMALL_READS_TO_SHRINK {
            read(&mut rs, &mut buf, Some(10));
        }
        assert_eq!(rs.bytes, READ_CHUNK_BYTES);
        assert!(read(&mut rs, &mut buf, Some(10)) >= READ_CHUNK_BYTES);
        let allocation = buf.as_ptr();
        read(&mut rs, &mut buf, Some(10));
        assert_eq!(
            buf.as_ptr(),
            allocation,
            "an emptied buffer is reused, not reallocated"
        );
    }
}
