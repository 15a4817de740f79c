//! Decrypting the fixtures in `fixtures/decrypt/` (see its README for their origin).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{decrypt_file, AgeKeys, Encryption, Plaintext};

/// `fixtures/decrypt/<path>`.
pub(super) fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/decrypt")
        .join(path)
}

/// Keys from `--age-identity` files in `fixtures/decrypt/keys/`, no environment.
pub(super) fn keys(files: &[&str]) -> AgeKeys {
    let files: Vec<String> = files
        .iter()
        .map(|file| fixture(&format!("keys/{file}")).display().to_string())
        .collect();
    AgeKeys::resolve(&files, Path::new("/"), &IndexMap::new())
}

/// Decrypts a fixture with the SOPS project's test identity.
pub(super) fn decrypted(path: &str) -> (Vec<u8>, Option<Encryption>) {
    let file = fixture(path);
    let bytes = std::fs::read(&file).unwrap();
    let decrypted = decrypt_file(&file, bytes, &keys(&["sops-test.txt"])).expect("decrypts");
    (decrypted.bytes.expose().to_vec(), decrypted.encryption)
}

#[test]
fn age_files_made_by_the_age_cli_decrypt_binary_and_armored() {
    for file in ["age/cli-binary.age", "age/cli-armored.age"] {
        let (plaintext, encryption) = decrypted(file);
        assert_eq!(plaintext, b"made by the age CLI\n", "{file}");
        assert_eq!(encryption, Some(Encryption::Age));
    }
}

#[test]
fn the_sops_projects_own_age_test_file_decrypts() {
    let (plaintext, _) = decrypted("age/sops-mock-encrypted-key.age");
    assert_eq!(plaintext, b"data");
}

#[test]
fn a_plain_file_passes_through_unchanged() {
    let decrypted = decrypt_file(
        Path::new("db.txt"),
        b"not encrypted: ENC[nothing]".to_vec(),
        &AgeKeys::default(),
    )
    .unwrap();
    assert_eq!(decrypted.bytes.expose(), b"not encrypted: ENC[nothing]");
    assert_eq!(decrypted.encryption, None);
}

#[test]
fn a_wrong_identity_names_the_file_and_the_identities_tried_never_key_material() {
    let file = fixture("age/cli-armored.age");
    let bytes = std::fs::read(&file).unwrap();
    let error = decrypt_file(&file, bytes, &keys(&["sops-other.txt"]))
        .expect_err("not a recipient")
        .to_string();
    assert!(error.contains("cli-armored.age"), "{error}");
    assert!(error.contains("cannot decrypt this age file"), "{error}");
    assert!(error.contains("--age-identity"), "{error}");
    assert!(error.contains("sops-other.txt"), "{error}");
    // The public key of the identity tried is named; its secret key never is.
    assert!(
        error.contains("age1afnrdrkyvy0sl5e08t9ffs4c7g5e5npc8luf7hjc77syewg5gajsls4r90"),
        "{error}"
    );
    assert!(!error.contains("AGE-SECRET-KEY"), "{error}");
    assert!(!error.contains("made by"), "{error}");
}

#[test]
fn no_identity_at_all_is_said_so() {
    let file = fixture("age/cli-binary.age");
    let bytes = std::fs::read(&file).unwrap();
    let error = decrypt_file(&file, bytes, &AgeKeys::default())
        .expect_err("no identity")
        .to_string();
    assert!(error.contains("no age identity was given"), "{error}");
    assert!(error.contains("no identities given"), "{error}");
}

#[test]
fn identities_come_from_the_flag_and_both_sops_variables_in_order() {
    let inline = std::fs::read_to_string(fixture("keys/sops-test.txt")).unwrap();
    let environment: IndexMap<String, String> = [
        (
            "SOPS_AGE_KEY_FILE".to_string(),
            fixture("keys/sops-other.txt").display().to_string(),
        ),
        ("SOPS_AGE_KEY".to_string(), inline),
    ]
    .into_iter()
    .collect();
    let keys = AgeKeys::resolve(&[], Path::new("/"), &environment);
    let file = fixture("age/cli-binary.age");
    let decrypted = decrypt_file(&file, std::fs::read(&file).unwrap(), &keys).unwrap();
    assert_eq!(decrypted.bytes.expose(), b"made by the age CLI\n");
    let tried = keys.tried();
    assert!(tried.starts_with("SOPS_AGE_KEY_FILE=/"), "{tried}");
    assert!(tried.contains("; SOPS_AGE_KEY (age1lzd99"), "{tried}");
    assert!(!format!("{keys:?}").contains("AGE-SECRET-KEY"));
}

#[test]
fn a_bad_identity_line_is_named_by_its_number_not_its_text() {
    let environment: IndexMap<String, String> = [(
        "SOPS_AGE_KEY".to_string(),
        "# comment\nAGE-SECRET-KEY-1NOTAKEY\n".to_string(),
    )]
    .into_iter()
    .collect();
    let keys = AgeKeys::resolve(&[], Path::new("/"), &environment);
    let tried = keys.tried();
    assert!(
        tried.contains("line 2: not an age X25519 identity"),
        "{tried}"
    );
    assert!(!tried.contains("NOTAKEY"), "{tried}");
}

#[test]
fn the_plaintext_buffer_grows_without_losing_bytes() {
    let mut plaintext = Plaintext::with_capacity(1);
    for _ in 0..100 {
        plaintext.push(b"abc");
    }
    assert_eq!(plaintext.as_bytes().len(), 300);
    assert!(plaintext.as_bytes().chunks(3).all(|chunk| chunk == b"abc"));
    assert_eq!(format!("{plaintext:?}"), "Plaintext(300 bytes)");
}
