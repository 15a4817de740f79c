//! A stack under test on the real swarm: [`Stack`] names one for a test, holds its working
//! directory and removes it (and everything labelled with its namespace) when dropped; every
//! stackroll run ([`Stack::stackroll`], [`Stack::spawn`]) happens at full verbosity (`-vvv`,
//! `RUST_LOG=trace`) and its stdout and stderr are searched for every registered value
//! ([`crate::leaks`]); the names, labels and service specs the swarm ends up with are searched
//! too. Failure messages never show a value: outputs are redacted before they are printed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::command::{fixtures, stackroll_command};
use crate::docker::{
    ensure_swarm, inspect, labels_of, random_suffix, remove_stack, service_inspect, stack_objects,
    NAMESPACE_LABEL,
};
use crate::leaks::{leaks_in, redact, secret_value, strip_ansi, NEEDLES};

/// One stackroll run.
pub(crate) struct Run {
    pub(crate) args: Vec<String>,
    /// The exit code; `None` when a signal ended the process.
    pub(crate) code: Option<i32>,
    /// The signal that ended the process, if one did.
    pub(crate) signal: Option<i32>,
    /// The process ID it ran as (the deploy lock names it).
    pub(crate) pid: u32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}
impl Run {
    /// Stdout and stderr without colours.
    pub(crate) fn all(&self) -> String {
        strip_ansi(&format!("{}\n{}", self.stdout, self.stderr))
    }

    /// What happened, safe to print: redacted, without the HTTP client's trace lines.
    pub(crate) fn context(&self) -> String {
        let stderr: Vec<String> = redact(&self.stderr)
            .lines()
            .filter(|l| !l.contains("hyper_util::") && !l.contains("hyper::"))
            .map(str::to_string)
            .collect();
        let tail = stderr.len().saturating_sub(120);
        format!(
            "stackroll {:?} (pid {}): exit {:?}, signal {:?} after {:.1}s\n--- stdout:\n{}--- stderr (last {} lines, HTTP traces left out):\n{}",
            self.args,
            self.pid,
            self.code,
            self.signal,
            self.elapsed.as_secs_f64(),
            redact(&self.stdout),
            stderr.len() - tail,
            stderr[tail..].join("\n")
        )
    }

    pub(crate) fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n{}",
            self.context()
        );
        self
    }

    pub(crate) fn expect_contains(&self, text: &str) -> &Run {
        assert!(
            self.all().contains(text),
            "output lacks {text:?}\n{}",
            self.context()
        );
        self
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.context()))
    }
}

/// A stack named for one test, its working directory, and the environment stackroll gets.
pub(crate) struct Stack {
    pub(crate) name: String,
    pub(crate) dir: TempDir,
    env: RefCell<Vec<(String, String)>>,
}

