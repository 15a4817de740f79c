//! Go-style durations (`1m30s`, `500ms`, `1.5h`) as Compose writes them, parsed exactly as
//! Go's `time.ParseDuration` parses them (docker/cli uses it for every Compose duration).

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Parses a Go duration string into nanoseconds, with Go's rules: an optional sign, then one
/// or more `<number><unit>` parts (`1h2m3.5s`), `0` alone needing no unit; overflow is an
/// error.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid duration {text:?}: write e.g. 10s, 1m30s or 500ms");
    let mut rest = text;
    let mut negative = false;
    if let Some(first) = rest.chars().next() {
        if first == '-' || first == '+' {
            negative = first == '-';
            rest = &rest[1..];
        }
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part: [0-9]*
        let whole = leading_int(rest).ok_or_else(invalid)?;
        let before_point = whole.len > 0;
        rest = &rest[whole.len..];
        let whole = whole.value;
        // The fraction: (\.[0-9]*)?
        let mut fraction = Fraction::default();
        if let Some(after) = rest.strip_prefix('.') {
            fraction = leading_fraction(after);
            rest = &after[fraction.len..];
        }
        let after_point = fraction.len > 0;
        let Fraction {
            value: fraction,
            scale,
            ..
        } = fraction;
        if !before_point && !after_point {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_end == 0 {
            return Err(invalid());
        }
        let unit = UNITS
            .iter()
            .find(|(name, _)| *name == &rest[..unit_end])
            .map(|(_, nanos)| *nanos)
            .ok_or_else(invalid)?;
        rest = &rest[unit_end..];
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// Leading digits of a duration part.
struct Digits {
    /// Their value.
    value: u64,
    /// How many bytes they take.
    len: usize,
}

/// Go's `leadingInt`: the leading digits of `text`; `None` when their value passes the limit.
fn leading_int(text: &str) -> Option<Digits> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for byte in text[..len].bytes() {
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
        if value > LIMIT {
            return None;
        }
    }
    Some(Digits { value, len })
}

/// The digits after a decimal point, as Go's `leadingFraction` reads them.
struct Fraction {
    /// The digits kept, as an integer.
    value: u64,
    /// 10 to the number of digits kept: `value / scale` is the fraction.
    scale: f64,
    /// How many bytes the digits take (including those dropped).
    len: usize,
}

impl Default for Fraction {
    fn default() -> Self {
        Fraction {
            value: 0,
            scale: 1.0,
            len: 0,
        }
    }
}

/// Go's `leadingFraction`: the leading digits of `text`; digits past what fits are dropped.
fn leading_fraction(text: &str) -> Fraction {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut fraction = Fraction {
        len,
        ..Fraction::default()
    };
    for byte in text[..len].bytes() {
        if fraction.value > (LIMIT - 1) / 10 {
            break;
        }
        let next = fraction.value * 10 + u64::from(byte - b'0');
        if next > LIMIT {
            break;
        }
        fraction.value = next;
        fraction.scale *= 10.0;
    }
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-0"), Ok(0));
        assert_eq!(parse_duration("+5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("5.s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1h2m3s4ms5us6ns"), Ok(3_723_004_005_006));
        assert_eq!(parse_duration("3µs"), Ok(3_000));
        assert_eq!(parse_duration("3μs"), Ok(3_000));
        assert_eq!(parse_duration("0.1s"), Ok(100_000_000));
        assert_eq!(parse_duration("1.0000000001s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("2562047h47m16.854775807s"), Ok(i64::MAX));
        assert_eq!(parse_duration("-2562047h47m16.854775808s"), Ok(i64::MIN));
        assert!(parse_duration("2562047h47m16.854775808s").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration(".s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-").is_err());
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration(" 1s").is_err());
    }
}
