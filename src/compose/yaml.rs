//! The YAML facade: the only module that touches the YAML crate. It turns text into a
//! [`Node`] tree that remembers where every value was written, expanding anchors, aliases and
//! `<<` merge keys, rejecting duplicate keys at the duplicate, and bounding what a hostile file
//! can make us build: at most [`MAX_VALUES`] values and [`MAX_EXPANDED_BYTES`] bytes of scalar
//! text (keys included) once aliases are expanded, nested at most [`MAX_DEPTH`] deep. An alias
//! is charged its whole expanded size before it is copied. It also renders JSON values as YAML
//! for `stackroll config`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_saphyr::granit_parser::{
    ErrorKind, Event, Options as ParserOptions, Parser, ScalarStyle as YamlStyle, ScanError, Span,
    StrInput,
};

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::model::node::{Entry, MergeTag, Node, ScalarStyle, Value};

/// Most values a document may hold once aliases are expanded (an alias bomb stops here).
pub const MAX_VALUES: usize = 1_000_000;
/// Most bytes of scalar text (keys included) a document may hold once aliases are expanded
/// (64 MiB): a large anchored scalar referenced many times stops here.
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 128;

/// Parses one YAML document into a located tree. An empty document gives a null scalar.
/// Every problem found is returned; the tree is returned too unless parsing could not finish
/// (duplicate keys, say, still give a tree so later stages can report their problems too).
pub fn parse(text: &str, file: &Arc<SourceFile>) -> (Option<Node>, Vec<Diagnostic>) {
    let mut options = ParserOptions::default();
    options.flow_nesting_limit = MAX_DEPTH;
    options.block_nesting_limit = MAX_DEPTH;
    let mut composer = Composer {
        parser: Parser::new_from_str_with_options(text, options),
        file: file.clone(),
        anchors: HashMap::new(),
        built: Size::default(),
        errors: Vec::new(),
    };
    match composer.document() {
        Ok(node) => (Some(node), composer.errors),
        Err(fatal) => {
            composer.errors.push(fatal);
            (None, composer.errors)
        }
    }
}

/// Renders a JSON value as a YAML document.
pub fn to_yaml_string(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).expect("a JSON value always serializes to YAML")
}

/// What building a part of a document cost, aliases counted expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    /// Scalars, sequences and mappings.
    values: usize,
    /// Bytes of scalar text, keys included.
    bytes: usize,
}

struct Composer<'a> {
    parser: Parser<'a, StrInput<'a>>,
    file: Arc<SourceFile>,
    /// Anchored nodes with their expanded size, by the parser's anchor id.
    anchors: HashMap<usize, (Node, Size)>,
    /// What the document built so far costs.
    built: Size,
    /// Non-fatal problems (duplicate keys, bad merges); parsing goes on after them.
    errors: Vec<Diagnostic>,
}

