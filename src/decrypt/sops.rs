//! SOPS files (<https://getsops.io>) in the YAML, JSON, dotenv and binary formats, decrypted
//! the way `sops -d` does: the data key is unwrapped from one of the file's `age` entries, each
//! `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]` value is opened with AES-256-GCM (a 32-byte
//! IV, the value's path `a:b:c:` as additional data), and the file's MAC (SHA-512 over every
//! value, itself encrypted with `lastmodified` as additional data) must match before any value
//! is used: a value changed, added or removed outside SOPS is refused.
//!
//! Written on RustCrypto (`aes-gcm`, `sha2`) and the `age` crate rather than on a SOPS library:
//! the one Rust implementation (`rops`) writes its own variant of the format, pulls in a second
//! YAML library and the AWS SDK, and decrypting is the only part stackroll needs.
//!
//! The decrypted document is written out again: YAML and JSON from the decrypted tree (keys in
//! file order, comments left out), dotenv as `KEY=value` lines as `sops -d` writes them, a
//! binary file as its bytes. The same plaintext always gives the same bytes, whatever data key
//! or recipients the file was encrypted with.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use age::x25519::Identity;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::Plaintext;
use crate::compose::yaml;
use crate::diagnostic::SourceFile;
use crate::model::node::{Node, Typed, Value};

/// AES-256-GCM with SOPS's 32-byte IVs.
type SopsCipher = AesGcm<Aes256, U32>;

/// What a MAC computed over encrypted values only starts with (SOPS's
/// `MACOnlyEncryptedInitialization`), so it never equals a MAC over all values.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Key sources SOPS can wrap a data key for, named in messages when no `age` entry is there.
const OTHER_KEY_SOURCES: &[&str] = &["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"];

/// The format a SOPS file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A YAML document.
    Yaml,
    /// A JSON document.
    Json,
    /// `KEY=value` lines.
    Dotenv,
    /// Any file, kept as the `data` value of a JSON document.
    Binary,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Binary => "binary",
        })
    }
}

/// A document as SOPS sees it: mappings in file order, lists, scalars.
#[derive(Debug, Clone, PartialEq)]
enum Tree {
    /// A mapping.
    Map(Vec<(String, Tree)>),
    /// A list.
    List(Vec<Tree>),
    /// A scalar.
    Leaf(Leaf),
}

/// A scalar as written (an encrypted value is a string).
#[derive(Debug, Clone, PartialEq)]
enum Leaf {
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
}

/// A decrypted document; strings are held in memory zeroed when dropped.
enum Plain {
    /// A mapping.
    Map(Vec<(String, Plain)>),
    /// A list.
    List(Vec<Plain>),
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string (or bytes).
    Str(Zeroizing<Vec<u8>>),
}

/// The `sops` entry of a file: how its values are encrypted and checked.
#[derive(Debug, Default)]
struct Metadata {
    /// The encrypted MAC.
    mac: String,
    /// When the file was last changed, as written (the MAC's additional data).
    last_modified: String,
    /// The `age` entries: a recipient and the data key encrypted to it.
    age: Vec<AgeEntry>,
    /// Other key sources present (pgp, kms, ...), for messages.
    other_sources: Vec<String>,
    /// Which values are left in clear text.
    rules: Rules,
    /// Whether the MAC covers encrypted values only.
    mac_only_encrypted: bool,
}

/// An `age` entry of the metadata.
#[derive(Debug, Default)]
struct AgeEntry {
    /// The recipient (a public key).
    recipient: String,
    /// The data key, as an armored age file.
    enc: String,
}

/// SOPS's rules for which values are encrypted, by their path's keys.
#[derive(Debug, Default)]
struct Rules {
    /// Keys ending in this leave their values clear.
    unencrypted_suffix: Option<String>,
    /// Only keys ending in this have their values encrypted.
    encrypted_suffix: Option<String>,
    /// Keys matching this leave their values clear.
    unencrypted_regex: Option<regex::Regex>,
    /// Only keys matching this have their values encrypted.
    encrypted_regex: Option<regex::Regex>,
}

