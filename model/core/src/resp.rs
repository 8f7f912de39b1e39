//! RESP framing shared by the server, the replication core and the model.
//!
//! Three pieces, all sans-IO:
//! - [`RequestParser`]: what a server reads from a client or a master link. Multibulk requests
//!   (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline requests (`GET k\r\n`, as telnet and
//!   redis-cli send them). Incremental and linear: every complete bulk is split off the buffer
//!   as soon as it has arrived, so a 512 MB value or a million-element request costs one pass.
//! - [`parse_frame`]: a general RESP2/RESP3 reply parser, for the replica side of a link
//!   (`+FULLRESYNC`, `+CONTINUE`, errors) and for tests.
//! - [`encode_command`]: the one encoder of commands as RESP arrays. The replication stream,
//!   and therefore every replication offset, is made of its output, so the model and the
//!   server count offsets with the same bytes.
//!
//! Errors carry Redis 7.0's texts; a protocol error means the connection is closed after the
//! error reply, as Redis does.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// The longest inline request, and the longest `*<n>` / `$<n>` header line (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX_BYTES: usize = 64 * 1024;
/// Before AUTH, Redis refuses requests with more elements than this.
pub const UNAUTHENTICATED_MAX_ARGS: u64 = 10;
/// Before AUTH, Redis refuses bulks longer than this.
pub const UNAUTHENTICATED_MAX_BULK_BYTES: u64 = 16 * 1024;
/// Redis refuses a multibulk count above INT_MAX.
pub const MULTIBULK_MAX_ARGS: u64 = i32::MAX as u64;

