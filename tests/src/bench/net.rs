//! The raw connections, paced writers and link-cutting proxy the replication figures use.
//!
//! Everything here reports a bad reply or a closed socket as an `Err(String)` the figure
//! prints, never a panic, and every read has a deadline.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use verdis_core::resp::{encode_command, parse_frame, Frame};
use verdis_tests::info_field;

/// How long one reply, or one chunk of a snapshot, may take.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// A RESP connection whose failures are errors, not panics.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Result<Raw, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(READ_DEADLINE))
            .and_then(|_| stream.set_write_timeout(Some(READ_DEADLINE)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        Ok(Raw {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads more bytes into the buffer; returns how many arrived.
    pub fn fill(&mut self) -> Result<usize, String> {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => Err("connection closed".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Like [`Raw::fill`], but a read timeout is `Ok(false)` instead of an error.
    pub fn fill_or_timeout(&mut self) -> Result<bool, String> {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => Err("connection closed".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(true)
            }
            Err(e) if is_timeout(&e) => Ok(false),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Takes one complete frame from the buffer, if there is one.
    pub fn take_frame(&mut self) -> Result<Option<Frame>, String> {
        match parse_frame(&self.buf) {
            Ok(Some((f, n))) => {
                self.buf.drain(..n);
                Ok(Some(f))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(format!("bad reply: {}", e.0)),
        }
    }

    pub fn frame(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(f) = self.take_frame()? {
                return Ok(f);
            }
            self.fill()?;
        }
    }

    pub fn cmd(&mut self, args: &[&str]) -> Result<Frame, String> {
        let mut out = Vec::new();
        encode_command(args, &mut out);
        self.send(&out)?;
        match self.frame()? {
            Frame::Error(e) => Err(format!("{args:?}: -{}", String::from_utf8_lossy(&e))),
            f => Ok(f),
        }
    }

    /// A command whose reply must be `+OK`.
    pub fn ok(&mut self, args: &[&str]) -> Result<(), String> {
        match self.cmd(args)? {
            Frame::Simple(s) if s.as_ref() == b"OK" => Ok(()),
            other => Err(format!("{args:?}: expected +OK, got {other:?}")),
        }
    }

    pub fn info(&mut self, section: &str) -> Result<String, String> {
        match self.cmd(&["INFO", section])? {
            Frame::Bulk(b) | Frame::Verbatim(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(format!("INFO {section}: {other:?}")),
        }
    }

    /// One numeric INFO field.
    pub fn info_i64(&mut self, section: &str, field: &str) -> Result<i64, String> {
        let all = self.info(section)?;
        info_field(&all, field)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no numeric {field} in INFO {section}"))
    }

    pub fn int(&mut self, args: &[&str]) -> Result<i64, String> {
        match self.cmd(args)? {
            Frame::Integer(n) => Ok(n),
            other => Err(format!("{args:?}: expected an integer, got {other:?}")),
        }
    }

    /// Reads one CRLF line, skipping the bare `\n` keepalives a master sends before a
    /// payload.
    fn line(&mut self) -> Result<String, String> {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > 4096 {
                return Err("a reply line longer than 4 KiB".into());
            }
            self.fill()?;
        }
    }

    /// Skips a snapshot payload in either framing: `$<len>\r\n<bytes>` or
    /// `$EOF:<40-byte mark>\r\n<bytes><mark>`.
    fn skip_snapshot(&mut self) -> Result<u64, String> {
        let header = self.line()?;
        let Some(rest) = header.strip_prefix('$') else {
            return Err(format!("expected a snapshot header, got {header:?}"));
        };
        if let Some(mark) = rest.strip_prefix("EOF:") {
            let mark = mark.as_bytes().to_vec();
            if mark.len() != 40 {
                return Err(format!("EOF mark of {} bytes", mark.len()));
            }
            let mut skipped = 0u64;
            loop {
                if let Some(p) = self.buf.windows(40).position(|w| w == mark.as_slice()) {
                    self.buf.drain(..p + 40);
                    return Ok(skipped + p as u64);
                }
                let keep = self.buf.len().min(39);
                let drop = self.buf.len() - keep;
                skipped += drop as u64;
                self.buf.drain(..drop);
                self.fill()?;
            }
        }
        let len: u64 = rest
            .parse()
            .map_err(|_| format!("bad snapshot length {rest:?}"))?;
        let mut left = len;
        loop {
            let take = (self.buf.len() as u64).min(left);
            self.buf.drain(..take as usize);
            left -= take;
            if left == 0 {
                return Ok(len);
            }
            self.fill()?;
        }
    }

    /// Turns this connection into a replica of the server it is connected to: `REPLCONF capa`,
    /// `PSYNC ? -1`, the snapshot skipped, then the first ACK (which a diskless master waits
    /// for before it streams). Returns the offset the stream starts after.
    pub fn become_replica(&mut self) -> Result<i64, String> {
        self.ok(&["REPLCONF", "capa", "eof", "capa", "psync2"])?;
        let mut out = Vec::new();
        encode_command(&["PSYNC", "?", "-1"], &mut out);
        self.send(&out)?;
        let reply = self.line()?;
        let offset = reply
            .strip_prefix("+FULLRESYNC ")
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|o| o.parse::<i64>().ok())
            .ok_or_else(|| format!("PSYNC ? -1: {reply:?}"))?;
        self.skip_snapshot()?;
        self.ack(offset)?;
        Ok(offset)
    }

    /// After [`Raw::become_replica`]: waits until the master streams to this link, writing a
    /// probe key through `master` and acknowledging every 100 ms until the probe arrives (a
    /// master may hold the stream until an ACK that follows the end of its snapshot job).
    pub fn wait_streaming(&mut self, master: &mut Raw, offset: i64) -> Result<(), String> {
        self.set_read_timeout(Duration::from_millis(100));
        let start = Instant::now();
        while start.elapsed() < READ_DEADLINE {
            master.ok(&["SET", "stream-probe", "1"])?;
            self.ack(offset)?;
            self.fill_or_timeout()?;
            while let Some(f) = self.take_frame()? {
                if let Frame::Array(args) = &f {
                    if args
                        .iter()
                        .any(|a| matches!(a, Frame::Bulk(b) if b.as_ref() == b"stream-probe"))
                    {
                        self.set_read_timeout(READ_DEADLINE);
                        return Ok(());
                    }
                }
            }
        }
        Err(format!(
            "the master did not stream within {READ_DEADLINE:?}"
        ))
    }

    pub fn ack(&mut self, offset: i64) -> Result<(), String> {
        let mut out = Vec::new();
        encode_command(&["REPLCONF", "ACK", &offset.to_string()], &mut out);
        self.send(&out)
    }

    pub fn set_read_timeout(&self, d: Duration) {
        let _ = self.stream.set_read_timeout(Some(d));
    }
}

/// Polls `cond` every `every` until it holds (Ok with the time it took) or `within` passes.
pub fn wait_for(
    within: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(format!("{what}: not within {within:?}"));
        }
        std::thread::sleep(every);
    }
}

/// What a paced writer did.
#[derive(Default, Debug)]
pub struct WriterStats {
    pub sent: u64,
    pub elapsed: Duration,
}

/// A writer that sends `SET <prefix><seq> <microseconds since t0>` at `rate_per_s`, in
/// pipelined batches paced by the clock (each batch carries the time it was written), until
/// `stop` is set. Replies are read after each batch.
pub fn paced_writer(
    port: u16,
    rate_per_s: u64,
    prefix: &'static str,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<WriterStats, String>> {
    std::thread::spawn(move || {
        let mut c = Raw::connect(port)?;
        let start = Instant::now();
        let mut sent = 0u64;
        let mut req = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate_per_s as f64) as u64;
            if due <= sent {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            let n = (due - sent).min(1000);
            req.clear();
            let ts = t0.elapsed().as_micros().to_string();
            for i in 0..n {
                encode_command(&["SET", &format!("{prefix}{}", sent + i), &ts], &mut req);
            }
            c.send(&req)?;
            for _ in 0..n {
                if let Frame::Error(e) = c.frame()? {
                    return Err(format!("SET: -{}", String::from_utf8_lossy(&e)));
                }
            }
            sent += n;
        }
        Ok(WriterStats {
            sent,
            elapsed: start.elapsed(),
        })
    })
}

/// Joins a writer thread, turning a panic into an error.
pub fn join<T>(h: JoinHandle<Result<T, String>>) -> Result<T, String> {
    h.join().map_err(|_| "a load thread panicked".to_string())?
}

/// A TCP proxy between a replica and its master that can cut the link and counts what the
/// master sends after a PSYNC on connections opened after the last cut.
pub struct Proxy {
    pub port: u16,
    started: Instant,
    state: Arc<ProxyState>,
    listener: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyState {
    cut: AtomicBool,
    /// Set when a cut ends: connections accepted from then on are counted.
    reopened: AtomicBool,
    stop: AtomicBool,
    /// Stream bytes the master sent after `+CONTINUE` / `+FULLRESYNC` on counted links.
    stream_bytes: AtomicU64,
    /// A counted link got `+FULLRESYNC`.
    full: AtomicBool,
    /// The offset the replica asked for on a counted link (`PSYNC <replid> <offset>`).
    psync_offset: AtomicI64,
    /// When that PSYNC passed, in µs since the proxy started.
    psync_at_us: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    pub fn start(master_port: u16) -> Result<Proxy, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("proxy bind: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let state = Arc::new(ProxyState {
            psync_offset: AtomicI64::new(-1),
            ..Default::default()
        });
        let st = state.clone();
        let started = Instant::now();
        let listener = std::thread::spawn(move || {
            for client in l.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if st.cut.load(Ordering::SeqCst) {
                    continue; // dropped: the link is cut
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], master_port));
                let Ok(master) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
                    continue;
                };
                let counted = st.reopened.load(Ordering::SeqCst);
                let clones = (client.try_clone(), master.try_clone());
                let (Ok(c2), Ok(m2)) = clones else { continue };
                if let Ok(mut open) = st.open.lock() {
                    if let (Ok(a), Ok(b)) = (client.try_clone(), master.try_clone()) {
                        open.push(a);
                        open.push(b);
                    }
                }
                let _ = client.set_nodelay(true);
                let _ = master.set_nodelay(true);
                let s1 = st.clone();
                std::thread::spawn(move || pump_to_master(client, m2, counted, started, s1));
                let s2 = st.clone();
                std::thread::spawn(move || pump_to_replica(master, c2, counted, s2));
            }
        });
        Ok(Proxy {
            port,
            started,
            state,
            listener: Some(listener),
        })
    }

    /// Closes every open link and drops new ones until [`Proxy::reopen`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut open) = self.state.open.lock() {
            for s in open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    pub fn reopen(&self) {
        self.state.reopened.store(true, Ordering::SeqCst);
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// When the replica's PSYNC after the cut passed through, if it did.
    pub fn psync_at(&self) -> Option<Instant> {
        if self.state.psync_offset.load(Ordering::SeqCst) < 0 {
            return None;
        }
        let us = self.state.psync_at_us.load(Ordering::SeqCst);
        Some(self.started + Duration::from_micros(us))
    }

    /// (stream bytes sent on counted links, whether one was a full sync, the PSYNC offset).
    pub fn counted(&self) -> (u64, bool, i64) {
        (
            self.state.stream_bytes.load(Ordering::SeqCst),
            self.state.full.load(Ordering::SeqCst),
            self.state.psync_offset.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
    }
}

/// Copies `from` to `to` until either side closes or the proxy stops, showing each chunk
/// forwarded to `seen`; then closes both.
fn forward(mut from: TcpStream, mut to: TcpStream, st: &ProxyState, mut seen: impl FnMut(&[u8])) {
    let mut tmp = [0u8; 65536];
    let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
    while !st.stop.load(Ordering::SeqCst) {
        let n = match from.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        };
        if to.write_all(&tmp[..n]).is_err() {
            break;
        }
        seen(&tmp[..n]);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Replica -> master: forwards bytes and notes the offset of the first PSYNC.
fn pump_to_master(
    from: TcpStream,
    to: TcpStream,
    counted: bool,
    started: Instant,
    st: Arc<ProxyState>,
) {
    let mut head: Vec<u8> = Vec::new();
    let mut seen_psync = false;
    forward(from, to, &st, |chunk| {
        if seen_psync || head.len() > 65536 {
            return;
        }
        head.extend_from_slice(chunk);
        while let Ok(Some((f, used))) = parse_frame(&head) {
            head.drain(..used);
            if let Some(off) = psync_offset(&f) {
                seen_psync = true;
                if counted {
                    let at = started.elapsed().as_micros() as u64;
                    st.psync_at_us.store(at, Ordering::SeqCst);
                    st.psync_offset.store(off, Ordering::SeqCst);
                }
                break;
            }
        }
    });
}

fn psync_offset(f: &Frame) -> Option<i64> {
    let Frame::Array(args) = f else { return None };
    let arg = |i: usize| match args.get(i) {
        Some(Frame::Bulk(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    if !arg(0)?.eq_ignore_ascii_case("PSYNC") {
        return None;
    }
    arg(2)?.parse().ok()
}

/// Master -> replica: forwards bytes; on a counted link, counts everything after the PSYNC
/// reply line.
fn pump_to_replica(from: TcpStream, to: TcpStream, counted: bool, st: Arc<ProxyState>) {
    let mut handshake = true;
    let mut line: Vec<u8> = Vec::new();
    forward(from, to, &st, |chunk| {
        let mut rest = chunk;
        // The handshake replies are lines (`+PONG`, `+OK`, ...) until `+CONTINUE` or
        // `+FULLRESYNC`; bare `\n` keepalives may come first.
        while handshake && !rest.is_empty() {
            let b = rest[0];
            rest = &rest[1..];
            if b == b'\n' && line.is_empty() {
                continue;
            }
            line.push(b);
            if line.ends_with(b"\r\n") {
                if line.starts_with(b"+CONTINUE") || line.starts_with(b"+FULLRESYNC") {
                    handshake = false;
                    if counted && line.starts_with(b"+FULLRESYNC") {
                        st.full.store(true, Ordering::SeqCst);
                    }
                }
                line.clear();
            }
        }
        if !handshake && counted {
            st.stream_bytes
                .fetch_add(rest.len() as u64, Ordering::SeqCst);
        }
    });
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use verdis_core::resp::{encode_command, parse_frame};

    /// The proxy reads the offset a replica asks for out of its PSYNC, and nothing else.
    #[test]
    fn psync_offset_reads_the_requested_offset() {
        let frame = |args: &[&str]| {
            let mut b = Vec::new();
            encode_command(args, &mut b);
            parse_frame(&b).ok().flatten().map(|(f, _)| f)
        };
        let psync = frame(&["PSYNC", "8de1f3a2b4c5d6e7f8091a2b3c4d5e6f70819a2b", "1234"]);
        assert_eq!(psync.as_ref().and_then(super::psync_offset), Some(1234));
        let other = frame(&["REPLCONF", "ACK", "1234"]);
        assert_eq!(other.as_ref().and_then(super::psync_offset), None);
    }
}
