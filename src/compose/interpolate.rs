//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}` and friends.
//!
//! This module owns the string-level substitution grammar used for Compose files and for
//! values in `.env` files (see [`super::dotenv`]). It does not know where variables come from:
//! callers pass a `lookup` closure that returns `None` for an unset variable and `Some("")` for
//! a variable that is set but empty.
//!
//! # Compose compatibility
//!
//! The behaviour mirrors compose-go's `template` package (`template/template.go`), which is a
//! regular expression plus a few string-splitting helpers. The notable consequences, all
//! reproduced here on purpose:
//!
//! * Variable names match `[_a-z][_a-z0-9]*` case-insensitively, so lowercase names are fine,
//!   dots and dashes are not (`$A.b` is `$A` followed by `.b`). Because Go folds case with
//!   Unicode rules, `ſ` (U+017F, folds to `s`) and `K` (U+212A Kelvin sign, folds to `k`) are
//!   accepted in names too.
//! * `$$` is a literal `$`. A `$` that starts nothing valid (end of input, `$ `, `$-`, `$1`,
//!   `$}`) is kept literally; only `${` that is not a well-formed braced expression is an error
//!   (`${`, `${}`, `${ A}`, `${A }`, `${A!}`, `${A:}`, `${A` ...).
//! * In `${NAME<op>ARG}` the operator is the one right after the name (`:-`, `-`, `:?`, `?`,
//!   `:+`, `+`); everything after it is the argument, operators inside the argument are text.
//! * The end of `${NAME<op>...}` is found by counting braces from the `$`, with compose-go's
//!   quirk that the character right after every `{` is skipped; if the count never returns to
//!   zero, the expression extends to the *last* `}` on the line. An operator expression never
//!   spans lines, so a default with a newline in it is a syntax error.
//! * Arguments (defaults, replacements, error messages) are interpolated lazily, only when
//!   used: a malformed default of a variable that is set is not an error.
//! * Values returned by `lookup` are inserted verbatim, never re-interpolated.
//! * Only plain `$VAR` / `${VAR}` references of unset variables are reported in
//!   [`Interpolated::unset`] (compose-go logs a warning for exactly those).
//!
//! Deviations:
//!
//! * Errors never quote the text being interpolated nor any variable's value: the text may
//!   be a secret (`content:`, an `environment:` value, a line of an env file). compose-go
//!   prints the whole template in a syntax error; [`InterpolationError::Syntax`] gives the
//!   position of the offending `${` instead, and [`InterpolationError::Required`] gives the
//!   message as written, without interpolating the variables in it.
//! * Nesting of evaluated arguments is limited to [`MAX_DEPTH`] levels (compose-go has no
//!   limit); deeper nesting is reported as a syntax error instead of exhausting the stack.
//! * The output is bounded: [`interpolate_within`] stops with [`InterpolationError::TooLarge`]
//!   once it has produced more bytes than its limit (`$BIG$BIG$BIG...` with a large variable
//!   would otherwise grow without bound); [`interpolate`] uses [`MAX_OUTPUT_BYTES`].

/// Maximum nesting depth of interpolated defaults/replacements/messages.
pub const MAX_DEPTH: usize = 64;

/// Most bytes [`interpolate`] produces for one input (64 MiB). Bytes produced inside nested
/// defaults count again when the outer expression uses them, so the bound is on work done,
/// not only on the result's length.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// Result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The string with every variable substituted and `$$` turned into `$`.
    pub value: String,
    /// Variables that were referenced without a default and are unset (each once, in order).
    pub unset: Vec<String>,
    /// Where docker/cli 20.10 (`docker stack deploy`) reads the value differently.
    pub differences: Vec<ReadingDifference>,
}

