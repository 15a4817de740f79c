//! Compose `.env` file parsing (the project `.env`, `--env-file`, `env_file:` files).
//!
//! This module owns turning the text of an env file into an ordered map of variables. Reading
//! files and deciding which environment to pass as `lookup` is the caller's business. Values
//! are interpolated with [`super::interpolate::interpolate`].
//!
//! # Compose compatibility
//!
//! The behaviour mirrors compose-go's `dotenv` package (`dotenv/parser.go`,
//! `dotenv/godotenv.go`, `dotenv/env.go`), quirks included:
//!
//! * A leading UTF-8 byte order mark is ignored. Blank lines and lines whose first non-blank
//!   character is `#` are skipped.
//! * A statement is an optional `export` prefix (followed by whitespace), a key, then `=` or
//!   `:` (YAML style, `KEY: value`), then the value. Whitespace around the key and after the
//!   separator is ignored. Keys may contain letters, digits, `_`, `.`, `-`, `[` and `]`; a
//!   space inside a key is an error, other characters are an "unexpected character" error.
//!   The key may be empty (`=value`).
//! * `KEY` alone on its line takes its value from `lookup`; if `lookup` has nothing the key
//!   is left out (or keeps an earlier value). This holds on the last line without a trailing
//!   newline too, where compose-go has a bug (it reads `FOO` at the end of the file as the
//!   value of the empty key); stackroll reads it as the bare key it is.
//! * Unquoted values run to the end of the line; everything from the first ` #` (space then
//!   hash) is a comment, and trailing whitespace is removed. A `#` not preceded by a space is
//!   part of the value, so `KEY= #x` (the space after `=` is skipped) gives `#x`. The value is
//!   interpolated.
//! * Single-quoted values are not interpolated and keep backslashes, except that `\'` is an
//!   escaped quote. Double-quoted values drop the backslash of `\"`, then expand the escapes
//!   `\a \b \f \n \r \t \v \\ \"`, `\$` (a literal `$`) and `\0NNN` (octal, at most `\0377`);
//!   a malformed octal escape loses its `0` (`\0` gives `\`, `\012` gives `\12`), and any other
//!   backslash stays as it is. The result is then interpolated. Quoted values may span lines.
//!   Text after the closing quote on the same line is parsed as the next statement
//!   (`A="x" B=y` defines two keys; a `# comment` there is skipped).
//! * Interpolation looks a variable up in `lookup` first and only then among the keys defined
//!   earlier in the file (compose-go's `expandVariables`): the environment wins over the file.
//! * A key defined twice keeps its first position and its last value.
//!
//! Deviations:
//!
//! * Every error carries the line where its statement starts and a column (compose-go reports
//!   an unterminated quote on the last line of the file, interpolation errors without a line,
//!   and loses a line after a bare `KEY` with trailing blanks).
//! * No error quotes the file's text: compose-go prints the rest of the line (the value) in
//!   "unterminated quoted value" and "unexpected character" errors and the whole value in
//!   interpolation errors; an env file holds secrets, so stackroll gives the key (when the
//!   statement got as far as one) and the column instead.
//! * Interpolation produces at most [`MAX_INTERPOLATED_BYTES`] for the whole file.
//! * Key characters are checked with Rust's `char::is_alphabetic`/`char::is_numeric`, which
//!   also admit the few combining marks Unicode calls "alphabetic" that Go's `IsLetter`
//!   rejects.

use indexmap::IndexMap;

use super::interpolate::{interpolate_within, MAX_OUTPUT_BYTES};

/// Most bytes the interpolation of one file's values may produce in all (64 MiB), so that
/// `B=$A$A$A...` with a large `A` cannot exhaust memory.
pub const MAX_INTERPOLATED_BYTES: usize = MAX_OUTPUT_BYTES;

/// A syntax error in an env file. It never holds any of the file's text beyond a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct DotenvError {
    /// 1-based line number of the statement.
    pub line: usize,
    /// 1-based column (in characters) of the offending character, or of the value.
    pub column: usize,
    /// The key of the statement, once it was read.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Parses an env file into its variables, in the order in which keys first appear.
