//! Content fingerprints stored in a label beside each secret and config version, so a later
//! deploy can tell whether the data changed (Swarm never gives data back).
//!
//! Anyone who can list secrets can read labels, so a fingerprint must not let them test
//! guesses of a weak secret cheaply: no plain or unsalted hash ever appears. Two schemes:
//! - `argon2id`: Argon2id (m = 19 MiB, t = 2, p = 1) over the content with a random 16-byte
//!   salt chosen per version and stored with it: `argon2id$m=19456,t=2,p=1$<salt>$<hash>`.
//! - `hmac-sha256`: when `STACKROLL_FINGERPRINT_KEY` is set, HMAC-SHA256 keyed with it over a
//!   random 16-byte nonce chosen per version and the material: `hmac-sha256$<nonce>$<mac>`.
//!   Without the key a guess cannot be checked at all, and thanks to the nonce two versions
//!   with equal contents never carry equal labels (a secret equal to a readable config would
//!   otherwise be disclosed by its label).
//!
//! The fingerprinted material (`stackroll-fingerprint-v2`) binds the stack, the kind (secret
//! or config) and the Compose key to the data and the template driver, each length-prefixed:
//! a label made for one key, kind or stack never vouches for another. Labels of the first
//! scheme (`v1`: no binding, HMAC without nonce) never match, so the first deploy after the
//! change creates one new version of each key, once.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::model::ObjectKind;

const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_LANES: u32 = 1;
const OUTPUT_LEN: usize = 32;

/// What a fingerprint covers.
#[derive(Clone, Copy)]
pub struct Material<'a> {
    /// The stack the object belongs to.
    pub stack: &'a str,
    /// Secret or config.
    pub kind: ObjectKind,
    /// Its Compose key.
    pub key: &'a str,
    /// The object's data.
    pub data: &'a [u8],
    /// Template driver, if any.
    pub template_driver: Option<&'a str>,
}

impl Material<'_> {
    /// The bytes a fingerprint is computed over: every part length-prefixed, so no two
    /// different materials encode alike.
    /// The buffer is allocated once at its final size, so no copy of the data is left behind
    /// in freed memory by a reallocation (the buffer itself is zeroed when dropped).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let parts = [
            b"stackroll-fingerprint-v2".as_slice(),
            self.stack.as_bytes(),
            self.kind.noun().as_bytes(),
            self.key.as_bytes(),
            self.data,
            self.template_driver.unwrap_or("").as_bytes(),
        ];
        let size = parts.iter().map(|part| 8 + part.len()).sum();
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        for part in parts {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

/// How fingerprints are made and checked.
#[derive(Clone)]
pub enum Fingerprinter {
    /// Salted Argon2id (the default).
    Argon2id,
    /// HMAC-SHA256 with the user's key (`STACKROLL_FINGERPRINT_KEY`).
    Hmac(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fingerprinter::Argon2id => "Fingerprinter::Argon2id",
            Fingerprinter::Hmac(_) => "Fingerprinter::Hmac(<key>)",
        })
    }
}

/// The fewest bytes a fingerprint key may have.
pub const MIN_KEY_BYTES: usize = 32;

/// A fingerprint key that is set but too short (empty included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("STACKROLL_FINGERPRINT_KEY is set but holds {length} bytes; a key needs at least {MIN_KEY_BYTES}")]
pub struct ShortKey {
    /// How many bytes it holds.
    pub length: usize,
}

impl Fingerprinter {
    /// HMAC keyed with `key` when one is given (`STACKROLL_FINGERPRINT_KEY`), Argon2id when
    /// none is. A key that is set but empty or short is refused, never replaced by the other
    /// scheme: a CI secret that went missing would otherwise rotate every object.
    pub fn from_key(key: Option<String>) -> Result<Fingerprinter, ShortKey> {
        match key {
            None => Ok(Fingerprinter::Argon2id),
            Some(key) if key.len() >= MIN_KEY_BYTES => {
                Ok(Fingerprinter::Hmac(Zeroizing::new(key.into_bytes())))
            }
            Some(key) => {
                let length = key.len();
                drop(Zeroizing::new(key.into_bytes()));
                Err(ShortKey { length })
            }
        }
    }

    /// A new fingerprint of `material` (with a fresh random salt or nonce).
    pub fn fingerprint(&self, material: Material<'_>) -> String {
        self.fingerprint_bytes(&material.encode())
    }

