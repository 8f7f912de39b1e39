//! Reply encoding for RESP2 and RESP3.
//!
//! Commands write their replies straight into the connection's output buffer through
//! [`ReplyWriter`], which knows the protocol version the client chose with `HELLO`. Writing the
//! encoded bytes directly (instead of building a reply tree) keeps `GET` free of allocations
//! while the keyspace lock is held, and byte-exact tests read exactly what a client reads.

use crate::error::CmdError;
use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Encodes replies into a byte buffer in the connection's protocol.
pub struct ReplyWriter<'a> {
    pub buf: &'a mut BytesMut,
    pub proto: Protocol,
    /// Counts error replies written, for INFO's total_error_replies.
    pub errors: u64,
}

impl<'a> ReplyWriter<'a> {
    pub fn new(buf: &'a mut BytesMut, proto: Protocol) -> Self {
        ReplyWriter {
            buf,
            proto,
            errors: 0,
        }
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// An error reply; the text is the typed error's Redis text.
    pub fn error(&mut self, e: &CmdError) {
        self.errors += 1;
        self.buf.put_u8(b'-');
        self.buf.put_slice(e.to_string().as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    pub fn int(&mut self, v: i64) {
        self.line(b':', v);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len() as i64);
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `v` (GET of an integer-encoded string).
    pub fn bulk_i64(&mut self, v: i64) {
        let text = i64_bytes(v);
        self.bulk(&text);
    }

    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    pub fn null(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.buf.put_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.buf.put_slice(b"_\r\n"),
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3): EXEC aborted by WATCH, for example.
    pub fn null_array(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.buf.put_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.buf.put_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, len: usize) {
        self.line(b'*', len as i64);
    }

    /// A map header: `%n` in RESP3, an array of 2n elements in RESP2.
    pub fn map(&mut self, pairs: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', (pairs * 2) as i64),
            Protocol::Resp3 => self.line(b'%', pairs as i64),
        }
    }

    /// A set header: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', len as i64),
            Protocol::Resp3 => self.line(b'~', len as i64),
        }
    }

    /// A double: `,` in RESP3, a bulk string in RESP2 (as Redis's addReplyDouble).
    pub fn double(&mut self, v: f64) {
        let text = format_double(v);
        match self.proto {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.buf.put_u8(b',');
                self.buf.put_slice(text.as_bytes());
                self.buf.put_slice(b"\r\n");
            }
        }
    }

    /// A verbatim string (`=len\r\ntxt:...` in RESP3, a bulk string in RESP2): INFO, CLIENT LIST.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.line(b'=', text.len() as i64 + 4);
                self.buf.put_slice(b"txt:");
                self.buf.put_slice(text);
                self.buf.put_slice(b"\r\n");
            }
        }
    }

    /// Raw bytes already in RESP form.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    /// `<tag><decimal>\r\n`, formatted on the stack (this runs for every reply).
    fn line(&mut self, tag: u8, v: i64) {
        let mut tmp = [0u8; 24];
        let mut i = tmp.len();
        tmp[i - 1] = b'\n';
        tmp[i - 2] = b'\r';
        i -= 2;
        let mut n = v.unsigned_abs();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            i -= 1;
            tmp[i] = b'-';
        }
        self.buf.put_u8(tag);
        self.buf.put_slice(&tmp[i..]);
    }
}

/// Decimal text of an i64, as bytes.
pub fn i64_bytes(v: i64) -> Vec<u8> {
    let mut tmp = Vec::with_capacity(20);
    if v < 0 {
        tmp.push(b'-');
    }
    verdis_core::resp::push_decimal(&mut tmp, v.unsigned_abs());
    tmp
}

/// Formats a double as Redis 7.0 replies it in RESP3 and for INCRBYFLOAT-like results:
/// `%.17g`, shortest round trip, `inf` / `-inf`.
pub fn format_double(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    // Rust's Display gives the shortest text that round-trips, which is what Redis 7.0's
    // fpconv_dtoa gives for RESP3 doubles, except for exponent notation of large values.
    let s = format!("{v}");
    if s.len() > 17 && (v.abs() >= 1e17 || (v != 0.0 && v.abs() < 1e-4)) {
        format!("{v:e}").replace('e', "e+").replace("e+-", "e-")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<F: FnOnce(&mut ReplyWriter)>(proto: Protocol, f: F) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let mut w = ReplyWriter::new(&mut buf, proto);
        f(&mut w);
        buf.to_vec()
    }

    #[test]
    fn null_and_aggregates_follow_the_protocol_version() {
        assert_eq!(with(Protocol::Resp2, |w| w.null()), b"$-1\r\n");
        assert_eq!(with(Protocol::Resp3, |w| w.null()), b"_\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.map(2)), b"*4\r\n");
        assert_eq!(with(Protocol::Resp3, |w| w.map(2)), b"%2\r\n");
        assert_eq!(with(Protocol::Resp3, |w| w.double(1.5)), b",1.5\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.double(1.5)), b"$3\r\n1.5\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.int(-3)), b":-3\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.bulk_i64(-42)), b"$3\r\n-42\r\n");
    }
}
