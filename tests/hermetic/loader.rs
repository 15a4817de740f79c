//! The loader conformance suite: every case under `fixtures/loader/` runs `stackroll config
//! --format json` in its directory with a clean environment and compares the output (or the
//! located errors, or warnings) with what the case expects. See fixtures/loader/README.md.

use std::fs;
use std::path::{Path, PathBuf};

use crate::command::{fixtures, stackroll};

fn fixtures_dir() -> PathBuf {
    fixtures("loader")
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one case; returns what went wrong, if anything.
fn run_case(dir: &Path) -> Result<(), String> {
    let mut command = stackroll(dir);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command.args(["config", "--format", "json"]);
    command.args(lines(&dir.join("args")));
    for line in lines(&dir.join("env")) {
        let (key, value) = line
            .split_once('=')
            .ok_or(format!("bad env line {line:?}"))?;
        command.env(key, value);
    }
    if let Ok(stdin) = fs::read(dir.join("stdin")) {
        command.write_stdin(stdin);
    }
    let output = command.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    let context = || format!("exit {code:?}\n--- stderr:\n{stderr}--- stdout:\n{stdout}");

    for warning in lines(&dir.join("expected-warnings.txt")) {
        if !stderr.contains(&warning) {
            return Err(format!("missing warning {warning:?}\n{}", context()));
        }
    }
    let expected_json = dir.join("expected.json");
    if expected_json.exists() {
        if code != Some(0) {
            return Err(format!("expected success\n{}", context()));
        }
        let dir_text = dir.canonicalize().unwrap().display().to_string();
        let expected_text = fs::read_to_string(&expected_json)
            .unwrap()
            .replace("<DIR>", &dir_text);
        let expected: serde_json::Value =
            serde_json::from_str(&expected_text).map_err(|e| format!("bad expected.json: {e}"))?;
        let actual: serde_json::Value = serde_json::from_str(&stdout)
            .map_err(|e| format!("stdout is not JSON: {e}\n{}", context()))?;
        if actual != expected {
            return Err(format!(
                "output differs\n--- expected:\n{}\n--- actual:\n{}\n--- stderr:\n{stderr}",
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
        return Ok(());
    }
    let expected_errors = lines(&dir.join("expected-errors.txt"));
    if expected_errors.is_empty() {
        return Err("case has neither expected.json nor expected-errors.txt".into());
    }
    if code != Some(1) {
        return Err(format!("expected exit 1\n{}", context()));
    }
    if !stdout.is_empty() {
        return Err(format!(
            "nothing may be printed on stdout on failure\n{}",
            context()
        ));
    }
    for expected in expected_errors {
        let (location, substring) = expected
            .split_once(' ')
            .ok_or(format!("bad line {expected:?}"))?;
        let mut parts = location.rsplitn(3, ':');
        let (col, line, file) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let prefix = match (line, col) {
            ("0", _) => format!("error: {file}: "),
            (line, "0") => format!("error: {file}:{line}:"),
            (line, col) => format!("error: {file}:{line}:{col}: "),
        };
        let found = stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(substring));
        if !found {
            return Err(format!("missing error {expected:?}\n{}", context()));
        }
    }
    Ok(())
}

#[test]
fn loader_conformance_suite() {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("fixtures/loader exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 60,
        "the suite must keep at least 60 cases, found {}",
        cases.len()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case)
                .err()
                .map(|why| format!("=== {}\n{why}", case.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
