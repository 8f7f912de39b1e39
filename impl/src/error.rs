//! Typed command errors, and the one place that renders them as Redis 7.0's error texts.
//!
//! Three kinds of failure reach a client, and only the first lives here:
//! - the client's (a bad argument, a wrong type): a [`CmdError`], replied as `-ERR ...`;
//! - the peer's framing (malformed RESP): `verdis_core::resp::ProtocolError`, replied and the
//!   connection closed;
//! - ours (a broken invariant): an assertion, never a reply.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `
    UnknownCommand {
        name: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    /// `ERR unknown subcommand 'foo'. Try OBJECT HELP.`
    UnknownSubcommand {
        sub: Vec<u8>,
        command: &'static str,
    },
    /// `ERR unknown subcommand or wrong number of arguments for 'FOO'. Try DEBUG HELP.`
    UnknownSubcommandOrArity {
        sub: Vec<u8>,
        command: &'static str,
    },
    /// `ERR wrong number of arguments for 'get' command`
    WrongArity(String),
    WrongType,
    Syntax,
    NotInteger,
    NotFloat,
    Overflow,
    /// `ERR increment would produce NaN or Infinity`
    NanOrInfinity,
    InvalidExpire(&'static str),
    DbIndexOutOfRange,
    NoSuchKey,
    InvalidCursor,
    OffsetOutOfRange,
    StringTooLong,
    NoAuth,
    WrongPass,
    AuthNotConfigured,
    NoProto,
    /// Errors inside MULTI
    NestedMulti,
    ExecWithoutMulti,
    DiscardWithoutMulti,
    WatchInMulti,
    /// `EXECABORT Transaction discarded because of previous errors.`
    ExecAbort,
    /// A command refused by a connection-state rule, e.g. `ERR Command not allowed inside a transaction`.
    NotAllowedInMulti(String),
    /// Any other message, rendered as `ERR <msg>`.
    Err(String),
    /// A message with its own error code, rendered as is (`NOREPLICAS ...`, `READONLY ...`).
    Coded(String),
}

impl CmdError {
    pub fn err(msg: impl Into<String>) -> Self {
        CmdError::Err(msg.into())
    }

    pub fn wrong_arity(cmd: &str) -> Self {
        CmdError::WrongArity(cmd.to_ascii_lowercase())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::UnknownCommand { name, args } => {
                // Redis shows at most 128 bytes of the name and of each argument.
                let name = lossy(&name[..name.len().min(128)]);
                write!(f, "ERR unknown command '{name}', with args beginning with: ")?;
                for a in args {
                    write!(f, "'{}' ", lossy(&a[..a.len().min(128)]))?;
                }
                Ok(())
            }
            CmdError::UnknownSubcommand { sub, command } => write!(
                f,
                "ERR unknown subcommand '{}'. Try {} HELP.",
                lossy(&sub[..sub.len().min(128)]),
                command
            ),
            CmdError::UnknownSubcommandOrArity { sub, command } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
                lossy(&sub[..sub.len().min(128)]),
                command
            ),
            CmdError::WrongArity(cmd) => {
                write!(f, "ERR wrong number of arguments for '{cmd}' command")
            }
            CmdError::WrongType => f.write_str(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            CmdError::Syntax => f.write_str("ERR syntax error"),
            CmdError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CmdError::NotFloat => f.write_str("ERR value is not a valid float"),
            CmdError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CmdError::NanOrInfinity => f.write_str("ERR increment would produce NaN or Infinity"),
            CmdError::InvalidExpire(cmd) => write!(f, "ERR invalid expire time in '{cmd}' command"),
            CmdError::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            CmdError::NoSuchKey => f.write_str("ERR no such key"),
            CmdError::InvalidCursor => f.write_str("ERR invalid cursor"),
            CmdError::OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            CmdError::StringTooLong => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            CmdError::NoAuth => f.write_str("NOAUTH Authentication required."),
            CmdError::WrongPass => f.write_str(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ),
            CmdError::AuthNotConfigured => f.write_str(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ),
            CmdError::NoProto => f.write_str("NOPROTO unsupported protocol version"),
            CmdError::NestedMulti => f.write_str("ERR MULTI calls can not be nested"),
            CmdError::ExecWithoutMulti => f.write_str("ERR EXEC without MULTI"),
            CmdError::DiscardWithoutMulti => f.write_str("ERR DISCARD without MULTI"),
            CmdError::WatchInMulti => f.write_str("ERR WATCH inside MULTI is not allowed"),
            CmdError::ExecAbort => {
                f.write_str("EXECABORT Transaction discarded because of previous errors.")
            }
            CmdError::NotAllowedInMulti(msg) => write!(f, "ERR {msg}"),
            CmdError::Err(msg) => write!(f, "ERR {msg}"),
            CmdError::Coded(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CmdError {}

pub type CmdResult<T = ()> = Result<T, CmdError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_lists_its_arguments_like_redis() {
        let e = CmdError::UnknownCommand {
            name: b"foo".to_vec(),
            args: vec![b"a".to_vec(), b"b".to_vec()],
        };
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }
}
