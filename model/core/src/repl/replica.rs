//! The replica side of a replication link.
//!
//! A link goes through explicit phases, and every reconnect mints a new [`LinkId`] so that
//! replies and stream bytes of an older connection are recognised and dropped:
//!
//! ```text
//!  Down --retry timer--> AwaitPong --+PONG--> AwaitReplconf{n} --n replies--> AwaitPsyncReply
//!   ^                                                                    |            |
//!   |                                               +FULLRESYNC id off   |            | +CONTINUE [id]
//!   |                                                                    v            v
//!   +---- link closed / repl-timeout / peer error ----- Transfer{id,off} --RDB--> Streaming
//! ```
//!
//! The handshake is Redis's: `PING`, then pipelined `AUTH` (only with masterauth),
//! `REPLCONF listening-port`, `REPLCONF capa eof capa psync2`, then `PSYNC` once every reply
//! came back. `-NOMASTERLINK` and `-LOADING` mean "try later": the link is closed and retried.
//!
//! In `Streaming` the replica applies the master's stream command by command and counts the
//! wire bytes of each: its offset is the offset of the last *fully processed* command. A
//! `REPLCONF GETACK *` is answered with the offset before the GETACK itself, then counted.
//! This module holds the link data and the stream splitter; the node's handlers drive it.

use super::ids::CachedMaster;
use super::{LinkId, NodeId};
use crate::resp::{Limits, RequestParser};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Where the link to the master is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkPhase {
    /// No connection; the retry timer will start one.
    Down,
    /// `PING` sent.
    AwaitPong,
    /// AUTH/REPLCONFs pipelined; this many replies still to come.
    AwaitReplconf { replies_left: u8 },
    /// `PSYNC` sent.
    AwaitPsyncReply,
    /// `+FULLRESYNC <replid> <offset>` read; the snapshot is arriving.
    Transfer {
        replid: super::ids::ReplId,
        offset: u64,
    },
    /// Applying the stream.
    Streaming,
}

impl LinkPhase {
    /// ROLE's replica state: connect, connecting, sync, connected.
    pub fn role_state(self) -> &'static str {
        match self {
            LinkPhase::Down => "connect",
            LinkPhase::AwaitPong | LinkPhase::AwaitReplconf { .. } | LinkPhase::AwaitPsyncReply => {
                "connecting"
            }
            LinkPhase::Transfer { .. } => "sync",
            LinkPhase::Streaming => "connected",
        }
    }

    /// INFO `master_link_status`.
    pub fn is_up(self) -> bool {
        matches!(self, LinkPhase::Streaming)
    }
}

/// The replica's view of its master link.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaLink {
    pub master: NodeId,
    /// The current (or last) connection; messages carrying another id are stale.
    pub link: LinkId,
    pub phase: LinkPhase,
    /// What PSYNC asks for; `None` = `PSYNC ? -1` (no history to resume).
    pub cached: Option<CachedMaster>,
    /// Sent `PSYNC ... FAILOVER` (this node is the old master of a coordinated switchover).
    pub failover_psync: bool,
    /// Stream bytes received but not yet a complete command.
    pub pending: Vec<u8>,
    /// The master's stream was malformed: our history is not resumed and the next PSYNC asks
    /// for a full sync (`PSYNC ? -1`), as Redis frees a master client with a protocol error
    /// instead of caching it (the bad bytes may sit in the master's backlog too, so a partial
    /// resync could replay them forever). Cleared once a sync completes.
    #[serde(default)]
    pub forget_history: bool,
}

/// One command split off the master's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamCommand {
    pub kind: StreamKind,
    /// Bytes the command took on the wire (what the offset advances by).
    pub wire_bytes: u64,
}

/// What a stream command asks of the replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// A write: apply it to the data set.
    Write(Vec<Bytes>),
    /// The master's heartbeat `PING`: counted, not applied.
    Ping,
    /// `REPLCONF GETACK *`: answer with the offset before this command.
    GetAck,
    /// Any other `REPLCONF` from the master: counted and ignored.
    OtherReplconf,
}

/// The master sent bytes that are not RESP commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError(pub String);

/// The complete commands at the front of `bytes` (at most `max_commands`) and the bytes they
/// take; a trailing partial command is left for the next call. The arguments share one copy
/// of `bytes` (no allocation per argument: a replica parses every write its master sends).
/// The parser is rebuilt on each call from the retained bytes, so the link state stays plain
/// data (hashable for the model) at the cost of re-reading one partial command.
pub fn parse_stream(
    bytes: &[u8],
    max_commands: usize,
) -> Result<(Vec<StreamCommand>, usize), StreamError> {
    let mut buf = BytesMut::from(bytes);
    let mut parser = RequestParser::new();
    let limits = Limits::default();
    let mut consumed = 0u64;
    let mut out = Vec::new();
    while out.len() < max_commands {
        let mut wire = 0u64;
        match parser.next_counted(&mut buf, &limits, &mut wire) {
            Ok(Some(args)) => {
                consumed += wire;
                out.push(StreamCommand {
                    kind: classify(args),
                    wire_bytes: wire,
                });
            }
            Ok(None) => break,
            Err(e) => return Err(StreamError(e.to_string())),
        }
        if buf.is_empty() {
            break;
        }
    }
    // Partial commands are re-read next time; the parser's progress inside them is discarded.
    // `consumed` counts bytes of `bytes`, so it fits in usize.
    Ok((out, consumed as usize))
}

