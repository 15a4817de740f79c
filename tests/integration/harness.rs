//! The harness of the tests against the real local swarm (`scripts/dev-swarm.sh up`), shared by
//! `e2e.rs` and `faults.rs`, with the `docker` CLI as the oracle.
//!
//! Every test deploys its own stack (`e2e<tag>_<random>`) from a temporary directory holding a
//! compose file copied from `fixtures/e2e/` and secret files with random values. A drop guard
//! removes the stack and everything labelled with its namespace afterwards.
//!
//! The whole suite is also the secret-leak test: every value a test writes is registered, every
//! stackroll run happens at full verbosity (`-vvv`, `RUST_LOG=trace`), and its stdout and
//! stderr are searched for every registered value and for common encodings of it (unsalted
//! SHA-256, SHA-1 and MD5 hex digests, base64, hex, a Rust byte list). The names, labels and
//! service specs the swarm ends up with are searched too. Failure messages never show a value:
//! outputs are redacted before they are printed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

/// The label `docker stack` puts on everything in a stack.
pub(crate) const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// How long to wait for the swarm to get somewhere before failing.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
/// How often to poll the swarm.
pub(crate) const POLL: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// The registry of values that must never appear in any output.

/// One way a registered value could show up.
pub(crate) struct Needle {
    /// Which value (a description, never the value itself).
    label: String,
    /// How it is encoded: raw, sha256, base64, ...
    form: &'static str,
    /// The text to search for.
    text: String,
}

pub(crate) static NEEDLES: Mutex<Vec<Needle>> = Mutex::new(Vec::new());

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers `value` (and its encodings) as something no output may contain.
pub(crate) fn register(label: &str, value: &[u8]) {
    use sha1::Digest as _;
    let sha256 = hex(&sha2::Sha256::digest(value));
    let sha1 = hex(&sha1::Sha1::digest(value));
    let md5 = hex(&md5::Md5::digest(value));
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
    let forms: Vec<(&'static str, String)> = vec![
        ("raw", String::from_utf8_lossy(value).into_owned()),
        ("sha256 hex", sha256.clone()),
        ("SHA256 HEX", sha256.to_uppercase()),
        ("sha1 hex", sha1.clone()),
        ("SHA1 HEX", sha1.to_uppercase()),
        ("md5 hex", md5.clone()),
        ("MD5 HEX", md5.to_uppercase()),
        ("base64", b64.trim_end_matches('=').to_string()),
        ("base64url", b64url),
        ("hex", hex(value)),
        ("byte list", format!("{value:?}")),
    ];
    let mut needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    for (form, text) in forms {
        assert!(
            text.len() >= 12,
            "registered values must be long enough to search for"
        );
        needles.push(Needle {
            label: label.to_string(),
            form,
            text,
        });
    }
}

/// A fresh random value `<prefix>-<32 hex digits>`, registered under `label`.
pub(crate) fn secret_value(prefix: &str, label: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    let value = format!("{prefix}-{}", hex(&bytes));
    register(label, value.as_bytes());
    value
}

/// Short random hex, for stack names.
pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex(&bytes)
}

