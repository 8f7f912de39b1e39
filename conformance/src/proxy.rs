//! The fault proxy: one per node, in front of its port, carrying every replication link to it.
//!
//! Replicas are configured to follow `127.0.0.1:<proxy port of their master>` and announce
//! their own proxy port (`replica-announce-port`), so `FAILOVER TO 127.0.0.1 <proxy port>`
//! names a replica the way its master lists it and the demoted master connects through a
//! proxy too. The proxy learns which node a connection comes from by reading the
//! `REPLCONF listening-port <port>` of the handshake, so [`Proxy::cut`] can close the link of
//! one replica (both directions, as a reset would) and leave the others alone, and
//! [`Proxy::inject`] can slip malformed bytes into one replica's link, either way.
//!
//! A partition of node `n` is two settings: every proxy blocks links that come from `n`
//! ([`Proxy::block`]: open ones are cut, new ones are closed as soon as the handshake names
//! `n`, before anything past the first PING reaches the master), and `n`'s own proxy refuses
//! every connection ([`Proxy::refuse`]).
//!
//! A stalled node `n` ([`Proxy::stall`]) is a replica that stopped reading: on its links, what
//! the master sends after the replica's `PSYNC` is held by the proxy (the handshake's replies
//! came before, as they did for a replica that read them), a close from the master included,
//! and delivered in order once the stall ends.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A forwarding connection: both sockets, and the node it comes from once known (-1 before).
struct Link {
    client: TcpStream,
    server: TcpStream,
    from: Arc<AtomicI64>,
    done: Arc<AtomicBool>,
}

/// Whether the master's bytes toward a link's replica are held now: its node is stalled and
/// its `PSYNC` went by.
fn holding(st: &State, from: &AtomicI64, psync_sent: &AtomicBool) -> bool {
    let node = from.load(Ordering::SeqCst);
    psync_sent.load(Ordering::SeqCst)
        && node >= 0
        && st
            .stalled
            .lock()
            .is_ok_and(|s| s.contains(&(node as usize)))
}

