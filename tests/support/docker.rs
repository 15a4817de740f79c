//! The `docker` CLI as the swarm tests' oracle: running it, reading stacks, services, secrets
//! and configs back, waiting for the swarm, checking there is a swarm to test against, and
//! removing a stack with everything labelled with its namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command as StdCommand, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::leaks::{hex, redact};
use crate::stack::assert_same_value;

/// The label `docker stack` puts on everything in a stack.
pub(crate) const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// How long to wait for the swarm to get somewhere before failing.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
/// How often to poll the swarm.
pub(crate) const POLL: Duration = Duration::from_millis(300);

/// How long removing a stack may take.
pub(crate) const REMOVE_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// The docker CLI.

/// The docker CLI to use: Debian's 20.10 (`/usr/bin/docker`, what CI has) when it exists, even
/// if a newer one comes first on PATH.
pub(crate) fn docker_binary() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// The engine the oracle asks when it is not the default one (`DOCKER_HOST` for every docker
/// run): the cluster tests point it at a manager of the multi-node swarm.
static ENGINE: Mutex<Option<String>> = Mutex::new(None);

/// Points every later docker run at `host` (a cluster test moves it off a manager it kills).
#[allow(dead_code)] // only the cluster binary has more than one engine
pub(crate) fn use_engine(host: &str) {
    *ENGINE.lock().unwrap_or_else(|e| e.into_inner()) = Some(host.to_string());
}

/// Runs docker and returns whatever it did.
pub(crate) fn docker(args: &[&str]) -> Output {
    let mut command = StdCommand::new(docker_binary());
    if let Some(host) = ENGINE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        command.env("DOCKER_HOST", host);
    }
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {args:?}: {e}", docker_binary()))
}

/// Runs docker; returns stdout, or an error with its (redacted) output.
pub(crate) fn try_docker(args: &[&str]) -> Result<String, String> {
    let output = docker(args);
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "docker {args:?} failed ({}): {}{}",
            output.status,
            redact(&String::from_utf8_lossy(&output.stdout)),
            redact(&String::from_utf8_lossy(&output.stderr))
        ))
    }
}

/// Runs docker, panicking (with redacted output) unless it succeeds; returns stdout.
pub(crate) fn docker_ok(args: &[&str]) -> String {
    try_docker(args).unwrap_or_else(|error| panic!("{error}"))
}

/// The non-empty lines of `text`, trimmed.
pub(crate) fn lines_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The non-empty lines docker prints; panics unless it succeeds.
pub(crate) fn docker_lines(args: &[&str]) -> Vec<String> {
    lines_of(&docker_ok(args))
}

/// `docker <kind> ls` names of objects labelled with the stack's namespace.
pub(crate) fn stack_objects(kind: &str, stack: &str) -> BTreeSet<String> {
    let filter = format!("label={NAMESPACE_LABEL}={stack}");
    docker_lines(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"])
        .into_iter()
        .collect()
}

/// IDs of the objects of `kind` labelled with the stack's namespace (none when docker fails).
pub(crate) fn stack_object_ids(kind: &str, stack: &str) -> Vec<String> {
    let filter = format!("label={NAMESPACE_LABEL}={stack}");
    try_docker(&[kind, "ls", "-q", "--filter", &filter])
        .map(|out| lines_of(&out))
        .unwrap_or_default()
}

/// `docker <kind> inspect` of several objects at once, as a JSON array.
pub(crate) fn inspect_many(kind: &str, ids: &[String]) -> Result<Vec<Value>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![kind, "inspect"];
    args.extend(ids.iter().map(String::as_str));
    let text = try_docker(&args)?;
    serde_json::from_str(&text).map_err(|e| format!("docker {kind} inspect: not JSON: {e}"))
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

/// The entries of the `Secrets` or `Configs` list (`list`) of a service spec, as listed.
pub(crate) fn reference_entries(spec: &Value, list: &str) -> Vec<Value> {
    spec["TaskTemplate"]["ContainerSpec"][list]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The secret or config references of a service spec, `(name, File)` sorted by target.
pub(crate) fn references(spec: &Value, kind: &str) -> Vec<(String, Value)> {
    let (list, name_key) = match kind {
        "secret" => ("Secrets", "SecretName"),
        _ => ("Configs", "ConfigName"),
    };
    let mut refs: Vec<(String, Value)> = reference_entries(spec, list)
        .into_iter()
        .map(|r| {
            (
                r[name_key].as_str().unwrap_or_default().to_string(),
                r["File"].clone(),
            )
        })
        .collect();
    refs.sort_by(|a, b| a.1["Name"].as_str().cmp(&b.1["Name"].as_str()));
    refs
}

/// The names of the secrets (`kind` "secret") or configs a service spec references.
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

/// `docker stack rm` and the stack's deploy lock, then removes whatever is left with the stack's
/// label, until nothing is (or [`REMOVE_TIMEOUT`] has passed).
pub(crate) fn remove_stack(name: &str) {
    let _ = docker(&["stack", "rm", name]);
    // The deploy lock carries no stack label (so `docker stack rm` leaves it): remove it by name.
    let _ = docker(&["config", "rm", &format!("{name}_stackroll-lock")]);
    let started = Instant::now();
    while !remove_labelled(&[name]).is_empty() && started.elapsed() <= REMOVE_TIMEOUT {
        std::thread::sleep(POLL);
    }
}

/// One pass over the services, secrets, configs and networks labelled with any of `stacks`:
/// removes them and returns what was there (`<stack>: <n> <kind>(s)`), empty when nothing was.
/// Networks tasks are still attached to stay, so callers poll until nothing is left.
pub(crate) fn remove_labelled(stacks: &[&str]) -> Vec<String> {
    let mut left = Vec::new();
    for stack in stacks {
        for kind in ["service", "secret", "config", "network"] {
            let ids = stack_object_ids(kind, stack);
            if !ids.is_empty() {
                left.push(format!("{stack}: {} {kind}(s)", ids.len()));
                let mut args = vec![kind, "rm"];
                args.extend(ids.iter().map(String::as_str));
                let _ = docker(&args);
            }
        }
    }
    left
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

/// Short random hex, for stack names.
pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex(&bytes)
}