impl Rules {
    /// Whether the value at `path` is encrypted (SOPS's `shouldBeEncrypted`, comments aside).
    fn encrypted(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.unencrypted_suffix {
            if path.iter().any(|key| key.ends_with(suffix.as_str())) {
                encrypted = false;
            }
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|key| key.ends_with(suffix.as_str()));
        }
        if let Some(regex) = &self.unencrypted_regex {
            if path.iter().any(|key| regex.is_match(key)) {
                encrypted = false;
            }
        }
        if let Some(regex) = &self.encrypted_regex {
            encrypted = path.iter().any(|key| regex.is_match(key));
        }
        encrypted
    }
}

/// Whether `bytes`, read from `file`, are a SOPS file, and in which format: a document with a
/// `sops` entry holding a MAC (for dotenv, `sops_mac=` and `sops_version=` lines). The format
/// follows the file's extension as SOPS does (`.yaml`/`.yml`, `.json`, `.env`); any other file
/// holding just `data` and `sops` is a binary file.
pub fn detect(file: &Path, bytes: &[u8]) -> Option<Format> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.contains("sops") || !text.contains("ENC[AES256_GCM,") {
        return None;
    }
    if is_dotenv(text) {
        return Some(Format::Dotenv);
    }
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let by_syntax = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    };
    // Both markers and no document to read: a damaged SOPS file, reported when decrypting
    // rather than sent as it is.
    let Some(Tree::Map(entries)) = parse_document(text) else {
        return Some(match extension {
            "json" => Format::Json,
            _ => by_syntax,
        });
    };
    let sops = entries.iter().find(|(key, _)| key == "sops")?;
    let Tree::Map(metadata) = &sops.1 else {
        return None;
    };
    if !metadata.iter().any(|(key, _)| key == "mac") {
        return None;
    }
    Some(match extension {
        "yaml" | "yml" => Format::Yaml,
        "json" => Format::Json,
        _ if entries.len() == 2 && entries.iter().any(|(key, _)| key == "data") => Format::Binary,
        _ => by_syntax,
    })
}

/// Whether `text` is a SOPS dotenv file.
fn is_dotenv(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("sops_mac="))
        && text.lines().any(|line| line.starts_with("sops_version="))
}

/// Parses a JSON or YAML document into a tree; None when it is neither.
fn parse_document(text: &str) -> Option<Tree> {
    if text.trim_start().starts_with('{') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            return Some(from_json(&value));
        }
    }
    let file = SourceFile::new("<sops>", Path::new("/"));
    let (node, errors) = yaml::parse(text, &file);
    if !errors.is_empty() {
        return None;
    }
    Some(from_node(&node?))
}