/// A place where `docker stack deploy` (docker/cli 20.10's template package) reads a value
/// differently from the Compose specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingDifference {
    /// A `$` inside the default or alternative value that was used: docker/cli keeps the
    /// argument literally (`${PASS:-$2y$05$abc}` stays `$2y$05$abc`, `$$` stays `$$`).
    DollarInArgument,
    /// `${VAR:+alt}` / `${VAR+alt}`: docker/cli 20.10 refuses the operator.
    AlternativeOperator,
}

/// Why a string could not be interpolated. No variant holds any of the interpolated text or
/// any variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing (or empty for `:?`).
    /// `message` is the text written after `?`, its variables not substituted.
    #[error("required variable {name} is missing a value{}", message_suffix(.message))]
    Required {
        /// The variable.
        name: String,
        /// The text written after `?`.
        message: String,
    },
    /// The text is not valid Compose interpolation syntax: the `${` at character `position`
    /// (1-based, counted in the whole input) starts a malformed expression.
    #[error("invalid interpolation format at character {position} of the value: {reason}")]
    Syntax {
        /// Where the malformed `${` starts, in characters from 1.
        position: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Interpolating would produce more than `limit` bytes.
    #[error("interpolation would produce more than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// `": message"`, or nothing for an empty message (as compose-go prints it).
fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Interpolates `input` with Compose's grammar, looking variables up with `lookup`.
///
/// `lookup(name)` returns `None` for an unset variable and `Some("")` for a set but empty one.
/// See the module documentation for the exact (compose-go compatible) semantics.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolationError> {
    interpolate_within(input, lookup, MAX_OUTPUT_BYTES)
}

/// [`interpolate`], failing with [`InterpolationError::TooLarge`] once more than `limit`
/// bytes have been produced.
pub fn interpolate_within(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    limit: usize,
) -> Result<Interpolated, InterpolationError> {
    let mut state = State {
        lookup,
        input,
        unset: Vec::new(),
        differences: Vec::new(),
        limit,
        produced: 0,
    };
    let value = state.substitute(input, 0, 0)?;
    Ok(Interpolated {
        value,
        unset: state.unset,
        differences: state.differences,
    })
}

/// What one `${...}` expression expands to.
struct Expansion {
    /// The replacement text.
    text: String,
    /// The byte of the template after the expression's closing brace.
    end: usize,
}

/// The operator of a `${NAME<op>ARG}` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `-` / `:-`: default value.
    Default,
    /// `?` / `:?`: required, with an error message.
    Required,
    /// `+` / `:+`: alternative value when set.
    Alternative,
}

struct State<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// The whole input, to turn byte offsets into character positions.
    input: &'a str,
    unset: Vec<String>,
    /// Readings docker/cli would differ on, each once.
    differences: Vec<ReadingDifference>,
    /// Most bytes that may be produced.
    limit: usize,
    /// Bytes produced so far, at every nesting level.
    produced: usize,
}

/// Is `c` allowed as the first character of a variable name?
///
/// compose-go's `(?i)[_a-z]` under Go's Unicode case folding.
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

/// Is `c` allowed after the first character of a variable name?
fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Length in bytes of the variable name at the start of `s` (0 if there is none).
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    for (i, c) in chars {
        if !is_name_char(c) {
            return i;
        }
    }
    s.len()
}

/// How far an operator expression starting with `${` at `start` extends.
enum Extent {
    /// compose-go's brace counter returned to zero at this `}`.
    Balanced(usize),
    /// The counter never returned to zero before the end of the line, which is at this index.
    Unbalanced { line_end: usize },
}

