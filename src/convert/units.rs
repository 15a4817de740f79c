//! Small parsers docker/cli borrows from Go libraries, reimplemented with the same results:
//! memory sizes (go-units `RAMInBytes`), CPU counts (`opts.ParseCPUs`, a `big.Rat`), command
//! strings (google/shlex), path cleaning (Go's `filepath.Clean`) and capability names
//! (`opts.EffectiveCapAddCapDrop`).

use std::collections::BTreeSet;

/// go-units `RAMInBytes`: `512m`, `1g`, `1.5GiB`, `100` (bytes); binary multiples,
/// case-insensitive, optional `i` and `b`, one optional space before the unit.
pub(super) fn ram_in_bytes(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{text}'");
    // ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
    let bytes = text.as_bytes();
    let mut at = 0;
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let first = digits(0);
    if first == 0 {
        return Err(invalid());
    }
    at += first;
    while at < bytes.len() && bytes[at] == b'.' {
        let more = digits(at + 1);
        if more == 0 {
            break;
        }
        at += 1 + more;
    }
    let number = &text[..at];
    let mut rest = &bytes[at..];
    if rest.first() == Some(&b' ') {
        rest = &rest[1..];
    }
    let mut multiplier: i64 = 1;
    if let Some(unit) = rest.first() {
        let power = match unit.to_ascii_lowercase() {
            b'k' => Some(1),
            b'm' => Some(2),
            b'g' => Some(3),
            b't' => Some(4),
            b'p' => Some(5),
            _ => None,
        };
        if let Some(power) = power {
            multiplier = 1024_i64.pow(power);
            rest = &rest[1..];
        }
    }
    if matches!(rest.first(), Some(b'i' | b'I')) {
        rest = &rest[1..];
    }
    if matches!(rest.first(), Some(b'b' | b'B')) {
        rest = &rest[1..];
    }
    if !rest.is_empty() {
        return Err(invalid());
    }
    let size: f64 = number.parse().map_err(|_| invalid())?;
    let size = size * multiplier as f64;
    if size.is_nan() || size >= 9_223_372_036_854_775_808.0 {
        return Err(format!("size too large: '{text}'"));
    }
    Ok(size as i64)
}

/// docker/cli's `opts.ParseCPUs`: a rational number (`0.5`, `1.25e1`, `1/2`) times 10^9, which
/// must come out whole.
pub(super) fn parse_cpus(text: &str) -> Result<i64, String> {
    let unparsable = || format!("failed to parse {text} as a rational number");
    let (numerator, denominator) = match text.split_once('/') {
        Some((numerator, denominator)) => {
            let numerator = parse_integer(numerator).ok_or_else(unparsable)?;
            let denominator = parse_integer(denominator)
                .filter(|d| *d > 0)
                .ok_or_else(unparsable)?;
            (numerator, denominator)
        }
        None => parse_decimal(text).ok_or_else(unparsable)?,
    };
    let nano = numerator
        .checked_mul(1_000_000_000)
        .ok_or_else(|| format!("{text} is too large"))?;
    if nano % denominator != 0 {
        return Err("value is too precise".into());
    }
    let nano = nano / denominator;
    i64::try_from(nano).map_err(|_| format!("{text} is too large"))
}

/// An optionally signed run of decimal digits.
fn parse_integer(text: &str) -> Option<i128> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    text.parse().ok()
}

/// `[+-]digits[.digits][e[+-]digits]` as an exact fraction (numerator, power-of-ten
/// denominator).
fn parse_decimal(text: &str) -> Option<(i128, i128)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let exponent: i32 = match exponent {
        Some(text) => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()?
        }
        None => 0,
    };
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let mut numerator: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut scale = exponent - fraction.len() as i32;
    let mut denominator: i128 = 1;
    while scale > 0 {
        numerator = numerator.checked_mul(10)?;
        scale -= 1;
    }
    while scale < 0 {
        if denominator > 10_i128.pow(36) {
            return None;
        }
        denominator *= 10;
        scale += 1;
    }
    Some((if negative { -numerator } else { numerator }, denominator))
}

