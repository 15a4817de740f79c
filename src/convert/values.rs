//! Reading Compose values the way docker/cli's loader types them (mapstructure plus its
//! transformers and the interpolation casts), each problem a located diagnostic.

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::{Entry, Node, Typed};

/// An error about `node` at its location.
pub(super) fn bad(node: &Node, field: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Some(node.location.clone()), message).field(field)
}

/// The mapping inside `node`, or an error.
pub(super) fn mapping<'n>(
    node: &'n Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<&'n IndexMap<String, Entry>> {
    let map = node.as_map();
    if map.is_none() {
        problems.push(bad(
            node,
            field,
            format!("expected a mapping, not {}", node.kind_name()),
        ));
    }
    map
}

/// The value under `key`, unless it is missing or null.
pub(super) fn get<'n>(map: &'n IndexMap<String, Entry>, key: &str) -> Option<&'n Node> {
    map.get(key)
        .map(|entry| &entry.value)
        .filter(|node| !node.is_null())
}

/// Reports every key of `map` not in `allowed` (extensions `x-…` are allowed everywhere).
pub(super) fn check_keys(
    map: &IndexMap<String, Entry>,
    allowed: &[&str],
    field: &str,
    problems: &mut Diagnostics,
) {
    for (key, entry) in map {
        if !allowed.contains(&key.as_str()) && !key.starts_with("x-") {
            problems.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("unknown key \"{key}\""),
                )
                .field(format!("{field}.{key}"))
                .hint(format!("allowed here: {}", allowed.join(", "))),
            );
        }
    }
}

/// A string (numbers and booleans are taken as written), or an error.
pub(super) fn text(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    match node.scalar_text() {
        Some(text) => Some(text.to_string()),
        None => {
            problems.push(bad(
                node,
                field,
                format!("expected a string, not {}", node.kind_name()),
            ));
            None
        }
    }
}