/// compose-go's `getFirstBraceClosingIndex`, restricted to the current line.
///
/// Counts `{` / `}` from `start` (a `$`); after each `{` the next byte is skipped. Characters
/// after the last `}` of a line never change the outcome, so stopping at the line end is
/// equivalent to compose-go's scan of the regular-expression match.
fn find_extent(bytes: &[u8], start: usize) -> Extent {
    let mut open = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return Extent::Unbalanced { line_end: i },
            b'}' => {
                // The scan starts at `${`, so a `}` always closes something here.
                open = open.saturating_sub(1);
                if open == 0 {
                    return Extent::Balanced(i);
                }
            }
            b'{' => {
                open += 1;
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    return Extent::Unbalanced { line_end: i };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Extent::Unbalanced {
        line_end: bytes.len(),
    }
}

impl State<'_> {
    /// A syntax error for the `${` at byte `at` of the input.
    fn syntax(&self, at: usize, reason: impl Into<String>) -> InterpolationError {
        InterpolationError::Syntax {
            position: self.input[..at].chars().count() + 1,
            reason: reason.into(),
        }
    }

    /// Appends `text` to `out`, counting it against the limit.
    fn push(&mut self, out: &mut String, text: &str) -> Result<(), InterpolationError> {
        self.produced = self.produced.saturating_add(text.len());
        if self.produced > self.limit {
            return Err(InterpolationError::TooLarge { limit: self.limit });
        }
        out.push_str(text);
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// Records a difference from docker/cli's reading, once.
    fn differ(&mut self, difference: ReadingDifference) {
        if !self.differences.contains(&difference) {
            self.differences.push(difference);
        }
    }

    /// Plain `$NAME` / `${NAME}`: the value, or "" and a record in `unset`.
    fn plain(&mut self, name: &str) -> String {
        match self.lookup(name) {
            Some(value) => value,
            None => {
                if !self.unset.iter().any(|n| n == name) {
                    self.unset.push(name.to_string());
                }
                String::new()
            }
        }
    }

    /// compose-go's `Substitute` on one template (the input or a nested argument), which
    /// starts at byte `base` of the input.
    fn substitute(
        &mut self,
        template: &str,
        depth: usize,
        base: usize,
    ) -> Result<String, InterpolationError> {
        if depth > MAX_DEPTH {
            return Err(self.syntax(
                base,
                format!("variables are nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        let mut out = String::with_capacity(template.len().min(self.limit));
        // Start of the literal text not yet copied to `out`.
        let mut literal = 0;
        // Where to look for the next `$`.
        let mut i = 0;

        while let Some(offset) = template[i..].find('$') {
            let p = i + offset;
            let after = &template[p + 1..];
            if after.starts_with('$') {
                self.push(&mut out, &template[literal..=p])?;
                i = p + 2;
                literal = i;
                continue;
            }
            let len = name_len(after);
            if len > 0 {
                self.push(&mut out, &template[literal..p])?;
                let value = self.plain(&after[..len]);
                self.push(&mut out, &value)?;
                i = p + 1 + len;
                literal = i;
                continue;
            }
            if !after.starts_with('{') {
                // A lone `$`: kept as it is.
                i = p + 1;
                continue;
            }

            // `${`
            self.push(&mut out, &template[literal..p])?;
            let expansion = self.braced(template, depth, base, p)?;
            self.push(&mut out, &expansion.text)?;
            i = expansion.end;
            literal = i;
        }
        self.push(&mut out, &template[literal..])?;
        Ok(out)
    }

    /// One `${...}` expression, whose `$` is at byte `p` of `template`: its replacement and
    /// the byte after its closing brace.
    fn braced(
        &mut self,
        template: &str,
        depth: usize,
        base: usize,
        p: usize,
    ) -> Result<Expansion, InterpolationError> {
        let bytes = template.as_bytes();
        let name_start = p + 2;
        let len = name_len(&template[name_start..]);
        if len == 0 {
            return Err(self.syntax(base + p, "`${` must be followed by a variable name"));
        }
        let name = &template[name_start..name_start + len];
        let q = name_start + len;
        let (op, colon, arg_start) = match (bytes.get(q), bytes.get(q + 1)) {
            (Some(b'}'), _) => {
                return Ok(Expansion {
                    text: self.plain(name),
                    end: q + 1,
                })
            }
            (Some(b':'), Some(b'-')) => (Op::Default, true, q + 2),
            (Some(b':'), Some(b'?')) => (Op::Required, true, q + 2),
            (Some(b':'), Some(b'+')) => (Op::Alternative, true, q + 2),
            (Some(b'-'), _) => (Op::Default, false, q + 1),
            (Some(b'?'), _) => (Op::Required, false, q + 1),
            (Some(b'+'), _) => (Op::Alternative, false, q + 1),
            _ => {
                return Err(self.syntax(
                    base + p,
                    format!(
                        "expected `}}` or one of `:-`, `-`, `:?`, `?`, `:+`, `+` after `${{{name}`"
                    ),
                ));
            }
        };
        let close = match find_extent(bytes, p) {
            Extent::Balanced(close) => close,
            Extent::Unbalanced { line_end } => match template[arg_start..line_end].rfind('}') {
                Some(off) => arg_start + off,
                None => {
                    return Err(self.syntax(
                        base + p,
                        format!("`${{{name}` has no closing `}}` on the same line"),
                    ));
                }
            },
        };
        let arg = &template[arg_start..close];
        if op == Op::Alternative {
            self.differ(ReadingDifference::AlternativeOperator);
        }
        let value = self.lookup(name);
        let missing = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        let used = match op {
            Op::Default => missing,
            Op::Alternative => !missing,
            Op::Required => false,
        };
        if used && arg.contains('$') {
            self.differ(ReadingDifference::DollarInArgument);
        }
        let replacement = match op {
            Op::Default if missing => self.substitute(arg, depth + 1, base + arg_start)?,
            Op::Alternative if value.is_some() && !missing => {
                self.substitute(arg, depth + 1, base + arg_start)?
            }
            Op::Required if missing => {
                // Checked as compose-go checks it, but reported as written: the variables
                // in it may hold secrets.
                self.substitute(arg, depth + 1, base + arg_start)?;
                return Err(InterpolationError::Required {
                    name: name.to_string(),
                    message: arg.to_string(),
                });
            }
            _ => value.unwrap_or_default(),
        };
        Ok(Expansion {
            text: replacement,
            end: close + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".into()),
            "EMPTY" => Some(String::new()),
            "JSON" => Some(r#"{"json":2}"#.into()),
            "DOLLAR" => Some("a$FOO${FOO}$$b".into()),
            "lower" => Some("low".into()),
            "_x1" => Some("under".into()),
            "\u{17F}" => Some("long s".into()),
            _ => None,
        }
    }

    fn ok(input: &str) -> String {
        interpolate(input, &env)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .value
    }

    fn unset(input: &str) -> Vec<String> {
        interpolate(input, &env).unwrap().unset
    }

    fn err(input: &str) -> InterpolationError {
        match interpolate(input, &env) {
            Ok(v) => panic!("{input:?} should fail, got {v:?}"),
            Err(e) => e,
        }
    }

    fn syntax_position(input: &str) -> usize {
        match err(input) {
            InterpolationError::Syntax { position, .. } => position,
            other => panic!("{input:?}: expected a syntax error, got {other:?}"),
        }
    }

    fn required(input: &str) -> (String, String) {
        match err(input) {
            InterpolationError::Required { name, message } => (name, message),
            other => panic!("{input:?}: expected a required error, got {other:?}"),
        }
    }

    #[test]
    fn no_variables() {
        assert_eq!(ok(""), "");
        assert_eq!(ok("foo"), "foo");
        assert_eq!(ok("héllo wörld ✓"), "héllo wörld ✓");
    }

    #[test]
    fn readings_docker_cli_differs_on_are_recorded() {
        let differences = |input: &str| interpolate(input, &env).unwrap().differences;
        assert_eq!(
            differences("${PASS:-$2y$05$abc}"),
            vec![ReadingDifference::DollarInArgument]
        );
        assert_eq!(
            differences("${UNSET:-a$$b}"),
            vec![ReadingDifference::DollarInArgument]
        );
        // The default is not used when the variable is set: both read the same.
        assert!(differences("${FOO:-$x}").is_empty());
        assert!(differences("${UNSET:-plain}").is_empty());
        assert_eq!(
            differences("${FOO:+x}"),
            vec![ReadingDifference::AlternativeOperator]
        );
    }

    #[test]
    fn plain_variables() {
        assert_eq!(ok("This $FOO var"), "This first var");
        assert_eq!(ok("This ${FOO} var"), "This first var");
        assert_eq!(ok("$FOO-bar"), "first-bar");
        assert_eq!(ok("${FOO}${FOO}"), "firstfirst");
        assert_eq!(ok("$FOO$FOO"), "firstfirst");
        assert_eq!(ok("x${EMPTY}y"), "xy");
    }

    #[test]
    fn names_are_case_insensitive_ascii_words() {
        assert_eq!(ok("$lower"), "low");
        assert_eq!(ok("${lower}"), "low");
        assert_eq!(ok("$_x1"), "under");
        assert_eq!(ok("$FOO.bar"), "first.bar");
        assert_eq!(ok("$FOO-x"), "first-x");
        // Name is greedy: `$FOOBAR` is one (unset) variable.
        assert_eq!(ok("$FOOBAR"), "");
        // Go's case folding admits the long s and the Kelvin sign.
        assert_eq!(ok("$\u{17F}"), "long s");
        assert_eq!(ok("${\u{17F}}"), "long s");
        assert_eq!(unset("$\u{212A}x"), vec!["\u{212A}x".to_string()]);
        // Other non-ASCII letters are not name characters.
        assert_eq!(ok("$é"), "$é");
        assert_eq!(ok("$FOOé"), "firsté");
    }

    #[test]
    fn unset_plain_variables_are_recorded_once_in_order() {
        let r = interpolate("This ${missing} $other $missing ${FOO} var", &env).unwrap();
        assert_eq!(r.value, "This    first var");
        assert_eq!(r.unset, vec!["missing".to_string(), "other".to_string()]);
        // Set-but-empty is not unset.
        assert!(unset("${EMPTY}").is_empty());
        // Variables with an operator are never reported.
        assert!(unset("${U1:-x}${U2-x}${U3:+x}${U4+x}").is_empty());
        // ... but plain references inside a used default are.
        assert_eq!(unset("${U1:-${U2}}"), vec!["U2".to_string()]);
        // ... and not inside an unused one.
        assert!(unset("${FOO:-${U2}}").is_empty());
        assert!(unset("${U1:+${U2},}B").is_empty());
    }

    #[test]
    fn escaped_dollar() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$${foo}"), "${foo}");
        assert_eq!(ok("$$FOO"), "$FOO");
        assert_eq!(ok("$$$FOO"), "$first");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("${FOO:-$$}"), "first");
        assert_eq!(ok("${UNSET:-$$x}"), "$x");
    }

    #[test]
    fn lone_dollar_is_literal() {
        for s in [
            "a $ string",
            "^REGEX$",
            "$}",
            "$",
            "$ ",
            "$-",
            "$1",
            "$.x",
            "$é",
            "$\n",
        ] {
            assert_eq!(ok(s), s, "{s:?}");
        }
    }

    #[test]
    fn default_when_unset_or_empty() {
        assert_eq!(ok("ok ${missing:-def}"), "ok def");
        assert_eq!(ok("ok ${EMPTY:-def}"), "ok def");
        assert_eq!(ok("ok ${FOO:-def}"), "ok first");
        assert_eq!(ok("ok ${missing:-}"), "ok ");
        assert_eq!(
            ok("ok ${EMPTY:-/non:-alphanumeric}"),
            "ok /non:-alphanumeric"
        );
    }

    #[test]
    fn default_when_unset() {
        assert_eq!(ok("ok ${missing-def}"), "ok def");
        assert_eq!(ok("ok ${EMPTY-def}"), "ok ");
        assert_eq!(ok("ok ${FOO-def}"), "ok first");
        assert_eq!(ok("${missing-}"), "");
    }

    #[test]
    fn alternative_when_set_and_non_empty() {
        assert_eq!(ok("ok ${FOO:+alt}"), "ok alt");
        assert_eq!(ok("ok ${EMPTY:+alt}"), "ok ");
        assert_eq!(ok("ok ${missing:+alt}"), "ok ");
    }

    #[test]
    fn alternative_when_set() {
        assert_eq!(ok("ok ${FOO+alt}"), "ok alt");
        assert_eq!(ok("ok ${EMPTY+alt}"), "ok alt");
        assert_eq!(ok("ok ${missing+alt}"), "ok ");
    }

    #[test]
    fn required_when_unset_or_empty() {
        assert_eq!(
            required("not ok ${missing:?Mandatory Variable Unset}"),
            ("missing".into(), "Mandatory Variable Unset".into())
        );
        assert_eq!(
            required("not ok ${EMPTY:?Mandatory Variable Empty}"),
            ("EMPTY".into(), "Mandatory Variable Empty".into())
        );
        assert_eq!(required("${missing:?}"), ("missing".into(), String::new()));
        assert_eq!(ok("ok ${FOO:?err}"), "ok first");
    }

    #[test]
    fn required_when_unset() {
        assert_eq!(
            required("${missing?bar-baz}"),
            ("missing".into(), "bar-baz".into())
        );
        assert_eq!(required("${missing?}"), ("missing".into(), String::new()));
        assert_eq!(ok("ok ${FOO?err}"), "ok first");
        assert_eq!(ok("ok ${EMPTY?err}"), "ok ");
    }

    #[test]
    fn required_error_display_matches_compose() {
        assert_eq!(
            err("${missing:?boom}").to_string(),
            "required variable missing is missing a value: boom"
        );
        assert_eq!(
            err("${missing?}").to_string(),
            "required variable missing is missing a value"
        );
    }

    #[test]
    fn first_operator_after_the_name_wins() {
        assert_eq!(ok("${missing-myerror?msg}"), "myerror?msg");
        assert_eq!(ok("${missing-va:-lu:?e}"), "va:-lu:?e");
        assert_eq!(ok("${FOO+va:+lue}"), "va:+lue");
        assert_eq!(ok("${missing:-a:?b}"), "a:?b");
        assert_eq!(
            required("${missing?va-lu+e:?e}"),
            ("missing".into(), "va-lu+e:?e".into())
        );
        assert_eq!(
            required("${missing:?val?ue}"),
            ("missing".into(), "val?ue".into())
        );
    }

    #[test]
    fn operator_text_outside_the_expression_does_not_interfere() {
        assert_eq!(ok("-ok ${EMPTY:-defaultValue}"), "-ok defaultValue");
        assert_eq!(ok("+ok ${UNSET:-${EMPTY-defaultValue}}"), "+ok ");
        assert_eq!(ok(":-ok ${UNSET-defaultValue}"), ":-ok defaultValue");
        assert_eq!(ok(":?ok ${EMPTY-defaultValue}"), ":?ok ");
        assert_eq!(ok("?ok ${EMPTY:-defaultValue}"), "?ok defaultValue");
        assert_eq!(
            ok("ok ${SUBDOMAIN:-redis}.${FOO:?}"),
            "ok redis.first",
            "two operator expressions on a line"
        );
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("ok ${UNSET-$FOO}"), "ok first");
        assert_eq!(ok("ok ${UNSET-${FOO}}"), "ok first");
        assert_eq!(ok("ok ${UNSET-${FOO} ${FOO}}"), "ok first first");
        assert_eq!(ok("ok ${EMPTY:-$FOO}"), "ok first");
        assert_eq!(ok("ok ${EMPTY+$FOO}"), "ok first");
        assert_eq!(ok("ok ${EMPTY+$FOO ${FOO:+second}}"), "ok first second");
        assert_eq!(ok("${A:-${B:-x}}"), "x");
        assert_eq!(ok("${A:-${B:-${FOO}}}"), "first");
        assert_eq!(ok("${A:-${B:-${C:-${D:-deep}}}}"), "deep");
        assert_eq!(ok("${FOO:+<${EMPTY:-e}>}"), "<e>");
        // The message is checked but reported as written: variables may hold secrets.
        assert_eq!(
            required("${U:?need ${FOO} here}"),
            ("U".into(), "need ${FOO} here".into())
        );
        assert!(matches!(
            err("${U:?need ${ } here}"),
            InterpolationError::Syntax { position: 11, .. }
        ));
    }

    #[test]
    fn braces_inside_defaults() {
        assert_eq!(ok(r#"ok ${missing:-{"json":1}}"#), r#"ok {"json":1}"#);
        assert_eq!(ok(r#"ok ${missing-{"json":1}}"#), r#"ok {"json":1}"#);
        assert_eq!(ok(r#"ok ${JSON:-{"json":1}}"#), r#"ok {"json":2}"#);
        assert_eq!(ok("${missing:-x}}"), "x}");
        assert_eq!(ok("${missing:-a{b}c}d"), "a{b}cd");
    }

    #[test]
    fn brace_counting_quirk_skips_the_character_after_an_open_brace() {
        // compose-go skips the byte after each `{`, so `{}` never closes: the expression runs
        // to the last `}` of the line.
        assert_eq!(ok("${missing:-{}x}"), "{}x");
        assert_eq!(ok("${FOO:-{}x} ${U} ${V:-${}} ${W:-${}}"), "first");
        assert_eq!(ok("${missing:-{x}"), "{x");
        // The expression is confined to its line.
        assert_eq!(ok("${missing:-{}x}\n}"), "{}x\n}");
    }

    #[test]
    fn unused_defaults_are_not_checked() {
        assert_eq!(ok("${FOO:-${}}"), "first");
        assert_eq!(ok("${FOO?${}}"), "first");
        assert_eq!(ok("${missing:+${}}"), "");
        assert_eq!(syntax_position("${missing:-${}}"), 12);
    }

    #[test]
    fn values_are_not_reinterpolated() {
        assert_eq!(ok("${DOLLAR}"), "a$FOO${FOO}$$b");
        assert_eq!(ok("$DOLLAR"), "a$FOO${FOO}$$b");
        assert_eq!(ok("${DOLLAR:-x}"), "a$FOO${FOO}$$b");
        assert_eq!(ok("${DOLLAR?x}"), "a$FOO${FOO}$$b");
    }

    #[test]
    fn syntax_errors() {
        for s in [
            "${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "${A", "${A:}", "${A:x}",
            "${A:-x", "${1}", "${é}", "${A.B}", "x ${", "$$${",
        ] {
            let expected = s.find("${").unwrap() + 1;
            assert_eq!(syntax_position(s), expected, "{s:?}");
        }
    }

    #[test]
    fn operator_expressions_do_not_span_lines() {
        assert_eq!(syntax_position("${missing:-a\nb}"), 1);
        // A plain `${A}` on the next line is unaffected.
        assert_eq!(ok("${missing:-a}\n${FOO}"), "a\nfirst");
        assert_eq!(ok("x\n${missing:-a}\ny}"), "x\na\ny}");
    }

    #[test]
    fn syntax_errors_give_the_position_never_the_text() {
        assert_eq!(syntax_position("${FOO:-x} ${ }"), 11);
        assert_eq!(syntax_position("a ${FOO:-x}${FOO:-y} ${ } b}c"), 22);
        assert_eq!(syntax_position("${FOO:-x} }\n${ }"), 13);
        // Characters, not bytes.
        assert_eq!(syntax_position("é ${"), 3);
        // Inside a nested default: the position in the whole input.
        assert_eq!(syntax_position("ab${U:-cd${ }}"), 10);
        let e = err("hunter2 ${");
        assert_eq!(
            e.to_string(),
            "invalid interpolation format at character 9 of the value: `${` must be followed by a variable name"
        );
        let e = err("pw=hunter2${w");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn first_error_wins() {
        assert!(matches!(
            err("${U:?first} ${"),
            InterpolationError::Required { .. }
        ));
        assert!(matches!(
            err("${ ${U:?second}"),
            InterpolationError::Syntax { .. }
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let nest = |n: usize| format!("{}x{}", "${U:-".repeat(n), "}".repeat(n));
        let too_deep = |error: InterpolationError| match error {
            InterpolationError::Syntax { reason, .. } => {
                reason == format!("variables are nested more than {MAX_DEPTH} levels deep")
            }
            InterpolationError::Required { .. } | InterpolationError::TooLarge { .. } => false,
        };
        assert_eq!(ok(&nest(MAX_DEPTH)), "x");
        assert!(too_deep(err(&nest(MAX_DEPTH + 1))));
        // Very deep nesting fails cleanly instead of overflowing the stack.
        assert!(too_deep(err(&nest(100_000))));
    }

    #[test]
    fn output_is_bounded() {
        let three = "$FOO$FOO$FOO";
        assert_eq!(
            interpolate_within(three, &env, 15).unwrap().value,
            "firstfirstfirst"
        );
        assert_eq!(
            interpolate_within(three, &env, 14),
            Err(InterpolationError::TooLarge { limit: 14 })
        );
        // Literal text counts too, and so does what nested defaults produce.
        assert!(interpolate_within("abcdef", &env, 5).is_err());
        assert!(interpolate_within("${U:-${FOO}}", &env, 9).is_err());
        // A large variable referenced many times stops at the limit, not at the end.
        let big = "x".repeat(1 << 20);
        let lookup = |_: &str| Some(big.clone());
        let many = "$B".repeat(100_000);
        let start = std::time::Instant::now();
        assert_eq!(
            interpolate(&many, &lookup),
            Err(InterpolationError::TooLarge {
                limit: MAX_OUTPUT_BYTES
            })
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn many_expressions_on_one_line_are_not_nesting() {
        let s = "${U:-a}".repeat(10_000);
        assert_eq!(ok(&s), "a".repeat(10_000));
    }

    #[test]
    fn long_inputs_are_fast() {
        // Would be quadratic if every expression rescanned the rest of the line.
        let s = "${U:-a} $FOO ${FOO} $$ ".repeat(50_000);
        let start = std::time::Instant::now();
        let r = interpolate(&s, &env).unwrap();
        assert_eq!(r.value.len(), "a first first $ ".len() * 50_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        let s = format!("${{U:-{}", "{".repeat(200_000));
        assert!(interpolate(&s, &env).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = interpolate(&s, &env);
        }

        #[test]
        fn never_panics_on_interpolation_soup(
            s in "([$]|[{]|[}]|[:]|[-]|[+]|[?]|FOO|EMPTY|U|a|é|\\n| )*"
        ) {
            let _ = interpolate(&s, &env);
        }

        #[test]
        fn text_without_dollar_is_unchanged(s in "[^$]*") {
            let r = interpolate(&s, &env).unwrap();
            prop_assert_eq!(r.value, s);
            prop_assert!(r.unset.is_empty());
        }

        #[test]
        fn doubled_dollars_round_trip(t in "\\PC*") {
            let escaped = t.replace('$', "$$");
            let r = interpolate(&escaped, &env).unwrap();
            prop_assert_eq!(r.value, t);
            prop_assert!(r.unset.is_empty());
        }

        #[test]
        fn values_are_inserted_verbatim(
            value in "\\PC*",
            prefix in "[^$]*",
            suffix in "[^$]*",
        ) {
            let v = value.clone();
            let lookup = move |name: &str| (name == "NAME").then(|| v.clone());
            let input = format!("{prefix}${{NAME}}{suffix}");
            let r = interpolate(&input, &lookup).unwrap();
            prop_assert_eq!(r.value, format!("{prefix}{value}{suffix}"));
        }
    }
}
