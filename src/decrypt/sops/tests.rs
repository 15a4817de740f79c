//! Decrypting the SOPS project's own test files (`fixtures/decrypt/sops/`, see its README):
//! values and MACs written by SOPS, in each format.

use std::path::Path;

use super::super::tests::{decrypted, fixture, keys};
use super::super::{decrypt_file, Encryption};
use super::Format;

#[test]
fn each_format_of_the_sops_test_files_decrypts_and_its_mac_matches() {
    let cases = [
        ("sops/format.enc.yaml", Format::Yaml, "foo: bar\n"),
        (
            "sops/format.enc.json",
            Format::Json,
            "{\n  \"foo\": \"bar\"\n}\n",
        ),
        ("sops/format.enc.env", Format::Dotenv, "foo = bar\n"),
    ];
    for (file, format, expected) in cases {
        let (plaintext, encryption) = decrypted(file);
        assert_eq!(encryption, Some(Encryption::Sops(format)), "{file}");
        assert_eq!(String::from_utf8(plaintext).unwrap(), expected, "{file}");
    }
}

#[test]
fn a_nested_yaml_file_with_every_type_decrypts() {
    let (plaintext, _) = decrypted("sops/example.yaml");
    let text = String::from_utf8(plaintext).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn a_nested_json_file_decrypts() {
    let (plaintext, _) = decrypted("sops/example.json");
    let value: serde_json::Value = serde_json::from_slice(&plaintext).expect("valid JSON");
    assert!(value.get("sops").is_none());
    assert!(value["phoneNumbers"]
        .as_array()
        .is_some_and(|l| l.len() == 2));
    assert_eq!(value["anEmptyValue"], "");
}

#[test]
fn a_binary_file_decrypts_to_its_bytes() {
    let (plaintext, encryption) = decrypted("sops/example.txt");
    assert_eq!(encryption, Some(Encryption::Sops(Format::Binary)));
    assert!(!plaintext.is_empty());
    assert!(!plaintext.starts_with(b"{"));
}

/// Decrypts `text` as the file `name` with the SOPS test identity; the error text if it fails.
fn decrypt_text(name: &str, text: String) -> Result<Vec<u8>, String> {
    decrypt_file(
        Path::new(name),
        text.into_bytes(),
        &keys(&["sops-test.txt"]),
    )
    .map(|decrypted| decrypted.bytes.expose().to_vec())
    .map_err(|error| error.to_string())
}

#[test]
fn a_value_changed_outside_sops_is_refused() {
    let original = std::fs::read_to_string(fixture("sops/example.yaml")).unwrap();
    // Swap two encrypted values: each still decrypts with its own IV and tag, but its path
    // (the additional data) no longer matches.
    let lines: Vec<&str> = original.lines().collect();
    let user = lines
        .iter()
        .position(|l| l.trim_start().starts_with("user:"))
        .unwrap();
    let password = user + 1;
    let mut swapped = lines.clone();
    let user_value = lines[user].split_once(": ").unwrap().1;
    let password_value = lines[password].split_once(": ").unwrap().1;
    let user_line = format!("        user: {password_value}");
    let password_line = format!("        password: {user_value}");
    swapped[user] = &user_line;
    swapped[password] = &password_line;
    let error = decrypt_text("x.yaml", swapped.join("\n")).expect_err("refused");
    assert!(
        error.contains("the value at app2:db:user fails authentication"),
        "{error}"
    );

    // Remove a value: every other one decrypts, the MAC does not match.
    let removed: Vec<&str> = lines
        .iter()
        .filter(|line| !line.starts_with("myapp1:"))
        .copied()
        .collect();
    let error = decrypt_text("x.yaml", removed.join("\n")).expect_err("refused");
    assert!(error.contains("MAC does not match"), "{error}");
}

#[test]
fn a_file_wrapped_only_for_pgp_says_so() {
    let text = std::fs::read_to_string(fixture("sops-upstream/format.enc.yaml")).unwrap();
    let error = decrypt_text("x.yaml", text).expect_err("no age entry");
    assert!(error.contains("wrapped for pgp only"), "{error}");
}

#[test]
fn a_sops_file_for_another_identity_names_its_recipients() {
    let file = fixture("sops/format.enc.yaml");
    let bytes = std::fs::read(&file).unwrap();
    let error = decrypt_file(&file, bytes, &keys(&["sops-other.txt"]))
        .expect_err("other identity")
        .to_string();
    assert!(
        error.contains("cannot decrypt this SOPS YAML file"),
        "{error}"
    );
    assert!(
        error.contains(
            "it is encrypted to age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"
        ),
        "{error}"
    );
    assert!(!error.contains("bar"), "{error}");
}

#[test]
fn a_damaged_sops_file_is_an_error_not_plain_data() {
    let error = decrypt_text("x.yaml", "a: ENC[AES256_GCM,data:x\nsops: [\n".to_string())
        .expect_err("damaged");
    assert!(error.contains("not a valid document"), "{error}");
}

#[test]
fn floats_print_as_go_prints_them() {
    assert_eq!(super::go_float(1234.5), "1234.5");
    assert_eq!(super::go_float(45.0), "45");
    assert_eq!(super::go_float(1e21), "1000000000000000000000");
    assert_eq!(super::go_float(f64::INFINITY), "+Inf");
}