/// A boolean; strings (e.g. from interpolation) are cast as docker/cli casts them: `y`, `yes`,
/// `true`, `on` and `n`, `no`, `false`, `off`, in any case.
pub(super) fn boolean(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<bool> {
    let value = match node.typed() {
        Some(Typed::Bool(value)) => Some(value),
        Some(Typed::Str(text)) => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Some(true),
            "n" | "no" | "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    };
    if value.is_none() {
        problems.push(bad(
            node,
            field,
            format!("expected true or false, not {}", describe(node)),
        ));
    }
    value
}

/// An integer; strings are cast as Go's `strconv.Atoi` reads them.
pub(super) fn integer(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    let value = match node.typed() {
        Some(Typed::Int(value)) => Some(value),
        Some(Typed::Float(value)) if value.fract() == 0.0 && value.abs() < 9.2e18 => {
            Some(value as i64)
        }
        Some(Typed::Str(text)) => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                text.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    };
    if value.is_none() {
        problems.push(bad(
            node,
            field,
            format!("expected a whole number, not {}", describe(node)),
        ));
    }
    value
}

/// A whole number of at least zero.
pub(super) fn unsigned(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<u64> {
    let value = integer(node, field, problems)?;
    match u64::try_from(value) {
        Ok(value) => Some(value),
        Err(_) => {
            problems.push(bad(
                node,
                field,
                format!("must not be negative, not {value}"),
            ));
            None
        }
    }
}

/// A number; strings are cast as Go's `strconv.ParseFloat` reads them.
pub(super) fn float(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<f64> {
    let value = match node.typed() {
        Some(Typed::Int(value)) => Some(value as f64),
        Some(Typed::Float(value)) => Some(value),
        Some(Typed::Str(text)) => text.parse().ok(),
        _ => None,
    };
    if value.is_none() {
        problems.push(bad(
            node,
            field,
            format!("expected a number, not {}", describe(node)),
        ));
    }
    value
}

/// A Go duration, in nanoseconds.
pub(super) fn duration(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    let text = text(node, field, problems)?;
    match super::parse_duration(&text) {
        Ok(nanos) => Some(nanos),
        Err(problem) => {
            problems.push(bad(node, field, problem));
            None
        }
    }
}

/// A list of strings (each item a scalar).
pub(super) fn string_list(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<Vec<String>> {
    let Some(items) = node.as_seq() else {
        problems.push(bad(
            node,
            field,
            format!("expected a list, not {}", node.kind_name()),
        ));
        return None;
    };
    let mut values = Vec::with_capacity(items.len());
    let mut ok = true;
    for (index, item) in items.iter().enumerate() {
        match text(item, &format!("{field}[{index}]"), problems) {
            Some(value) => values.push(value),
            None => ok = false,
        }
    }
    ok.then_some(values)
}

/// docker/cli's `StringList`: one string, or a list of strings.
pub(super) fn string_or_list(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<Vec<String>> {
    if node.as_seq().is_some() {
        return string_list(node, field, problems);
    }
    match node.scalar_text() {
        Some(text) => Some(vec![text.to_string()]),
        None => {
            problems.push(bad(
                node,
                field,
                format!("expected a string or a list, not {}", node.kind_name()),
            ));
            None
        }
    }
}

/// docker/cli's `list_or_dict`: a mapping (null values are `None`) or a list of `key<sep>value`
/// strings (an item without `sep` is `None`). A later duplicate key wins.
pub(super) fn list_or_dict(
    node: &Node,
    sep: char,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<IndexMap<String, Option<String>>> {
    if let Some(map) = node.as_map() {
        let mut out = IndexMap::new();
        for (key, entry) in map {
            let value = if entry.value.is_null() {
                None
            } else {
                Some(map_value(
                    &entry.value,
                    &format!("{field}.{key}"),
                    problems,
                )?)
            };
            out.insert(key.clone(), value);
        }
        return Some(out);
    }
    if let Some(items) = node.as_seq() {
        let mut out = IndexMap::new();
        for (index, item) in items.iter().enumerate() {
            let item = text(item, &format!("{field}[{index}]"), problems)?;
            match item.split_once(sep) {
                Some((key, value)) => out.insert(key.to_string(), Some(value.to_string())),
                None => out.insert(item, None),
            };
        }
        return Some(out);
    }
    problems.push(bad(
        node,
        field,
        format!("expected a mapping or a list, not {}", node.kind_name()),
    ));
    None
}

/// `list_or_dict` where a missing value is the empty string (docker/cli's `Labels` and
/// `Mapping`).
pub(super) fn string_mapping(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<IndexMap<String, String>> {
    list_or_dict(node, '=', field, problems).map(|map| {
        map.into_iter()
            .map(|(key, value)| (key, value.unwrap_or_default()))
            .collect()
    })
}

/// A mapping of strings (`driver_opts`, logging options): numbers as written, null as "".
pub(super) fn string_map(
    node: &Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<IndexMap<String, String>> {
    let map = mapping(node, field, problems)?;
    let mut out = IndexMap::new();
    for (key, entry) in map {
        let value = if entry.value.is_null() {
            String::new()
        } else {
            map_value(&entry.value, &format!("{field}.{key}"), problems)?
        };
        out.insert(key.clone(), value);
    }
    Some(out)
}

/// A mapping's value as docker/cli turns it into a string (`fmt.Sprint` of the YAML value):
/// numbers as Go prints them (`1.0` → `1`, `1e3` → `1000`, `0x1F` → `31`), strings as
/// written.
pub(super) fn map_value(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    match node.typed() {
        Some(Typed::Int(value)) => Some(value.to_string()),
        Some(Typed::Float(value)) => Some(go_float_text(value)),
        _ => text(node, field, problems),
    }
}

/// Go's `fmt.Sprint` of a float64 (`%v`: the shortest `%g`, in exponent form below 1e-4 and
/// from 1e6 on, as strconv does for the shortest precision).
pub(super) fn go_float_text(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and the decimal exponent, from Rust's `{:e}`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("a decimal exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    };
    format!("{sign}{text}")
}

/// `node` for a message: its text when it is a scalar, its kind otherwise.
fn describe(node: &Node) -> String {
    match node.scalar_text() {
        Some(text) => format!("{text:?}"),
        None => node.kind_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::go_float_text;

    #[test]
    fn floats_print_like_go_fmt_sprint() {
        for (value, expected) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (1000.0, "1000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float_text(value), expected, "{value}");
        }
    }
}
