//! age files (<https://age-encryption.org/v1>), binary or armored, decrypted with the `age`
//! crate and X25519 identities (`AGE-SECRET-KEY-1...`, as `age-keygen` writes them). SOPS
//! uses the same to wrap its data keys ([`super::sops`]).

use std::io::Read;

use age::armor::ArmoredReader;
use age::x25519::Identity;
use zeroize::Zeroizing;

use super::Plaintext;

/// The first line of a binary age file.
const BINARY_HEADER: &[u8] = b"age-encryption.org/v1\n";
/// The first line of an armored age file.
const ARMOR_HEADER: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whether `bytes` are an age file, binary or armored (leading whitespace allowed).
pub fn is_age(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.starts_with(BINARY_HEADER) || bytes[start..].starts_with(ARMOR_HEADER)
}

/// Parses identities, one per line; blank lines and `#` comments are skipped. A line that is
/// not an X25519 identity is a problem named by its line number, never its text.
pub fn parse_identities(text: &str) -> Result<Vec<Identity>, Vec<String>> {
    let mut identities = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<Identity>() {
            Ok(identity) => identities.push(identity),
            Err(_) if line.starts_with("AGE-PLUGIN-") => problems.push(format!(
                "line {}: plugin identities are not supported",
                index + 1
            )),
            Err(_) => problems.push(format!(
                "line {}: not an age X25519 identity (AGE-SECRET-KEY-1...)",
                index + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(identities)
    } else {
        Err(problems)
    }
}

/// Decrypts an age file with the first identity that matches; the reason when none does or
/// the file is damaged.
pub fn decrypt(encrypted: &[u8], identities: &[Identity]) -> Result<Plaintext, String> {
    if identities.is_empty() {
        return Err("no age identity was given".to_string());
    }
    let decryptor = age::Decryptor::new(ArmoredReader::new(encrypted)).map_err(describe)?;
    if decryptor.is_scrypt() {
        return Err("it is encrypted with a passphrase, which stackroll does not ask for".into());
    }
    let mut reader = decryptor
        .decrypt(
            identities
                .iter()
                .map(|identity| identity as &dyn age::Identity),
        )
        .map_err(describe)?;
    // The plaintext is never larger than the file.
    let mut plaintext = Plaintext::with_capacity(encrypted.len());
    let mut chunk = Zeroizing::new(vec![0u8; 16 * 1024]);
    loop {
        let read = reader
            .read(&mut chunk)
            .map_err(|error| format!("the file is damaged or truncated ({error})"))?;
        if read == 0 {
            break;
        }
        plaintext.push(&chunk[..read]);
    }
    Ok(plaintext)
}

/// A decryption failure in words.
fn describe(error: age::DecryptError) -> String {
    match error {
        age::DecryptError::NoMatchingKeys => {
            "none of the identities given is a recipient of the file".to_string()
        }
        age::DecryptError::InvalidHeader => "its age header is invalid".to_string(),
        age::DecryptError::InvalidMac | age::DecryptError::DecryptionFailed => {
            "the file is damaged (authentication failed)".to_string()
        }
        other => format!("age: {other}"),
    }
}