impl<'a> Composer<'a> {
    fn document(&mut self) -> Result<Node, Diagnostic> {
        let mut root = None;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::DocumentStart(..) if root.is_some() => {
                    return Err(Diagnostic::error(
                        Some(self.location(&span)),
                        "invalid YAML: a Compose file holds one document, this one has several",
                    )
                    .hint("split the documents into separate files and pass each with -c"));
                }
                Event::DocumentStart(..) => {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        root = Some(self.empty(&span));
                        continue;
                    }
                    root = Some(self.node(event, span, 0)?);
                }
                Event::StreamEnd => {
                    let location = Location {
                        file: self.file.clone(),
                        line: 1,
                        column: 1,
                    };
                    return Ok(root.unwrap_or_else(|| {
                        Node::new(Value::Scalar(String::new(), ScalarStyle::Plain), location)
                    }));
                }
                _ => {}
            }
        }
    }

    fn empty(&self, span: &Span) -> Node {
        Node::new(
            Value::Scalar(String::new(), ScalarStyle::Plain),
            self.location(span),
        )
    }

    /// The next event that carries data (comments are skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        loop {
            match self.parser.next_event() {
                Some(Ok((Event::Comment(..), _))) => continue,
                other => return self.event(other),
            }
        }
    }

    fn event(
        &self,
        next: Option<Result<(Event<'a>, Span), ScanError>>,
    ) -> Result<(Event<'a>, Span), Diagnostic> {
        match next {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(error)) => Err(self.scan_error(&error)),
            None => Err(Diagnostic::error(
                Some(Location::file_only(&self.file)),
                "invalid YAML: unexpected end of input",
            )),
        }
    }

    fn scan_error(&self, error: &ScanError) -> Diagnostic {
        let marker = error.marker();
        let location = Location {
            file: self.file.clone(),
            line: marker.line(),
            column: marker.col() + 1,
        };
        if matches!(error.kind(), ErrorKind::RecursionLimitExceeded) {
            return too_deep(location);
        }
        Diagnostic::error(Some(location), format!("invalid YAML: {}", error.info()))
            .hint("check the indentation and quoting around this position")
    }

    fn location(&self, span: &Span) -> Location {
        Location {
            file: self.file.clone(),
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }

    /// Adds `size` to what the document costs; an error once it is over a limit.
    fn count(&mut self, size: Size, span: &Span) -> Result<(), Diagnostic> {
        self.built.values = self.built.values.saturating_add(size.values);
        self.built.bytes = self.built.bytes.saturating_add(size.bytes);
        let over = if self.built.values > MAX_VALUES {
            format!("more than {MAX_VALUES} values")
        } else if self.built.bytes > MAX_EXPANDED_BYTES {
            format!("more than {MAX_EXPANDED_BYTES} bytes (64 MiB)")
        } else {
            return Ok(());
        };
        Err(Diagnostic::error(
            Some(self.location(span)),
            format!("document too large: {over} once aliases are expanded"),
        )
        .hint("an alias copies everything its anchor holds each time it is used; write the values out or use fewer aliases"))
    }

    /// The cost of one scalar of `len` bytes, or of one collection (`len` 0).
    fn one(len: usize) -> Size {
        Size {
            values: 1,
            bytes: len,
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, Diagnostic> {
        if depth > MAX_DEPTH {
            return Err(too_deep(self.location(&span)));
        }
        let location = self.location(&span);
        let before = self.built;
        let (node, anchor) = match event {
            Event::Alias(id) => {
                let size = self
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or_else(|| {
                        Diagnostic::error(Some(location.clone()), "invalid YAML: unknown alias")
                    })?;
                // Charged before the copy is made.
                self.count(size, &span)?;
                return Ok(self.anchors[&id].0.clone());
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(Self::one(text.len()), &span)?;
                let (merge_tag, is_str) = self.tag(tag.as_deref(), &location);
                let style = if style == YamlStyle::Plain && !is_str {
                    ScalarStyle::Plain
                } else {
                    ScalarStyle::String
                };
                let node = Node {
                    value: Value::Scalar(text.into_owned(), style),
                    location,
                    merge_tag,
                };
                (node, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.count(Self::one(0), &span)?;
                let (merge_tag, _) = self.tag(tag.as_deref(), &location);
                let items = self.sequence(depth)?;
                (
                    Node {
                        value: Value::Seq(items),
                        location,
                        merge_tag,
                    },
                    anchor,
                )
            }
            Event::MappingStart(_, anchor, tag) => {
                self.count(Self::one(0), &span)?;
                let (merge_tag, _) = self.tag(tag.as_deref(), &location);
                let map = self.mapping(depth)?;
                (
                    Node {
                        value: Value::Map(map),
                        location,
                        merge_tag,
                    },
                    anchor,
                )
            }
            _ => {
                return Err(Diagnostic::error(
                    Some(location),
                    "invalid YAML: unexpected event",
                ));
            }
        };
        if anchor != 0 {
            // What expanding this node again through an alias costs.
            let size = Size {
                values: self.built.values - before.values,
                bytes: self.built.bytes - before.bytes,
            };
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    /// Reads a sequence's items up to its end.
    fn sequence(&mut self, depth: usize) -> Result<Vec<Node>, Diagnostic> {
        let mut items = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                return Ok(items);
            }
            items.push(self.node(event, span, depth + 1)?);
        }
    }

    /// Reads a mapping's entries up to its end, applying `<<` merge keys.
    fn mapping(&mut self, depth: usize) -> Result<IndexMap<String, Entry>, Diagnostic> {
        let mut entries: IndexMap<String, Entry> = IndexMap::new();
        let mut merged: HashSet<String> = HashSet::new();
        let mut seen_merge_key = false;
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                return Ok(entries);
            }
            let key_node = self.node(event, span, depth + 1)?;
            let key_location = key_node.location.clone();
            let (key, key_style) = match key_node.as_scalar() {
                Some((text, style)) => (text.to_string(), style),
                None => {
                    return Err(Diagnostic::error(
                        Some(key_location),
                        "invalid YAML: a mapping key must be a scalar",
                    ))
                }
            };
            let (event, span) = self.next()?;
            let value = self.node(event, span, depth + 1)?;
            if key == "<<" && key_style == ScalarStyle::Plain {
                if seen_merge_key {
                    self.errors.push(duplicate_key(&key, key_location));
                    continue;
                }
                seen_merge_key = true;
                for source in self.merge_sources(&value) {
                    for (name, entry) in source {
                        if !entries.contains_key(&name) {
                            merged.insert(name.clone());
                            entries.insert(name, entry);
                        }
                    }
                }
                continue;
            }
            if entries.contains_key(&key) && !merged.remove(&key) {
                self.errors.push(duplicate_key(&key, key_location));
                continue;
            }
            entries.insert(
                key,
                Entry {
                    key_location,
                    value,
                },
            );
        }
    }

    /// The mappings a `<<` value merges in, earliest first; reports values that are not.
    fn merge_sources(&mut self, value: &Node) -> Vec<IndexMap<String, Entry>> {
        let invalid = |node: &Node| {
            Diagnostic::error(
                Some(node.location.clone()),
                format!(
                    "merge key `<<` takes a mapping or a list of mappings, not {}",
                    node.kind_name()
                ),
            )
            .hint("write `<<: *anchor` or `<<: [*first, *second]`")
        };
        match &value.value {
            Value::Map(map) => vec![map.clone()],
            Value::Seq(items) => {
                let mut sources = Vec::new();
                for item in items {
                    match item.as_map() {
                        Some(map) => sources.push(map.clone()),
                        None => self.errors.push(invalid(item)),
                    }
                }
                sources
            }
            Value::Scalar(..) => {
                self.errors.push(invalid(value));
                Vec::new()
            }
        }
    }

    /// Interprets a tag: Compose's merge tags, `!!str`, core tags; reports any other.
    fn tag(
        &mut self,
        tag: Option<&serde_saphyr::granit_parser::Tag>,
        location: &Location,
    ) -> (Option<MergeTag>, bool) {
        let Some(tag) = tag else { return (None, false) };
        if let Some(suffix) = tag.core_suffix() {
            return (None, suffix == "str");
        }
        match (tag.handle(), tag.suffix()) {
            ("!", "reset") => (Some(MergeTag::Reset), false),
            ("!", "override") => (Some(MergeTag::Override), false),
            _ => {
                self.errors.push(
                    Diagnostic::error(
                        Some(location.clone()),
                        format!("unsupported YAML tag `{tag}`"),
                    )
                    .hint(
                        "Compose files may use only `!reset`, `!override` and the core `!!` tags",
                    ),
                );
                (None, false)
            }
        }
    }
}

fn duplicate_key(key: &str, location: Location) -> Diagnostic {
    Diagnostic::error(Some(location), format!("duplicate key \"{key}\""))
        .hint("a key may appear once per mapping; remove or rename one of them")
}

/// The error for sequences and mappings nested deeper than [`MAX_DEPTH`], whether the parser
/// or the composer notices first.
fn too_deep(location: Location) -> Diagnostic {
    Diagnostic::error(
        Some(location),
        format!("document nested too deeply (more than {MAX_DEPTH} levels)"),
    )
    .hint("a Compose file never needs this much nesting; check for unclosed brackets")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        let (node, errors) = parse(text, &SourceFile::new("t.yaml", "/"));
        assert!(errors.is_empty(), "{errors:?}");
        node.expect("parses")
    }

    fn parse_err(text: &str) -> Vec<String> {
        let (_, errors) = parse(text, &SourceFile::new("t.yaml", "/"));
        assert!(!errors.is_empty(), "expected errors");
        errors.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn merge_keys_expand_and_explicit_keys_win() {
        let node =
            parse_ok("base: &b {a: 1, b: 2}\nother: &o {b: 9, c: 3}\nx:\n  <<: [*b, *o]\n  a: 5\n");
        let json = node.to_json();
        assert_eq!(json["x"], serde_json::json!({"a": 5, "b": 2, "c": 3}));
    }

    #[test]
    fn duplicate_key_is_reported_at_the_second_key() {
        let errors = parse_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("t.yaml:3:1: duplicate key \"a\""),
            "{errors:?}"
        );
    }

    #[test]
    fn locations_are_one_based() {
        let node = parse_ok("services:\n  app:\n    image: \"x\"\n");
        let app = &node.as_map().unwrap()["services"].value.as_map().unwrap()["app"];
        let image = &app.value.as_map().unwrap()["image"];
        assert_eq!((image.key_location.line, image.key_location.column), (3, 5));
        assert_eq!(
            (image.value.location.line, image.value.location.column),
            (3, 12)
        );
    }

    #[test]
    fn quoted_and_tagged_scalars_are_strings() {
        let node = parse_ok("a: 0400\nb: \"0400\"\nc: !!str 12\n");
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": 400, "b": "0400", "c": "12"})
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let errors = parse_err(&text);
        assert!(errors[0].contains("document too large"), "{errors:?}");
    }

    #[test]
    fn alias_expansion_counts_bytes_not_only_values() {
        // 1 MiB anchored once and referenced 100 times: few values, 100 MiB expanded.
        let mut text = format!("a: &big \"{}\"\nrefs:\n", "x".repeat(1 << 20));
        text.push_str(&"  - *big\n".repeat(100));
        let errors = parse_err(&text);
        assert!(errors[0].contains("document too large"), "{errors:?}");
        assert!(errors[0].contains("bytes"), "{errors:?}");
        // Well under the limit is fine: 1 MiB referenced 40 times.
        let mut text = format!("a: &big \"{}\"\nrefs:\n", "x".repeat(1 << 20));
        text.push_str(&"  - *big\n".repeat(40));
        let node = parse_ok(&text);
        assert_eq!(
            node.as_map().unwrap()["refs"].value.as_seq().unwrap().len(),
            40
        );
    }

    #[test]
    fn issue_13_anchor_bomb_is_refused_quickly() {
        // An 8 MiB scalar referenced 2,000 times (under the 16 MiB file limit and the value
        // count) would expand to about 16 GiB.
        let mut text = format!("a: &big {}\nrefs: [", "x".repeat(8 << 20));
        text.push_str(&"*big, ".repeat(2_000));
        text.push_str("]\n");
        assert!((text.len() as u64) < crate::compose::MAX_FILE_BYTES);
        let start = std::time::Instant::now();
        let errors = parse_err(&text);
        assert!(errors[0].contains("document too large"), "{errors:?}");
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn keys_count_towards_the_bytes() {
        let key = "k".repeat(1 << 20);
        let mut text = format!("a: &m\n  ? {key}\n  : 1\nrefs:\n");
        text.push_str(&"  - *m\n".repeat(100));
        let errors = parse_err(&text);
        assert!(errors[0].contains("document too large"), "{errors:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let nesting = "document nested too deeply (more than 128 levels)";
        // Flow, block, and both mixed: the parser's limits and the composer's own depth count.
        let flow = "[".repeat(10_000);
        let block: String = (0..200)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        let mixed = format!("a:\n  {}", "[".repeat(200));
        let mixed_deep: String = (0..100)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .chain(std::iter::once(format!(
                "{}{}{}\n",
                "  ".repeat(100),
                "[".repeat(100),
                "]".repeat(100)
            )))
            .collect();
        for text in [flow, block, mixed, mixed_deep] {
            let errors = parse_err(&text);
            assert!(errors[0].contains(nesting), "{errors:?}");
        }
        let flow_at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        parse_ok(&flow_at_limit);
    }

    #[test]
    fn comments_anywhere_are_ignored() {
        let node = parse_ok("# head\na: 1 # after a value\nb: # before a value\n  - x # in a list\n  # between items\n  - y\nc: {d: 2} # after a flow map\n");
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": 1, "b": ["x", "y"], "c": {"d": 2}})
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let errors = parse_err("a: [1, 2\nb: 3\n");
        assert!(errors[0].starts_with("error: t.yaml:"), "{errors:?}");
        assert!(errors[0].contains("invalid YAML"), "{errors:?}");
    }
}
