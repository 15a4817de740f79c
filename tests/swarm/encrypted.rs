//! Encrypted secret sources end to end: age files (made by the `age` CLI) as a secret and an
//! `env_file`, a SOPS YAML secret and a SOPS dotenv `.env` (the SOPS project's own test files)
//! are decrypted in memory and reach the containers as plaintext; re-encrypting the same content (a new age file, a new
//! SOPS recipient) is no change; changing the plaintext rotates.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::command::{age_encrypt, age_key, fixtures};
use crate::docker::{exec_in_service, wait_for_content};
use crate::leaks::secret_value;
use crate::stack::Stack;

const COMPOSE: &str = "services:
  app:
    image: local/busybox:1
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]
    env_file: app.env
    environment:
      FROM_DOTENV: \"${foo}\"
    secrets: [db, settings]
secrets:
  db:
    file: ./db.age
  settings:
    file: ./settings.yaml
";

/// Runs `program args` with `input` on stdin; its stdout.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the age CLI");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{program} failed");
    output.stdout
}

/// The SOPS YAML file with its data key wrapped for one more age recipient (the other SOPS
/// test identity), as `sops updatekeys` would add it: values and MAC untouched.
fn with_another_recipient(text: &str) -> String {
    let begin = text.find("-----BEGIN AGE ENCRYPTED FILE-----").unwrap();
    let end = text.find("-----END AGE ENCRYPTED FILE-----").unwrap() + 32;
    let armored: String = text[begin..end]
        .lines()
        .map(|line| format!("{}\n", line.trim()))
        .collect();
    let identity = age_key("sops-test.txt");
    let data_key = pipe(
        "age",
        &["-d", "-i", identity.to_str().unwrap()],
        armored.as_bytes(),
    );
    let other = "age1afnrdrkyvy0sl5e08t9ffs4c7g5e5npc8luf7hjc77syewg5gajsls4r90";
    let wrapped = String::from_utf8(pipe("age", &["-a", "-r", other], &data_key)).unwrap();
    let indented: String = wrapped
        .lines()
        .map(|line| format!("                {line}\n"))
        .collect();
    text.replacen(
        "    age:\n",
        &format!("    age:\n        - recipient: {other}\n          enc: |\n{indented}"),
        1,
    )
}

#[test]
fn e2e_encrypted_sources() {
    let stack = Stack::new("enc");
    std::fs::write(stack.path("compose.yaml"), COMPOSE).unwrap();
    let db = secret_value("agedb", &format!("{} db.age", stack.name));
    std::fs::write(stack.path("db.age"), age_encrypt(db.as_bytes(), false)).unwrap();
    let settings = std::fs::read_to_string(fixtures("decrypt/sops/format.enc.yaml")).unwrap();
    std::fs::write(stack.path("settings.yaml"), &settings).unwrap();
    std::fs::copy(fixtures("decrypt/sops/format.enc.env"), stack.path(".env")).unwrap();
    let app_env = age_encrypt(b"FROM_ENV_FILE=age env file\n", true);
    std::fs::write(stack.path("app.env"), app_env).unwrap();
    stack.set_env(
        "SOPS_AGE_KEY_FILE",
        age_key("sops-test.txt").to_str().unwrap(),
    );

    stack
        .plan(&[])
        .expect_contains("age file ./db.age")
        .expect_contains("SOPS YAML file ./settings.yaml, 9 bytes decrypted");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    wait_for_content(&app, "/run/secrets/db", &db);
    wait_for_content(&app, "/run/secrets/settings", "foo: bar\n");
    let env = |name: &str| {
        let echo = format!("echo \"${name}\"");
        String::from_utf8(exec_in_service(&app, &["sh", "-c", &echo])).unwrap()
    };
    assert_eq!(
        env("FROM_DOTENV").trim(),
        "bar",
        "interpolated from the SOPS .env"
    );
    assert_eq!(
        env("FROM_ENV_FILE").trim(),
        "age env file",
        "from the age env_file"
    );

    // The same plaintext encrypted again: a new age file, a new SOPS recipient. No change.
    std::fs::write(stack.path("db.age"), age_encrypt(db.as_bytes(), true)).unwrap();
    std::fs::write(
        stack.path("settings.yaml"),
        with_another_recipient(&settings),
    )
    .unwrap();
    stack.plan(&["--detailed-exitcode"]).expect_code(0);
    stack.deploy_ok(&[]);
    assert!(stack.objects("secret").contains(&stack.scoped("db_v1")));
    assert!(!stack.objects("secret").contains(&stack.scoped("db_v2")));

    // A new plaintext rotates.
    let db2 = secret_value("agedb2", &format!("{} db.age 2", stack.name));
    std::fs::write(stack.path("db.age"), age_encrypt(db2.as_bytes(), false)).unwrap();
    stack.plan(&["--detailed-exitcode"]).expect_code(2);
    stack.deploy_ok(&[]);
    assert!(stack.objects("secret").contains(&stack.scoped("db_v2")));
    wait_for_content(&app, "/run/secrets/db", &db2);

    // Without the identity nothing is written, and the file and identities are named.
    std::fs::write(stack.path("db.age"), age_encrypt(b"a third value", false)).unwrap();
    let run = stack.stackroll_env(
        &stack.deploy_args(&[]),
        &[(
            "SOPS_AGE_KEY_FILE",
            age_key("sops-other.txt").to_str().unwrap(),
        )],
    );
    run.expect_code(1)
        .expect_contains(".env: cannot decrypt this SOPS dotenv file")
        .expect_contains("SOPS_AGE_KEY_FILE=");
    assert!(!stack.objects("secret").contains(&stack.scoped("db_v3")));
}