/// Limits applied while parsing one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the longest bulk string accepted.
    pub max_bulk_bytes: u64,
    /// Whether the connection has authenticated; unauthenticated ones get the tight limits above.
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_bytes: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// A malformed request. The text is Redis's; the connection is closed after replying with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInlineRequest,
    UnbalancedQuotes,
    InvalidMultibulkLength,
    TooBigMbulkCountString,
    ExpectedDollar(u8),
    TooBigBulkCountString,
    InvalidBulkLength,
    UnauthenticatedMultibulkLength,
    UnauthenticatedBulkLength,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            ProtocolError::TooBigInlineRequest => f.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::TooBigMbulkCountString => f.write_str("too big mbulk count string"),
            ProtocolError::ExpectedDollar(got) => {
                write!(f, "expected '$', got '{}'", char::from(*got))
            }
            ProtocolError::TooBigBulkCountString => f.write_str("too big bulk count string"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::UnauthenticatedMultibulkLength => {
                f.write_str("unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Where the parser is inside a multibulk request.
#[derive(Debug, Default)]
enum ParseState {
    /// Between requests.
    #[default]
    Idle,
    /// Inside `*<n>`: `remaining` bulks still to read.
    Multibulk { remaining: u64 },
    /// A `$<len>` header was read; waiting for `len` bytes plus CRLF.
    Bulk { remaining: u64, len_bytes: u64 },
}

/// Incremental request parser. Feed it the connection's read buffer after every read.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: ParseState,
    args: Vec<Bytes>,
    /// Emptied argument vectors handed back by the driver ([`RequestParser::recycle`]), so a
    /// request of a pipelined batch takes one instead of allocating.
    spare: Vec<Vec<Bytes>>,
    /// Tests only: every request through the state machine, to compare it with the fast path.
    #[cfg(test)]
    slow_only: bool,
}

/// The most arguments of a request that [`RequestParser::whole_request`] takes.
const WHOLE_REQUEST_MAX_ARGS: usize = 8;

/// The most emptied argument vectors a parser keeps ([`RequestParser::recycle`]).
const SPARE_ARG_VECS: usize = 64;
/// The largest argument vector a parser keeps for reuse.
const SPARE_ARG_VEC_MAX_ARGS: usize = 16;

/// One request read off a connection: its arguments and how many bytes it took on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub args: Vec<Bytes>,
    /// Bytes of the request as read, headers included. Replicas count their offset with this.
    pub wire_bytes: u64,
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a request is partly read (a client must not send PSYNC then, for example).
    pub fn is_mid_request(&self) -> bool {
        !matches!(self.state, ParseState::Idle)
    }

    /// Returns the next complete request, `Ok(None)` if more bytes are needed.
    /// Bytes of a complete request are removed from `buf`; a partial bulk header stays.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Request>, ProtocolError> {
        let mut wire_bytes = 0u64;
        self.next_counted(buf, limits, &mut wire_bytes)
            .map(|opt| opt.map(|args| Request { args, wire_bytes }))
    }

    fn fast_path_on(&self) -> bool {
        #[cfg(test)]
        return !self.slow_only;
        #[cfg(not(test))]
        true
    }

    /// The fast path for a request that lies whole in `buf`, with at most
    /// [`WHOLE_REQUEST_MAX_ARGS`] arguments, well formed and within the limits (the common
    /// case of a pipelined batch): its headers are read in place, the request's bytes are
    /// taken off `buf` in one split, and each argument is a slice of them. Anything else
    /// (a part still to come, a malformed or oversized header, an empty request) returns None
    /// with `buf` untouched, and the state machine takes it as before, errors included.
    fn whole_request(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        wire_bytes: &mut u64,
    ) -> Option<Vec<Bytes>> {
        let line_end = find_crlf(buf)?;
        let count = parse_i64(&buf[1..line_end])?;
        if !(1..=WHOLE_REQUEST_MAX_ARGS as i64).contains(&count) {
            return None;
        }
        let mut ranges = [(0usize, 0usize); WHOLE_REQUEST_MAX_ARGS];
        let mut at = line_end + 2;
        for range in ranges.iter_mut().take(count as usize) {
            if buf.get(at) != Some(&b'$') {
                return None;
            }
            let header_end = at + find_crlf(&buf[at..])?;
            let len = parse_i64(&buf[at + 1..header_end])?;
            if len < 0 || len as u64 > limits.max_bulk_bytes {
                return None;
            }
            let start = header_end + 2;
            let end = start.checked_add(len as usize)?;
            // The CRLF after the bytes must have arrived; like Redis, it is not checked.
            if end.checked_add(2)? > buf.len() {
                return None;
            }
            *range = (start, end);
            at = end + 2;
        }
        let request = buf.split_to(at).freeze();
        *wire_bytes += at as u64;
        let mut args = self.spare.pop().unwrap_or_default();
        args.extend(
            ranges[..count as usize]
                .iter()
                .map(|&(start, end)| request.slice(start..end)),
        );
        Some(args)
    }

    /// Hands back the argument vector of an executed request: the parser empties it and
    /// reuses it for a later request (a small one, and a bounded number of them).
    pub fn recycle(&mut self, mut args: Vec<Bytes>) {
        if args.capacity() <= SPARE_ARG_VEC_MAX_ARGS && self.spare.len() < SPARE_ARG_VECS {
            args.clear();
            self.spare.push(args);
        }
    }

    /// Like [`RequestParser::next_request`], adding to `wire_bytes` every byte it consumes
    /// (also bytes of empty lines and of requests spread over several calls).
    pub fn next_counted(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        wire_bytes: &mut u64,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            match self.state {
                ParseState::Idle => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if buf[0] == b'*' {
                        if limits.authenticated && self.fast_path_on() {
                            if let Some(args) = self.whole_request(buf, limits, wire_bytes) {
                                return Ok(Some(args));
                            }
                        }
                        let Some(line_end) = find_crlf(buf) else {
                            if buf.len() > INLINE_MAX_BYTES {
                                return Err(ProtocolError::TooBigMbulkCountString);
                            }
                            return Ok(None);
                        };
                        let count = parse_i64(&buf[1..line_end]);
                        let count = match count {
                            Some(n) if n <= MULTIBULK_MAX_ARGS as i64 => n,
                            _ => return Err(ProtocolError::InvalidMultibulkLength),
                        };
                        if !limits.authenticated && count > UNAUTHENTICATED_MAX_ARGS as i64 {
                            return Err(ProtocolError::UnauthenticatedMultibulkLength);
                        }
                        buf.advance(line_end + 2);
                        *wire_bytes += (line_end + 2) as u64;
                        if count <= 0 {
                            // `*0` and `*-1` are empty requests: ignored, as Redis does.
                            continue;
                        }
                        let remaining = count as u64;
                        self.args = self.spare.pop().unwrap_or_default();
                        self.args.reserve(remaining.min(1024) as usize);
                        self.state = ParseState::Multibulk { remaining };
                    } else {
                        let Some(line) = self.inline(buf, wire_bytes)? else {
                            return Ok(None);
                        };
                        if line.is_empty() {
                            continue;
                        }
                        return Ok(Some(line));
                    }
                }
                ParseState::Multibulk { remaining } => {
                    if remaining == 0 {
                        self.state = ParseState::Idle;
                        return Ok(Some(std::mem::take(&mut self.args)));
                    }
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let Some(line_end) = find_crlf(buf) else {
                        if buf.len() > INLINE_MAX_BYTES {
                            return Err(ProtocolError::TooBigBulkCountString);
                        }
                        return Ok(None);
                    };
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[0]));
                    }
                    let len = match parse_i64(&buf[1..line_end]) {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_bytes => n as u64,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if !limits.authenticated && len > UNAUTHENTICATED_MAX_BULK_BYTES {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    buf.advance(line_end + 2);
                    *wire_bytes += (line_end + 2) as u64;
                    self.state = ParseState::Bulk {
                        remaining,
                        len_bytes: len,
                    };
                }
                ParseState::Bulk {
                    remaining,
                    len_bytes,
                } => {
                    // `len_bytes` is bounded by max_bulk_bytes, which fits in memory by config.
                    let need = len_bytes as usize + 2;
                    if buf.len() < need {
                        buf.reserve(need - buf.len());
                        return Ok(None);
                    }
                    let arg = buf.split_to(len_bytes as usize).freeze();
                    buf.advance(2); // CRLF; Redis does not check these two bytes either.
                    *wire_bytes += need as u64;
                    self.args.push(arg);
                    self.state = ParseState::Multibulk {
                        remaining: remaining - 1,
                    };
                }
            }
        }
    }

    /// Reads one inline line (`GET k\r\n` or `GET k\n`).
    fn inline(
        &mut self,
        buf: &mut BytesMut,
        wire_bytes: &mut u64,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX_BYTES {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(None);
        };
        let mut end = nl;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        let args = split_args(&buf[..end]).ok_or(ProtocolError::UnbalancedQuotes)?;
        buf.advance(nl + 1);
        *wire_bytes += (nl + 1) as u64;
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

/// Position of the first `\r\n` in `buf`, if complete.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    let r = buf.iter().position(|&b| b == b'\r')?;
    if r + 1 < buf.len() {
        Some(r)
    } else {
        None
    }
}