/// google/shlex `Split`, which docker/cli uses for `command` and `entrypoint` strings: words
/// split at spaces, tabs and newlines; `'...'` literal; `"..."` with `\` escaping any
/// character; `\` outside quotes escaping the next character; a `#` at the start of a word
/// starting a comment up to the end of the line.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum State {
        Start,
        Word,
        Escaping,
        EscapingQuoted,
        DoubleQuoted,
        SingleQuoted,
        Comment,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut chars = text.chars();
    loop {
        let next = chars.next();
        match state {
            State::Start => match next {
                None => return Ok(words),
                Some(c) if is_space(c) => {}
                Some('"') => state = State::DoubleQuoted,
                Some('\'') => state = State::SingleQuoted,
                Some('\\') => state = State::Escaping,
                Some('#') => state = State::Comment,
                Some(c) => {
                    word.push(c);
                    state = State::Word;
                }
            },
            State::Word => match next {
                None => {
                    words.push(word);
                    return Ok(words);
                }
                Some(c) if is_space(c) => {
                    words.push(std::mem::take(&mut word));
                    state = State::Start;
                }
                Some('"') => state = State::DoubleQuoted,
                Some('\'') => state = State::SingleQuoted,
                Some('\\') => state = State::Escaping,
                Some(c) => word.push(c),
            },
            State::Escaping => match next {
                None => return Err("EOF found after escape character".into()),
                Some(c) => {
                    word.push(c);
                    state = State::Word;
                }
            },
            State::EscapingQuoted => match next {
                None => return Err("EOF found after escape character".into()),
                Some(c) => {
                    word.push(c);
                    state = State::DoubleQuoted;
                }
            },
            State::DoubleQuoted => match next {
                None => return Err("EOF found when expecting closing quote".into()),
                Some('"') => state = State::Word,
                Some('\\') => state = State::EscapingQuoted,
                Some(c) => word.push(c),
            },
            State::SingleQuoted => match next {
                None => return Err("EOF found when expecting closing quote".into()),
                Some('\'') => state = State::Word,
                Some(c) => word.push(c),
            },
            State::Comment => match next {
                None => return Ok(words),
                Some('\n') => state = State::Start,
                Some(_) => {}
            },
        }
    }
}

/// Go's `filepath.Clean` on a Unix path.
pub(super) fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// docker/cli's `opts.EffectiveCapAddCapDrop`: names upper-cased, trimmed and prefixed with
/// `CAP_` (except `ALL`), duplicates removed, `ALL` trumping the others, a capability both
/// added and dropped only added, `RESET` dropped, both lists sorted.
pub(super) fn effective_capabilities(
    add: &[String],
    drop: &[String],
) -> (Vec<String>, Vec<String>) {
    fn normalize(names: &[String]) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = names
            .iter()
            .map(|name| {
                let name = name.trim().to_uppercase();
                if name == "ALL" || name == "RESET" || name.starts_with("CAP_") {
                    name
                } else {
                    format!("CAP_{name}")
                }
            })
            .collect();
        if set.contains("ALL") {
            set = BTreeSet::from(["ALL".to_string()]);
        }
        set
    }
    let add = normalize(add);
    let drop = normalize(drop);
    let effective_drop = drop
        .iter()
        .filter(|cap| !add.contains(*cap) && *cap != "RESET")
        .cloned()
        .collect();
    let effective_add = add.into_iter().filter(|cap| cap != "RESET").collect();
    (effective_add, effective_drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_like_go_units() {
        assert_eq!(ram_in_bytes("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1024 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("64 kb"), Ok(65536));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        assert_eq!(ram_in_bytes("0.5k"), Ok(512));
        assert_eq!(ram_in_bytes("1.7k"), Ok(1740)); // 1740.8 truncated
        assert!(ram_in_bytes("1.2.3m").is_err());
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes("m").is_err());
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("1  m").is_err());
        assert!(ram_in_bytes("-1m").is_err());
        assert!(ram_in_bytes(" 1m").is_err());
    }

    #[test]
    fn cpus_like_big_rat() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".25"), Ok(250_000_000));
        assert_eq!(parse_cpus("1/4"), Ok(250_000_000));
        assert_eq!(parse_cpus("1e-3"), Ok(1_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert_eq!(
            parse_cpus("0.0000000015"),
            Err("value is too precise".into())
        );
        assert!(parse_cpus("abc").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("1/0").is_err());
    }

    #[test]
    fn shlex_words() {
        assert_eq!(
            shell_split("sh -c 'echo hi; sleep 1'").unwrap(),
            vec!["sh", "-c", "echo hi; sleep 1"]
        );
        assert_eq!(
            shell_split(r#"a "b c" d\ e"#).unwrap(),
            vec!["a", "b c", "d e"]
        );
        // Inside double quotes a backslash escapes any character and is dropped.
        assert_eq!(
            shell_split(r#"echo "a\nb" "x\"y""#).unwrap(),
            vec!["echo", "anb", "x\"y"]
        );
        assert_eq!(shell_split("echo '' x").unwrap(), vec!["echo", "", "x"]);
        assert_eq!(shell_split("a #comment here\nb").unwrap(), vec!["a", "b"]);
        assert_eq!(shell_split("a#b").unwrap(), vec!["a#b"]);
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert!(shell_split("'open").is_err());
        assert!(shell_split("\"open").is_err());
        assert!(shell_split("trailing\\").is_err());
    }

    #[test]
    fn go_clean() {
        assert_eq!(clean_path("/a/b/../c/./d/"), "/a/c/d");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("a//b"), "a/b");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path("/"), "/");
    }

    #[test]
    fn capabilities_like_docker_cli() {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            effective_capabilities(
                &strings(&["net_admin", "CAP_SYS_TIME", " chown "]),
                &strings(&["chown", "mknod"])
            ),
            (
                strings(&["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"]),
                strings(&["CAP_MKNOD"])
            )
        );
        assert_eq!(
            effective_capabilities(&strings(&["all", "net_admin"]), &strings(&["ALL"])),
            (strings(&["ALL"]), strings(&[]))
        );
        assert_eq!(
            effective_capabilities(&strings(&["RESET"]), &strings(&["all", "chown"])),
            (strings(&[]), strings(&["ALL"]))
        );
    }
}
