//! Parsing and rendering of directive values with Redis 7.0's rules and error texts:
//! `memtoull` memory units, `string2ll` integers, `yes`/`no`, enums, and the special
//! multi-argument directives (save, bind, client-output-buffer-limit, replicaof, ...).
//! Also `sdscatrepr`-style quoting, used for command-line options and CONFIG REWRITE.

use super::directives::{Kind, StrCheck};
use super::{BindAddr, ObufClass, ObufLimit, ReplicaOf, SavePoint};

/// Redis accepts at most this many `bind` addresses (`CONFIG_BINDADDR_MAX`).
pub(crate) const BIND_ADDR_MAX: usize = 16;

/// A validated value, ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Parsed {
    Bool(bool),
    Int(i128),
    /// Strings, enum names (lower case) and the rendered form of flag-like values.
    Str(String),
    Save(Vec<SavePoint>),
    Bind(Vec<BindAddr>),
    Obuf(Vec<(ObufClass, ObufLimit)>),
    ReplicaOf(Option<ReplicaOf>),
    Dir(String),
}

/// Parses the arguments of one directive (the words after its name).
pub(crate) fn parse_value(kind: Kind, args: &[&[u8]]) -> Result<Parsed, String> {
    let one = || -> Result<&[u8], String> {
        match args {
            [a] => Ok(a),
            _ => Err("wrong number of arguments".to_string()),
        }
    };
    match kind {
        Kind::Bool => parse_bool(one()?).map(Parsed::Bool),
        Kind::Int { min, max } => {
            let v = verdis_core::resp::parse_i64(one()?)
                .ok_or("argument couldn't be parsed into an integer")?;
            check_range(i128::from(v), min, max).map(Parsed::Int)
        }
        Kind::Octal { min, max } => {
            let v =
                strtoll_radix(one()?, 8).ok_or("argument couldn't be parsed as an octal number")?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min:o} and {max:o} inclusive"
                ));
            }
            Ok(Parsed::Int(v))
        }
        Kind::Mem { min, max } => {
            let v = memtoull(one()?).ok_or("argument must be a memory value")?;
            check_range(i128::from(v), min, max).map(Parsed::Int)
        }
        Kind::MemOrPercent { max_percent, max } => {
            let a = one()?;
            if let Some(v) = memtoull(a) {
                return check_range(i128::from(v), 0, max).map(Parsed::Int);
            }
            // Redis stores a percentage as its negation.
            let pct = match a.split_last() {
                Some((b'%', digits)) if !digits.is_empty() => verdis_core::resp::parse_i64(digits),
                _ => None,
            };
            match pct {
                Some(p) if p >= 0 => {
                    if i128::from(p) > max_percent {
                        return Err(format!(
                            "percentage argument must be less or equal to {max_percent}"
                        ));
                    }
                    Ok(Parsed::Int(-i128::from(p)))
                }
                _ => Err("argument must be a memory or percent value".to_string()),
            }
        }
        Kind::Enum(names) => {
            let a = one()?;
            names
                .iter()
                .find(|n| n.as_bytes().eq_ignore_ascii_case(a))
                .map(|n| Parsed::Str((*n).to_string()))
                .ok_or_else(|| enum_error(names))
        }
        Kind::Flags(names) => parse_flags(names, args).map(Parsed::Str),
        Kind::Str(check) => {
            let s = utf8(one()?)?;
            check_str(check, &s)?;
            Ok(Parsed::Str(s))
        }
        Kind::Save => parse_save(args).map(Parsed::Save),
        Kind::Bind => parse_bind(args).map(Parsed::Bind),
        Kind::ClientOutputBufferLimit => parse_obuf(args).map(Parsed::Obuf),
        Kind::ReplicaOf => parse_replicaof(args).map(Parsed::ReplicaOf),
        Kind::Dir => utf8(one()?).map(Parsed::Dir),
        Kind::NotifyKeyspaceEvents => parse_notify(one()?).map(Parsed::Str),
        Kind::OomScoreAdjValues => parse_oom_values(args).map(Parsed::Str),
        Kind::LatencyPercentiles => parse_percentiles(args).map(Parsed::Str),
    }
}

fn utf8(a: &[u8]) -> Result<String, String> {
    String::from_utf8(a.to_vec()).map_err(|_| {
        "argument must be valid UTF-8 (Verdis keeps configuration strings as UTF-8)".to_string()
    })
}

