//! Glob-style pattern matching with the semantics of Redis's `stringmatchlen`, shared by
//! CONFIG GET, KEYS and SCAN MATCH.
//!
//! Supported syntax: `*` (any run of bytes), `?` (any one byte), `[abc]`, `[a-z]`, `[^a]`
//! (negated class), and `\x` (the literal byte `x`, also inside a class). A class left open
//! at the end of the pattern matches like Redis does (the bytes seen so far form the class).
//! Matching works on bytes, not characters; `nocase` folds ASCII letters only.
//!
//! As in Redis, the empty string matches only the empty pattern (not even `*`): KEYS and
//! SCAN treat a lone `*` as "everything" before calling the matcher, and so should callers.
//!
//! Like Redis since 7.0.10, a `*` that failed to match the rest of the pattern from every
//! position stops all earlier `*` from trying longer matches, so patterns such as
//! `a*a*a*a*b` run in polynomial time against long strings.

/// Returns true when `s` matches `pattern` (Redis `stringmatchlen` semantics).
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer)
}

fn eq_byte(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

fn match_impl(mut p: &[u8], mut s: &[u8], nocase: bool, skip_longer: &mut bool) -> bool {
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, nocase, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => p = &p[1..],
            b'[' => {
                let (matched, rest) = match_class(&p[1..], s[0], nocase);
                if !matched {
                    return false;
                }
                p = rest;
            }
            b'\\' if p.len() >= 2 => {
                if !eq_byte(p[1], s[0], nocase) {
                    return false;
                }
                p = &p[2..];
            }
            c => {
                if !eq_byte(c, s[0], nocase) {
                    return false;
                }
                p = &p[1..];
            }
        }
        s = &s[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// Matches byte `c` against the class whose body starts at `p` (just after `[`). Returns
/// whether it matched and the pattern after the class's closing `]`; an unterminated class
/// ends the pattern, as in Redis.
fn match_class(mut p: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let negate = p.first() == Some(&b'^');
    if negate {
        p = &p[1..];
    }
    let mut matched = false;
    loop {
        if p.is_empty() {
            break;
        }
        if p[0] == b'\\' && p.len() >= 2 {
            p = &p[1..];
            if p[0] == c {
                matched = true;
            }
        } else if p[0] == b']' {
            p = &p[1..];
            break;
        } else if p.len() >= 3 && p[1] == b'-' {
            let (mut start, mut end, mut ch) = (p[0], p[2], c);
            if start > end {
                std::mem::swap(&mut start, &mut end);
            }
            if nocase {
                start = start.to_ascii_lowercase();
                end = end.to_ascii_lowercase();
                ch = ch.to_ascii_lowercase();
            }
            p = &p[2..];
            if ch >= start && ch <= end {
                matched = true;
            }
        } else if eq_byte(p[0], c, nocase) {
            matched = true;
        }
        p = &p[1..];
    }
    (matched != negate, p)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn star_and_question_mark_match_like_redis() {
        assert!(
            !m("*", ""),
            "like Redis: callers special-case a lone `*` (KEYS, SCAN)"
        );
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("**a**", "xxaxx"));
        assert!(m("foo*", "foo"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(!m("?", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges are swapped");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        assert!(
            m("[a-]", "-") || !m("[a-]", "-"),
            "no panic on a dangling range"
        );
    }

    #[test]
    fn escapes_make_metacharacters_literal() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?b", "a?b"));
        assert!(!m("a\\?b", "axb"));
        assert!(m("ab\\", "ab\\"), "a trailing backslash matches itself");
    }

    #[test]
    fn unterminated_class_does_not_panic_and_matches_like_redis() {
        // Redis treats `[abc` as the class {a,b,c} ending the pattern.
        assert!(m("[abc", "a"));
        assert!(m("[abc", "c"));
        assert!(!m("[abc", "d"));
        assert!(!m("[", "a"));
        assert!(m("x[^", "xa") || !m("x[^", "xa"));
    }

    #[test]
    fn nocase_folds_ascii_letters_in_literals_and_ranges() {
        assert!(glob_match(b"MAXMEM*", b"maxmemory", true));
        assert!(!glob_match(b"MAXMEM*", b"maxmemory", false));
        assert!(glob_match(b"[A-C]x", b"bx", true));
        assert!(glob_match(b"[Q]", b"q", true));
    }

    #[test]
    fn pathological_pattern_finishes_quickly() {
        let s = vec![b'a'; 4000];
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*a*a*b", &s, false));
    }

    #[test]
    fn binary_bytes_are_compared_exactly() {
        assert!(glob_match(b"\x00*\xff", b"\x00abc\xff", false));
        assert!(!glob_match(b"\x00*\xff", b"\x00abc\xfe", false));
    }

    mod properties {
        use super::super::glob_match;
        use proptest::prelude::*;

        proptest! {
            /// Any pattern against any string answers without panicking.
            #[test]
            fn never_panics(p in proptest::collection::vec(any::<u8>(), 0..24),
                            s in proptest::collection::vec(any::<u8>(), 0..24), nocase: bool) {
                let _ = glob_match(&p, &s, nocase);
            }

            /// A pattern without metacharacters matches exactly itself.
            #[test]
            fn literal_patterns_match_only_themselves(p in "[a-z0-9:_-]{0,12}", s in "[a-z0-9:_-]{0,12}") {
                prop_assert_eq!(glob_match(p.as_bytes(), s.as_bytes(), false), p == s);
            }

            /// `prefix*` matches exactly the strings that start with the prefix.
            #[test]
            fn prefix_star_matches_prefixes(p in "[a-z]{1,6}", s in "[a-z]{0,10}") {
                let pattern = format!("{p}*");
                prop_assert_eq!(glob_match(pattern.as_bytes(), s.as_bytes(), false), s.starts_with(&p));
            }
        }
    }
}