///
/// `lookup` (usually the process environment) supplies the value of a bare `KEY` line and
/// resolves variables in values; as in compose-go it is consulted *before* the keys defined
/// earlier in the same file, which are the fallback. Later keys are never visible. See the
/// module documentation for the syntax.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut parser = Parser {
        src: text,
        pos: 0,
        line: 1,
        counted: 0,
        out: IndexMap::new(),
        lookup,
        budget: MAX_INTERPOLATED_BYTES,
    };
    parser.run()?;
    Ok(parser.out)
}

struct Parser<'a> {
    src: &'a str,
    /// Start of the unparsed text.
    pos: usize,
    /// 1-based line of `counted`.
    line: usize,
    /// Byte offset up to which newlines have been counted into `line`.
    counted: usize,
    out: IndexMap<String, String>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Bytes interpolation may still produce.
    budget: usize,
}

/// compose-go's `isSpace`: blank characters that are not line breaks.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    )
}

/// Go's `\s` in regular expressions (ASCII only, no vertical tab).
fn is_regex_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

/// How a key ended.
enum KeyEnd {
    /// `=` or `:`: a value follows.
    Value,
    /// A line break or the end of the input: the value comes from the environment.
    Inherited,
}

impl Parser<'_> {
    /// The 1-based line of byte offset `at` (which must not be before `self.counted`).
    fn line_at(&mut self, at: usize) -> usize {
        self.line += self.src[self.counted..at].matches('\n').count();
        self.counted = at;
        self.line
    }

    /// The 1-based column, in characters, of byte offset `at`.
    fn column_at(&self, at: usize) -> usize {
        let line_start = self.src[..at].rfind('\n').map_or(0, |n| n + 1);
        self.src[line_start..at].chars().count() + 1
    }

    /// An error in the statement on `line`, at byte offset `at`, for `key` if known.
    fn error(
        &self,
        line: usize,
        at: usize,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> DotenvError {
        DotenvError {
            line,
            column: self.column_at(at),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    fn run(&mut self) -> Result<(), DotenvError> {
        while let Some(start) = self.statement_start() {
            let line = self.line_at(start);
            self.statement(start, line)?;
        }
        Ok(())
    }

    /// compose-go's `getStatementStart`: skips whitespace and comment lines.
    fn statement_start(&self) -> Option<usize> {
        let mut pos = self.pos;
        loop {
            let rest = &self.src[pos..];
            let offset = rest.find(|c: char| !c.is_whitespace())?;
            pos += offset;
            if !self.src[pos..].starts_with('#') {
                return Some(pos);
            }
            pos += self.src[pos..].find('\n')?;
        }
    }

    /// Parses one statement starting at `start` (on line `line`).
    fn statement(&mut self, start: usize, line: usize) -> Result<(), DotenvError> {
        let mut src = &self.src[start..];
        let b = src.as_bytes();
        if b.len() > 6 && src.starts_with("export") && is_regex_space(b[6]) {
            src = src[6..].trim_start_matches(is_blank);
        }
        if src.is_empty() {
            return Err(self.error(line, start, None, "zero length string"));
        }
        let base = self.src.len() - src.len();

        // A statement that reaches the end of the input without a separator is a bare key.
        let mut key_end = KeyEnd::Inherited;
        let mut key = src;
        let mut after_key = src.len();
        for (i, c) in src.char_indices() {
            if is_blank(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = &src[..i];
                    after_key = i + 1;
                    key_end = if c == '\n' {
                        KeyEnd::Inherited
                    } else {
                        KeyEnd::Value
                    };
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphabetic() || c.is_numeric() => {}
                _ => {
                    // Not quoted: without a separator the "name" may be a pasted value.
                    return Err(self.error(
                        line,
                        base + i,
                        None,
                        "unexpected character in variable name",
                    ));
                }
            }
        }
        let key = key.trim_end();
        if key.contains(' ') {
            return Err(self.error(line, base, None, "key cannot contain a space"));
        }
        let value_start = base + after_key;
        let value_src = self.src[value_start..].trim_start_matches(is_blank);
        let value_start = self.src.len() - value_src.len();

        if let KeyEnd::Inherited = key_end {
            if let Some(value) = (self.lookup)(key) {
                self.out.insert(key.to_string(), value);
            }
            self.pos = value_start;
            return Ok(());
        }

        let (value, consumed) = self.value(value_start, line, key)?;
        self.out.insert(key.to_string(), value);
        self.pos = value_start + consumed;
        Ok(())
    }

    /// compose-go's `extractVarValue`: the value of `key` starting at byte `start` and how
    /// many bytes it used.
    fn value(
        &mut self,
        start: usize,
        line: usize,
        key: &str,
    ) -> Result<(String, usize), DotenvError> {
        let src = &self.src[start..];
        let quote = match src.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (raw, consumed) = match src.find('\n') {
                    Some(n) => (&src[..n], n + 1),
                    None => (src, src.len()),
                };
                let raw = raw.split(" #").next().unwrap_or_default().trim_end();
                return Ok((self.expand(raw, start, line, key)?, consumed));
            }
        };

        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in src.char_indices().skip(1) {
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                // `\"` or `\'`: the quote itself.
                escaped = false;
                chars.push(c);
                continue;
            }
            let value = if quote == '"' {
                self.expand(&expand_escapes(&chars), start, line, key)?
            } else {
                chars
            };
            return Ok((value, i + 1));
        }
        Err(self.error(
            line,
            start,
            Some(key),
            "unterminated quoted value: the closing quote is missing",
        ))
    }

    /// compose-go's `expandVariables` on the value of `key` starting at byte `start`:
    /// `lookup` first, then the keys parsed so far.
    fn expand(
        &mut self,
        value: &str,
        start: usize,
        line: usize,
        key: &str,
    ) -> Result<String, DotenvError> {
        let resolve = |name: &str| (self.lookup)(name).or_else(|| self.out.get(name).cloned());
        match interpolate_within(value, &resolve, self.budget) {
            Ok(result) => {
                self.budget -= result.value.len();
                Ok(result.value)
            }
            Err(error) => Err(self.error(line, start, Some(key), error.to_string())),
        }
    }
}