fn check_str(check: StrCheck, s: &str) -> Result<(), String> {
    match check {
        StrCheck::None => Ok(()),
        StrCheck::NoSlash(msg) if s.contains('/') => Err(msg.to_string()),
        StrCheck::NoSlash(_) => Ok(()),
        StrCheck::Hostname => {
            if s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                Ok(())
            } else {
                Err(
                    "Hostnames may only contain alphanumeric characters, hyphens or dots"
                        .to_string(),
                )
            }
        }
        StrCheck::ProcTitle => {
            if proc_title_is_valid(s) {
                Ok(())
            } else {
                Err("template format is invalid or contains unknown variables".to_string())
            }
        }
    }
}

/// Redis's `validateProcTitleTemplate`: every `{variable}` is known, braces balance, and the
/// expansion with an empty title is not blank. Variables that may expand to nothing in a
/// standalone server (server mode, unix socket, config file) count as empty.
fn proc_title_is_valid(template: &str) -> bool {
    const NON_EMPTY: &[&str] = &["listen-addr", "port", "tls-port"];
    const EMPTY: &[&str] = &["title", "server-mode", "unixsocket", "config-file"];
    let mut expanded = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        let var = &rest[open + 1..open + close];
        if NON_EMPTY.contains(&var) {
            expanded.push('x');
        } else if !EMPTY.contains(&var) {
            return false;
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return false;
    }
    expanded.push_str(rest);
    !expanded.trim_matches(' ').is_empty()
}

fn check_range(v: i128, min: i128, max: i128) -> Result<i128, String> {
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

fn enum_error(names: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    )
}

fn parse_bool(a: &[u8]) -> Result<bool, String> {
    if a.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if a.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".to_string())
    }
}

/// Redis's `memtoull`: digits then an optional unit among b, k, kb, m, mb, g, gb
/// (case-insensitive); `k` is 1000 and `kb` 1024. No sign, no spaces. Empty digits read as 0,
/// like the C code.
pub(crate) fn memtoull(a: &[u8]) -> Option<u64> {
    let digits_end = a
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(a.len());
    let (digits, unit) = a.split_at(digits_end);
    let unit = String::from_utf8_lossy(unit).to_ascii_lowercase();
    let mul: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    // strtoull saturates on overflow; the multiplication overflow is an error.
    let mut v: u64 = 0;
    for &d in digits {
        v = v.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    v.checked_mul(mul)
}

/// C `strtoll(s, &end, radix)` with the requirement `*end == '\0'`: leading white space and a
/// sign are allowed, the empty string reads as 0, overflow saturates.
fn strtoll_radix(a: &[u8], radix: u32) -> Option<i128> {
    if a.is_empty() {
        return Some(0);
    }
    let start = a
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(a.len());
    let mut rest = &a[start..];
    let neg = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    for &c in rest {
        let d = (c as char).to_digit(radix)?;
        v = (v * i128::from(radix) + i128::from(d)).min(i128::from(i64::MAX) + 1);
    }
    let v = if neg { -v } else { v.min(i128::from(i64::MAX)) };
    Some(v.max(i128::from(i64::MIN)))
}

fn strtoll(a: &[u8]) -> Option<i128> {
    strtoll_radix(a, 10)
}

fn parse_save(args: &[&[u8]]) -> Result<Vec<SavePoint>, String> {
    let args: &[&[u8]] = if matches!(args, [a] if a.is_empty()) {
        &[]
    } else {
        args
    };
    let bad = || "Invalid save parameters".to_string();
    if !args.chunks_exact(2).remainder().is_empty() {
        return Err(bad());
    }
    let mut points = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let seconds = strtoll(pair[0]).filter(|v| *v >= 1).ok_or_else(bad)?;
        let changes = strtoll(pair[1]).filter(|v| *v >= 0).ok_or_else(bad)?;
        points.push(SavePoint {
            seconds: u64::try_from(seconds).map_err(|_| bad())?,
            changes: u64::try_from(changes).map_err(|_| bad())?,
        });
    }
    Ok(points)
}

