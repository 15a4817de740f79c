//! Encrypted sources without a swarm: an age or SOPS file that cannot be decrypted is refused
//! before the engine is contacted, naming the file and the identities tried (never key
//! material or plaintext); SOPS and age env files feed interpolation.

use predicates::prelude::*;
use tempfile::TempDir;

use crate::command::{age_encrypt, age_key, fixtures, stackroll};
use crate::leaks::{leaks_in, redact, secret_value};

const COMPOSE: &str = "services:\n  app:\n    image: local/busybox:1\n    secrets: [db]\nsecrets:\n  db:\n    file: ./db.age\n";

/// A project whose secret `db` is an age file (made by the age CLI) of a registered value.
fn project() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
    let value = secret_value("age-db", "age-encrypted db of a hermetic test");
    std::fs::write(
        dir.path().join("db.age"),
        age_encrypt(value.as_bytes(), true),
    )
    .unwrap();
    dir
}

#[test]
fn an_undecryptable_file_is_refused_before_the_engine_naming_what_was_tried() {
    let dir = project();
    let inline_key = std::fs::read_to_string(age_key("sops-other.txt")).unwrap();
    let output = stackroll(dir.path())
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .args([
            "--age-identity",
            age_key("sops-other.txt").to_str().unwrap(),
        ])
        .env("SOPS_AGE_KEY", &inline_key)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "compose.yaml:7:11: secrets.db.file:",
        ))
        .stderr(predicate::str::contains(
            "db.age: cannot decrypt this age file",
        ))
        .stderr(predicate::str::contains("--age-identity"))
        .stderr(predicate::str::contains(
            "SOPS_AGE_KEY (age1afnrdrkyvy0sl5e08t9ffs4c7g5e5npc8luf7hjc77syewg5gajsls4r90)",
        ))
        .stderr(predicate::str::contains("hint: give an age identity"))
        .stderr(predicate::str::contains("cannot reach").not())
        .stderr(predicate::str::contains("AGE-SECRET-KEY").not())
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(leaks_in(&text).is_empty(), "{}", redact(&text));
}

#[test]
fn no_identity_at_all_is_refused_with_the_hint() {
    let dir = project();
    stackroll(dir.path())
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .env("HOME", dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no age identity was given"))
        .stderr(predicate::str::contains(
            "identities tried: no identities given",
        ));
}

#[test]
fn a_decryptable_file_goes_on_to_the_engine() {
    let dir = project();
    stackroll(dir.path())
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .env("SOPS_AGE_KEY_FILE", age_key("sops-test.txt"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot reach the Docker engine"));
}

#[test]
fn sops_and_age_env_files_feed_interpolation() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: \"busybox:${foo}\"\n    labels:\n      from_age: \"${AGE_VAR}\"\n",
    )
    .unwrap();
    // The SOPS project's own dotenv test file (`foo = bar`).
    std::fs::copy(
        fixtures("decrypt/sops/format.enc.env"),
        dir.path().join(".env"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("extra.env"),
        age_encrypt(b"AGE_VAR=from-an-age-file\n", false),
    )
    .unwrap();
    stackroll(dir.path())
        .args(["config", "--env-file", ".env", "--env-file", "extra.env"])
        .args(["--age-identity", age_key("sops-test.txt").to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("image: busybox:bar"))
        .stdout(predicate::str::contains("from_age: from-an-age-file"));
}

#[test]
fn an_encrypted_env_file_without_its_identity_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: i\n    env_file: app.env\n",
    )
    .unwrap();
    std::fs::copy(
        fixtures("decrypt/sops/format.enc.env"),
        dir.path().join("app.env"),
    )
    .unwrap();
    stackroll(dir.path())
        .args(["plan", "-H", "unix:///nonexistent/docker.sock", "demo"])
        .args([
            "--age-identity",
            age_key("sops-other.txt").to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("app.env"))
        .stderr(predicate::str::contains(
            "cannot decrypt this SOPS dotenv file",
        ))
        .stderr(predicate::str::contains("cannot reach").not());
}

#[test]
fn the_age_key_variable_is_never_available_to_compose_files() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: i\n    environment:\n      - SOPS_AGE_KEY\n    labels:\n      k: \"${SOPS_AGE_KEY}\"\n",
    )
    .unwrap();
    let key = std::fs::read_to_string(age_key("sops-test.txt")).unwrap();
    stackroll(dir.path())
        .args(["config"])
        .env("SOPS_AGE_KEY", &key)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "${SOPS_AGE_KEY} is stackroll's own key",
        ))
        .stderr(predicate::str::contains("AGE-SECRET-KEY").not());
}