struct State {
    stop: AtomicBool,
    links: Mutex<Vec<Link>>,
    /// Announced port -> node.
    nodes: Mutex<HashMap<u16, usize>>,
    /// Nodes whose links are closed once identified (partitioned away).
    blocked: Mutex<HashSet<usize>>,
    /// Close every new connection at once (this proxy's node is partitioned away).
    refuse: AtomicBool,
    /// Nodes that stopped reading: the master's bytes after their PSYNC are held.
    stalled: Mutex<HashSet<usize>>,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream`. `nodes` maps the ports replicas
    /// announce to node indexes.
    pub fn start(upstream: u16, nodes: HashMap<u16, usize>) -> Result<Proxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("proxy bind: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let state = Arc::new(State {
            stop: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
            nodes: Mutex::new(nodes),
            blocked: Mutex::new(HashSet::new()),
            refuse: AtomicBool::new(false),
            stalled: Mutex::new(HashSet::new()),
        });
        let st = state.clone();
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if st.refuse.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], upstream));
                // A node that is down refuses: the replica sees the connection close.
                let Ok(server) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                let from = Arc::new(AtomicI64::new(-1));
                let done = Arc::new(AtomicBool::new(false));
                let psync_sent = Arc::new(AtomicBool::new(false));
                if let Ok(mut links) = st.links.lock() {
                    links.retain(|l| !l.done.load(Ordering::SeqCst));
                    links.push(Link {
                        client: c3,
                        server: s3,
                        from: from.clone(),
                        done: done.clone(),
                    });
                }
                let (st1, from1, done1) = (st.clone(), from.clone(), done.clone());
                let psync1 = psync_sent.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    // The last bytes seen, so a PSYNC split across reads is still found.
                    let mut tail: Vec<u8> = Vec::new();
                    pump(
                        client,
                        s2,
                        &st1,
                        &done1,
                        || false,
                        |bytes| {
                            if !psync1.load(Ordering::SeqCst) {
                                tail.extend_from_slice(bytes);
                                if contains_psync(&tail) {
                                    psync1.store(true, Ordering::SeqCst);
                                }
                                let keep = tail.len().saturating_sub(16);
                                tail.drain(..keep);
                            }
                            if from1.load(Ordering::SeqCst) < 0 && head.len() < 4096 {
                                head.extend_from_slice(bytes);
                                let node = listening_port(&head).and_then(|p| {
                                    st1.nodes.lock().ok().and_then(|m| m.get(&p).copied())
                                });
                                if let Some(node) = node {
                                    from1.store(node as i64, Ordering::SeqCst);
                                    let blocked =
                                        st1.blocked.lock().is_ok_and(|b| b.contains(&node));
                                    return !blocked;
                                }
                            }
                            true
                        },
                    )
                });
                let (st2, done2) = (st.clone(), done.clone());
                std::thread::spawn(move || {
                    let hold = || holding(&st2, &from, &psync_sent);
                    pump(server, c2, &st2, &done2, hold, |_| true)
                });
            }
        });
        Ok(Proxy {
            port,
            state,
            accept: Some(accept),
        })
    }

    /// Sets the map from announced ports to nodes (known once every proxy is bound).
    pub fn set_nodes(&self, nodes: HashMap<u16, usize>) {
        if let Ok(mut m) = self.state.nodes.lock() {
            *m = nodes;
        }
    }

    /// Closes every open link that comes from `node`; returns how many.
    pub fn cut(&self, node: usize) -> usize {
        self.cut_where(|from| from == node as i64)
    }

    /// Blocks (or unblocks) links from `node`: open ones are cut, new ones closed once the
    /// handshake names it.
    pub fn block(&self, node: usize, on: bool) {
        if let Ok(mut b) = self.state.blocked.lock() {
            if on {
                b.insert(node);
            } else {
                b.remove(&node);
            }
        }
        if on {
            self.cut(node);
        }
    }

    /// Stalls (or releases) `node`'s links: while stalled, what the master sends after the
    /// replica's PSYNC is held, and it is delivered in order on release.
    pub fn stall(&self, node: usize, on: bool) {
        if let Ok(mut s) = self.state.stalled.lock() {
            if on {
                s.insert(node);
            } else {
                s.remove(&node);
            }
        }
    }

    /// Refuses (or accepts again) every connection; refusing also cuts the open ones.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::SeqCst);
        if on {
            self.cut_where(|_| true);
        }
    }

    /// Writes `bytes` into the open links that come from `node`: toward the replica (as if
    /// its master had sent them) or toward the master (as if the replica had). Returns how
    /// many links got them.
    pub fn inject(&self, node: usize, toward_replica: bool, bytes: &[u8]) -> usize {
        let Ok(links) = self.state.links.lock() else {
            return 0;
        };
        let mut sent = 0;
        for l in links.iter() {
            if l.from.load(Ordering::SeqCst) != node as i64 || l.done.load(Ordering::SeqCst) {
                continue;
            }
            let mut to = if toward_replica { &l.client } else { &l.server };
            if to.write_all(bytes).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    fn cut_where(&self, pick: impl Fn(i64) -> bool) -> usize {
        let Ok(mut links) = self.state.links.lock() else {
            return 0;
        };
        let mut cut = 0;
        for l in links.iter() {
            if pick(l.from.load(Ordering::SeqCst)) && !l.done.load(Ordering::SeqCst) {
                let _ = l.client.shutdown(Shutdown::Both);
                let _ = l.server.shutdown(Shutdown::Both);
                l.done.store(true, Ordering::SeqCst);
                cut += 1;
            }
        }
        links.retain(|l| !l.done.load(Ordering::SeqCst));
        cut
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Ok(mut links) = self.state.links.lock() {
            for l in links.drain(..) {
                let _ = l.client.shutdown(Shutdown::Both);
                let _ = l.server.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Copies `from` to `to` until either side closes, the proxy stops or `seen` (shown each
/// chunk before it is forwarded) says no; then closes both. While `hold` says so, what is read
/// is kept instead of forwarded, and a close from `from` waits behind it, until `hold` ends
/// (or the link is cut).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    st: &State,
    done: &AtomicBool,
    hold: impl Fn() -> bool,
    mut seen: impl FnMut(&[u8]) -> bool,
) {
    let mut buf = [0u8; 65536];
    let mut held: Vec<u8> = Vec::new();
    let mut closed = false;
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    while !st.stop.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
        if !held.is_empty() && !hold() {
            if to.write_all(&held).is_err() {
                break;
            }
            held.clear();
        }
        if closed {
            if held.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                closed = true;
                continue;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => {
                closed = true;
                continue;
            }
        };
        if !seen(&buf[..n]) {
            break;
        }
        if hold() {
            held.extend_from_slice(&buf[..n]);
        } else if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Whether bytes from a replica carry its `PSYNC` command (the bulk string `$5 PSYNC`, not
/// the `psync2` of `REPLCONF capa`).
fn contains_psync(bytes: &[u8]) -> bool {
    const CMD: &[u8] = b"$5\r\npsync\r\n";
    bytes
        .windows(CMD.len())
        .any(|w| w.eq_ignore_ascii_case(CMD))
}

/// The port of a `REPLCONF listening-port <port>` in the first bytes of a connection.
pub fn listening_port(head: &[u8]) -> Option<u16> {
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    let key = b"listening-port\r\n";
    let at = lower.windows(key.len()).position(|w| w == key)? + key.len();
    // `$<len>\r\n<digits>\r\n`
    let rest = &head[at..];
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    let digits = &rest[nl + 2..];
    let end = digits.windows(2).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn reads_the_listening_port_of_a_handshake() {
        let hs =
            b"*1\r\n$4\r\nPING\r\n*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n7001\r\n";
        assert_eq!(listening_port(hs), Some(7001));
        assert_eq!(listening_port(&hs[..hs.len() - 3]), None);
        assert_eq!(listening_port(b"garbage"), None);
    }

    #[test]
    fn finds_the_psync_command_not_the_psync2_capability() {
        use super::contains_psync;
        assert!(!contains_psync(
            b"*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
        ));
        assert!(contains_psync(
            b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"
        ));
    }
}
