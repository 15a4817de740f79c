//! Running the stackroll binary the way every test does, and finding the fixtures.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

/// Variables of the environment the tests run in that would change what stackroll does.
const INHERITED_SETTINGS: &[&str] = &[
    "DOCKER_HOST",
    "STACKROLL_FINGERPRINT_KEY",
    "STACKROLL_TEST_KILL_AT",
];

/// The stackroll binary, run in `dir`, without the settings of the environment tests run in.
pub(crate) fn stackroll_command(dir: &Path) -> StdCommand {
    let mut command = StdCommand::new(env!("CARGO_BIN_EXE_stackroll"));
    command.current_dir(dir);
    for variable in INHERITED_SETTINGS {
        command.env_remove(variable);
    }
    command
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
