//! Where `docker stack deploy` would read the merged document differently from the Compose
//! specification, which stackroll follows: docker/cli 20.10 parses YAML 1.1 (go-yaml v2), so a
//! plain `yes`/`no`/`on`/`off`/`y`/`n` is a boolean there (a string here, YAML 1.2) and a plain
//! `010` is octal 8 there (decimal 10 here). Each such value gets a warning at its location
//! saying how to write it so both read it alike. Differences inside interpolation are found by
//! the interpolator (`interpolate::ReadingDifference`).

use super::casts::{cast_for, Cast, Step};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::{Node, ScalarStyle, Value};

/// Adds a warning for each value of `document` docker/cli reads differently.
pub fn check(document: &Node, diagnostics: &mut Diagnostics) {
    walk(document, &mut Vec::new(), diagnostics);
}

fn walk(node: &Node, path: &mut Vec<Step>, diagnostics: &mut Diagnostics) {
    match &node.value {
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                walk(item, path, diagnostics);
                path.pop();
            }
        }
        Value::Map(map) => {
            for (key, entry) in map {
                path.push(Step::Key(key.clone()));
                walk(&entry.value, path, diagnostics);
                path.pop();
            }
        }
        Value::Scalar(text, ScalarStyle::Plain) => {
            if let Some(warning) = difference(text, path) {
                diagnostics.push(
                    Diagnostic::warning(Some(node.location.clone()), warning.message)
                        .hint(warning.hint),
                );
            }
        }
        Value::Scalar(..) => {}
    }
}

/// A warning's text.
struct Warning {
    message: String,
    hint: String,
}

/// How docker/cli's YAML 1.1 reading of the plain scalar `text` at `path` differs, if it does.
fn difference(text: &str, path: &[Step]) -> Option<Warning> {
    if let Some(value) = yaml11_boolean(text) {
        // Boolean fields cast these strings as docker/cli does: both read a boolean.
        if cast_for(path) == Some(Cast::Boolean) || is_boolean_field(path) {
            return None;
        }
        return Some(Warning {
            message: format!("`{text}` is the string \"{text}\" (YAML 1.2); docker stack deploy reads YAML 1.1 and takes it as the boolean {value}"),
            hint: format!("quote it (\"{text}\") to mean the string, or write {value}"),
        });
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let octal = digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if octal && !is_mode(path) {
        let value = i64::from_str_radix(digits, 8).ok()?;
        return Some(Warning {
            message: format!("`{text}` is the number {} (YAML 1.2); docker stack deploy reads YAML 1.1 and takes it as octal, {value}", digits.trim_start_matches('0').parse::<i64>().unwrap_or(0)),
            hint: "drop the leading zero, or quote it to mean the string".into(),
        });
    }
    None
}

/// The YAML 1.1 booleans that are strings in YAML 1.2.
fn yaml11_boolean(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Boolean fields outside compose-go's cast table whose value docker/cli and stackroll both
/// read as a boolean from these strings.
fn is_boolean_field(path: &[Step]) -> bool {
    matches!(path.last(), Some(Step::Key(key)) if matches!(key.as_str(), "external" | "internal" | "attachable" | "read_only" | "nocopy" | "init" | "tty" | "stdin_open" | "disable" | "required"))
}

/// A secret or config reference's `mode`, which both read as octal.
fn is_mode(path: &[Step]) -> bool {
    matches!(path.last(), Some(Step::Key(key)) if key == "mode")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;
    use crate::diagnostic::SourceFile;

    fn warnings(text: &str) -> Vec<String> {
        let node = parse(text, &SourceFile::new("t.yaml", "/")).0.unwrap();
        let mut diagnostics = Diagnostics::default();
        check(&node, &mut diagnostics);
        diagnostics.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn yaml_1_1_readings_are_located() {
        let found = warnings("services:\n  app:\n    environment:\n      DEBUG: yes\n      PORT: 010\n      QUOTED: \"yes\"\n    read_only: yes\n    secrets: [{source: s, mode: 0400}]\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("t.yaml:4:14: `yes` is the string"),
            "{found:?}"
        );
        assert!(found[0].contains("boolean true"), "{found:?}");
        assert!(
            found[1].contains("t.yaml:5:13: `010` is the number 10"),
            "{found:?}"
        );
        assert!(found[1].contains("octal, 8"), "{found:?}");
    }
}