/// A tree from JSON. SOPS reads every JSON number as a float.
fn from_json(value: &serde_json::Value) -> Tree {
    use serde_json::Value as Json;
    match value {
        Json::Null => Tree::Leaf(Leaf::Null),
        Json::Bool(b) => Tree::Leaf(Leaf::Bool(*b)),
        Json::Number(n) => Tree::Leaf(Leaf::Float(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Tree::Leaf(Leaf::Str(s.clone())),
        Json::Array(items) => Tree::List(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            Tree::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A tree from a YAML document, scalars typed by the YAML 1.2 core schema.
fn from_node(node: &Node) -> Tree {
    match &node.value {
        Value::Map(map) => Tree::Map(
            map.iter()
                .map(|(key, entry)| (key.clone(), from_node(&entry.value)))
                .collect(),
        ),
        Value::Seq(items) => Tree::List(items.iter().map(from_node).collect()),
        Value::Scalar(..) => Tree::Leaf(match node.typed().expect("a scalar") {
            Typed::Null => Leaf::Null,
            Typed::Bool(b) => Leaf::Bool(b),
            Typed::Int(i) => Leaf::Int(i),
            Typed::Float(f) => Leaf::Float(f),
            Typed::Str(s) => Leaf::Str(s.to_string()),
        }),
    }
}

/// Parses a SOPS dotenv file: `KEY=value` lines (`\n` in a value is a newline), `#` comments
/// (left out), the metadata as flattened `sops_...` keys.
fn parse_dotenv(text: &str) -> Result<Tree, String> {
    let mut entries = Vec::new();
    let mut metadata = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} is not KEY=value", index + 1));
        };
        let value = Tree::Leaf(Leaf::Str(value.replace("\\n", "\n")));
        match key.strip_prefix("sops_") {
            Some(field) => metadata.push((field.to_string(), value)),
            None => entries.push((key.to_string(), value)),
        }
    }
    entries.push(("sops".to_string(), unflatten(metadata)));
    Ok(Tree::Map(entries))
}

/// A list of the metadata rebuilt from dotenv's flattened keys.
struct FlatList {
    /// Its name (`age`).
    name: String,
    /// Its items' fields, by index.
    items: Vec<Vec<(String, Tree)>>,
}

/// Rebuilds the metadata's `age` list from dotenv's flattened keys
/// (`age__list_0__map_recipient`); other keys stay as they are.
fn unflatten(fields: Vec<(String, Tree)>) -> Tree {
    let mut plain = Vec::new();
    let mut lists: Vec<FlatList> = Vec::new();
    for (field, value) in fields {
        let parsed = field.split_once("__list_").and_then(|(name, rest)| {
            let (index, key) = rest.split_once("__map_")?;
            Some((
                name.to_string(),
                index.parse::<usize>().ok()?,
                key.to_string(),
            ))
        });
        let Some((name, index, key)) = parsed else {
            plain.push((field, value));
            continue;
        };
        let position = match lists.iter().position(|list| list.name == name) {
            Some(position) => position,
            None => {
                lists.push(FlatList {
                    name,
                    items: Vec::new(),
                });
                lists.len() - 1
            }
        };
        let items = &mut lists[position].items;
        if items.len() <= index {
            items.resize_with(index + 1, Vec::new);
        }
        items[index].push((key, value));
    }
    for list in lists {
        let items = list.items.into_iter().map(Tree::Map).collect();
        plain.push((list.name, Tree::List(items)));
    }
    Tree::Map(plain)
}

/// Decrypts a SOPS file of `format` with the first identity that unwraps its data key,
/// checks its MAC and writes the plaintext out; the reason when it cannot.
pub fn decrypt(format: Format, bytes: &[u8], identities: &[Identity]) -> Result<Plaintext, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let tree = match format {
        Format::Dotenv => parse_dotenv(text)?,
        _ => parse_document(text).ok_or("it is not a valid document")?,
    };
    let Tree::Map(mut entries) = tree else {
        return Err("it is not a mapping".to_string());
    };
    let position = entries
        .iter()
        .position(|(key, _)| key == "sops")
        .ok_or("it has no sops metadata")?;
    let metadata = metadata(&entries.remove(position).1)?;
    let data_key = data_key(&metadata, identities)?;
    let mut walk = Walk {
        cipher: SopsCipher::new_from_slice(&data_key[..]).map_err(|_| "bad data key")?,
        rules: &metadata.rules,
        hasher: Sha512::new(),
        mac_only_encrypted: metadata.mac_only_encrypted,
    };
    if metadata.mac_only_encrypted {
        walk.hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let plain = walk.map(&entries, &mut Vec::new())?;
    let computed = hex_upper(&std::mem::take(&mut walk.hasher).finalize());
    let stored = walk
        .open(&metadata.mac, metadata.last_modified.as_bytes())
        .map_err(|_| {
            "its MAC cannot be decrypted: the file was changed outside SOPS or is damaged"
        })?;
    if !stored.0.eq_ignore_ascii_case(computed.as_bytes()) {
        return Err(
            "its MAC does not match its values: the file was changed outside SOPS or is damaged"
                .into(),
        );
    }
    write_out(format, &plain, bytes.len())
}

/// Reads the `sops` entry.
fn metadata(tree: &Tree) -> Result<Metadata, String> {
    let Tree::Map(fields) = tree else {
        return Err("its sops metadata is not a mapping".to_string());
    };
    let text = |name: &str| {
        fields.iter().find_map(|(key, value)| match value {
            Tree::Leaf(Leaf::Str(text)) if key == name && !text.is_empty() => Some(text.clone()),
            _ => None,
        })
    };
    let regex = |name: &str| {
        text(name)
            .map(|pattern| {
                regex::Regex::new(&pattern).map_err(|_| format!("its {name} is not a valid regex"))
            })
            .transpose()
    };
    if fields
        .iter()
        .any(|(key, value)| key == "key_groups" && !matches!(value, Tree::Leaf(Leaf::Null)))
    {
        return Err(
            "it splits its data key over key groups (Shamir), which stackroll does not support"
                .into(),
        );
    }
    let mut rules = Rules {
        unencrypted_suffix: text("unencrypted_suffix"),
        encrypted_suffix: text("encrypted_suffix"),
        unencrypted_regex: regex("unencrypted_regex")?,
        encrypted_regex: regex("encrypted_regex")?,
    };
    if rules.unencrypted_suffix.is_none()
        && rules.encrypted_suffix.is_none()
        && rules.unencrypted_regex.is_none()
        && rules.encrypted_regex.is_none()
    {
        rules.unencrypted_suffix = Some("_unencrypted".to_string());
    }
    let mac_only_encrypted = fields.iter().any(|(key, value)| {
        key == "mac_only_encrypted"
            && match value {
                Tree::Leaf(Leaf::Bool(flag)) => *flag,
                Tree::Leaf(Leaf::Str(text)) => text == "true",
                _ => false,
            }
    });
    let age = match fields.iter().find(|(key, _)| key == "age").map(|(_, v)| v) {
        Some(Tree::List(items)) => items.iter().map(age_entry).collect(),
        _ => Vec::new(),
    };
    let other_sources = OTHER_KEY_SOURCES
        .iter()
        .filter(|name| {
            fields.iter().any(|(key, value)| {
                key == *name && matches!(value, Tree::List(items) if !items.is_empty())
            })
        })
        .map(ToString::to_string)
        .collect();
    Ok(Metadata {
        mac: text("mac").ok_or("its sops metadata has no mac")?,
        last_modified: text("lastmodified").ok_or("its sops metadata has no lastmodified")?,
        age,
        other_sources,
        rules,
        mac_only_encrypted,
    })
}

/// One `age` entry's recipient and wrapped key.
fn age_entry(item: &Tree) -> AgeEntry {
    let mut entry = AgeEntry::default();
    if let Tree::Map(fields) = item {
        for (key, value) in fields {
            if let Tree::Leaf(Leaf::Str(text)) = value {
                match key.as_str() {
                    "recipient" => entry.recipient = text.clone(),
                    "enc" => entry.enc = text.clone(),
                    _ => {}
                }
            }
        }
    }
    entry
}

/// Unwraps the 32-byte data key from the first `age` entry an identity opens.
fn data_key(metadata: &Metadata, identities: &[Identity]) -> Result<Zeroizing<Vec<u8>>, String> {
    if metadata.age.is_empty() {
        let others = if metadata.other_sources.is_empty() {
            "no key source".to_string()
        } else {
            metadata.other_sources.join(", ")
        };
        return Err(format!(
            "its data key is wrapped for {others} only, and stackroll decrypts with age identities"
        ));
    }
    if identities.is_empty() {
        return Err("no age identity was given".to_string());
    }
    for entry in &metadata.age {
        if let Ok(key) = super::age::decrypt(entry.enc.as_bytes(), identities) {
            if key.as_bytes().len() == 32 {
                return Ok(Zeroizing::new(key.as_bytes().to_vec()));
            }
        }
    }
    let recipients: Vec<&str> = metadata.age.iter().map(|e| e.recipient.as_str()).collect();
    Err(format!(
        "none of the identities given opens its data key (it is encrypted to {})",
        recipients.join(", ")
    ))
}

/// Walking the document: decrypting values and hashing them for the MAC.
struct Walk<'a> {
    /// AES-256-GCM with the data key.
    cipher: SopsCipher,
    /// Which values are encrypted.
    rules: &'a Rules,
    /// The MAC being computed.
    hasher: Sha512,
    /// Whether clear values stay out of the MAC.
    mac_only_encrypted: bool,
}

impl Walk<'_> {
    /// Decrypts a mapping's values; `path` holds the keys above it.
    fn map(&mut self, entries: &[(String, Tree)], path: &mut Vec<String>) -> Result<Plain, String> {
        let mut plain = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            path.push(key.clone());
            let decrypted = self.value(value, path);
            path.pop();
            plain.push((key.clone(), decrypted?));
        }
        Ok(Plain::Map(plain))
    }

    /// Decrypts one value (list items share their list's path).
    fn value(&mut self, tree: &Tree, path: &mut Vec<String>) -> Result<Plain, String> {
        match tree {
            Tree::Map(entries) => self.map(entries, path),
            Tree::List(items) => Ok(Plain::List(
                items
                    .iter()
                    .map(|item| self.value(item, path))
                    .collect::<Result<_, _>>()?,
            )),
            Tree::Leaf(Leaf::Null) => Ok(Plain::Null),
            Tree::Leaf(leaf) if self.rules.encrypted(path) => self.decrypt_leaf(leaf, path),
            Tree::Leaf(leaf) => {
                if !self.mac_only_encrypted {
                    self.hasher.update(clear_bytes(leaf).as_bytes());
                }
                Ok(match leaf {
                    Leaf::Null => Plain::Null,
                    Leaf::Bool(b) => Plain::Bool(*b),
                    Leaf::Int(i) => Plain::Int(*i),
                    Leaf::Float(f) => Plain::Float(*f),
                    Leaf::Str(s) => Plain::Str(Zeroizing::new(s.as_bytes().to_vec())),
                })
            }
        }
    }

    /// Decrypts an encrypted value and adds it to the MAC as SOPS does (typed, then printed).
    fn decrypt_leaf(&mut self, leaf: &Leaf, path: &[String]) -> Result<Plain, String> {
        let at = path.join(":");
        let Leaf::Str(encrypted) = leaf else {
            return Err(format!("the value at {at} is not encrypted but should be"));
        };
        if encrypted.is_empty() {
            return Ok(Plain::Str(Zeroizing::new(Vec::new())));
        }
        let additional = format!("{at}:");
        let (bytes, kind) = self
            .open(encrypted, additional.as_bytes())
            .map_err(|reason| format!("the value at {at} {reason}"))?;
        let invalid = || format!("the value at {at} is not a valid {kind}");
        let text = || std::str::from_utf8(&bytes).map_err(|_| invalid());
        if matches!(kind.as_str(), "str" | "bytes" | "time") {
            self.hasher.update(&bytes[..]);
            return Ok(Plain::Str(bytes));
        }
        let plain = match kind.as_str() {
            "int" => Plain::Int(text()?.parse().map_err(|_| invalid())?),
            "float" => Plain::Float(text()?.parse().map_err(|_| invalid())?),
            "bool" => Plain::Bool(parse_go_bool(text()?).ok_or_else(invalid)?),
            _ => return Err(format!("the value at {at} has an unknown type {kind:?}")),
        };
        match &plain {
            Plain::Int(i) => self.hasher.update(i.to_string()),
            Plain::Float(f) => self.hasher.update(go_float(*f)),
            Plain::Bool(b) => self.hasher.update(go_bool(*b)),
            _ => {}
        }
        Ok(plain)
    }

    /// Opens one `ENC[AES256_GCM,...]` value: its bytes and its type.
    fn open(&self, value: &str, additional: &[u8]) -> Result<(Zeroizing<Vec<u8>>, String), String> {
        let malformed = || "is not a SOPS encrypted value".to_string();
        let inner = value
            .strip_prefix("ENC[AES256_GCM,data:")
            .and_then(|rest| rest.strip_suffix(']'))
            .ok_or_else(malformed)?;
        let (data, rest) = inner.split_once(",iv:").ok_or_else(malformed)?;
        let (iv, rest) = rest.split_once(",tag:").ok_or_else(malformed)?;
        let (tag, kind) = rest.split_once(",type:").ok_or_else(malformed)?;
        let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text);
        let (iv, tag) = match (decode(iv), decode(tag)) {
            (Ok(iv), Ok(tag)) if iv.len() == 32 && tag.len() == 16 => (iv, tag),
            _ => return Err(malformed()),
        };
        let mut buffer = Zeroizing::new(decode(data).map_err(|_| malformed())?);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::<U32>::from_slice(&iv),
                additional,
                &mut buffer[..],
                Tag::from_slice(&tag),
            )
            .map_err(|_| "fails authentication (changed outside SOPS, or moved)".to_string())?;
        Ok((buffer, kind.to_string()))
    }
}