fn classify(args: Vec<Bytes>) -> StreamKind {
    let is = |i: usize, word: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    if args.len() == 1 && is(0, b"PING") {
        StreamKind::Ping
    } else if is(0, b"REPLCONF") && is(1, b"GETACK") {
        StreamKind::GetAck
    } else if is(0, b"REPLCONF") {
        StreamKind::OtherReplconf
    } else {
        StreamKind::Write(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode_command;

    /// [`parse_stream`], then the parsed bytes dropped from `pending` (what `apply_stream`
    /// does with the link's pending bytes).
    fn split_stream(
        pending: &mut Vec<u8>,
        max_commands: usize,
    ) -> Result<Vec<StreamCommand>, StreamError> {
        let (cmds, consumed) = parse_stream(pending, max_commands)?;
        pending.drain(..consumed);
        Ok(cmds)
    }

    #[test]
    fn stream_splits_commands_and_keeps_a_partial_tail() {
        let mut bytes = Vec::new();
        encode_command(&["SET", "k", "v"], &mut bytes);
        encode_command(&["PING"], &mut bytes);
        encode_command(&["REPLCONF", "GETACK", "*"], &mut bytes);
        let tail_start = bytes.len();
        encode_command(&["SET", "k2", "v2"], &mut bytes);
        let mut pending = bytes[..tail_start + 9].to_vec();
        let cmds = split_stream(&mut pending, 64).expect("valid stream");
        assert_eq!(cmds.len(), 3);
        assert_eq!(
            cmds[0].kind,
            StreamKind::Write(vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"v")
            ])
        );
        assert_eq!(cmds[0].wire_bytes, 27);
        assert_eq!(
            cmds[1],
            StreamCommand {
                kind: StreamKind::Ping,
                wire_bytes: 14
            }
        );
        assert_eq!(
            cmds[2],
            StreamCommand {
                kind: StreamKind::GetAck,
                wire_bytes: 37
            }
        );
        assert_eq!(pending, bytes[tail_start..tail_start + 9].to_vec());
        pending.extend_from_slice(&bytes[tail_start + 9..]);
        let cmds = split_stream(&mut pending, 64).expect("valid stream");
        assert_eq!(cmds.len(), 1);
        assert!(pending.is_empty());
    }

    #[test]
    fn garbage_from_the_master_is_a_typed_error() {
        let mut pending = b"*1\r\n$x\r\n".to_vec();
        assert!(split_stream(&mut pending, 64).is_err());
    }

    /// Only a bare `PING` is the heartbeat and only `REPLCONF GETACK` asks for an ack: a
    /// one-word write (`EXEC`), another REPLCONF, or a write whose argument is `GETACK` are
    /// what they are; at most `max_commands` commands are split off per call.
    #[test]
    fn stream_commands_are_classified_by_their_whole_shape() {
        let mut bytes = Vec::new();
        for cmd in [
            &["EXEC"][..],
            &["ping"],
            &["PING", "x"],
            &["REPLCONF", "GETACK", "*"],
            &["REPLCONF", "ACK", "1"],
            &["SET", "GETACK", "*"],
        ] {
            encode_command(cmd, &mut bytes);
        }
        let mut pending = bytes.clone();
        let kinds: Vec<StreamKind> = split_stream(&mut pending, 64)
            .expect("valid stream")
            .into_iter()
            .map(|c| c.kind)
            .collect();
        let write = |words: &[&'static str]| {
            StreamKind::Write(
                words
                    .iter()
                    .map(|w| Bytes::from_static(w.as_bytes()))
                    .collect(),
            )
        };
        assert_eq!(
            kinds,
            vec![
                write(&["EXEC"]),
                StreamKind::Ping,
                write(&["PING", "x"]),
                StreamKind::GetAck,
                StreamKind::OtherReplconf,
                write(&["SET", "GETACK", "*"]),
            ]
        );
        let mut pending = bytes;
        assert_eq!(split_stream(&mut pending, 1).expect("valid").len(), 1);
        assert_eq!(split_stream(&mut pending, 2).expect("valid").len(), 2);
    }

    /// ROLE's and INFO's words for the link phases, as Redis 7.0 prints them.
    #[test]
    fn link_phases_have_redis_role_states() {
        let transfer = LinkPhase::Transfer {
            replid: super::super::ids::ReplId::ZERO,
            offset: 0,
        };
        assert_eq!(LinkPhase::Down.role_state(), "connect");
        assert_eq!(LinkPhase::AwaitPong.role_state(), "connecting");
        assert_eq!(LinkPhase::AwaitPsyncReply.role_state(), "connecting");
        assert_eq!(transfer.role_state(), "sync");
        assert_eq!(LinkPhase::Streaming.role_state(), "connected");
        assert!(LinkPhase::Streaming.is_up());
        assert!(!LinkPhase::Down.is_up() && !transfer.is_up());
    }
}