/// Parses a decimal i64 the way Redis's string2ll does: optional `-`, digits, no `+`, no
/// spaces, no leading zeros (except "0"), no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Splits an inline request into arguments like Redis's sdssplitargs: spaces separate,
/// `"..."` understands `\n \r \t \b \a \\ \" \xHH`, `'...'` understands `\'`. A closing quote
/// must be followed by a space or the end. Returns None on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        cur.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < n {
                    let e = match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    cur.push(e);
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(cur);
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encodes a command as a RESP array of bulk strings: the form of every replicated command.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    out.push(b'*');
    push_decimal(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        push_decimal(out, a.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The number of bytes [`encode_command`] writes for `args`, without writing them.
pub fn encoded_command_len<A: AsRef<[u8]>>(args: &[A]) -> u64 {
    let mut n = 1 + decimal_len(args.len() as u64) + 2;
    for a in args {
        let len = a.as_ref().len() as u64;
        n += 1 + decimal_len(len) + 2 + len + 2;
    }
    n
}

fn decimal_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Appends the decimal digits of `v`.
pub fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A RESP2 or RESP3 value as a client reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// RESP2 `$-1` / `*-1`, RESP3 `_`.
    Null,
    Array(Vec<Frame>),
    /// RESP3 only below.
    Double(f64),
    Boolean(bool),
    BigNumber(Bytes),
    Verbatim(Bytes),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
}

/// A reply that is not valid RESP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError(pub String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid RESP reply: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

/// The deepest nesting [`parse_frame`] accepts, so hostile input cannot exhaust the stack.
pub const FRAME_MAX_DEPTH: usize = 64;
/// The most elements one aggregate may announce before its elements have arrived.
pub const FRAME_MAX_ELEMENTS: i64 = 1 << 24;

/// Parses one reply frame at the start of `buf`. Returns the frame and its length in bytes,
/// `Ok(None)` if incomplete.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    if depth > FRAME_MAX_DEPTH {
        return Err(FrameError("nesting too deep".into()));
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    // The line after the type byte, up to CRLF.
    let Some(rel_end) = find_crlf(&buf[pos + 1..]) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..pos + 1 + rel_end];
    let after = pos + 1 + rel_end + 2;
    let int = |line: &[u8]| -> Result<i64, FrameError> {
        parse_i64(line).ok_or_else(|| FrameError(format!("bad length {:?}", lossy(line))))
    };
    match tag {
        b'+' => Ok(Some((Frame::Simple(Bytes::copy_from_slice(line)), after))),
        b'-' => Ok(Some((Frame::Error(Bytes::copy_from_slice(line)), after))),
        b':' => Ok(Some((Frame::Integer(int(line)?), after))),
        b'(' => Ok(Some((
            Frame::BigNumber(Bytes::copy_from_slice(line)),
            after,
        ))),
        b'_' => Ok(Some((Frame::Null, after))),
        b'#' => match line {
            b"t" => Ok(Some((Frame::Boolean(true), after))),
            b"f" => Ok(Some((Frame::Boolean(false), after))),
            _ => Err(FrameError("bad boolean".into())),
        },
        b',' => {
            let text = std::str::from_utf8(line).map_err(|_| FrameError("bad double".into()))?;
            let v = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                t => t.parse().map_err(|_| FrameError("bad double".into()))?,
            };
            Ok(Some((Frame::Double(v), after)))
        }
        b'$' | b'=' | b'!' => {
            let len = int(line)?;
            if len < 0 {
                return Ok(Some((Frame::Null, after)));
            }
            let len = len as usize;
            if buf.len() < after + len + 2 {
                return Ok(None);
            }
            let data = Bytes::copy_from_slice(&buf[after..after + len]);
            let frame = match tag {
                b'$' => Frame::Bulk(data),
                b'=' => Frame::Verbatim(data),
                _ => Frame::Error(data),
            };
            Ok(Some((frame, after + len + 2)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let count = int(line)?;
            if count < 0 {
                return Ok(Some((Frame::Null, after)));
            }
            if count > FRAME_MAX_ELEMENTS {
                return Err(FrameError("aggregate too long".into()));
            }
            let items = if tag == b'%' { count * 2 } else { count };
            let mut elems = Vec::with_capacity((items as usize).min(1024));
            let mut cur = after;
            for _ in 0..items {
                match parse_at(buf, cur, depth + 1)? {
                    Some((f, next)) => {
                        elems.push(f);
                        cur = next;
                    }
                    None => return Ok(None),
                }
            }
            let frame = match tag {
                b'*' => Frame::Array(elems),
                b'~' => Frame::Set(elems),
                b'>' => Frame::Push(elems),
                _ => {
                    let mut pairs = Vec::with_capacity(elems.len() / 2);
                    let mut it = elems.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
            };
            Ok(Some((frame, cur)))
        }
        other => Err(FrameError(format!("unknown type byte 0x{other:02x}"))),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_recycled_argument_vector_is_reused_emptied_and_bounded() {
        let limits = Limits {
            max_bulk_bytes: 1 << 20,
            authenticated: true,
        };
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(
            &b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nc\r\n"[..],
        );
        let first = parser
            .next_request(&mut buf, &limits)
            .unwrap()
            .unwrap()
            .args;
        let at = first.as_ptr();
        parser.recycle(first);
        let second = parser
            .next_request(&mut buf, &limits)
            .unwrap()
            .unwrap()
            .args;
        assert_eq!(
            second.as_ptr(),
            at,
            "the vector handed back carries the next request"
        );
        assert_eq!(
            second,
            vec![Bytes::from("SET"), Bytes::from("b"), Bytes::from("c")]
        );
        // A large vector is not kept, nor more than the bound.
        parser.recycle(Vec::with_capacity(SPARE_ARG_VEC_MAX_ARGS + 1));
        assert!(parser.spare.is_empty());
        for _ in 0..SPARE_ARG_VECS + 10 {
            parser.recycle(Vec::with_capacity(2));
        }
        assert_eq!(parser.spare.len(), SPARE_ARG_VECS);
    }

    fn parse_all(input: &[u8], limits: &Limits) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(r) = parser.next_request(&mut buf, limits)? {
            out.push(r.args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_requests_parse_to_the_same_arguments() {
        let l = Limits::default();
        let a = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &l).unwrap();
        let b = parse_all(b"GET k\r\n", &l).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, vec![vec![Bytes::from("GET"), Bytes::from("k")]]);
    }

    #[test]
    fn wire_bytes_count_every_consumed_byte() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..]);
        let r = p
            .next_request(&mut buf, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(r.wire_bytes, 14);
    }

    #[test]
    fn a_request_split_at_every_byte_parses_the_same() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING\r\n";
        let l = Limits::default();
        for split in 0..input.len() {
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(&input[..split]);
            let mut got = Vec::new();
            while let Some(r) = p.next_request(&mut buf, &l).unwrap() {
                got.push(r.args);
            }
            buf.extend_from_slice(&input[split..]);
            while let Some(r) = p.next_request(&mut buf, &l).unwrap() {
                got.push(r.args);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0][2], Bytes::from("value"));
        }
    }

    #[test]
    fn malformed_requests_get_redis_error_texts() {
        let l = Limits::default();
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "Protocol error: invalid multibulk length"),
            (
                b"*3000000000\r\n",
                "Protocol error: invalid multibulk length",
            ),
            (b"*1\r\n+foo\r\n", "Protocol error: expected '$', got '+'"),
            (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
            (
                b"*1\r\n$600000000\r\n",
                "Protocol error: invalid bulk length",
            ),
            (
                b"SET \"a b\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"SET \"a\"b c\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, text) in cases {
            let err = parse_all(input, &l).unwrap_err();
            assert_eq!(err.to_string(), *text, "input {:?}", lossy(input));
        }
        let long = vec![b'a'; INLINE_MAX_BYTES + 1];
        assert_eq!(
            parse_all(&long, &l).unwrap_err(),
            ProtocolError::TooBigInlineRequest
        );
        let mut star = b"*".to_vec();
        star.extend(vec![b'1'; INLINE_MAX_BYTES + 1]);
        assert_eq!(
            parse_all(&star, &l).unwrap_err(),
            ProtocolError::TooBigMbulkCountString
        );
    }

    #[test]
    fn unauthenticated_connections_get_tight_limits() {
        let l = Limits {
            authenticated: false,
            ..Limits::default()
        };
        assert_eq!(
            parse_all(b"*11\r\n", &l).unwrap_err(),
            ProtocolError::UnauthenticatedMultibulkLength
        );
        assert_eq!(
            parse_all(b"*1\r\n$16385\r\n", &l).unwrap_err(),
            ProtocolError::UnauthenticatedBulkLength
        );
    }

    #[test]
    fn empty_requests_are_ignored() {
        let got = parse_all(b"\r\n\n*0\r\n*-1\r\nPING\r\n", &Limits::default()).unwrap();
        assert_eq!(got, vec![vec![Bytes::from("PING")]]);
    }

    #[test]
    fn inline_quotes_and_escapes_follow_sdssplitargs() {
        let got = split_args(br#"set "a\x41\n" 'it\'s' plain"#).unwrap();
        assert_eq!(
            got,
            vec![
                b"set".to_vec(),
                b"aA\n".to_vec(),
                b"it's".to_vec(),
                b"plain".to_vec()
            ]
        );
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split_args(b"\"\"").unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn parse_i64_matches_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", lossy(bad));
        }
    }

    #[test]
    fn encoded_length_matches_encoding() {
        let args = [&b"SET"[..], b"key", b"0123456789"];
        let mut out = Vec::new();
        encode_command(&args, &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n"
        );
        assert_eq!(encoded_command_len(&args), out.len() as u64);
    }

    #[test]
    fn reply_frames_parse_resp2_and_resp3() {
        let (f, n) = parse_frame(b"+FULLRESYNC abc 12\r\nrest").unwrap().unwrap();
        assert_eq!(f, Frame::Simple(Bytes::from("FULLRESYNC abc 12")));
        assert_eq!(n, 20);
        let (f, _) = parse_frame(b"%1\r\n+a\r\n:1\r\n").unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Map(vec![(Frame::Simple(Bytes::from("a")), Frame::Integer(1))])
        );
        assert_eq!(parse_frame(b"*2\r\n:1\r\n").unwrap(), None);
        assert!(parse_frame(b"?x\r\n").is_err());
        assert_eq!(parse_frame(b"$-1\r\n").unwrap().unwrap().0, Frame::Null);
    }

    /// Feeds `input` in chunks of the given sizes, collecting every request (with its wire
    /// bytes) until the input ends or an error.
    fn parse_chunked(
        input: &[u8],
        chunks: &[usize],
        slow_only: bool,
        authenticated: bool,
    ) -> (Vec<Request>, Option<ProtocolError>, usize) {
        let limits = Limits {
            max_bulk_bytes: 40,
            authenticated,
        };
        let mut parser = RequestParser::new();
        parser.slow_only = slow_only;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        let mut sizes = chunks.iter().cycle();
        while fed < input.len() {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
            loop {
                match parser.next_request(&mut buf, &limits) {
                    Ok(Some(r)) => {
                        out.push(r.clone());
                        parser.recycle(r.args);
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), buf.len()),
                }
            }
        }
        (out, None, buf.len())
    }

    /// Pieces of requests, valid and not, for the fast-path comparison.
    fn request_piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            6 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..11)
                .prop_map(|args| {
                    let mut out = Vec::new();
                    encode_command(&args, &mut out);
                    out
                }),
            1 => proptest::collection::vec(
                proptest::sample::select(b"*$0123456789-\r\nab ".to_vec()), 0..24),
        ]
    }

    proptest! {
        /// The whole-request fast path changes nothing: any stream of requests, valid or
        /// not, fed in any chunks, gives the same requests, wire bytes, error and leftover
        /// as the state machine alone.
        #[test]
        fn the_fast_path_parses_as_the_state_machine(
            pieces in proptest::collection::vec(request_piece(), 0..12),
            chunks in proptest::collection::vec(1usize..600, 1..8),
            authenticated in any::<bool>(),
        ) {
            let input = pieces.concat();
            prop_assert_eq!(
                parse_chunked(&input, &chunks, false, authenticated),
                parse_chunked(&input, &chunks, true, authenticated)
            );
        }

        /// Any byte string either parses into requests or gives a protocol error; never panics.
        #[test]
        fn any_bytes_parse_or_error(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_all(&input, &Limits::default());
            let _ = parse_frame(&input);
        }

        /// Encoding a command and parsing it back gives the same arguments and length.
        #[test]
        fn encode_parse_round_trip(args in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 1..8)) {
            let mut out = Vec::new();
            encode_command(&args, &mut out);
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(&out[..]);
            let r = p.next_request(&mut buf, &Limits::default()).unwrap().unwrap();
            prop_assert_eq!(r.wire_bytes, out.len() as u64);
            let got: Vec<Vec<u8>> = r.args.iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(got, args);
            prop_assert!(buf.is_empty());
        }
    }
}