/// A clear value's bytes in the MAC (SOPS's `ToBytes`).
fn clear_bytes(leaf: &Leaf) -> String {
    match leaf {
        Leaf::Null => String::new(),
        Leaf::Bool(b) => go_bool(*b).to_string(),
        Leaf::Int(i) => i.to_string(),
        Leaf::Float(f) => go_float(*f),
        Leaf::Str(s) => s.clone(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A boolean as SOPS hashes it.
fn go_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` prints it: the shortest digits that
/// read back the same, never an exponent.
fn go_float(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    format!("{value}")
}

/// Bytes as upper-case hex.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

/// Writes the decrypted document out in its format; `capacity` is a first guess of its size.
fn write_out(format: Format, plain: &Plain, capacity: usize) -> Result<Plaintext, String> {
    let mut out = Plaintext::with_capacity(capacity);
    let Plain::Map(entries) = plain else {
        return Err("it is not a mapping".to_string());
    };
    match format {
        Format::Binary => match entries.iter().find(|(key, _)| key == "data") {
            Some((_, Plain::Str(bytes))) => out.push(bytes),
            _ => return Err("its binary data is missing".to_string()),
        },
        Format::Dotenv => {
            for (key, value) in entries {
                out.push_str(key);
                out.push(b"=");
                let mut scalar = Plaintext::with_capacity(64);
                write_scalar_text(&mut scalar, value);
                for piece in scalar.as_bytes().split_inclusive(|byte| *byte == b'\n') {
                    match piece.strip_suffix(b"\n") {
                        Some(line) => {
                            out.push(line);
                            out.push(b"\\n");
                        }
                        None => out.push(piece),
                    }
                }
                out.push(b"\n");
            }
        }
        Format::Json => {
            write_json(&mut out, plain, 0);
            out.push(b"\n");
        }
        Format::Yaml => write_yaml_map(&mut out, entries, 0),
    }
    Ok(out)
}

/// A scalar's text as SOPS prints it in dotenv.
fn write_scalar_text(out: &mut Plaintext, value: &Plain) {
    match value {
        Plain::Str(bytes) => out.push(bytes),
        Plain::Int(i) => out.push_str(&i.to_string()),
        Plain::Float(f) => out.push_str(&go_float(*f)),
        Plain::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Plain::Null | Plain::Map(_) | Plain::List(_) => {}
    }
}

/// Writes a JSON string (invalid UTF-8 is replaced), escaping what JSON and YAML need.
fn write_quoted(out: &mut Plaintext, bytes: &[u8]) {
    out.push(b"\"");
    let text = String::from_utf8_lossy(bytes);
    let mut escape = [0u8; 8];
    for character in text.chars() {
        match character {
            '"' => out.push(b"\\\""),
            '\\' => out.push(b"\\\\"),
            '\n' => out.push(b"\\n"),
            '\r' => out.push(b"\\r"),
            '\t' => out.push(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c.encode_utf8(&mut escape).as_bytes()),
        }
    }
    if let std::borrow::Cow::Owned(mut owned) = text {
        zeroize::Zeroize::zeroize(&mut owned);
    }
    out.push(b"\"");
}

/// Writes a JSON value, indented by two spaces per level.
fn write_json(out: &mut Plaintext, value: &Plain, depth: usize) {
    let indent = |out: &mut Plaintext, depth: usize| out.push_str(&"  ".repeat(depth));
    match value {
        Plain::Map(entries) if entries.is_empty() => out.push(b"{}"),
        Plain::List(items) if items.is_empty() => out.push(b"[]"),
        Plain::Map(entries) => {
            out.push(b"{\n");
            for (index, (key, value)) in entries.iter().enumerate() {
                indent(out, depth + 1);
                write_quoted(out, key.as_bytes());
                out.push(b": ");
                write_json(out, value, depth + 1);
                out.push_str(if index + 1 < entries.len() {
                    ",\n"
                } else {
                    "\n"
                });
            }
            indent(out, depth);
            out.push(b"}");
        }
        Plain::List(items) => {
            out.push(b"[\n");
            for (index, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_json(out, item, depth + 1);
                out.push_str(if index + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(b"]");
        }
        Plain::Null => out.push(b"null"),
        Plain::Float(f) if !f.is_finite() => out.push(b"null"),
        Plain::Str(bytes) => write_quoted(out, bytes),
        scalar => write_scalar_text(out, scalar),
    }
}

/// Writes a YAML block mapping at `depth` (two spaces per level).
fn write_yaml_map(out: &mut Plaintext, entries: &[(String, Plain)], depth: usize) {
    if entries.is_empty() && depth == 0 {
        out.push(b"{}\n");
    }
    for (key, value) in entries {
        out.push_str(&"  ".repeat(depth));
        write_yaml_scalar_string(out, key.as_bytes());
        out.push(b":");
        write_yaml_value(out, value, depth);
    }
}

/// Writes the value after `key:` (or `-`): a scalar on the same line, a collection below.
fn write_yaml_value(out: &mut Plaintext, value: &Plain, depth: usize) {
    match value {
        Plain::Map(entries) if entries.is_empty() => out.push(b" {}\n"),
        Plain::List(items) if items.is_empty() => out.push(b" []\n"),
        Plain::Map(entries) => {
            out.push(b"\n");
            write_yaml_map(out, entries, depth + 1);
        }
        Plain::List(items) => {
            out.push(b"\n");
            for item in items {
                out.push_str(&"  ".repeat(depth + 1));
                out.push(b"-");
                write_yaml_value(out, item, depth + 1);
            }
        }
        Plain::Str(bytes) => {
            out.push(b" ");
            write_yaml_scalar_string(out, bytes);
            out.push(b"\n");
        }
        Plain::Null => out.push(b" null\n"),
        Plain::Float(f) if f.is_nan() => out.push(b" .nan\n"),
        Plain::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { " .inf\n" } else { " -.inf\n" })
        }
        Plain::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            // Keep it a float when read back.
            out.push_str(&format!(" {f:.1}\n"));
        }
        scalar => {
            out.push(b" ");
            write_scalar_text(out, scalar);
            out.push(b"\n");
        }
    }
}

/// Writes a string plain when YAML reads it back as the same string, else double-quoted.
fn write_yaml_scalar_string(out: &mut Plaintext, bytes: &[u8]) {
    let plain_safe = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        && std::str::from_utf8(bytes)
            .is_ok_and(|text| matches!(yaml_plain_type(text), Typed::Str(_)));
    if plain_safe {
        out.push(bytes);
    } else {
        write_quoted(out, bytes);
    }
}

/// How YAML types a plain scalar (`true`, `null`, numbers), so such strings get quoted.
fn yaml_plain_type(text: &str) -> Typed<'_> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "no" | "on" | "off" | "y" | "n" => Typed::Bool(true),
        _ => crate::model::node::type_plain_scalar(text),
    }
}

#[cfg(test)]
mod tests;
