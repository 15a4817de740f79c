//! End-to-end tests: stackroll against the real local swarm (`scripts/dev-swarm.sh up`), with
//! the `docker` CLI as the oracle.
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
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

/// The label `docker stack` puts on everything in a stack.
const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// How long to wait for the swarm to get somewhere before failing.
const WAIT: Duration = Duration::from_secs(120);
/// How often to poll the swarm.
const POLL: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// The registry of values that must never appear in any output.

/// One way a registered value could show up.
struct Needle {
    /// Which value (a description, never the value itself).
    label: String,
    /// How it is encoded: raw, sha256, base64, ...
    form: &'static str,
    /// The text to search for.
    text: String,
}

static NEEDLES: Mutex<Vec<Needle>> = Mutex::new(Vec::new());

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers `value` (and its encodings) as something no output may contain.
fn register(label: &str, value: &[u8]) {
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
fn secret_value(prefix: &str, label: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    let value = format!("{prefix}-{}", hex(&bytes));
    register(label, value.as_bytes());
    value
}

/// Short random hex, for stack names.
fn random_suffix() -> String {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex(&bytes)
}

/// Every registered value (by label and form) that `text` contains.
fn leaks_in(text: &str) -> Vec<String> {
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
fn redact(text: &str) -> String {
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
fn describe_value(actual: &[u8]) -> String {
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
fn strip_ansi(text: &str) -> String {
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
fn assert_same_value(actual: &[u8], expected: &str, what: &str) {
    assert!(
        actual == expected.as_bytes(),
        "{what}: expected {}, found {}",
        describe_value(expected.as_bytes()),
        describe_value(actual)
    );
}

// ---------------------------------------------------------------------------------------------
// The docker CLI.

fn docker(args: &[&str]) -> Output {
    StdCommand::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// Runs docker, panicking (with redacted output) unless it succeeds; returns stdout.
fn docker_ok(args: &[&str]) -> String {
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

fn docker_lines(args: &[&str]) -> Vec<String> {
    docker_ok(args)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `docker <kind> ls` names of objects labelled with the stack's namespace.
fn stack_objects(kind: &str, stack: &str) -> BTreeSet<String> {
    let filter = format!("label={NAMESPACE_LABEL}={stack}");
    docker_lines(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"])
        .into_iter()
        .collect()
}

/// Whether a secret or config with exactly this name exists.
fn object_exists(kind: &str, name: &str) -> bool {
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

fn inspect(kind: &str, name: &str) -> Value {
    let text = docker_ok(&[kind, "inspect", name]);
    let value: Value = serde_json::from_str(&text).expect("docker inspect prints JSON");
    value[0].clone()
}

fn labels_of(kind: &str, name: &str) -> BTreeMap<String, String> {
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
fn references(spec: &Value, kind: &str) -> Vec<(String, Value)> {
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

fn referenced_names(spec: &Value, kind: &str) -> BTreeSet<String> {
    references(spec, kind)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Polls `probe` until it gives a value, failing after `timeout` with `what`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
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
fn running_container(service: &str) -> String {
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
fn exec_in_service(service: &str, command: &[&str]) -> Vec<u8> {
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
fn read_in_service(service: &str, path: &str) -> Vec<u8> {
    exec_in_service(service, &["cat", path])
}

/// `mode uid gid` of `path` in the running container of `service`.
fn stat_in_service(service: &str, path: &str) -> String {
    let out = exec_in_service(service, &["stat", "-L", "-c", "%a %u %g", path]);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// Waits until the running container of `service` has `expected` at `path`.
fn wait_for_content(service: &str, path: &str, expected: &str) {
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

fn service_inspect(name: &str) -> Value {
    inspect("service", name)
}

fn version_index(service: &str) -> u64 {
    service_inspect(service)["Version"]["Index"]
        .as_u64()
        .expect("Version.Index")
}

fn update_state(service: &str) -> String {
    service_inspect(service)["UpdateStatus"]["State"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// A stack under test.

/// One stackroll run.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// Stdout and stderr without colours.
    fn all(&self) -> String {
        strip_ansi(&format!("{}\n{}", self.stdout, self.stderr))
    }

    /// What happened, safe to print: redacted, without the HTTP client's trace lines.
    fn context(&self) -> String {
        let stderr: Vec<String> = redact(&self.stderr)
            .lines()
            .filter(|l| !l.contains("hyper_util::") && !l.contains("hyper::"))
            .map(str::to_string)
            .collect();
        let tail = stderr.len().saturating_sub(120);
        format!(
            "stackroll {:?}: exit {:?} after {:.1}s\n--- stdout:\n{}--- stderr (last {} lines, HTTP traces left out):\n{}",
            self.args,
            self.code,
            self.elapsed.as_secs_f64(),
            redact(&self.stdout),
            stderr.len() - tail,
            stderr[tail..].join("\n")
        )
    }

    fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n{}",
            self.context()
        );
        self
    }

    fn expect_contains(&self, text: &str) -> &Run {
        assert!(
            self.all().contains(text),
            "output lacks {text:?}\n{}",
            self.context()
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.context()))
    }
}

/// A stack named for one test, its working directory, and the environment stackroll gets.
struct Stack {
    name: String,
    dir: TempDir,
    env: RefCell<Vec<(String, String)>>,
}

impl Stack {
    /// A new stack `e2e<tag>_<random>`; `tag` is a few lowercase letters.
    fn new(tag: &str) -> Stack {
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

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `<stack>_<name>`.
    fn scoped(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
    }

    /// Copies `fixtures/e2e/<fixture>` to `compose.yaml`.
    fn use_compose(&self, fixture: &str) {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/e2e")
            .join(fixture);
        std::fs::copy(&source, self.path("compose.yaml"))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    }

    /// Writes a fresh registered value to `file` and returns it.
    fn write_secret(&self, file: &str, prefix: &str) -> String {
        let value = secret_value(prefix, &format!("{} {file} {prefix}", self.name));
        std::fs::write(self.path(file), &value).expect("write secret file");
        value
    }

    /// Sets an environment variable for every later stackroll run.
    fn set_env(&self, key: &str, value: &str) {
        let mut env = self.env.borrow_mut();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    /// Runs stackroll at full verbosity in the stack's directory and checks for leaks.
    fn stackroll(&self, args: &[&str]) -> Run {
        let mut command = Command::cargo_bin("stackroll").expect("the stackroll binary");
        command
            .current_dir(self.dir.path())
            .env("RUST_LOG", "trace")
            .env_remove("STACKROLL_FINGERPRINT_KEY")
            .arg("-vvv")
            .args(args)
            .timeout(Duration::from_secs(300));
        for (key, value) in self.env.borrow().iter() {
            command.env(key, value);
        }
        let started = Instant::now();
        let output = command.output().expect("run stackroll");
        let run = Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
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

    fn deploy(&self, extra: &[&str]) -> Run {
        let mut args = vec!["deploy", "--timeout", "120s"];
        args.extend_from_slice(extra);
        args.push(&self.name);
        let run = self.stackroll(&args);
        self.assert_no_leak_in_swarm();
        run
    }

    /// `deploy` that must succeed.
    fn deploy_ok(&self, extra: &[&str]) -> Run {
        let run = self.deploy(extra);
        run.expect_code(0);
        run
    }

    fn plan(&self, extra: &[&str]) -> Run {
        let mut args = vec!["plan"];
        args.extend_from_slice(extra);
        args.push(&self.name);
        self.stackroll(&args)
    }

    fn objects(&self, kind: &str) -> BTreeSet<String> {
        stack_objects(kind, &self.name)
    }

    /// Asserts that no registered value shows in the names or labels of the stack's secrets
    /// and configs, nor anywhere in its secrets' and services' inspect output.
    fn assert_no_leak_in_swarm(&self) {
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

impl Drop for Stack {
    fn drop(&mut self) {
        remove_stack(&self.name);
    }
}

/// `docker stack rm`, then removes whatever is left with the stack's label, until nothing is.
fn remove_stack(name: &str) {
    let _ = docker(&["stack", "rm", name]);
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
fn ensure_swarm() {
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
fn assert_version_labels(stack: &Stack, kind: &str, key: &str, version: u64) {
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

// ---------------------------------------------------------------------------------------------
// The tests.

/// 1. A first deploy creates `<stack>_<key>_v1` with stackroll's labels, and the container
///    reads the secret at its default target and at custom absolute targets, with the mode,
///    owner and group asked for.
#[test]
fn e2e_first_deploy() {
    let stack = Stack::new("first");
    stack.use_compose("basic/compose.yaml");
    let db = stack.write_secret("db.txt", "db");
    let api = stack.write_secret("api.txt", "api");

    let run = stack.deploy_ok(&[]);
    run.expect_contains(&format!("{}_db_v1", stack.name));

    let app = stack.scoped("app");
    let secrets = stack.objects("secret");
    let expected: BTreeSet<String> = [stack.scoped("api_v1"), stack.scoped("db_v1")].into();
    assert_eq!(secrets, expected, "the stack's secrets");
    assert_version_labels(&stack, "secret", "db", 1);
    assert_version_labels(&stack, "secret", "api", 1);
    for name in &secrets {
        let fingerprint = labels_of("secret", name)["io.stackroll.fingerprint"].clone();
        assert!(
            leaks_in(&fingerprint).is_empty(),
            "{name}: the fingerprint label contains the value or a plain digest of it"
        );
    }

    let spec = &service_inspect(&app)["Spec"];
    let refs = references(spec, "secret");
    let files: Vec<(String, String, String, String, u64)> = refs
        .iter()
        .map(|(name, file)| {
            (
                name.clone(),
                file["Name"].as_str().unwrap_or_default().to_string(),
                file["UID"].as_str().unwrap_or_default().to_string(),
                file["GID"].as_str().unwrap_or_default().to_string(),
                file["Mode"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![
            (
                stack.scoped("api_v1"),
                "/etc/app/api.key".into(),
                "1000".into(),
                "1000".into(),
                0o400
            ),
            (
                stack.scoped("db_v1"),
                "/etc/app/db.conf".into(),
                "0".into(),
                "0".into(),
                0o440
            ),
            (
                stack.scoped("db_v1"),
                "db".into(),
                "0".into(),
                "0".into(),
                0o444
            ),
        ],
        "secret references of {app}"
    );

    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &db,
        "/run/secrets/db",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/db.conf"),
        &db,
        "/etc/app/db.conf",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/api.key"),
        &api,
        "/etc/app/api.key",
    );
    // Swarm writes one file per secret ID, so the mode of a secret mounted at two targets is
    // not well defined; api is mounted once.
    assert_eq!(stat_in_service(&app, "/etc/app/api.key"), "400 1000 1000");
}

/// 2. Rotation: new content gives `<stack>_db_v2`, the service moves to it at the same
///    targets, and the running container reads the new value.
#[test]
fn e2e_rotation() {
    let stack = Stack::new("rot");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let before = references(&service_inspect(&app)["Spec"], "secret");

    let db2 = stack.write_secret("db.txt", "db2");
    let run = stack.deploy_ok(&[]);
    run.expect_contains(&stack.scoped("db_v2"));
    eprintln!(
        "e2e_rotation: deploy rotating 1 service took {:.1}s",
        run.elapsed.as_secs_f64()
    );

    assert!(
        object_exists("secret", &stack.scoped("db_v2")),
        "db_v2 exists"
    );
    assert_version_labels(&stack, "secret", "db", 2);
    let after = references(&service_inspect(&app)["Spec"], "secret");
    assert_eq!(before.len(), after.len(), "same number of references");
    for ((old_name, old_file), (new_name, new_file)) in before.iter().zip(&after) {
        assert_eq!(
            old_file, new_file,
            "File (Name, UID, GID, Mode) of a reference"
        );
        let expected = if old_name == &stack.scoped("db_v1") {
            stack.scoped("db_v2")
        } else {
            old_name.clone()
        };
        assert_eq!(new_name, &expected, "reference at {}", new_file["Name"]);
    }
    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &db2,
        "/run/secrets/db after rotation",
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app/db.conf"),
        &db2,
        "/etc/app/db.conf after rotation",
    );
}

/// 3. Deploying again with nothing changed changes nothing.
#[test]
fn e2e_noop_redeploy() {
    let stack = Stack::new("noop");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let secrets_before = docker_ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    let stack_secrets_before = stack.objects("secret");
    let index_before = version_index(&app);

    let run = stack.deploy_ok(&[]);
    assert!(
        strip_ansi(&run.stdout).contains("No changes"),
        "stdout should say No changes\n{}",
        run.context()
    );
    assert_eq!(
        version_index(&app),
        index_before,
        "the service's Version.Index"
    );
    assert_eq!(
        stack.objects("secret"),
        stack_secrets_before,
        "the stack's secrets"
    );
    let secrets_after = docker_ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    let mine = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| l.contains(&stack.name))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        mine(&secrets_after),
        mine(&secrets_before),
        "secret IDs and names"
    );
}

/// 4. `plan` and `deploy --dry-run` write nothing; `--detailed-exitcode` says 2 with changes
///    pending and 0 once they are deployed.
#[test]
fn e2e_plan_writes_nothing() {
    let stack = Stack::new("plan");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");

    // Before anything exists.
    stack.plan(&["--detailed-exitcode"]).expect_code(2);
    assert!(stack.objects("secret").is_empty(), "plan created secrets");
    assert!(stack.objects("service").is_empty(), "plan created services");
    assert!(stack.objects("network").is_empty(), "plan created networks");

    stack.deploy_ok(&[]);
    stack.plan(&["--detailed-exitcode"]).expect_code(0);
    let app = stack.scoped("app");
    let secrets_before = stack.objects("secret");
    let index_before = version_index(&app);

    stack.write_secret("db.txt", "db2");
    let run = stack.plan(&[]);
    run.expect_code(0).expect_contains(&stack.scoped("db_v2"));
    stack.plan(&["--detailed-exitcode"]).expect_code(2);
    stack
        .deploy(&["--dry-run"])
        .expect_code(0)
        .expect_contains(&stack.scoped("db_v2"));
    assert_eq!(
        stack.objects("secret"),
        secrets_before,
        "secrets after plan"
    );
    assert_eq!(
        version_index(&app),
        index_before,
        "Version.Index after plan"
    );

    stack.deploy_ok(&[]);
    assert!(stack.objects("secret").contains(&stack.scoped("db_v2")));
    stack.plan(&["--detailed-exitcode"]).expect_code(0);
}

/// 5. One secret used by three services: rotating it moves all three in one deploy.
#[test]
fn e2e_shared_secret_rotation() {
    let stack = Stack::new("shared");
    stack.use_compose("shared/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.deploy_ok(&[]);

    let db2 = stack.write_secret("db.txt", "db2");
    let run = stack.deploy_ok(&[]);
    let services = ["web", "worker", "cron"];
    for service in services {
        let name = stack.scoped(service);
        run.expect_contains(&format!("{name}: converged"));
        let spec = &service_inspect(&name)["Spec"];
        assert_eq!(
            referenced_names(spec, "secret"),
            BTreeSet::from([stack.scoped("db_v2")]),
            "{name} references v2"
        );
        assert_eq!(
            update_state(&name),
            "completed",
            "{name} UpdateStatus.State"
        );
    }
    assert_same_value(
        &read_in_service(&stack.scoped("web"), "/run/secrets/db"),
        &db2,
        "web",
    );
    assert_same_value(
        &read_in_service(&stack.scoped("worker"), "/run/secrets/db"),
        &db2,
        "worker",
    );
    assert_same_value(
        &read_in_service(&stack.scoped("cron"), "/etc/cron/db"),
        &db2,
        "cron",
    );
    let converged: Vec<String> = strip_ansi(&run.stderr)
        .lines()
        .filter(|l| l.contains(": converged ("))
        .map(str::to_string)
        .collect();
    eprintln!(
        "e2e_shared_secret_rotation: deploy rotating 3 services took {:.1}s ({})",
        run.elapsed.as_secs_f64(),
        converged.join("; ")
    );
}

/// 6. A rollout that fails its healthcheck: exit 3, the service rolls back to v1, and v1 is
///    kept.
#[test]
fn e2e_failing_rollout() {
    let stack = Stack::new("fail");
    stack.use_compose("healthcheck/compose.yaml");
    let good = stack.write_secret("db.txt", "good");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    assert_same_value(
        &read_in_service(&app, "/run/secrets/db"),
        &good,
        "first deploy",
    );

    stack.write_secret("db.txt", "bad");
    let run = stack.deploy(&[]);
    run.expect_code(3);
    let all = run.all();
    assert!(
        all.contains(&app),
        "the output names the service\n{}",
        run.context()
    );
    let lower = all.to_lowercase();
    assert!(
        ["rolled back", "roll back", "rollback", "paused"]
            .iter()
            .any(|word| lower.contains(word)),
        "the output says the update was rolled back or paused\n{}",
        run.context()
    );

    let v1 = stack.scoped("db_v1");
    let state = wait_for("the rollback to finish", WAIT, || {
        let state = update_state(&app);
        (state != "rollback_started" && state != "updating").then_some(state)
    });
    assert!(
        state == "rollback_completed" || state == "paused" || state == "rollback_paused",
        "UpdateStatus.State after a failed update: {state}"
    );
    let service = service_inspect(&app);
    let in_spec = referenced_names(&service["Spec"], "secret").contains(&v1);
    let in_previous = referenced_names(&service["PreviousSpec"], "secret").contains(&v1);
    assert!(
        in_spec || in_previous,
        "Spec or PreviousSpec references {v1}"
    );
    assert!(object_exists("secret", &v1), "{v1} still exists");
    if state == "rollback_completed" {
        assert!(in_spec, "after the rollback the Spec references {v1}");
        wait_for_content(&app, "/run/secrets/db", &good);
    }
    eprintln!("e2e_failing_rollout: UpdateStatus.State after the failed deploy: {state}");

    // The same bad content again, reported as JSON: v2 is reused, the rollout fails again.
    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(3);
    let report = run.json();
    assert!(
        plan_schema().is_valid(&report),
        "the failure report matches the schema\n{}",
        run.context()
    );
    assert_eq!(report["outcome"], "rollout_failed", "{}", run.context());
    assert!(
        report["failures"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["service"] == app.as_str())),
        "failures name {app}\n{}",
        run.context()
    );
    assert!(
        !object_exists("secret", &stack.scoped("db_v3")),
        "the bad content reuses v2"
    );
    wait_for("the second rollback to finish", WAIT, || {
        let state = update_state(&app);
        (state != "rollback_started" && state != "updating").then_some(())
    });

    // Back to the good content: it equals v1, which the service runs after the rollback.
    std::fs::write(stack.path("db.txt"), &good).expect("write db.txt");
    if update_state(&app) == "rollback_completed" {
        let run = stack.deploy_ok(&[]);
        assert!(
            strip_ansi(&run.stdout).contains("No changes"),
            "the rolled-back service already runs v1\n{}",
            run.context()
        );
    } else {
        stack.deploy_ok(&[]);
    }
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([v1.clone()]),
        "good content again uses {v1}"
    );
    assert!(!object_exists("secret", &stack.scoped("db_v3")));
    wait_for_content(&app, "/run/secrets/db", &good);
}

/// 7. Adoption: a stack first deployed by `docker stack deploy` gets a `_v1` secret; the old
///    unversioned secret stays.
#[test]
fn e2e_adoption() {
    let stack = Stack::new("adopt");
    stack.use_compose("adopt/compose.yaml");
    let db = stack.write_secret("db.txt", "db");
    let output = StdCommand::new("docker")
        .current_dir(stack.dir.path())
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            "compose.yaml",
            &stack.name,
        ])
        .output()
        .expect("docker stack deploy");
    assert!(
        output.status.success(),
        "docker stack deploy failed: {}",
        redact(&String::from_utf8_lossy(&output.stderr))
    );
    let legacy = stack.scoped("db");
    let app = stack.scoped("app");
    assert!(
        object_exists("secret", &legacy),
        "docker stack deploy made {legacy}"
    );
    wait_for_content(&app, "/run/secrets/db", &db);

    let run = stack.plan(&[]);
    run.expect_code(0);
    let lower = run.all().to_lowercase();
    assert!(
        lower.contains("cannot be verified") || lower.contains("adopting"),
        "plan says the content cannot be verified / is adopted\n{}",
        run.context()
    );

    stack.deploy_ok(&[]);
    let v1 = stack.scoped("db_v1");
    assert_version_labels(&stack, "secret", "db", 1);
    let refs = references(&service_inspect(&app)["Spec"], "secret");
    assert_eq!(refs.len(), 1, "one secret reference");
    assert_eq!(refs[0].0, v1, "the service uses {v1}");
    assert_eq!(refs[0].1["Name"], "db", "at the same target");
    assert!(
        object_exists("secret", &legacy),
        "{legacy} is left in place"
    );
    wait_for_content(&app, "/run/secrets/db", &db);

    stack.plan(&["--detailed-exitcode"]).expect_code(0);

    // Rotating and pruning never touch the adopted secret: it is not stackroll's.
    let db2 = stack.write_secret("db.txt", "db2");
    stack.deploy_ok(&[]);
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "secret"),
        BTreeSet::from([stack.scoped("db_v2")]),
        "after rotation"
    );
    assert!(
        object_exists("secret", &legacy),
        "{legacy} survives a rotation"
    );
    wait_for_content(&app, "/run/secrets/db", &db2);
}

/// 8. Missing external secrets: exit 1, both named, nothing created.
#[test]
fn e2e_missing_external() {
    let stack = Stack::new("ext");
    stack.use_compose("missing-external/compose.yaml");
    stack.write_secret("local.txt", "local");
    let missing_a = format!("{}-missing-a", stack.name);
    let missing_b = format!("{}-missing-b", stack.name);
    stack.set_env("E2E_MISSING_A", &missing_a);
    stack.set_env("E2E_MISSING_B", &missing_b);

    let run = stack.deploy(&[]);
    run.expect_code(1)
        .expect_contains(&missing_a)
        .expect_contains(&missing_b);
    for kind in ["service", "secret", "config", "network"] {
        assert!(
            stack.objects(kind).is_empty(),
            "a failed deploy created {kind}s: {:?}",
            stack.objects(kind)
        );
    }
    assert!(!object_exists("secret", &stack.scoped("local_v1")));
    stack
        .plan(&[])
        .expect_code(1)
        .expect_contains(&missing_a)
        .expect_contains(&missing_b);
}

/// 9. A secret from stackroll's environment reaches the container.
#[test]
fn e2e_environment_secret() {
    let stack = Stack::new("env");
    stack.use_compose("env-secret/compose.yaml");
    let token = secret_value("token", &format!("{} E2E_TOKEN", stack.name));
    stack.set_env("E2E_TOKEN", &token);
    // `config` prints the resolved model: the variable's name, never its value.
    stack
        .stackroll(&["config"])
        .expect_code(0)
        .expect_contains("E2E_TOKEN");
    stack
        .stackroll(&["config", "--format", "json"])
        .expect_code(0);
    stack.deploy_ok(&[]);
    assert_version_labels(&stack, "secret", "token", 1);
    let app = stack.scoped("app");
    assert_same_value(
        &read_in_service(&app, "/run/secrets/token"),
        &token,
        "/run/secrets/token",
    );
    let run = stack.deploy_ok(&[]);
    assert!(
        strip_ansi(&run.stdout).contains("No changes"),
        "{}",
        run.context()
    );

    // A new value in the environment rotates the secret.
    let token2 = secret_value("token2", &format!("{} E2E_TOKEN 2", stack.name));
    stack.set_env("E2E_TOKEN", &token2);
    stack
        .deploy_ok(&[])
        .expect_contains(&stack.scoped("token_v2"));
    assert_version_labels(&stack, "secret", "token", 2);
    wait_for_content(&app, "/run/secrets/token", &token2);
}

/// 10. Configs rotate like secrets; a relative config target lands under `/`.
#[test]
fn e2e_configs_rotate() {
    let stack = Stack::new("cfg");
    stack.use_compose("configs/compose.yaml");
    let conf1 = stack.write_secret("app.conf", "conf1");
    let inline = secret_value("inline", &format!("{} E2E_INLINE", stack.name));
    stack.set_env("E2E_INLINE", &inline);
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    let configs = stack.objects("config");
    assert_eq!(
        configs,
        BTreeSet::from([stack.scoped("appconf_v1"), stack.scoped("inline_v1")]),
        "the stack's configs"
    );
    assert_version_labels(&stack, "config", "appconf", 1);
    assert_version_labels(&stack, "config", "inline", 1);
    assert_same_value(
        &read_in_service(&app, "/etc/app.conf"),
        &conf1,
        "/etc/app.conf",
    );
    assert_same_value(
        &read_in_service(&app, "/inline"),
        &format!("inline {inline}"),
        "/inline",
    );

    let conf2 = stack.write_secret("app.conf", "conf2");
    stack
        .deploy_ok(&[])
        .expect_contains(&stack.scoped("appconf_v2"));
    assert_version_labels(&stack, "config", "appconf", 2);
    assert_eq!(
        referenced_names(&service_inspect(&app)["Spec"], "config"),
        BTreeSet::from([stack.scoped("appconf_v2"), stack.scoped("inline_v1")]),
        "the service's configs after rotation"
    );
    assert_same_value(
        &read_in_service(&app, "/etc/app.conf"),
        &conf2,
        "/etc/app.conf after rotation",
    );
    assert_same_value(
        &read_in_service(&app, "/inline"),
        &format!("inline {inline}"),
        "/inline after rotation",
    );
}

/// Checks the shape every JSON report has; returns it.
fn check_report(run: &Run, stack: &Stack, outcome: &str) -> Value {
    let report = run.json();
    let context = || format!("{}\n{}", redact(&report.to_string()), run.context());
    assert_eq!(report["stack"], stack.name.as_str(), "stack\n{}", context());
    assert_eq!(report["outcome"], outcome, "outcome\n{}", context());
    let changes = report["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("changes\n{}", context()));
    let mut counts = BTreeMap::from([("create", 0u64), ("update", 0), ("delete", 0)]);
    for change in changes {
        for key in ["kind", "action", "name", "reason"] {
            assert!(
                change[key].is_string(),
                "change.{key} is a string\n{}",
                context()
            );
        }
        assert!(
            change["details"].is_array(),
            "change.details is an array\n{}",
            context()
        );
        assert!(
            ["secret", "config", "service", "network"].contains(&change["kind"].as_str().unwrap()),
            "change.kind\n{}",
            context()
        );
        let action = change["action"].as_str().unwrap();
        *counts
            .get_mut(action)
            .unwrap_or_else(|| panic!("change.action {action}\n{}", context())) += 1;
    }
    for (action, count) in counts {
        assert_eq!(
            report["summary"][action].as_u64(),
            Some(count),
            "summary.{action}\n{}",
            context()
        );
    }
    let errors: Vec<String> = plan_schema()
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match schema/plan.schema.json: {errors:?}\n{}",
        context()
    );
    report
}

/// The validator for schema/plan.schema.json, the contract of `--output json`.
fn plan_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema/plan.schema.json is JSON");
    jsonschema::validator_for(&schema).expect("schema/plan.schema.json compiles")
}

/// The schema check can fail: reports missing required keys or with unknown values are
/// rejected. Needs no swarm.
#[test]
fn e2e_schema_rejects_bad_reports() {
    let schema = plan_schema();
    let good = serde_json::json!({
        "stack": "demo",
        "changes": [{"kind": "secret", "action": "create", "name": "demo_db_v1",
                     "reason": "first version", "details": []}],
        "notes": [],
        "summary": {"create": 1, "update": 0, "delete": 0},
        "outcome": "planned"
    });
    assert!(schema.is_valid(&good), "a well-formed report is valid");
    let mut no_outcome = good.clone();
    no_outcome.as_object_mut().unwrap().remove("outcome");
    let mut bad_kind = good.clone();
    bad_kind["changes"][0]["kind"] = "volume".into();
    let mut no_summary_key = good.clone();
    no_summary_key["summary"]
        .as_object_mut()
        .unwrap()
        .remove("delete");
    for bad in [no_outcome, bad_kind, no_summary_key] {
        assert!(!schema.is_valid(&bad), "accepted {bad}");
    }
}

fn has_change(report: &Value, kind: &str, action: &str, name: &str) -> bool {
    report["changes"].as_array().is_some_and(|changes| {
        changes
            .iter()
            .any(|c| c["kind"] == kind && c["action"] == action && c["name"] == name)
    })
}

/// 11. `--output json` of plan and deploy.
#[test]
fn e2e_json_output() {
    let stack = Stack::new("json");
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("api.txt", "api");
    let app = stack.scoped("app");

    let run = stack.plan(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "planned");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("db_v1")),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "service", "create", &app),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "network", "create", &stack.scoped("default")),
        "{}",
        run.context()
    );

    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "applied");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("api_v1")),
        "{}",
        run.context()
    );

    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "no_changes");
    assert_eq!(
        report["changes"].as_array().map(Vec::len),
        Some(0),
        "{}",
        run.context()
    );

    stack.write_secret("db.txt", "db2");
    let run = stack.plan(&["--output", "json"]);
    run.expect_code(0);
    let report = check_report(&run, &stack, "planned");
    assert!(
        has_change(&report, "secret", "create", &stack.scoped("db_v2")),
        "{}",
        run.context()
    );
    assert!(
        has_change(&report, "service", "update", &app),
        "{}",
        run.context()
    );
    let run = stack.deploy(&["--output", "json"]);
    run.expect_code(0);
    check_report(&run, &stack, "applied");
}

/// 12. Pruning: with --keep 1 the oldest versions go; a removed secret's versions go once no
///     Spec or PreviousSpec references them; hand-made objects with the stack label stay.
#[test]
fn e2e_prune() {
    let stack = Stack::new("prune");
    stack.use_compose("prune/compose.yaml");
    stack.write_secret("db.txt", "db1");
    stack.write_secret("extra.txt", "extra");
    // Hand-made objects in the stack's namespace, without io.stackroll.managed.
    let handmade_secret = stack.scoped("db_v0");
    let handmade_config = stack.scoped("handmade");
    stack.write_secret("handmade.txt", "handmade");
    let handmade_file = stack.path("handmade.txt");
    let handmade_file = handmade_file.to_str().unwrap();
    let namespace = format!("{NAMESPACE_LABEL}={}", stack.name);
    docker_ok(&[
        "secret",
        "create",
        "--label",
        &namespace,
        "--label",
        "io.stackroll.key=db",
        "--label",
        "io.stackroll.version=0",
        &handmade_secret,
        handmade_file,
    ]);
    docker_ok(&[
        "config",
        "create",
        "--label",
        &namespace,
        &handmade_config,
        handmade_file,
    ]);
    let app = stack.scoped("app");
    let v = |key: &str, n: u64| stack.scoped(&format!("{key}_v{n}"));
    let assert_secrets = |expected: &[String], step: &str| {
        let mut expected: BTreeSet<String> = expected.iter().cloned().collect();
        expected.insert(handmade_secret.clone());
        assert_eq!(stack.objects("secret"), expected, "secrets after {step}");
        assert!(
            stack.objects("config").contains(&handmade_config),
            "{handmade_config} after {step}"
        );
    };

    stack.deploy_ok(&["--keep", "1"]);
    assert_secrets(&[v("db", 1), v("extra", 1)], "the first deploy");

    stack.write_secret("db.txt", "db2");
    stack.deploy_ok(&["--keep", "1"]);
    assert_secrets(
        &[v("db", 1), v("db", 2), v("extra", 1)],
        "the first rotation",
    );

    stack.write_secret("db.txt", "db3");
    let run = stack.deploy_ok(&["--keep", "1"]);
    run.expect_contains(&format!("deleted secret {}", v("db", 1)));
    assert_secrets(
        &[v("db", 2), v("db", 3), v("extra", 1)],
        "the second rotation",
    );

    // Drop `extra`: the service's PreviousSpec still references it, so it stays for rollback.
    stack.use_compose("prune/compose.without-extra.yaml");
    stack.deploy_ok(&["--keep", "1"]);
    let service = service_inspect(&app);
    assert_eq!(
        referenced_names(&service["Spec"], "secret"),
        BTreeSet::from([v("db", 3)]),
        "Spec after dropping extra"
    );
    assert!(
        referenced_names(&service["PreviousSpec"], "secret").contains(&v("extra", 1)),
        "PreviousSpec references extra_v1"
    );
    assert_secrets(&[v("db", 2), v("db", 3), v("extra", 1)], "dropping extra");

    // Another service change: now nothing references extra_v1.
    stack.set_env("E2E_STEP", "1");
    let run = stack.deploy_ok(&["--keep", "1"]);
    run.expect_contains(&format!("deleted secret {}", v("extra", 1)));
    assert_secrets(&[v("db", 2), v("db", 3)], "the next service change");
}

/// The leak search itself: a registered value is found raw, split by colour codes, and as
/// digests and encodings, and redaction hides it. Needs no swarm.
#[test]
fn e2e_harness_finds_leaks() {
    use sha1::Digest as _;
    let value = secret_value("probe", "harness probe");
    let bytes = value.as_bytes();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let leaking = [
        format!("value={value}\n"),
        format!("{}\u{1b}[0m{}", &value[..10], &value[10..]),
        hex(&sha2::Sha256::digest(bytes)),
        hex(&sha2::Sha256::digest(bytes)).to_uppercase(),
        hex(&sha1::Sha1::digest(bytes)),
        hex(&md5::Md5::digest(bytes)),
        format!("{{\"Data\":\"{b64}\"}}"),
        hex(bytes),
        format!("data: {bytes:?}"),
    ];
    for text in &leaking {
        let leaks = leaks_in(text);
        assert!(!leaks.is_empty(), "not found: {}", redact(text));
        assert!(
            leaks.iter().all(|l| l.contains("harness probe")),
            "{leaks:?}"
        );
        assert!(
            !strip_ansi(&redact(text)).contains(&value),
            "redaction left the value"
        );
    }
    assert!(leaks_in("Stack demo:\n  + secret demo_db_v1 (file ./db.txt, 37 bytes)").is_empty());
    assert_eq!(
        describe_value(bytes),
        "the value registered as \"harness probe\""
    );
    assert_eq!(
        describe_value(b"something else"),
        "an unregistered value of 14 bytes"
    );
}
