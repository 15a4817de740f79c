//! The registry of values no output may contain, shared by both test binaries.
//!
//! A test registers every secret value it hands stackroll ([`secret_value`], [`register`]);
//! [`leaks_in`] then searches any text for each value and for common encodings of it
//! (unsalted SHA-256, SHA-1 and MD5 hex digests, base64, hex, a Rust byte list), and [`redact`]
//! makes text safe to print in a failure message.

use std::collections::BTreeSet;
use std::sync::Mutex;

use base64::Engine as _;

/// One way a registered value could show up.
pub(crate) struct Needle {
    /// Which value (a description, never the value itself).
    pub(crate) label: String,
    /// How it is encoded: raw, sha256, base64, ...
    pub(crate) form: &'static str,
    /// The text to search for.
    pub(crate) text: String,
}

/// Every registered value, in every form.
pub(crate) static NEEDLES: Mutex<Vec<Needle>> = Mutex::new(Vec::new());

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers `value` (and its encodings) as something no output may contain.
pub(crate) fn register(label: &str, value: &[u8]) {
    use sha1::Digest as _;
    let sha256 = hex(&sha2::Sha256::digest(value));
    let sha1 = hex(&sha1::Sha1::digest(value));
    let md5 = hex(&md5::Md5::digest(value));
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
    let forms: Vec<(&'static str, String)> = vec![
        ("raw", String::from_utf8_lossy(value).into_owned()),
        ("sha256 hex", sha256.clone()),
        ("SHA256 HEX", sha256.to_uppercase()),
        ("sha1 hex", sha1.clone()),
        ("SHA1 HEX", sha1.to_uppercase()),
        ("md5 hex", md5.clone()),
        ("MD5 HEX", md5.to_uppercase()),
        ("base64", b64.trim_end_matches('=').to_string()),
        ("base64url", b64url),
        ("hex", hex(value)),
        ("byte list", format!("{value:?}")),
    ];
    let mut needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    for (form, text) in forms {
        assert!(
            text.len() >= 12,
            "registered values must be long enough to search for"
        );
        needles.push(Needle {
            label: label.to_string(),
            form,
            text,
        });
    }
}

/// A fresh random value `<prefix>-<32 hex digits>`, registered under `label`.
pub(crate) fn secret_value(prefix: &str, label: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    let value = format!("{prefix}-{}", hex(&bytes));
    register(label, value.as_bytes());
    value
}

/// Every registered value (by label and form) that `text` contains.
pub(crate) fn leaks_in(text: &str) -> Vec<String> {
    let needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    let stripped = strip_ansi(text);
    let lower = stripped.to_lowercase();
    needles
        .iter()
        .filter(|n| {
            text.contains(&n.text)
                || stripped.contains(&n.text)
                // hex digests in any case
                || (n.form.ends_with("hex") && lower.contains(&n.text.to_lowercase()))
        })
        .map(|n| format!("value {:?} as {}", n.label, n.form))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `text` with every registered value replaced by a marker, safe to print.
pub(crate) fn redact(text: &str) -> String {
    let needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = strip_ansi(text);
    for needle in needles.iter() {
        text = text.replace(
            &needle.text,
            &format!("<REDACTED {} {}>", needle.label, needle.form),
        );
    }
    text
}

/// Removes ANSI escape sequences (tracing colours its output).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}