/// compose-go's `expandEscapes` for double-quoted values.
///
/// Expands `\a \b \f \n \r \t \v \\ \"` and `\0NNN` (three octal digits, at most 0377; a
/// malformed one loses its `0`), turns `\$` into `$$` (a literal `$` for the interpolation
/// that follows) and leaves every other backslash sequence, including `\c`, as it is.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(n) = rest.find('\\') {
        out.push_str(&rest[..n]);
        rest = &rest[n..];
        let Some(next) = rest[1..].chars().next() else {
            out.push('\\');
            rest = "";
            break;
        };
        let simple = match next {
            'a' => Some("\u{07}"),
            'b' => Some("\u{08}"),
            'f' => Some("\u{0C}"),
            'n' => Some("\n"),
            'r' => Some("\r"),
            't' => Some("\t"),
            'v' => Some("\u{0B}"),
            '\\' => Some("\\"),
            '"' => Some("\""),
            '$' => Some("$$"),
            'c' => Some("\\c"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            rest = &rest[2..];
            continue;
        }
        if next == '0' {
            // `\0` and up to three digits, as the regular expression `0\d{0,3}` takes them.
            let digits = rest[2..]
                .bytes()
                .take(3)
                .take_while(u8::is_ascii_digit)
                .count();
            // compose-go rewrites `\0` to `\` before decoding and, when decoding fails, keeps
            // the rewritten text: `\0` alone becomes `\`, `\012` becomes `\12`.
            let digits_text = &rest[2..2 + digits];
            match octal(digits_text) {
                Some(c) => out.push(c),
                None => {
                    out.push('\\');
                    out.push_str(digits_text);
                }
            }
            rest = &rest[2 + digits..];
            continue;
        }
        // Not an escape: keep the backslash, look at the next character normally.
        out.push('\\');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// The character of a `\0NNN` escape given its digits: exactly three octal digits with a
/// value of at most 255 (Go's `strconv.UnquoteChar` on `\NNN`).
fn octal(digits: &str) -> Option<char> {
    if digits.len() != 3 {
        return None;
    }
    let value = u32::from_str_radix(digits, 8).ok()?;
    if value > 255 {
        return None;
    }
    char::from_u32(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            "OPTION_A" => Some("5".into()),
            _ => None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_ok(text: &str) -> IndexMap<String, String> {
        parse(text, &env).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_ok(text).into_iter().collect()
    }

    fn one(text: &str, key: &str, value: &str) {
        let map = parse_ok(text);
        assert_eq!(
            map.get(key).map(String::as_str),
            Some(value),
            "{text:?} gave {map:?}"
        );
    }

    fn parse_err(text: &str) -> DotenvError {
        match parse(text, &env) {
            Ok(m) => panic!("{text:?} should fail, got {m:?}"),
            Err(e) => e,
        }
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn empty_blank_and_comment_lines() {
        for text in [
            "",
            "\n",
            "\r\n",
            "\t\t ",
            "# Comment",
            "\t # comment\n\n#x\n",
        ] {
            assert!(parse_ok(text).is_empty(), "{text:?}");
        }
        assert_eq!(
            pairs("# head\n\nA=1\n  # indented\n\nB=2\n"),
            vec![p("A", "1"), p("B", "2")]
        );
    }

    #[test]
    fn plain_assignments_keep_file_order() {
        assert_eq!(
            pairs("Z=1\nA=2\nM=3"),
            vec![p("Z", "1"), p("A", "2"), p("M", "3")]
        );
        // Redefinition keeps the first position, last value.
        assert_eq!(pairs("A=1\nB=2\nA=3"), vec![p("A", "3"), p("B", "2")]);
    }

    #[test]
    fn whitespace_around_key_and_separator() {
        one("FOO =bar", "FOO", "bar");
        one("FOO= bar", "FOO", "bar");
        one(" KEY =value", "KEY", "value");
        one("\tKEY\t=\tvalue\t", "KEY", "value");
        one("FOO=bar ", "FOO", "bar");
        one("FOO=bar\r\nB=2", "FOO", "bar");
    }

    #[test]
    fn export_prefix() {
        one("export OPTION_A=2", "OPTION_A", "2");
        one("export\tOPTION_A=2", "OPTION_A", "2");
        one("  export OPTION_A=2", "OPTION_A", "2");
        one("export exportFoo=2", "exportFoo", "2");
        one("exportFOO=2", "exportFOO", "2");
        one("export_FOO =2", "export_FOO", "2");
        one("export.FOO= 2", "export.FOO", "2");
        one(r#"export OPTION_A="export A""#, "OPTION_A", "export A");
        one("export=1", "export", "1");
        assert_eq!(parse_err("A=1\nexport ").line, 2);
    }

    #[test]
    fn yaml_style_and_extra_separators() {
        one("OPTION_A: 1", "OPTION_A", "1");
        one("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar");
        one("OPTION_A=1:B", "OPTION_A", "1:B");
        one("FOO=foobar=", "FOO", "foobar=");
    }

    #[test]
    fn key_characters() {
        one("FOO.BAR=foobar", "FOO.BAR", "foobar");
        one("VAR-WITH-DASHES=dashes", "VAR-WITH-DASHES", "dashes");
        one("a[1]=c", "a[1]", "c");
        one("árvíztűrő-TÜKÖRFÚRÓGÉP=x", "árvíztűrő-TÜKÖRFÚRÓGÉP", "x");
        one("1A=x", "1A", "x");
        one(r#"="value""#, "", "value");
        let e = parse_err("A=1\n%!(EXTRA string)=foo");
        assert_eq!((e.line, e.column, e.key), (2, 1, None));
        assert_eq!(e.message, "unexpected character in variable name");
        // Neither the "name" (maybe a pasted value) nor the character is shown.
        let e = parse_err("  hunter2!x");
        assert_eq!((e.line, e.column), (1, 10));
        assert!(!e.to_string().contains("hunter"), "{e}");
        assert_eq!(parse_err("lol$wut").line, 1);
    }

    #[test]
    fn key_with_space_is_an_error() {
        let e = parse_err("A=1\n\n# c\nMY KEY=1\n");
        assert_eq!(e.line, 4);
        assert_eq!(e.message, "key cannot contain a space");
        assert_eq!(parse_err("MY KEY\n").line, 1);
        // A bare key with trailing blanks still ends its line (compose-go's counter drifts).
        assert_eq!(parse_err("HOME \nMY KEY=1").line, 2);
    }

    #[test]
    fn unquoted_values_and_inline_comments() {
        one("FOO=bar # this is foo", "FOO", "bar");
        one("FOO=bar #this is foo", "FOO", "bar");
        one("FOO=bar #", "FOO", "bar");
        one(
            "FOO=123#not-an-inline-comment",
            "FOO",
            "123#not-an-inline-comment",
        );
        one("FOO=a\t#b", "FOO", "a\t#b");
        // The blanks after `=` are skipped before looking for ` #`.
        one("FOO= #not a comment", "FOO", "#not a comment");
        one("FOO=", "FOO", "");
        one("FOO=\nB=1", "FOO", "");
        one(r"FOO=a\tb", "FOO", r"a\tb");
        one("FOO=it's \"fine\"", "FOO", "it's \"fine\"");
    }

    #[test]
    fn single_quoted_values_are_literal() {
        one("FOO='bar'", "FOO", "bar");
        one("OPTION_C=''", "OPTION_C", "");
        one(r"OPTION_D='\n'", "OPTION_D", r"\n");
        one(
            "BAR='quote $HOME ${X:?boom}'",
            "BAR",
            "quote $HOME ${X:?boom}",
        );
        one("FOO='bar#baz' # comment", "FOO", "bar#baz");
        // `\'` is the one escape single quotes know.
        one(r"OPTION_K='Let\'s go!'", "OPTION_K", "Let's go!");
        one(r"K='a\\b'", "K", r"a\\b");
        one(r#"K='a\"b'"#, "K", r#"a\"b"#);
    }

    #[test]
    fn double_quoted_values() {
        one(r#"FOO="bar""#, "FOO", "bar");
        one(r#"OPTION_G="""#, "OPTION_G", "");
        one(r#"FOO="escaped\"bar""#, "FOO", r#"escaped"bar"#);
        one(r#"FOO="\"quoted\"""#, "FOO", r#""quoted""#);
        one(r#"FOO="'d'""#, "FOO", "'d'");
        one(r##"FOO="bar#baz"#"##, "FOO", "bar#baz");
        one(r#"FOO="bar#baz" # comment"#, "FOO", "bar#baz");
        one(
            r#"OPTION_I = "echo 'asd'" # Inline comment"#,
            "OPTION_I",
            "echo 'asd'",
        );
    }

    #[test]
    fn double_quoted_escapes() {
        one(r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz");
        one(r#"FOO="a\tb""#, "FOO", "a\tb");
        one(
            r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#,
            "KEY",
            "Z\u{07}Z\u{08}Z\u{0C}Z\nZ\rZ\tZ\u{0B}Z\\ZSZ",
        );
        one(r#"FOO="bar\n\ b\az""#, "FOO", "bar\n\\ b\u{07}z");
        one(r#"FOO="bar\\\n\ b\az""#, "FOO", "bar\\\n\\ b\u{07}z");
        one(r#"FOO="bar\\r\ b\az""#, "FOO", "bar\\r\\ b\u{07}z");
        one(r#"FOO="bar\nbaz\\""#, "FOO", "bar\nbaz\\");
        // Unsupported escapes stay as they are.
        one(r#"KEY="\x07""#, "KEY", r"\x07");
        one(r#"KEY="\u12e4""#, "KEY", r"\u12e4");
        one(r#"KEY="\c\q\'""#, "KEY", r"\c\q\'");
        // Octal: `\0` plus exactly three octal digits, at most 0377.
        one(r#"KEY="\0123""#, "KEY", "S");
        one(r#"KEY="\01234""#, "KEY", "S4");
        one(r#"KEY="\0377""#, "KEY", "\u{FF}");
        one(r#"KEY="\0000""#, "KEY", "\0");
        // Malformed octal escapes lose their `0` (compose-go keeps its rewritten `\NNN`).
        one(r#"KEY="\0""#, "KEY", r"\");
        one(r#"KEY="\012""#, "KEY", r"\12");
        one(r#"KEY="\0400""#, "KEY", r"\400");
        one(r#"KEY="\0089""#, "KEY", r"\089");
    }

    #[test]
    fn escaped_dollar_in_double_quotes() {
        one(r#"FOO="foo\$BAR""#, "FOO", "foo$BAR");
        one(r#"FOO="foo\${BAR}""#, "FOO", "foo${BAR}");
        one(
            "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
            "BAR",
            "foo${FOO} test",
        );
        one("FOO=$$HOME", "FOO", "$HOME");
        // An octal escape that produces `$` is interpolated afterwards, as in compose-go.
        one(r#"FOO="\0044HOME""#, "FOO", "/home/me");
    }

    #[test]
    fn multi_line_quoted_values() {
        let text = "OPTION_J = 'first line\nsecond line\nthird line\nand so on'\nNEXT=1\n";
        assert_eq!(
            pairs(text),
            vec![
                p("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                p("NEXT", "1")
            ]
        );
        one(
            "TEST_URLS=\"stratum+tcp://a:3333\nstratum+tcp://b:443\"",
            "TEST_URLS",
            "stratum+tcp://a:3333\nstratum+tcp://b:443",
        );
        // Line numbers after a multi-line value stay right.
        assert_eq!(parse_err("A='x\ny\nz'\nB=1\nC D=2").line, 5);
    }

    #[test]
    fn text_after_closing_quote_is_a_new_statement() {
        assert_eq!(pairs(r#"A="x" B=y"#), vec![p("A", "x"), p("B", "y")]);
        assert_eq!(pairs("A='x'#c\nB=1"), vec![p("A", "x"), p("B", "1")]);
    }

    #[test]
    fn unterminated_quotes() {
        for text in [
            r#"KEY=""#,
            r#"KEY="value"#,
            r#"KEY="value\""#,
            r#"KEY="value'"#,
            "KEY='",
            "KEY='value",
            r"KEY='value\'",
            r#"KEY='value""#,
        ] {
            let e = parse_err(text);
            assert!(e.message.starts_with("unterminated quoted value"), "{e}");
            assert_eq!(e.line, 1);
        }
        let e = parse_err("A=1\nKEY= \"abc\ndef\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert_eq!(e.key.as_deref(), Some("KEY"));
        assert_eq!(
            e.message,
            "unterminated quoted value: the closing quote is missing"
        );
        assert!(!e.to_string().contains("abc"), "{e}");
    }

    #[test]
    fn bare_key_is_inherited_from_lookup() {
        assert_eq!(
            pairs("foo=bar\nHOME\nbar=baz\n"),
            vec![p("foo", "bar"), p("HOME", "/home/me"), p("bar", "baz")]
        );
        assert_eq!(pairs("EMPTY\n"), vec![p("EMPTY", "")]);
        assert_eq!(pairs("NOT_FOUND\nA=1\n"), vec![p("A", "1")]);
        assert_eq!(pairs("export HOME\n"), vec![p("HOME", "/home/me")]);
        assert_eq!(pairs("A=1\nA\n"), vec![p("A", "1")]);
        assert_eq!(pairs("  HOME  \r\n"), vec![p("HOME", "/home/me")]);
    }

    #[test]
    fn bare_key_at_eof_without_newline_is_a_bare_key() {
        // compose-go reads it as the value of the empty key, a bug stackroll does not copy.
        assert_eq!(pairs("HOME"), vec![p("HOME", "/home/me")]);
        assert_eq!(pairs("A=1\nlast"), vec![p("A", "1")]);
    }

    #[test]
    fn interpolation_in_unquoted_and_double_quoted_values() {
        one("FOO=test\nBAR=$FOO", "BAR", "test");
        one("FOO=test\nBAR=${FOO}bar", "BAR", "testbar");
        one("BAR=$FOO", "BAR", "");
        one("FOO=test\nBAR=\"quote $FOO\"", "BAR", "quote test");
        one("A=${MISSING:-x y}", "A", "x y");
        one("A=${EMPTY-set} ${EMPTY:-dflt}", "A", " dflt");
        one("A=${HOME:+yes}", "A", "yes");
        // Values that contain `$` are not interpolated twice.
        one("A='$$HOME'\nB=$A", "B", "$$HOME");
    }

    #[test]
    fn later_keys_are_not_visible_to_earlier_values() {
        assert_eq!(pairs("A=$B\nB=1"), vec![p("A", ""), p("B", "1")]);
    }

    #[test]
    fn lookup_takes_precedence_over_earlier_keys() {
        // compose-go's expandVariables consults the environment before the file.
        let text = "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B";
        assert_eq!(
            pairs(text),
            vec![p("OPTION_A", "1"), p("OPTION_B", "5"), p("OPTION_C", "5")]
        );
        let map = parse(text, &no_env).unwrap();
        assert_eq!(map["OPTION_B"], "1");
        assert_eq!(map["OPTION_C"], "1");
    }

    #[test]
    fn interpolation_errors_carry_the_line() {
        let e = parse_err("A=1\n\nB=${NOPE:?set it}\n");
        assert_eq!(e.line, 3);
        assert_eq!(
            e.message,
            "required variable NOPE is missing a value: set it"
        );
        let e = parse_err("A=1\nB=\"x\ny ${\"");
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.key.as_deref(), Some("B"));
        assert_eq!(
            e.to_string(),
            "line 2, column 3: invalid interpolation format at character 5 of the value: `${` must be followed by a variable name"
        );
        let e = parse_err("URL=postgres://u:hunter2${w\n");
        assert_eq!((e.line, e.column, e.key.as_deref()), (1, 5, Some("URL")));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        // The message of a required variable is shown as written, never interpolated.
        let e = parse_err("S=hunter2\nU=${NOPE:?not $S}\n");
        assert_eq!(
            e.message,
            "required variable NOPE is missing a value: not $S"
        );
    }

    #[test]
    fn interpolation_output_is_bounded_per_file() {
        // 1 MiB, then a value referencing it 100 times: 100 MiB, over the 64 MiB budget.
        let text = format!("A={}\nB={}\n", "x".repeat(1 << 20), "$A".repeat(100));
        let e = parse(&text, &no_env).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("B")));
        assert!(e.message.contains("more than"), "{e}");
        // The budget is for the whole file, not per value.
        let line = format!("B={}\n", "$A".repeat(40));
        let text = format!("A={}\n{line}{line}", "x".repeat(1 << 20));
        assert!(parse(&text, &no_env).is_err());
        let text = format!("A={}\n{line}", "x".repeat(1 << 20));
        assert!(parse(&text, &no_env).is_ok());
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(
            pairs("\u{FEFF}OPTION_A=1\nOPTION_B=2"),
            vec![p("OPTION_A", "1"), p("OPTION_B", "2")]
        );
    }

    #[test]
    fn many_lines_parse_linearly() {
        let text: String = (0..20_000).map(|i| format!("KEY{i}=VALUE{i}\n")).collect();
        let map = parse(&text, &no_env).unwrap();
        assert_eq!(map.len(), 20_000);
        assert_eq!(map["KEY19999"], "VALUE19999");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\"",
            "'",
            "=",
            ":",
            "\\",
            "export",
            "export ",
            "export\n",
            "A=\"\\",
            "A=\"\\0",
            "A=\"\\01\"",
            "é",
            "\u{FEFF}",
            "#",
            "A=$",
            "A=${",
            "\u{85}A=1",
            "A\u{A0}=1",
        ] {
            let _ = parse(text, &env);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse(&s, &env);
        }

        #[test]
        fn never_panics_on_env_soup(
            s in "(export|[ ]|\\t|\\n|\\r|=|:|#|\"|'|\\\\|[$]|[{]|[}]|A|b|0|7|n|é|-)*"
        ) {
            let _ = parse(&s, &env);
        }

        #[test]
        fn simple_assignments_round_trip(
            entries in proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,8}", "[a-zA-Z0-9_./-]{0,12}"), 0..8)
        ) {
            let text: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let map = parse(&text, &no_env).unwrap();
            let mut expected = IndexMap::new();
            for (k, v) in &entries {
                expected.insert(k.clone(), v.clone());
            }
            proptest::prop_assert_eq!(map, expected);
        }
    }
}