fn parse_bind(args: &[&[u8]]) -> Result<Vec<BindAddr>, String> {
    let args: &[&[u8]] = if matches!(args, [a] if a.is_empty()) {
        &[]
    } else {
        args
    };
    if args.len() > BIND_ADDR_MAX {
        return Err("Too many bind addresses specified.".to_string());
    }
    args.iter()
        .map(|a| {
            let s = utf8(a)?;
            Ok(match s.strip_prefix('-') {
                Some(addr) => BindAddr {
                    addr: addr.to_string(),
                    optional: true,
                },
                None => BindAddr {
                    addr: s,
                    optional: false,
                },
            })
        })
        .collect()
}

fn parse_obuf(args: &[&[u8]]) -> Result<Vec<(ObufClass, ObufLimit)>, String> {
    if !args.chunks_exact(4).remainder().is_empty() {
        return Err("Wrong number of arguments in buffer limit configuration.".to_string());
    }
    let mut out = Vec::with_capacity(args.len() / 4);
    for group in args.chunks(4) {
        let class = ObufClass::from_name(group[0])
            .ok_or("Invalid client class specified in buffer limit configuration.".to_string())?;
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = memtoull(group[1]).ok_or_else(bad)?;
        let soft = memtoull(group[2]).ok_or_else(bad)?;
        let secs = strtoll(group[3]).filter(|v| *v >= 0);
        let secs = secs.and_then(|v| u64::try_from(v).ok()).ok_or_else(bad)?;
        out.push((
            class,
            ObufLimit {
                hard_bytes: hard,
                soft_bytes: soft,
                soft_secs: secs,
            },
        ));
    }
    Ok(out)
}

fn parse_replicaof(args: &[&[u8]]) -> Result<Option<ReplicaOf>, String> {
    let [host, port] = args else {
        return Err("wrong number of arguments".to_string());
    };
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        return Ok(None);
    }
    let port = strtoll(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("Invalid master port")?;
    Ok(Some(ReplicaOf {
        host: utf8(host)?,
        port,
    }))
}

fn parse_flags(names: &[&str], args: &[&[u8]]) -> Result<String, String> {
    if args.is_empty() {
        return Err(enum_error(names));
    }
    let mut set = vec![false; names.len()];
    for a in args {
        let i = names
            .iter()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(a))
            .ok_or_else(|| enum_error(names))?;
        set[i] = true;
    }
    // The first name is the empty set ("default").
    let chosen: Vec<&str> = names
        .iter()
        .zip(&set)
        .skip(1)
        .filter(|(_, s)| **s)
        .map(|(n, _)| *n)
        .collect();
    Ok(if chosen.is_empty() {
        names[0].to_string()
    } else {
        chosen.join(" ")
    })
}

/// Event classes of `notify-keyspace-events`, in the order Redis renders them.
const NOTIFY_CLASSES: &[u8] = b"g$lshzxetdn";
/// The classes `A` stands for (every class but `n`, new keys).
const NOTIFY_ALL: &[u8] = b"g$lshzxetd";

fn parse_notify(a: &[u8]) -> Result<String, String> {
    let mut classes = [false; 11];
    let (mut keyspace, mut keyevent, mut miss) = (false, false, false);
    for &c in a {
        match c {
            b'A' => {
                for x in NOTIFY_ALL {
                    if let Some(i) = NOTIFY_CLASSES.iter().position(|y| y == x) {
                        classes[i] = true;
                    }
                }
            }
            b'K' => keyspace = true,
            b'E' => keyevent = true,
            b'm' => miss = true,
            c => match NOTIFY_CLASSES.iter().position(|y| *y == c) {
                Some(i) => classes[i] = true,
                None => {
                    return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
                }
            },
        }
    }
    let all = NOTIFY_ALL.iter().all(|x| {
        NOTIFY_CLASSES
            .iter()
            .position(|y| y == x)
            .is_some_and(|i| classes[i])
    });
    let mut out = String::new();
    if all {
        out.push('A');
    } else {
        for (i, c) in NOTIFY_CLASSES.iter().enumerate() {
            if classes[i] {
                out.push(char::from(*c));
            }
        }
    }
    for (on, c) in [(keyspace, 'K'), (keyevent, 'E'), (miss, 'm')] {
        if on {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_oom_values(args: &[&[u8]]) -> Result<String, String> {
    if args.len() != 3 {
        return Err("wrong number of arguments".to_string());
    }
    let mut vals = Vec::with_capacity(3);
    for a in args {
        let v = strtoll(a).filter(|v| (-2000..=2000).contains(v)).ok_or(
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".to_string(),
        )?;
        vals.push(v.to_string());
    }
    Ok(vals.join(" "))
}

fn parse_percentiles(args: &[&[u8]]) -> Result<String, String> {
    let args: &[&[u8]] = if matches!(args, [a] if a.is_empty()) {
        &[]
    } else {
        args
    };
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let v: f64 = std::str::from_utf8(a)
            .ok()
            .filter(|s| !s.is_empty() && !s.starts_with(char::is_whitespace))
            .and_then(|s| s.parse().ok())
            .filter(|v: &f64| v.is_finite())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .to_string(),
            );
        }
        out.push(trim_double(&format!("{v:.6}")));
    }
    Ok(out.join(" "))
}