    /// A new fingerprint of already encoded bytes (see [`Material::encode`]; the content seal
    /// encodes several materials into one input).
    pub fn fingerprint_bytes(&self, input: &[u8]) -> String {
        match self {
            Fingerprinter::Argon2id => {
                let salt = random_16();
                let hash = argon2id(
                    input,
                    &salt,
                    ARGON2_MEMORY_KIB,
                    ARGON2_ITERATIONS,
                    ARGON2_LANES,
                )
                .expect("fixed parameters are valid");
                format!(
                    "argon2id$m={ARGON2_MEMORY_KIB},t={ARGON2_ITERATIONS},p={ARGON2_LANES}${}${}",
                    B64.encode(salt),
                    B64.encode(hash)
                )
            }
            Fingerprinter::Hmac(key) => {
                let nonce = random_16();
                let mac = hmac(key, &nonce, input);
                format!("hmac-sha256${}${}", B64.encode(nonce), B64.encode(mac))
            }
        }
    }

    /// Whether `stored` (a label value) is a fingerprint of `material`. A fingerprint made by
    /// the other scheme, or one that cannot be read, does not match.
    pub fn matches(&self, stored: &str, material: Material<'_>) -> bool {
        self.matches_bytes(stored, &material.encode())
    }

    /// Whether `stored` is a fingerprint of already encoded bytes.
    pub fn matches_bytes(&self, stored: &str, input: &[u8]) -> bool {
        let mut parts = stored.split('$');
        match (self, parts.next()) {
            (Fingerprinter::Hmac(key), Some("hmac-sha256")) => {
                let (Some(nonce), Some(mac), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                let (Ok(nonce), Ok(mac)) = (B64.decode(nonce), B64.decode(mac)) else {
                    return false;
                };
                keyed(key, &nonce, input).verify_slice(&mac).is_ok()
            }
            (Fingerprinter::Argon2id, Some("argon2id")) => {
                let (Some(params), Some(salt), Some(hash), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                let Some((m, t, p)) = parse_params(params) else {
                    return false;
                };
                // Only the documented parameters: a label with others (forged, or cheap to
                // guess against, or expensive to check) never matches.
                if (m, t, p) != (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES) {
                    return false;
                }
                let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
                    return false;
                };
                match argon2id(input, &salt, m, t, p) {
                    Some(computed) => constant_time_eq(&computed, &hash),
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// The scheme's name as it appears in labels and README.
    pub fn scheme(&self) -> &'static str {
        match self {
            Fingerprinter::Argon2id => "argon2id",
            Fingerprinter::Hmac(_) => "hmac-sha256",
        }
    }
}

fn parse_params(text: &str) -> Option<(u32, u32, u32)> {
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for pair in text.split(',') {
        let (key, value) = pair.split_once('=')?;
        let value: u32 = value.parse().ok()?;
        match key {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return None,
        }
    }
    Some((m?, t?, p?))
}

/// Argon2id's working memory, 19 MiB a piece: allocating (and faulting in) it for every
/// evaluation costs a good part of the evaluation itself, so pieces are kept and reused. They
/// are kept in one pool, not per thread: the runtime's blocking threads come and go, and
/// memory kept per thread grew with every thread that ever evaluated (~115 MB of a first
/// deploy's peak). The pool holds at most as many pieces as evaluations ever ran at once
/// (one per core: `on_every_core`, and the executor's one-per-core bound).
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

fn argon2id(input: &[u8], salt: &[u8], m: u32, t: u32, p: u32) -> Option<Vec<u8>> {
    let params = Params::new(m, t, p, Some(OUTPUT_LEN)).ok()?;
    let blocks = params.block_count();
    let mut out = vec![0u8; OUTPUT_LEN];
    let pool = || {
        ARGON2_MEMORY
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    };
    let mut memory = pool().pop().unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let hashed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(input, salt, &mut out, &mut memory[..blocks]);
    pool().push(memory);
    hashed.ok()?;
    Some(out)
}

/// 16 random bytes: a salt or a nonce.
fn random_16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// HMAC-SHA256 with `key` fed the length-prefixed nonce, then the input.
fn keyed(key: &[u8], nonce: &[u8], input: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(&(nonce.len() as u64).to_be_bytes());
    mac.update(nonce);
    mac.update(input);
    mac
}

fn hmac(key: &[u8], nonce: &[u8], input: &[u8]) -> Vec<u8> {
    keyed(key, nonce, input).finalize().into_bytes().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `work` applied to every job, on every core (fingerprints are deliberately slow: Argon2id
/// takes ~16 ms of CPU each), results in the jobs' order.
pub fn on_every_core<T: Sync, R: Send + Sync>(jobs: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let results: Vec<std::sync::OnceLock<R>> =
        jobs.iter().map(|_| std::sync::OnceLock::new()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(job) = jobs.get(index) else { break };
                let _ = results[index].set(work(job));
            });
        }
    });
    results
        .into_iter()
        .map(|result| result.into_inner().expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(data: &[u8]) -> Material<'_> {
        Material {
            stack: "demo",
            kind: ObjectKind::Secret,
            key: "db",
            data,
            template_driver: None,
        }
    }

    #[test]
    fn argon2id_fingerprints_are_salted_and_verify() {
        let f = Fingerprinter::Argon2id;
        let a = f.fingerprint(material(b"hunter2"));
        let b = f.fingerprint(material(b"hunter2"));
        assert_ne!(a, b, "a fresh salt each time");
        assert!(f.matches(&a, material(b"hunter2")));
        assert!(f.matches(&b, material(b"hunter2")));
        assert!(!f.matches(&a, material(b"hunter3")));
        assert!(!a.contains("hunter2"));
    }

    #[test]
    fn fingerprint_covers_the_drivers() {
        let f = Fingerprinter::Hmac(Zeroizing::new(b"k".to_vec()));
        let stored = f.fingerprint(material(b"x"));
        let templated = Material {
            template_driver: Some("golang"),
            ..material(b"x")
        };
        assert!(f.matches(&stored, material(b"x")));
        assert!(!f.matches(&stored, templated));
    }

    #[test]
    fn hmac_needs_the_same_key_and_schemes_do_not_mix() {
        let one = Fingerprinter::from_key(Some("one".repeat(11))).unwrap();
        let two = Fingerprinter::from_key(Some("two".repeat(11))).unwrap();
        let stored = one.fingerprint(material(b"v"));
        assert!(one.matches(&stored, material(b"v")));
        assert!(!two.matches(&stored, material(b"v")));
        assert!(!Fingerprinter::Argon2id.matches(&stored, material(b"v")));
        assert!(!one.matches("garbage", material(b"v")));
        assert!(!Fingerprinter::Argon2id
            .matches("argon2id$m=999999999,t=1,p=1$AAAA$AAAA", material(b"v")));
    }

    #[test]
    fn the_encoding_is_built_without_reallocating() {
        let encoded = Material {
            template_driver: Some("golang"),
            ..material(b"a secret value")
        }
        .encode();
        assert_eq!(encoded.len(), encoded.capacity());
    }

    #[test]
    fn a_key_that_is_set_but_short_is_refused_never_replaced() {
        assert_eq!(
            Fingerprinter::from_key(Some(String::new())).unwrap_err(),
            ShortKey { length: 0 }
        );
        assert_eq!(
            Fingerprinter::from_key(Some("x".repeat(31))).unwrap_err(),
            ShortKey { length: 31 }
        );
        assert!(Fingerprinter::from_key(Some("x".repeat(32)))
            .is_ok_and(|f| f.scheme() == "hmac-sha256"));
        assert!(Fingerprinter::from_key(None).is_ok_and(|f| f.scheme() == "argon2id"));
    }

    #[test]
    fn argon2id_labels_match_only_with_the_documented_parameters() {
        let f = Fingerprinter::Argon2id;
        let stored = f.fingerprint(material(b"v"));
        assert!(f.matches(&stored, material(b"v")));
        // The same hash relabelled with cheaper parameters is never accepted.
        let cheap = stored.replace("m=19456,t=2,p=1", "m=8,t=1,p=1");
        assert!(!f.matches(&cheap, material(b"v")));
        let mut parts = stored.split('$');
        let (_, _, salt) = (parts.next(), parts.next(), parts.next().unwrap());
        let forged = format!(
            "argon2id$m=8,t=1,p=1${salt}${}",
            B64.encode(argon2id(b"v", &B64.decode(salt).unwrap(), 8, 1, 1).unwrap())
        );
        assert!(
            !f.matches(&forged, material(b"v")),
            "a label with cheap parameters"
        );
    }

    #[test]
    fn a_label_vouches_only_for_its_own_stack_kind_and_key() {
        let hmac = Fingerprinter::from_key(Some("k".repeat(32))).unwrap();
        for f in [hmac, Fingerprinter::Argon2id] {
            let stored = f.fingerprint(material(b"v"));
            assert!(f.matches(&stored, material(b"v")), "{}", f.scheme());
            let others = [
                Material {
                    kind: ObjectKind::Config,
                    ..material(b"v")
                },
                Material {
                    key: "db2",
                    ..material(b"v")
                },
                Material {
                    stack: "other",
                    ..material(b"v")
                },
            ];
            for other in others {
                assert!(!f.matches(&stored, other), "{}", f.scheme());
            }
        }
    }

    #[test]
    fn hmac_labels_of_equal_contents_differ_and_the_unsalted_form_never_matches() {
        let f = Fingerprinter::from_key(Some("k".repeat(32))).unwrap();
        let a = f.fingerprint(material(b"v"));
        let b = f.fingerprint(material(b"v"));
        assert_ne!(a, b, "a fresh nonce for each version");
        assert!(f.matches(&a, material(b"v")) && f.matches(&b, material(b"v")));
        let Fingerprinter::Hmac(key) = &f else {
            unreachable!()
        };
        // The first scheme's label: an HMAC of the material alone, no nonce.
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        plain.update(&material(b"v").encode());
        let v1 = format!("hmac-sha256${}", B64.encode(plain.finalize().into_bytes()));
        assert!(!f.matches(&v1, material(b"v")));
    }
}
