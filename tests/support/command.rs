//! Running the stackroll binary the way every test does, and finding the fixtures.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

/// Variables of the environment the tests run in that would change what stackroll does.
const INHERITED_SETTINGS: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "STACKROLL_FINGERPRINT_KEY",
    "STACKROLL_TEST_KILL_AT",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
];

/// The stackroll binary, run in `dir`, without the settings of the environment tests run in:
/// no engine variables, and a docker configuration directory that does not exist, so the
/// context `docker context use` chose on this machine is not used either (tests that use
/// contexts set `DOCKER_CONFIG` to their own).
pub(crate) fn stackroll_command(dir: &Path) -> StdCommand {
    let mut command = StdCommand::new(env!("CARGO_BIN_EXE_stackroll"));
    command.current_dir(dir);
    for variable in INHERITED_SETTINGS {
        command.env_remove(variable);
    }
    command.env("DOCKER_CONFIG", no_docker_config());
    command
}

/// A docker configuration directory that does not exist.
pub(crate) fn no_docker_config() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-docker-config")
}

/// [`stackroll_command`] as an `assert_cmd` command (assertions on the output, timeouts).
pub(crate) fn stackroll(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(stackroll_command(dir))
}

/// `fixtures/<name>` in the repository.
pub(crate) fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Encrypts `plaintext` to the SOPS project's test age recipient (`fixtures/decrypt/keys/
/// sops-test.txt`) with Debian's `age` CLI, armored or binary; every call gives a new file.
pub(crate) fn age_encrypt(plaintext: &[u8], armored: bool) -> Vec<u8> {
    use std::io::Write;
    let mut command = StdCommand::new("age");
    command.args(["-r", SOPS_TEST_RECIPIENT]);
    if armored {
        command.arg("-a");
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the age CLI (apt-get install age; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(plaintext).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "age failed");
    output.stdout
}

/// The public key of `fixtures/decrypt/keys/sops-test.txt`.
pub(crate) const SOPS_TEST_RECIPIENT: &str =
    "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

/// `fixtures/decrypt/keys/<name>`: the SOPS project's test age identities.
pub(crate) fn age_key(name: &str) -> PathBuf {
    fixtures("decrypt/keys").join(name)
}
