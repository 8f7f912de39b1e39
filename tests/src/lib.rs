//! # verdis-tests: the harness for end-to-end and interop tests
//!
//! Tests run real processes: `verdis-server` (built by the workspace) and Debian's
//! `redis-server` 7.0.15. Rules every test follows through this harness:
//! - servers bind 127.0.0.1 on a free port and are killed by their own pid on drop;
//! - every wait has a deadline; nothing blocks forever;
//! - a missing `redis-server`, `redis-cli` or `redis-benchmark` is a test FAILURE with a
//!   message naming the setup script, never a skip.
//!
//! [`Server`] starts and stops a server, [`Conn`] is a raw RESP connection for byte-exact
//! assertions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use verdis_core::resp::{parse_frame, Frame};

/// How long a server may take to start answering PING.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long one reply may take.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// Which server implementation a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Verdis,
    Redis,
}

/// The `verdis-server` binary of this workspace (target/<profile>/verdis-server).
pub fn verdis_binary() -> PathBuf {
    if let Ok(p) = std::env::var("VERDIS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // Test executables live in target/<profile>/deps/, tools like verdis-bench in
    // target/<profile>/.
    let exe = std::env::current_exe().expect("the executable has a path");
    let dir = exe.parent().expect("the executable is in a directory");
    let here = dir.join("verdis-server");
    let bin = if here.exists() {
        here
    } else {
        dir.parent()
            .map(|p| p.join("verdis-server"))
            .unwrap_or(here)
    };
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`, which scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Finds a program on PATH or fails the test, naming the setup script.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed: run scripts/setup.sh (installs Debian's redis-server and redis-tools 7.0.15)");
}

/// Ports handed out by [`free_port`]: below Linux's default ephemeral range (32768-60999),
/// so no socket the kernel numbers itself (a listener on port 0, an outgoing connection) can
/// take a chosen port between the choice and the server binding it, or while a killed server
/// is down before its restart on the same port.
const PORT_LO: u32 = 12000;
const PORT_SPAN: u32 = 20000;

/// A free TCP port on 127.0.0.1 (bound, then released). Successive calls in one process walk
/// the range from a pid-derived start, so they never repeat a port within 20000 calls.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % PORT_SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..PORT_SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) % PORT_SPAN;
        let port = (PORT_LO + n) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Set to a directory, every verdis-server a test starts writes its protocol trace
/// (`verdis-protocol-trace`) to `<dir>/<test binary>.<test name>/node-<port>-<n>.jsonl`, one
/// directory per test, which `verdis-conform validate --runs` checks (scripts/test.sh).
pub const TRACE_DIR_ENV: &str = "VERDIS_TEST_TRACE_DIR";

/// The marker file of a run in which a redis-server took part (its side is not logged).
pub const UNLOGGED_PEERS: &str = "unlogged-peers";

static TRACE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This test's trace directory, created, when [`TRACE_DIR_ENV`] is set.
fn trace_run_dir() -> Option<PathBuf> {
    let root = std::env::var_os(TRACE_DIR_ENV)?;
    // `replication-<hash>` -> `replication`.
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let exe = match exe.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => exe,
    };
    // The test harness names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", ".");
    let dir = PathBuf::from(root).join(format!("{exe}.{test}"));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Records that a peer whose side is not logged (a redis-server, a scripted master) takes
/// part in this test's replication, when traces are being written.
pub fn unlogged_peer(what: &str) {
    if let Some(run) = trace_run_dir() {
        let _ = std::fs::write(run.join(UNLOGGED_PEERS), format!("{what}\n"));
    }
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub kind: Kind,
    pub dir: PathBuf,
}

impl Server {
    /// Starts verdis-server with `--port <free> --bind 127.0.0.1` plus `args`; a first
    /// argument that is not an option is a config file and goes first.
    pub fn verdis(args: &[&str]) -> Server {
        Self::start(Kind::Verdis, args)
    }

    /// Starts Debian's redis-server the same way (no persistence unless `args` say so).
    pub fn redis(args: &[&str]) -> Server {
        Self::start(Kind::Redis, args)
    }

    pub fn start(kind: Kind, args: &[&str]) -> Server {
        Self::start_on(kind, None, args)
    }

    /// Starts a server on `port` (a restart on the same address), or on a free port.
    pub fn start_on(kind: Kind, port: Option<u16>, args: &[&str]) -> Server {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = port.unwrap_or_else(free_port);
            let dir =
                std::env::temp_dir().join(format!("verdis-test-{}-{port}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let bin = match kind {
                Kind::Verdis => verdis_binary(),
                Kind::Redis => require_program("redis-server"),
            };
            let mut cmd = Command::new(bin);
            // A config file, like redis-server's, must come first.
            let (file, args) = match args.first() {
                Some(a) if !a.starts_with("--") => (Some(*a), &args[1..]),
                _ => (None, args),
            };
            if let Some(f) = file {
                cmd.arg(f);
            }
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--save")
                .arg("")
                .arg("--dir")
                .arg(&dir)
                .arg("--enable-debug-command")
                .arg("yes");
            if kind == Kind::Redis {
                cmd.arg("--daemonize")
                    .arg("no")
                    .arg("--appendonly")
                    .arg("no");
            }
            let own_trace = args.contains(&"--verdis-protocol-trace");
            if let Some(run) = trace_run_dir() {
                match kind {
                    // The test reads its own trace file: this server is not in the run's logs.
                    Kind::Verdis if own_trace => {
                        unlogged_peer("a verdis-server whose trace the test sets")
                    }
                    Kind::Verdis => {
                        cmd.arg("--verdis-protocol-trace").arg(run.join(format!(
                            "node-{port}-{}.jsonl",
                            TRACE_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        )));
                    }
                    // Its side of the links is not logged: the validator checks each Verdis
                    // line, but not the replies a Redis master sent (see docs/conformance.md).
                    Kind::Redis => unlogged_peer("redis-server"),
                }
            }
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(
                    std::fs::File::create(dir.join("stdout.log")).expect("create log"),
                ))
                .stderr(Stdio::from(
                    std::fs::File::create(dir.join("stderr.log")).expect("create log"),
                ));
            let child = cmd.spawn().expect("spawn server");
            let mut server = Server {
                child,
                port,
                kind,
                dir,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("{kind:?} server did not start: {last_err}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log()));
            }
            match answered_by(self.port, self.child.id()) {
                Answer::Ours => return Ok(()),
                Answer::Other(pid) => {
                    return Err(format!(
                        "port {} is held by another process ({pid})",
                        self.port
                    ))
                }
                Answer::Nothing => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "no PING reply within {START_DEADLINE:?}: {}",
            self.log()
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's stdout and stderr so far.
    pub fn log(&self) -> String {
        let out = std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        format!("{out}{err}")
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit by itself (SHUTDOWN), with a deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw RESP connection with deadlines.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        )?;
        stream.set_read_timeout(Some(REPLY_DEADLINE))?;
        stream.set_write_timeout(Some(REPLY_DEADLINE))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Sends a command as a RESP array.
    pub fn send(&mut self, args: &[&str]) {
        let mut out = Vec::new();
        verdis_core::resp::encode_command(args, &mut out);
        self.send_raw(&out);
    }

    /// Reads one reply frame.
    pub fn read_frame(&mut self) -> Frame {
        self.try_read_frame().expect("read a reply")
    }

    pub fn try_read_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            match parse_frame(&self.buf) {
                Ok(Some((f, n))) => {
                    self.buf.drain(..n);
                    return Ok(f);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    ))
                }
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 16384];
        let n = self.stream.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads `n` complete reply frames and returns their raw bytes, as sent.
    pub fn read_raw_frames(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            loop {
                match parse_frame(&self.buf) {
                    Ok(Some((_, len))) => {
                        out.extend(self.buf.drain(..len));
                        break;
                    }
                    Ok(None) => {
                        if self.fill().is_err() {
                            return out;
                        }
                    }
                    Err(_) => {
                        out.append(&mut self.buf);
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Reads exactly `n` raw bytes (for byte-exact assertions).
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().expect("read reply bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the connection is closed by the server, returning what arrived.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(_) => continue,
                Err(_) => return std::mem::take(&mut self.buf),
            }
        }
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        self.send(args);
        self.read_frame()
    }

    pub fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Frame> {
        let mut out = Vec::new();
        verdis_core::resp::encode_command(args, &mut out);
        self.stream.write_all(&out)?;
        self.try_read_frame()
    }

    /// Sends raw bytes and returns the raw reply bytes that arrive within `wait`.
    pub fn raw_exchange(&mut self, bytes: &[u8], wait: Duration) -> Vec<u8> {
        self.send_raw(bytes);
        let end = Instant::now() + wait;
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(50)));
        while Instant::now() < end {
            match self.fill() {
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        let _ = self.stream.set_read_timeout(Some(REPLY_DEADLINE));
        std::mem::take(&mut self.buf)
    }

    /// True once the server closed the connection (within the deadline).
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut tmp = [0u8; 1024];
        let closed = matches!(self.stream.read(&mut tmp), Ok(0) | Err(_));
        let _ = self.stream.set_read_timeout(Some(REPLY_DEADLINE));
        closed
    }
}

/// A frame's text (simple, bulk, error, verbatim), for assertions.
pub fn text(f: &Frame) -> String {
    match f {
        Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::Verbatim(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        Frame::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Who answers on a port a server was just started on.
pub enum Answer {
    /// The process with the expected pid (or a server that answers but will not say who it
    /// is yet: LOADING, NOAUTH).
    Ours,
    /// Another process: the port was taken between choosing it and the server binding it
    /// (a released ephemeral port handed out again), so the new server failed to bind.
    Other(String),
    /// Nothing answers yet.
    Nothing,
}

/// Asks the server on `port` for its `process_id` and compares it with `pid`.
pub fn answered_by(port: u16, pid: u32) -> Answer {
    let Ok(mut c) = Conn::try_connect(port) else {
        return Answer::Nothing;
    };
    match c.try_cmd(&["INFO", "server"]) {
        Ok(Frame::Bulk(b)) | Ok(Frame::Verbatim(b)) => {
            let info = String::from_utf8_lossy(&b);
            match info_field(&info, "process_id") {
                Some(p) if p == pid.to_string() => Answer::Ours,
                Some(p) => Answer::Other(p),
                None => Answer::Other("no process_id in INFO".to_string()),
            }
        }
        Ok(Frame::Error(_)) => Answer::Ours,
        Ok(other) => Answer::Other(format!("INFO replied {other:?}")),
        Err(_) => Answer::Nothing,
    }
}

/// One `field:value` out of an INFO reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}
