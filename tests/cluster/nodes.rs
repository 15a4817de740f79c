//! The multi-node swarm of `scripts/cluster.sh`: its nodes' engines, killing one (`kill -9` of
//! its dockerd, by the pidfile the script keeps) and bringing it back, the raft leader, and
//! reading what every running task of a service sees through the engine of its own node.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker::{docker_binary, docker_lines, docker_ok, use_engine, POLL};

/// The managers (`src1`..`src3`) and workers (`src4`, `src5`), as numbered by the script.
pub(crate) const MANAGERS: [usize; 3] = [1, 2, 3];

/// The script's run directory (sockets, pidfiles).
fn run_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("STACKROLL_CLUSTER_RUN").unwrap_or_else(|_| "/run/stackroll-cluster".into()),
    )
}

/// The engine address of node `n`.
pub(crate) fn host(n: usize) -> String {
    format!("unix://{}/src{n}/docker.sock", run_dir().display())
}

/// The node number of a hostname (`src3` → 3).
pub(crate) fn number(hostname: &str) -> usize {
    hostname
        .strip_prefix("src")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a cluster node: {hostname}"))
}

/// Runs docker against node `n`'s engine.
pub(crate) fn docker_on(n: usize, args: &[&str]) -> Output {
    StdCommand::new(docker_binary())
        .arg("-H")
        .arg(host(n))
        .args(args)
        .output()
        .expect("run docker")
}

/// The cluster, held by one test at a time.
pub(crate) struct Cluster {
    _guard: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Waits for the other cluster tests, checks every node is up (restarting any a failed
    /// test left down) and points the oracle at manager `src1`.
    pub(crate) fn lock() -> Cluster {
        static LOCK: Mutex<()> = Mutex::new(());
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        restore();
        use_engine(&host(1));
        Cluster { _guard: guard }
    }
}

/// `scripts/cluster.sh up`: starts any daemon that is down and waits until every node is
/// Ready and every manager reachable.
pub(crate) fn restore() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
    let output = StdCommand::new(script)
        .arg("up")
        .output()
        .expect("run scripts/cluster.sh");
    assert!(
        output.status.success(),
        "scripts/cluster.sh up failed (these tests need root and the cluster):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Kills node `n`'s dockerd with SIGKILL (its containers keep running, as on a machine whose
/// engine died; the swarm sees the node go down).
pub(crate) fn kill_node(n: usize) {
    let pidfile = run_dir().join(format!("src{n}/launch.pid"));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("the cluster's pidfile")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill(2) with a pid this cluster started and a valid signal number.
    let result = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(result, 0, "kill -9 {pid} (src{n})");
}

/// The raft leader, as a live manager other than `except` sees it.
pub(crate) fn leader() -> usize {
    let lines = docker_lines(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"]);
    lines
        .iter()
        .find_map(|line| line.strip_suffix(" Leader").map(number))
        .unwrap_or_else(|| panic!("no leader in {lines:?}"))
}

/// Waits until the oracle's manager lists node `n` in `state` (`Ready`, `Down`).
pub(crate) fn wait_node_state(n: usize, state: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let lines = docker_lines(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
        if lines.iter().any(|l| *l == format!("src{n} {state}")) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "src{n} not {state} within {timeout:?}: {lines:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// A task the swarm wants running, where it runs.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// The task ID.
    pub(crate) id: String,
    /// The node's number.
    pub(crate) node: usize,
    /// Status.State.
    pub(crate) state: String,
    /// Its container.
    pub(crate) container: String,
}

/// The tasks of `service` that the swarm wants running, with their nodes.
pub(crate) fn placed_tasks(service: &str) -> Vec<Placed> {
    let ids = docker_lines(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--no-trunc",
        "-q",
        service,
    ]);
    let hostnames: Vec<(String, String)> =
        docker_lines(&["node", "ls", "--format", "{{.ID}} {{.Hostname}}"])
            .iter()
            .filter_map(|l| {
                let (id, name) = l.split_once(' ')?;
                Some((id.to_string(), name.to_string()))
            })
            .collect();
    ids.iter()
        .map(|id| {
            let text = docker_ok(&["inspect", "--type", "task", id]);
            let value: Value = serde_json::from_str(&text).expect("JSON");
            let task = &value[0];
            let node_id = task["NodeID"].as_str().unwrap_or_default();
            let hostname = hostnames
                .iter()
                .find(|(id, _)| id == node_id)
                .map(|(_, name)| name.clone())
                .unwrap_or_default();
            Placed {
                id: id.clone(),
                node: number(&hostname),
                state: task["Status"]["State"].as_str().unwrap_or_default().into(),
                container: task["Status"]["ContainerStatus"]["ContainerID"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            }
        })
        .collect()
}

/// What `path` holds in every running task of `service`, each read through the engine of the
/// node it runs on: `(node, content)`, sorted by node.
pub(crate) fn read_on_every_node(service: &str, path: &str) -> Vec<(usize, Vec<u8>)> {
    let mut seen: Vec<(usize, Vec<u8>)> = placed_tasks(service)
        .into_iter()
        .filter(|task| task.state == "running" && !task.container.is_empty())
        .map(|task| {
            let output = docker_on(task.node, &["exec", &task.container, "cat", path]);
            assert!(
                output.status.success(),
                "cat {path} in task {} on src{} failed",
                task.id,
                task.node
            );
            (task.node, output.stdout)
        })
        .collect();
    seen.sort();
    seen
}
