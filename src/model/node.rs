//! The Compose document tree: every value keeps where it was written, so any later stage can
//! point the user at the exact file, line and column. Built by `yaml`, transformed by
//! `interpolate`/`merge`, read by `normalize` (all in `compose`), kept in the model for values
//! converted later. It sits below both `compose` and `model`, so neither imports the other back.

use indexmap::IndexMap;

use crate::diagnostic::Location;

/// How a scalar was written, which decides how it is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// A plain (unquoted) scalar: typed by the YAML 1.2 core schema (`2` is a number).
    Plain,
    /// A quoted or block scalar, an explicit `!!str`, or a value produced by interpolation:
    /// always a string.
    String,
}

/// A Compose-specific tag that changes how a value merges with an earlier file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: the key is removed from the merged result.
    Reset,
    /// `!override`: the value replaces the earlier one instead of merging with it.
    Override,
}

/// A value in a Compose document.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text, as written (escapes processed) or as interpolated.
    Scalar(String, ScalarStyle),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys in document order.
    Map(IndexMap<String, Entry>),
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts in its file.
    pub location: Location,
    /// A merge tag written on the value, if any.
    pub merge_tag: Option<MergeTag>,
}

/// A mapping entry: where its key was written and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The location of the key.
    pub key_location: Location,
    /// The value.
    pub value: Node,
}

/// A scalar typed the way the YAML 1.2 core schema types a plain scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A decimal, `0o` octal or `0x` hexadecimal integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// Anything else.
    Str(&'a str),
}

impl Node {
    /// A node holding `value` at `location`.
    pub fn new(value: Value, location: Location) -> Node {
        Node {
            value,
            location,
            merge_tag: None,
        }
    }

    /// The mapping inside this node, if it is one.
    pub fn as_map(&self) -> Option<&IndexMap<String, Entry>> {
        match &self.value {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The sequence inside this node, if it is one.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The scalar text and style, if this node is a scalar.
    pub fn as_scalar(&self) -> Option<(&str, ScalarStyle)> {
        match &self.value {
            Value::Scalar(text, style) => Some((text, *style)),
            _ => None,
        }
    }

    /// The scalar typed by the YAML 1.2 core schema; None for collections.
    pub fn typed(&self) -> Option<Typed<'_>> {
        let (text, style) = self.as_scalar()?;
        Some(match style {
            ScalarStyle::String => Typed::Str(text),
            ScalarStyle::Plain => type_plain_scalar(text),
        })
    }

    /// The scalar as a string when it is a string, number or bool (Compose accepts `uid: 0`
    /// for a string field); None for null and collections.
    pub fn scalar_text(&self) -> Option<&str> {
        match self.typed()? {
            Typed::Null => None,
            _ => self.as_scalar().map(|(text, _)| text),
        }
    }

    /// Whether this node is a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(self.typed(), Some(Typed::Null))
    }

    /// A short word for the node's kind, for messages ("a mapping", "a string", ...).
    pub fn kind_name(&self) -> &'static str {
        match self.typed() {
            None if self.as_seq().is_some() => "a sequence",
            None => "a mapping",
            Some(Typed::Null) => "null",
            Some(Typed::Bool(_)) => "a boolean",
            Some(Typed::Int(_)) | Some(Typed::Float(_)) => "a number",
            Some(Typed::Str(_)) => "a string",
        }
    }

    /// Converts the node to JSON, typing plain scalars by the YAML 1.2 core schema.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(key, entry)| (key.clone(), entry.value.to_json()))
                    .collect(),
            ),
            Value::Scalar(..) => match self.typed().expect("scalar") {
                Typed::Null => serde_json::Value::Null,
                Typed::Bool(b) => b.into(),
                Typed::Int(i) => i.into(),
                Typed::Float(f) => serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| self.as_scalar().expect("scalar").0.into()),
                Typed::Str(s) => s.into(),
            },
        }
    }
}

/// Types a plain scalar by the YAML 1.2 core schema.
pub fn type_plain_scalar(text: &str) -> Typed<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Typed::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
        _ => {}
    }
    if let Some(octal) = text.strip_prefix("0o") {
        if is_digits(octal, 8) {
            if let Ok(value) = i64::from_str_radix(octal, 8) {
                return Typed::Int(value);
            }
        }
        return Typed::Str(text);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if is_digits(hex, 16) {
            if let Ok(value) = i64::from_str_radix(hex, 16) {
                return Typed::Int(value);
            }
        }
        return Typed::Str(text);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if is_digits(unsigned, 10) {
        if let Ok(value) = text.parse::<i64>() {
            return Typed::Int(value);
        }
    }
    if is_core_float(unsigned) {
        if let Ok(value) = text.parse::<f64>() {
            return Typed::Float(value);
        }
    }
    Typed::Str(text)
}

fn is_digits(text: &str, radix: u32) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_digit(radix))
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && is_digits(frac, 10))
                || (is_digits(int, 10) && (frac.is_empty() || is_digits(frac, 10)))
        }
        None => is_digits(mantissa, 10),
    };
    let exponent_ok =
        exponent.is_none_or(|e| is_digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_types_plain_scalars() {
        assert_eq!(type_plain_scalar("2"), Typed::Int(2));
        assert_eq!(type_plain_scalar("0400"), Typed::Int(400));
        assert_eq!(type_plain_scalar("0o400"), Typed::Int(256));
        assert_eq!(type_plain_scalar("0x1F"), Typed::Int(31));
        assert_eq!(type_plain_scalar("-7"), Typed::Int(-7));
        assert_eq!(type_plain_scalar("1.5"), Typed::Float(1.5));
        assert_eq!(type_plain_scalar("1e3"), Typed::Float(1000.0));
        assert_eq!(type_plain_scalar("~"), Typed::Null);
        assert_eq!(type_plain_scalar("True"), Typed::Bool(true));
        assert_eq!(type_plain_scalar("yes"), Typed::Str("yes"));
        assert_eq!(type_plain_scalar("1.2.3"), Typed::Str("1.2.3"));
        assert_eq!(type_plain_scalar("0o9"), Typed::Str("0o9"));
        assert_eq!(type_plain_scalar("e3"), Typed::Str("e3"));
    }
}