impl Stack {
    /// A new stack `e2e<tag>_<random>`; `tag` is a few lowercase letters.
    pub(crate) fn new(tag: &str) -> Stack {
        ensure_swarm();
        let name = format!("e2e{tag}_{}", random_suffix());
        assert!(name.len() <= 24, "keep stack names short: {name}");
        remove_stack(&name);
        Stack {
            name,
            dir: tempfile::Builder::new()
                .prefix("stackroll-e2e-")
                .tempdir()
                .expect("temporary directory"),
            env: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `<stack>_<name>`.
    pub(crate) fn scoped(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
    }

    /// Copies `fixtures/e2e/<fixture>` to `compose.yaml`.
    pub(crate) fn use_compose(&self, fixture: &str) {
        let source = fixtures("e2e").join(fixture);
        std::fs::copy(&source, self.path("compose.yaml"))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    }

    /// Writes a fresh registered value to `file` and returns it.
    pub(crate) fn write_secret(&self, file: &str, prefix: &str) -> String {
        let value = secret_value(prefix, &format!("{} {file} {prefix}", self.name));
        std::fs::write(self.path(file), &value).expect("write secret file");
        value
    }

    /// Writes a fresh config content to `file` and returns it. Unlike [`Stack::write_secret`]
    /// it is not registered as a secret value: configs are not secret, and a plan shows how a
    /// config's content changes.
    pub(crate) fn write_config(&self, file: &str, prefix: &str) -> String {
        let value = format!("{prefix}-{} {}", self.name, random_suffix());
        std::fs::write(self.path(file), &value).expect("write config file");
        value
    }

    /// Sets an environment variable for every later stackroll run.
    pub(crate) fn set_env(&self, key: &str, value: &str) {
        let mut env = self.env.borrow_mut();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    /// Runs stackroll at full verbosity in the stack's directory and checks for leaks.
    pub(crate) fn stackroll(&self, args: &[&str]) -> Run {
        self.stackroll_env(args, &[])
    }

    /// [`Stack::stackroll`] with more environment variables for this run only.
    pub(crate) fn stackroll_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.spawn(args, env).finish()
    }

    /// Starts stackroll at full verbosity in the stack's directory without waiting for it; its
    /// output is collected as it comes ([`Running::wait_for_output`]) and searched for leaks by
    /// [`Running::finish`].
    pub(crate) fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut command = stackroll_command(self.dir.path());
        command
            .env("RUST_LOG", "trace")
            .arg("-vvv")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in self.env.borrow().iter() {
            command.env(key, value);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("run stackroll");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = [
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Running {
            args: args.iter().map(|a| a.to_string()).collect(),
            child,
            started,
            stdout,
            stderr,
            readers,
        }
    }

    /// The arguments of `stackroll deploy` as [`Stack::deploy`] passes them.
    pub(crate) fn deploy_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["deploy", "--timeout", "120s"];
        args.extend_from_slice(extra);
        args.push(&self.name);
        args
    }

    pub(crate) fn deploy(&self, extra: &[&str]) -> Run {
        let run = self.stackroll(&self.deploy_args(extra));
        self.assert_no_leak_in_swarm();
        run
    }

    /// `deploy` that must succeed.
    pub(crate) fn deploy_ok(&self, extra: &[&str]) -> Run {
        let run = self.deploy(extra);
        run.expect_code(0);
        run
    }

    pub(crate) fn plan(&self, extra: &[&str]) -> Run {
        let mut args = vec!["plan"];
        args.extend_from_slice(extra);
        args.push(&self.name);
        self.stackroll(&args)
    }

    pub(crate) fn objects(&self, kind: &str) -> BTreeSet<String> {
        stack_objects(kind, &self.name)
    }

    /// Asserts that no registered value shows in the names or labels of the stack's secrets
    /// and configs, nor anywhere in its secrets' and services' inspect output.
    pub(crate) fn assert_no_leak_in_swarm(&self) {
        let mut found = Vec::new();
        for name in self.objects("secret") {
            let text = inspect("secret", &name).to_string();
            found.extend(
                leaks_in(&text)
                    .into_iter()
                    .map(|l| format!("secret {name}: {l}")),
            );
        }
        for name in self.objects("config") {
            // Config data is readable by design; search its name and labels.
            let value = inspect("config", &name);
            let text = format!("{} {}", value["Spec"]["Name"], value["Spec"]["Labels"]);
            found.extend(
                leaks_in(&text)
                    .into_iter()
                    .map(|l| format!("config {name}: {l}")),
            );
        }
        for name in self.objects("service") {
            let text = service_inspect(&name).to_string();
            found.extend(
                leaks_in(&text)
                    .into_iter()
                    .map(|l| format!("service {name}: {l}")),
            );
        }
        assert!(
            found.is_empty(),
            "secret values in the swarm:\n  {}",
            found.join("\n  ")
        );
    }
}

/// A stackroll process that is still running.
pub(crate) struct Running {
    args: Vec<String>,
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: [std::thread::JoinHandle<()>; 2],
}

/// Copies `pipe` into `into` as it comes, in a thread.
fn collect(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        let mut pending = Vec::new();
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buffer[..n]);
                    // Keep a UTF-8 sequence split across reads for the next read.
                    let valid = match std::str::from_utf8(&pending) {
                        Ok(_) => pending.len(),
                        Err(e) if e.error_len().is_none() => e.valid_up_to(),
                        Err(_) => pending.len(),
                    };
                    let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
                    pending.drain(..valid);
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&text);
                }
            }
        }
        if !pending.is_empty() {
            let text = String::from_utf8_lossy(&pending).into_owned();
            into.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        }
    })
}