/// Redis's `trimDoubleString`: drops trailing zeros and a trailing dot of a `%f` rendering.
fn trim_double(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Renders a byte count the way CONFIG REWRITE does: `gb`, `mb` or `kb` when exact.
pub(crate) fn format_memory(bytes: i128) -> String {
    const KB: i128 = 1024;
    if bytes != 0 && bytes % (KB * KB * KB) == 0 {
        format!("{}gb", bytes / (KB * KB * KB))
    } else if bytes != 0 && bytes % (KB * KB) == 0 {
        format!("{}mb", bytes / (KB * KB))
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes, parseable by `split_args`.
pub(crate) fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(char::from(c)),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtoull_units_match_redis() {
        assert_eq!(memtoull(b"1k"), Some(1000));
        assert_eq!(memtoull(b"1kb"), Some(1024));
        assert_eq!(memtoull(b"1m"), Some(1_000_000));
        assert_eq!(memtoull(b"1mb"), Some(1_048_576));
        assert_eq!(memtoull(b"1g"), Some(1_000_000_000));
        assert_eq!(memtoull(b"2GB"), Some(2 * 1_073_741_824));
        assert_eq!(memtoull(b"5Mb"), Some(5 * 1_048_576));
        assert_eq!(memtoull(b"100"), Some(100));
        assert_eq!(memtoull(b"100b"), Some(100));
        assert_eq!(memtoull(b""), Some(0), "Redis reads empty digits as 0");
        assert_eq!(memtoull(b"-1"), None);
        assert_eq!(memtoull(b"1.5gb"), None);
        assert_eq!(memtoull(b"12x"), None);
        assert_eq!(memtoull(b" 1"), None);
        assert_eq!(memtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(
            memtoull(b"18446744073709551615kb"),
            None,
            "overflow is an error"
        );
    }

    #[test]
    fn format_memory_uses_the_largest_exact_unit() {
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(1024), "1kb");
        assert_eq!(format_memory(64 * 1024 * 1024), "64mb");
        assert_eq!(format_memory(1024 * 1024 * 1024), "1gb");
        assert_eq!(format_memory(1000), "1000");
    }

    #[test]
    fn repr_escapes_like_sdscatrepr_and_round_trips() {
        assert_eq!(repr(b"a b"), "\"a b\"");
        assert_eq!(repr(b"q\"\\\n\x01"), "\"q\\\"\\\\\\n\\x01\"");
        let parsed = verdis_core::resp::split_args(repr(b"x\"y\\z\x7f\n").as_bytes());
        assert_eq!(parsed, Some(vec![b"x\"y\\z\x7f\n".to_vec()]));
    }

    #[test]
    fn notify_keyspace_events_render_like_redis() {
        assert_eq!(parse_notify(b"KEA").as_deref(), Ok("AKE"));
        assert_eq!(parse_notify(b"Ex$").as_deref(), Ok("$xE"));
        assert_eq!(parse_notify(b"").as_deref(), Ok(""));
        assert!(parse_notify(b"Q").is_err());
    }

    #[test]
    fn strtoll_accepts_what_c_accepts() {
        assert_eq!(strtoll(b""), Some(0));
        assert_eq!(strtoll(b" 5"), Some(5));
        assert_eq!(strtoll(b"+5"), Some(5));
        assert_eq!(strtoll(b"-5"), Some(-5));
        assert_eq!(strtoll(b"5 "), None);
        assert_eq!(strtoll(b" "), None);
        assert_eq!(strtoll_radix(b"777", 8), Some(0o777));
        assert_eq!(strtoll_radix(b"8", 8), None);
    }
}