/// Every registered value (by label and form) that `text` contains.
pub(crate) fn leaks_in(text: &str) -> Vec<String> {
    let needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    let stripped = strip_ansi(text);
    let lower = stripped.to_lowercase();
    needles
        .iter()
        .filter(|n| {
            text.contains(&n.text)
                || stripped.contains(&n.text)
                // hex digests in any case
                || (n.form.ends_with("hex") && lower.contains(&n.text.to_lowercase()))
        })
        .map(|n| format!("value {:?} as {}", n.label, n.form))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `text` with every registered value replaced by a marker, safe to print.
pub(crate) fn redact(text: &str) -> String {
    let needles = NEEDLES.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = strip_ansi(text);
    for needle in needles.iter() {
        text = text.replace(
            &needle.text,
            &format!("<REDACTED {} {}>", needle.label, needle.form),
        );
    }
    text
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

/// Removes ANSI escape sequences (tracing colours its output).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
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

// ---------------------------------------------------------------------------------------------
// The docker CLI.

pub(crate) fn docker(args: &[&str]) -> Output {
    StdCommand::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// Runs docker, panicking (with redacted output) unless it succeeds; returns stdout.
pub(crate) fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}): {}{}",
        output.status,
        redact(&String::from_utf8_lossy(&output.stdout)),
        redact(&String::from_utf8_lossy(&output.stderr))
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn docker_lines(args: &[&str]) -> Vec<String> {
    docker_ok(args)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `docker <kind> ls` names of objects labelled with the stack's namespace.
pub(crate) fn stack_objects(kind: &str, stack: &str) -> BTreeSet<String> {
    let filter = format!("label={NAMESPACE_LABEL}={stack}");
    docker_lines(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"])
        .into_iter()
        .collect()
}

/// Whether a secret or config with exactly this name exists.
pub(crate) fn object_exists(kind: &str, name: &str) -> bool {
    docker_lines(&[
        kind,
        "ls",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Name}}",
    ])
    .iter()
    .any(|n| n == name)
}

pub(crate) fn inspect(kind: &str, name: &str) -> Value {
    let text = docker_ok(&[kind, "inspect", name]);
    let value: Value = serde_json::from_str(&text).expect("docker inspect prints JSON");
    value[0].clone()
}

pub(crate) fn labels_of(kind: &str, name: &str) -> BTreeMap<String, String> {
    inspect(kind, name)["Spec"]["Labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The secret or config references of a service spec, `(name, File)` sorted by target.
pub(crate) fn references(spec: &Value, kind: &str) -> Vec<(String, Value)> {
    let (list, name_key) = match kind {
        "secret" => ("Secrets", "SecretName"),
        _ => ("Configs", "ConfigName"),
    };
    let mut refs: Vec<(String, Value)> = spec["TaskTemplate"]["ContainerSpec"][list]
        .as_array()
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    (
                        r[name_key].as_str().unwrap_or_default().to_string(),
                        r["File"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    refs.sort_by(|a, b| a.1["Name"].as_str().cmp(&b.1["Name"].as_str()));
    refs
}

pub(crate) fn referenced_names(spec: &Value, kind: &str) -> BTreeSet<String> {
    references(spec, kind)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Polls `probe` until it gives a value, failing after `timeout` with `what`.
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// The container of the one running task of `service` that the swarm wants running.
pub(crate) fn running_container(service: &str) -> String {
    wait_for(&format!("one running task of {service}"), WAIT, || {
        let output = docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            service,
        ]);
        let tasks: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let [task] = tasks.as_slice() else {
            return None;
        };
        let output = docker(&["inspect", "--type", "task", task]);
        let value: Value = serde_json::from_slice(&output.stdout).ok()?;
        let status = &value[0]["Status"];
        let container = status["ContainerStatus"]["ContainerID"].as_str()?;
        (status["State"] == "running" && !container.is_empty()).then(|| container.to_string())
    })
}

/// Runs `command` in the running container of `service`; returns its stdout (never printed).
pub(crate) fn exec_in_service(service: &str, command: &[&str]) -> Vec<u8> {
    wait_for(
        &format!("{command:?} to succeed in {service}"),
        WAIT,
        || {
            let container = running_container(service);
            let mut args = vec!["exec", container.as_str()];
            args.extend_from_slice(command);
            let output = docker(&args);
            output.status.success().then_some(output.stdout)
        },
    )
}

/// The content of `path` as the running container of `service` sees it.
pub(crate) fn read_in_service(service: &str, path: &str) -> Vec<u8> {
    exec_in_service(service, &["cat", path])
}

/// `mode uid gid` of `path` in the running container of `service`.
pub(crate) fn stat_in_service(service: &str, path: &str) -> String {
    let out = exec_in_service(service, &["stat", "-L", "-c", "%a %u %g", path]);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// Waits until the running container of `service` has `expected` at `path`.
pub(crate) fn wait_for_content(service: &str, path: &str, expected: &str) {
    let started = Instant::now();
    let last = loop {
        let last = read_in_service(service, path);
        if last == expected.as_bytes() || started.elapsed() > WAIT {
            break last;
        }
        std::thread::sleep(POLL);
    };
    assert_same_value(&last, expected, &format!("{path} in {service}"));
}

pub(crate) fn service_inspect(name: &str) -> Value {
    inspect("service", name)
}

pub(crate) fn version_index(service: &str) -> u64 {
    service_inspect(service)["Version"]["Index"]
        .as_u64()
        .expect("Version.Index")
}

pub(crate) fn update_state(service: &str) -> String {
    service_inspect(service)["UpdateStatus"]["State"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// A stack under test.

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
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/e2e")
            .join(fixture);
        std::fs::copy(&source, self.path("compose.yaml"))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    }

    /// Writes a fresh registered value to `file` and returns it.
    pub(crate) fn write_secret(&self, file: &str, prefix: &str) -> String {
        let value = secret_value(prefix, &format!("{} {file} {prefix}", self.name));
        std::fs::write(self.path(file), &value).expect("write secret file");
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
        let mut command = StdCommand::new(env!("CARGO_BIN_EXE_stackroll"));
        command
            .current_dir(self.dir.path())
            .env("RUST_LOG", "trace")
            .env_remove("STACKROLL_FINGERPRINT_KEY")
            .env_remove("STACKROLL_TEST_KILL_AT")
            .env_remove("DOCKER_HOST")
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

/// `docker stack rm` and the stack's deploy lock, then removes whatever is left with the stack's
/// label, until nothing is.
pub(crate) fn remove_stack(name: &str) {
    let _ = docker(&["stack", "rm", name]);
    // The deploy lock carries no stack label (so `docker stack rm` leaves it): remove it by name.
    let _ = docker(&["config", "rm", &format!("{name}_stackroll-lock")]);
    let filter = format!("label={NAMESPACE_LABEL}={name}");
    let started = Instant::now();
    loop {
        let mut left = 0;
        for kind in ["service", "secret", "config", "network"] {
            let output = docker(&[kind, "ls", "-q", "--filter", &filter]);
            let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            left += ids.len();
            if !ids.is_empty() {
                let mut args = vec![kind, "rm"];
                args.extend(ids.iter().map(String::as_str));
                let _ = docker(&args);
            }
        }
        if left == 0 || started.elapsed() > Duration::from_secs(90) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Fails early, with the fix, when there is no swarm to test against.
pub(crate) fn ensure_swarm() {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if *checked {
        return;
    }
    let output = docker(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    let info = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        output.status.success() && info == "active true",
        "these tests need a local swarm manager (got {info:?}); run scripts/dev-swarm.sh up"
    );
    let image = docker(&["image", "inspect", "local/busybox:1"]);
    assert!(
        image.status.success(),
        "these tests need the image local/busybox:1; run scripts/dev-swarm.sh up"
    );
    *checked = true;
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