impl Running {
    /// The process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stdout and stderr so far, without colours (may hold values: never print it unredacted).
    pub(crate) fn output_so_far(&self) -> String {
        let stdout = self
            .stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        strip_ansi(&format!("{stdout}\n{stderr}"))
    }

    /// Waits until the output contains `text`; fails (with the redacted output) when the
    /// process ends first or after `timeout`.
    pub(crate) fn wait_for_output(&mut self, text: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            if self.output_so_far().contains(text) {
                return;
            }
            let exited = self.child.try_wait().expect("try_wait").is_some();
            // The readers may still hold the last lines: look once more after an exit.
            if exited && !self.output_so_far().contains(text) {
                std::thread::sleep(Duration::from_millis(100));
                if self.output_so_far().contains(text) {
                    return;
                }
                let args = self.args.clone();
                let run = self.finish_ref();
                panic!(
                    "stackroll {args:?} ended before printing {text:?}\n{}",
                    run.context()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "stackroll {:?} did not print {text:?} within {timeout:?}; so far:\n{}",
                self.args,
                redact(&self.output_so_far())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has ended.
    pub(crate) fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for the process (killing it after 300 s), then checks its output for leaks.
    pub(crate) fn finish(mut self) -> Run {
        self.finish_ref()
    }

    fn finish_ref(&mut self) -> Run {
        use std::os::unix::process::ExitStatusExt as _;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if self.started.elapsed() > Duration::from_secs(300) {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        // The pipes close when the process ends (stackroll starts no children).
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let run = Run {
            args: self.args.clone(),
            code: status.code(),
            signal: status.signal(),
            pid: self.child.id(),
            stdout: self
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stderr: self
                .stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            elapsed,
        };
        let leaks: Vec<String> = leaks_in(&run.stdout)
            .into_iter()
            .map(|l| format!("stdout: {l}"))
            .chain(
                leaks_in(&run.stderr)
                    .into_iter()
                    .map(|l| format!("stderr: {l}")),
            )
            .collect();
        assert!(
            leaks.is_empty(),
            "stackroll leaked secret values:\n  {}\n{}",
            leaks.join("\n  "),
            run.context()
        );
        run
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        remove_stack(&self.name);
    }
}

/// Asserts the labels stackroll puts on a version it created.
pub(crate) fn assert_version_labels(stack: &Stack, kind: &str, key: &str, version: u64) {
    let name = format!("{}_{key}_v{version}", stack.name);
    let labels = labels_of(kind, &name);
    let expect = |label: &str, value: &str| {
        assert_eq!(
            labels.get(label).map(String::as_str),
            Some(value),
            "{kind} {name}: label {label} (labels: {labels:?})"
        );
    };
    expect(NAMESPACE_LABEL, &stack.name);
    expect("io.stackroll.managed", "true");
    expect("io.stackroll.key", key);
    expect("io.stackroll.version", &version.to_string());
    let fingerprint = labels
        .get("io.stackroll.fingerprint")
        .unwrap_or_else(|| panic!("{kind} {name} has no io.stackroll.fingerprint: {labels:?}"));
    assert!(!fingerprint.is_empty(), "{kind} {name}: empty fingerprint");
}

/// Which registered value `actual` is, for failure messages that must not show values.
pub(crate) fn describe_value(actual: &[u8]) -> String {
    let needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    let text = String::from_utf8_lossy(actual);
    let trimmed = text.trim_end_matches('\n');
    needles
        .iter()
        .filter(|n| n.form == "raw")
        .find(|n| n.text == trimmed)
        .map(|n| format!("the value registered as {:?}", n.label))
        .unwrap_or_else(|| format!("an unregistered value of {} bytes", actual.len()))
}

/// Asserts that data read from a container is `expected`, without ever printing either.
pub(crate) fn assert_same_value(actual: &[u8], expected: &str, what: &str) {
    assert!(
        actual == expected.as_bytes(),
        "{what}: expected {}, found {}",
        describe_value(expected.as_bytes()),
        describe_value(actual)
    );
}
