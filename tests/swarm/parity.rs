//! Differential tests: `stackroll deploy` against `docker stack deploy` (docker/cli 20.10, the
//! CLI CI has) on the local swarm (`scripts/dev-swarm.sh up`). See fixtures/parity/README.md.
//!
//! Every case under `fixtures/parity/` is deployed twice from its directory: as stack
//! `pA<NN>x<pid>` by `docker stack deploy --resolve-image never -c compose.yaml` (the oracle)
//! and as stack `pB<NN>x<pid>` by `stackroll deploy --detach --resolve-image never -c
//! compose.yaml` (local/busybox:1 has no registry; tests/swarm/registry.rs compares pinning). The spec of
//! every service of both stacks (`docker service inspect --format '{{json .Spec}}'`), the
//! networks each stack created (`docker network inspect`) and the secrets and configs the
//! services reference are read back, normalised by the few rules of [`Snapshot::normalize`] and
//! [`network_view`], and must be equal. Both stacks are removed after each case (waiting until
//! their services, networks, secrets and configs are gone) before the next one starts.
//!
//! All cases run inside one test, one after the other; every failure is collected and they are
//! reported together at the end, each with its differences, followed by an index of the
//! differing fields and the cases they occur in.
//!
//! `PARITY_CASES=05,secrets` runs only the cases whose directory name contains one of the
//! comma-separated strings. `PARITY_DUMP=<dir>` writes each case's normalised stacks there
//! (`<case>.docker.json`, `<case>.stackroll.json`) for a closer look.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::command::{fixtures, stackroll};
use crate::docker::{
    docker, docker_binary, ensure_swarm, inspect_many, lines_of, reference_entries,
    remove_labelled, stack_object_ids, try_docker, POLL, REMOVE_TIMEOUT,
};
use crate::leaks::strip_ansi;

/// Prefix of the labels stackroll adds to the objects it creates (set aside when comparing).
const STACKROLL_LABEL_PREFIX: &str = "io.stackroll.";
/// Overlay option whose value (the VXLAN IDs) the swarm allocates per network.
const VXLAN_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// Variables the fixtures use. `PARITY_RUN` is set (to the process id) for both tools; the
/// others must be unset so that defaults and "no value" entries are exercised.
const RUN_VARIABLE: &str = "PARITY_RUN";
const UNSET_VARIABLES: &[&str] = &[
    "PARITY_UNSET_VARIABLE",
    "PARITY_UNSET_FROM_FILE",
    "PARITY_REPLICAS",
];
/// How long to keep trying to remove the named volumes a case's tasks created.
const VOLUME_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The swarm's address pools.

/// The address pools the swarm allocates network subnets from (default 10.0.0.0/8).
fn default_address_pools() -> Vec<(Ipv4Addr, u32)> {
    let text = try_docker(&[
        "info",
        "--format",
        "{{json .Swarm.Cluster.DefaultAddrPool}}",
    ])
    .unwrap_or_default();
    let pools: Vec<String> = serde_json::from_str(text.trim()).unwrap_or_default();
    let pools = if pools.is_empty() {
        vec!["10.0.0.0/8".to_string()]
    } else {
        pools
    };
    pools.iter().filter_map(|cidr| parse_cidr(cidr)).collect()
}

fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u32)> {
    let (address, bits) = cidr.split_once('/')?;
    Some((address.parse().ok()?, bits.parse().ok()?))
}

/// Whether the IPv4 subnet `cidr` lies inside one of `pools`.
fn in_pools(cidr: &str, pools: &[(Ipv4Addr, u32)]) -> bool {
    let Some((address, bits)) = parse_cidr(cidr) else {
        return false;
    };
    pools.iter().any(|(pool, pool_bits)| {
        let mask = if *pool_bits == 0 {
            0
        } else {
            u32::MAX << (32 - pool_bits)
        };
        bits >= *pool_bits && (u32::from(address) & mask) == (u32::from(*pool) & mask)
    })
}

// ---------------------------------------------------------------------------------------------
// Reading a stack back.

/// What one stack looks like in the swarm, raw.
struct Snapshot {
    stack: String,
    /// `.Spec` of every service of the stack, by service name.
    services: BTreeMap<String, Value>,
    /// `docker network inspect` of every network labelled with the stack, by name.
    networks: BTreeMap<String, Value>,
    /// Network ID → name, for every network of the swarm.
    network_names: HashMap<String, String>,
    /// Secret and config ID → `docker secret/config inspect` `.Spec`.
    objects: HashMap<String, Value>,
}

impl Snapshot {
    fn read(stack: &str) -> Result<Snapshot, String> {
        let service_ids = stack_object_ids("service", stack);
        let mut services = BTreeMap::new();
        if !service_ids.is_empty() {
            let mut args = vec!["service", "inspect", "--format", "{{json .Spec}}"];
            args.extend(service_ids.iter().map(String::as_str));
            for line in lines_of(&try_docker(&args)?) {
                let spec: Value = serde_json::from_str(&line)
                    .map_err(|e| format!("service spec is not JSON: {e}: {line}"))?;
                let name = spec["Name"].as_str().unwrap_or_default().to_string();
                services.insert(name, spec);
            }
        }
        let mut networks = BTreeMap::new();
        for network in inspect_many("network", &stack_object_ids("network", stack))? {
            let name = network["Name"].as_str().unwrap_or_default().to_string();
            networks.insert(name, network);
        }
        let network_names = lines_of(&try_docker(&[
            "network",
            "ls",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Name}}",
        ])?)
        .into_iter()
        .filter_map(|line| {
            let (id, name) = line.split_once(' ')?;
            Some((id.to_string(), name.to_string()))
        })
        .collect();
        let mut objects = HashMap::new();
        for (kind, list, id_key) in [
            ("secret", "Secrets", "SecretID"),
            ("config", "Configs", "ConfigID"),
        ] {
            let ids: BTreeSet<String> = services
                .values()
                .flat_map(|spec| reference_entries(spec, list))
                .filter_map(|r| r[id_key].as_str().map(str::to_string))
                .collect();
            let ids: Vec<String> = ids.into_iter().collect();
            for object in inspect_many(kind, &ids)? {
                let id = object["ID"].as_str().unwrap_or_default().to_string();
                objects.insert(id, object["Spec"].clone());
            }
        }
        Ok(Snapshot {
            stack: stack.to_string(),
            services,
            networks,
            network_names,
            objects,
        })
    }

    /// The names of the named volumes the stack's services mount (to remove them afterwards).
    fn volume_names(&self) -> BTreeSet<String> {
        self.services
            .values()
            .flat_map(|spec| {
                spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|m| m["Type"] == "volume")
            .filter_map(|m| m["Source"].as_str().map(str::to_string))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The comparable form of the stack: `{"services": {name: spec}, "networks": {name: view}}`.
    ///
    /// Normalisation rules, all of them (everything else must match exactly, including the
    /// defaults docker/cli and the engine fill in):
    ///
    /// 1. `TaskTemplate.Networks[].Target` (and the deprecated `Spec.Networks[].Target`) holds
    ///    the network ID the engine resolved the name to; IDs differ between the stacks, so it
    ///    is mapped back to the network's name.
    /// 2. Secret and config references: `SecretName`/`SecretID` and `ConfigName`/`ConfigID`
    ///    are set aside (stackroll names versions `<stack>_<key>_v<N>`, IDs are random). The
    ///    rest of each reference (`File`: Name, UID, GID, Mode; `Runtime`) stays, in the
    ///    order the service spec lists them (except among references to one same object, see
    ///    [`sort_same_object_runs`]), and the referenced object is put in its place as
    ///    `Object`: its inspected spec without `Name`, without stackroll's own `io.stackroll.*`
    ///    labels (fingerprint, version, ...). For configs that includes `Data`; secret data
    ///    cannot be read back, so for secrets the labels, `Driver` and `Templating` are compared.
    /// 3. `Privileges.CredentialSpec.Config` holds a config ID (docker/cli puts it there for
    ///    `credential_spec.config`); it becomes `<ConfigID of Configs[i]>`, naming the reference
    ///    with that ID.
    /// 4. The stack name: every string value equal to the stack name (the namespace label,
    ///    everywhere) becomes `<STACK>`, and every string starting with `<stack>_` (service,
    ///    network, volume names) starts with `<STACK>_` instead.
    fn normalize(&self, pools: &[(Ipv4Addr, u32)]) -> Value {
        let mut services = Map::new();
        for spec in self.services.values() {
            let mut spec = spec.clone();
            // Rule 1.
            for pointer in ["/TaskTemplate/Networks", "/Networks"] {
                if let Some(Value::Array(attachments)) = spec.pointer_mut(pointer) {
                    for attachment in attachments {
                        if let Some(id) = attachment["Target"].as_str() {
                            let name = self
                                .network_names
                                .get(id)
                                .cloned()
                                .unwrap_or_else(|| format!("<unknown network {id}>"));
                            attachment["Target"] = Value::String(name);
                        }
                    }
                }
            }
            // Rules 2 and 3.
            if let Some(container) = spec.pointer_mut("/TaskTemplate/ContainerSpec") {
                self.normalize_references(container);
            }
            // Rule 4.
            let spec = replace_stack(&spec, &self.stack);
            let name = spec["Name"].as_str().unwrap_or_default().to_string();
            services.insert(name, spec);
        }
        let mut networks = Map::new();
        for network in self.networks.values() {
            let view = replace_stack(&network_view(network, pools), &self.stack);
            let name = replace_stack(&network["Name"], &self.stack);
            networks.insert(name.as_str().unwrap_or_default().to_string(), view);
        }
        json!({ "services": services, "networks": networks })
    }

    /// Rules 2 and 3 on one ContainerSpec.
    fn normalize_references(&self, container: &mut Value) {
        for (list, id_key) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
            if let Some(Value::Array(refs)) = container.get_mut(list) {
                sort_same_object_runs(refs, id_key);
            }
        }
        let config_ids: Vec<Option<String>> = container["Configs"]
            .as_array()
            .map(|refs| {
                refs.iter()
                    .map(|r| r["ConfigID"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(Value::String(id)) = container.pointer_mut("/Privileges/CredentialSpec/Config")
        {
            if !id.is_empty() {
                *id = match config_ids
                    .iter()
                    .position(|c| c.as_deref() == Some(id.as_str()))
                {
                    Some(index) => format!("<ConfigID of Configs[{index}]>"),
                    None => "<ID of a config the service does not reference>".to_string(),
                };
            }
        }
        for (list, name_key, id_key) in [
            ("Secrets", "SecretName", "SecretID"),
            ("Configs", "ConfigName", "ConfigID"),
        ] {
            if let Some(Value::Array(refs)) = container.get_mut(list) {
                for reference in refs {
                    let Some(fields) = reference.as_object_mut() else {
                        continue;
                    };
                    fields.remove(name_key);
                    let id = fields.remove(id_key);
                    let object = id
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|id| self.objects.get(id))
                        .map(object_view)
                        .unwrap_or(Value::Null);
                    fields.insert("Object".to_string(), object);
                }
            }
        }
    }
}

/// Rule 2, order: docker/cli sorts references by object name, but the order of several
/// references to the same object (one secret mounted at two targets) comes out of a Go map
/// (`ParseSecrets`/`ParseConfigs`) and is random. Within each run of consecutive references
/// to the same object, references are therefore put in the order of their target; every other
/// order is compared as it is.
fn sort_same_object_runs(refs: &mut [Value], id_key: &str) {
    let mut start = 0;
    while start < refs.len() {
        let id = refs[start][id_key].clone();
        let mut end = start + 1;
        while end < refs.len() && refs[end][id_key] == id {
            end += 1;
        }
        refs[start..end].sort_by(|a, b| {
            let target = |r: &Value| r["File"]["Name"].as_str().unwrap_or_default().to_string();
            target(a).cmp(&target(b))
        });
        start = end;
    }
}

/// A secret or config spec without its name and without stackroll's labels (rule 2).
fn object_view(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(fields) = spec.as_object_mut() {
        fields.remove("Name");
        if let Some(Value::Object(labels)) = fields.get_mut("Labels") {
            labels.retain(|key, _| !key.starts_with(STACKROLL_LABEL_PREFIX));
        }
    }
    spec
}

/// The fields of a `docker network inspect` that a deploy decides: name (the map key),
/// Driver, Options, Labels, Internal, Attachable, EnableIPv6, Scope and IPAM. Normalisation
/// (besides rule 4):
///
/// 5. Options: `com.docker.network.driver.overlay.vxlanid_list` is left out: the swarm
///    allocates the VXLAN IDs of every overlay network.
/// 6. IPAM.Config: an entry whose subnet lies in the swarm's default address pool
///    (`docker info` .Swarm.Cluster.DefaultAddrPool, default 10.0.0.0/8) was allocated by the
///    swarm, differently for each network: its Subnet and Gateway become `<allocated>`. The
///    fixtures' explicit subnets lie outside that pool (172.28.0.0/16), so they are compared.
/// 7. Labels: stackroll's own `io.stackroll.*` labels are left out.
fn network_view(network: &Value, pools: &[(Ipv4Addr, u32)]) -> Value {
    let mut options = network["Options"].clone();
    if let Some(fields) = options.as_object_mut() {
        fields.remove(VXLAN_OPTION);
    }
    let mut labels = network["Labels"].clone();
    if let Some(fields) = labels.as_object_mut() {
        fields.retain(|key, _| !key.starts_with(STACKROLL_LABEL_PREFIX));
    }
    let mut ipam = network["IPAM"].clone();
    if let Some(Value::Array(configs)) = ipam.get_mut("Config") {
        for config in configs {
            let allocated = config["Subnet"]
                .as_str()
                .is_some_and(|subnet| in_pools(subnet, pools));
            if allocated {
                for key in ["Subnet", "Gateway"] {
                    if config.get(key).is_some() {
                        config[key] = Value::String("<allocated>".to_string());
                    }
                }
            }
        }
    }
    json!({
        "Driver": network["Driver"],
        "Options": options,
        "Labels": labels,
        "Internal": network["Internal"],
        "Attachable": network["Attachable"],
        "EnableIPv6": network["EnableIPv6"],
        "Scope": network["Scope"],
        "IPAM": ipam,
    })
}

/// Rule 4: the stack name in string values becomes `<STACK>`.
fn replace_stack(value: &Value, stack: &str) -> Value {
    let prefix = format!("{stack}_");
    match value {
        Value::String(text) if text == stack => Value::String("<STACK>".to_string()),
        Value::String(text) => match text.strip_prefix(&prefix) {
            Some(rest) => Value::String(format!("<STACK>_{rest}")),
            None => value.clone(),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| replace_stack(v, stack)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), replace_stack(v, stack)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// One difference between the normalised stacks.
struct Difference {
    /// Where, e.g. `services.<STACK>_web.TaskTemplate.ContainerSpec.Env[1]`.
    path: String,
    /// The value docker stack deploy produced (`None`: absent).
    docker: Option<Value>,
    /// The value stackroll produced (`None`: absent).
    stackroll: Option<Value>,
}

impl Difference {
    /// The field, for the index: without the service or network name and array indices.
    fn field(&self) -> String {
        let mut parts = self.path.splitn(3, '.');
        let kind = parts.next().unwrap_or_default();
        let _name = parts.next();
        let rest = parts.next().unwrap_or("(the whole object)");
        let mut field = String::new();
        let mut in_index = false;
        for c in rest.chars() {
            match c {
                '[' if !in_index => {
                    in_index = true;
                    field.push('[');
                }
                ']' if in_index => {
                    in_index = false;
                    field.push(']');
                }
                c if in_index && c.is_ascii_digit() => {}
                c => field.push(c),
            }
        }
        let kind = if kind == "services" {
            "service"
        } else {
            "network"
        };
        format!("{kind} {field}")
    }
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "(absent)".to_string(),
        Some(value) => {
            let text = value.to_string();
            if text.chars().count() > 400 {
                format!("{}…", text.chars().take(400).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '<' || c == '>');
    match (path.is_empty(), plain) {
        (true, _) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (false, false) => format!("{path}[{key:?}]"),
    }
}

fn diff(path: &str, docker: &Value, stackroll: &Value, out: &mut Vec<Difference>) {
    match (docker, stackroll) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => diff(&key_path(path, key), value, other, out),
                    None => out.push(Difference {
                        path: key_path(path, key),
                        docker: Some(value.clone()),
                        stackroll: None,
                    }),
                }
            }
            for (key, value) in b {
                if !a.contains_key(key) {
                    out.push(Difference {
                        path: key_path(path, key),
                        docker: None,
                        stackroll: Some(value.clone()),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for index in 0..a.len().max(b.len()) {
                let path = format!("{path}[{index}]");
                match (a.get(index), b.get(index)) {
                    (Some(x), Some(y)) => diff(&path, x, y, out),
                    (x, y) => out.push(Difference {
                        path,
                        docker: x.cloned(),
                        stackroll: y.cloned(),
                    }),
                }
            }
        }
        (a, b) if a != b => out.push(Difference {
            path: path.to_string(),
            docker: Some(a.clone()),
            stackroll: Some(b.clone()),
        }),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Deploying and removing.

fn docker_stack_deploy(dir: &Path, stack: &str, run: &str) -> Result<(), String> {
    let mut command = StdCommand::new(docker_binary());
    command.current_dir(dir).args([
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        "compose.yaml",
        stack,
    ]);
    command.env(RUN_VARIABLE, run);
    for variable in UNSET_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker stack deploy (the oracle) failed ({}); the fixture is wrong:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn stackroll_deploy(dir: &Path, stack: &str, run: &str) -> Result<(), String> {
    let mut command = stackroll(dir);
    command
        .args([
            "deploy",
            "--detach",
            "--resolve-image",
            "never",
            "-c",
            "compose.yaml",
            stack,
        ])
        .env(RUN_VARIABLE, run)
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(120));
    for variable in UNSET_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run stackroll: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "stackroll deploy failed (exit {:?}):\n{}",
            output.status.code(),
            strip_ansi(&String::from_utf8_lossy(&output.stderr)).trim_end()
        ))
    }
}

/// `stackroll plan --output json` on a deployed stack must show no change, except, for a stack
/// that `docker stack deploy` made (`adopted`), the versioning adoption adds: new secret and
/// config versions and service updates that only move references to them.
fn plan_is_clean(dir: &Path, stack: &str, run: &str, adopted: bool) -> Result<(), String> {
    let mut command = stackroll(dir);
    command
        .args(["plan", "--output", "json", "-c", "compose.yaml", stack])
        .env(RUN_VARIABLE, run)
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(120));
    for variable in UNSET_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run stackroll: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "stackroll plan failed (exit {:?}, {e}):\n{}",
            output.status.code(),
            strip_ansi(&String::from_utf8_lossy(&output.stderr)).trim_end()
        )
    })?;
    let unexpected: Vec<String> = report["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|change| {
            let kind = change["kind"].as_str().unwrap_or_default();
            let action = change["action"].as_str().unwrap_or_default();
            let details_are_references =
                change["details"].as_array().into_iter().flatten().all(|d| {
                    let field = d["api_field"].as_str().unwrap_or_default();
                    field.starts_with("TaskTemplate.ContainerSpec.Secrets[")
                        || field.starts_with("TaskTemplate.ContainerSpec.Configs[")
                });
            let allowed = adopted
                && match (kind, action) {
                    ("secret" | "config", "create") => true,
                    ("service", "update") => details_are_references,
                    _ => false,
                };
            !allowed
        })
        .map(|change| change.to_string())
        .collect();
    if unexpected.is_empty() {
        Ok(())
    } else {
        let which = if adopted {
            "after docker stack deploy"
        } else {
            "right after stackroll deploy"
        };
        Err(format!(
            "plan {which} is not clean:\n  {}",
            unexpected.join("\n  ")
        ))
    }
}

/// Starts removing a stack: `docker stack rm` removes its services, secrets and configs at
/// once; its networks go once the tasks have stopped (see [`wait_removed`]).
fn start_remove(stack: &str) {
    let _ = docker(&["stack", "rm", stack]);
}

/// Polls until nothing labelled with any of `stacks` is left (removing what `docker stack rm`
/// could not remove yet, e.g. networks that tasks were still attached to), then removes the
/// named volumes in `volumes` (best effort). Returns what was still left after the timeout.
fn wait_removed(stacks: &[&str], volumes: &BTreeSet<String>) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let left = remove_labelled(stacks);
        if left.is_empty() {
            break;
        }
        if started.elapsed() > REMOVE_TIMEOUT {
            return Err(format!(
                "still there {}s after docker stack rm: {}",
                REMOVE_TIMEOUT.as_secs(),
                left.join(", ")
            ));
        }
        std::thread::sleep(POLL);
    }
    let started = Instant::now();
    let mut volumes: Vec<&String> = volumes.iter().collect();
    while !volumes.is_empty() && started.elapsed() < VOLUME_TIMEOUT {
        volumes.retain(|volume| {
            let output = docker(&["volume", "rm", volume.as_str()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            !(output.status.success() || stderr.contains("No such volume"))
        });
        if !volumes.is_empty() {
            std::thread::sleep(POLL);
        }
    }
    if !volumes.is_empty() {
        eprintln!("parity: volumes left behind (still in use): {volumes:?}");
    }
    Ok(())
}

/// External networks a case needs (`external-networks`, one name per line): created as
/// attachable overlay networks when missing. Returns the ones this run created.
fn create_external_networks(dir: &Path) -> Result<Vec<String>, String> {
    let mut created = Vec::new();
    let wanted = fs::read_to_string(dir.join("external-networks")).unwrap_or_default();
    for name in lines_of(&wanted) {
        if docker(&["network", "inspect", &name]).status.success() {
            continue;
        }
        try_docker(&[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            &name,
        ])?;
        created.push(name);
    }
    Ok(created)
}

/// External secrets and configs a case needs (`external-objects`, lines `secret|config NAME
/// FILE`, FILE relative to the case): created when missing. Returns `(kind, name)` of the ones
/// this run created.
fn create_external_objects(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut created = Vec::new();
    let wanted = fs::read_to_string(dir.join("external-objects")).unwrap_or_default();
    for line in lines_of(&wanted) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind @ ("secret" | "config"), name, file] = fields.as_slice() else {
            return Err(format!("bad external-objects line {line:?}"));
        };
        if docker(&[kind, "inspect", name]).status.success() {
            continue;
        }
        let file = dir.join(file).display().to_string();
        try_docker(&[kind, "create", name, &file])?;
        created.push((kind.to_string(), name.to_string()));
    }
    Ok(created)
}

fn remove_objects(objects: &[(String, String)]) {
    for (kind, name) in objects {
        if let Err(error) = try_docker(&[kind, "rm", name]) {
            eprintln!("parity: cannot remove external {kind} {name}: {error}");
        }
    }
}

fn remove_networks(names: &[String]) {
    let started = Instant::now();
    let mut left: Vec<&String> = names.iter().collect();
    while !left.is_empty() && started.elapsed() < REMOVE_TIMEOUT {
        left.retain(|name| {
            let output = docker(&["network", "rm", name.as_str()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            !(output.status.success() || stderr.contains("not found"))
        });
        if !left.is_empty() {
            std::thread::sleep(POLL);
        }
    }
    if !left.is_empty() {
        eprintln!("parity: external networks left behind: {left:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The suite.

/// The case directories (`NN-name/compose.yaml`), sorted, filtered by `PARITY_CASES`.
fn cases() -> Vec<PathBuf> {
    let filter: Vec<String> = std::env::var("PARITY_CASES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures("parity"))
        .expect("fixtures/parity exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("compose.yaml").is_file())
        .filter(|path| {
            let name = case_name(path);
            filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    cases.sort();
    cases
}

fn case_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How one case ended.
enum Outcome {
    Same,
    /// The stacks differ.
    Different(Vec<Difference>),
    /// Something failed before the stacks could be compared (or the cleanup failed).
    Error(String),
}

fn run_case(dir: &Path, run: &str, pools: &[(Ipv4Addr, u32)]) -> Outcome {
    let name = case_name(dir);
    let number: String = name.chars().take_while(char::is_ascii_digit).collect();
    let stack_a = format!("pA{number}x{run}");
    let stack_b = format!("pB{number}x{run}");
    let external = match create_external_networks(dir) {
        Ok(created) => created,
        Err(error) => return Outcome::Error(format!("cannot create external networks: {error}")),
    };
    let external_objects = match create_external_objects(dir) {
        Ok(created) => created,
        Err(error) => {
            remove_networks(&external);
            return Outcome::Error(format!("cannot create external objects: {error}"));
        }
    };
    let mut volumes = BTreeSet::new();

    // The oracle first; its services are removed (freeing published ports) before stackroll
    // deploys the same file.
    let docker_side = docker_stack_deploy(dir, &stack_a, run)
        .and_then(|()| Snapshot::read(&stack_a))
        .and_then(|snapshot| plan_is_clean(dir, &stack_a, run, true).map(|()| snapshot));
    start_remove(&stack_a);
    // A case whose stack creates objects with global names (a network's `name:`) lets the
    // oracle's stack go completely first.
    let sequential = if dir.join("sequential").exists() {
        wait_removed(&[&stack_a], &BTreeSet::new())
    } else {
        Ok(())
    };
    let stackroll_side = match &docker_side {
        Ok(_) => stackroll_deploy(dir, &stack_b, run)
            .and_then(|()| Snapshot::read(&stack_b))
            .and_then(|snapshot| plan_is_clean(dir, &stack_b, run, false).map(|()| snapshot)),
        Err(_) => Err("not run".to_string()),
    };
    start_remove(&stack_b);
    // Only volumes of these stacks or the fixtures' own `parity…` volumes are removed, never
    // another volume that happens to have a name a fixture uses.
    for snapshot in [&docker_side, &stackroll_side].into_iter().flatten() {
        volumes.extend(snapshot.volume_names().into_iter().filter(|volume| {
            volume.starts_with("parity")
                || volume.starts_with(&format!("{stack_a}_"))
                || volume.starts_with(&format!("{stack_b}_"))
        }));
    }
    let removed = sequential.and(wait_removed(&[&stack_a, &stack_b], &volumes));
    remove_networks(&external);
    remove_objects(&external_objects);

    let outcome = match (docker_side, stackroll_side) {
        (Err(error), _) | (_, Err(error)) => Outcome::Error(error),
        (Ok(a), Ok(b)) => {
            let (a, b) = (a.normalize(pools), b.normalize(pools));
            if let Some(dump) = std::env::var_os("PARITY_DUMP") {
                let dump = PathBuf::from(dump);
                let _ = fs::create_dir_all(&dump);
                for (side, value) in [("docker", &a), ("stackroll", &b)] {
                    let text = serde_json::to_string_pretty(value).unwrap_or_default();
                    let _ = fs::write(dump.join(format!("{name}.{side}.json")), text);
                }
            }
            let mut differences = Vec::new();
            diff("", &a, &b, &mut differences);
            if differences.is_empty() {
                Outcome::Same
            } else {
                Outcome::Different(differences)
            }
        }
    };
    match (outcome, removed) {
        (Outcome::Same, Err(error)) => Outcome::Error(format!("cleanup: {error}")),
        (outcome, _) => outcome,
    }
}

#[test]
fn parity_with_docker_stack_deploy() {
    ensure_swarm();
    let run = std::process::id().to_string();
    let pools = default_address_pools();
    let cases = cases();
    assert!(!cases.is_empty(), "no parity case selected");
    let started = Instant::now();
    let mut passed = Vec::new();
    let mut failed: Vec<(String, Outcome)> = Vec::new();
    for dir in &cases {
        let name = case_name(dir);
        let case_started = Instant::now();
        let outcome = run_case(dir, &run, &pools);
        let verdict = match &outcome {
            Outcome::Same => "same",
            Outcome::Different(_) => "DIFFERENT",
            Outcome::Error(_) => "ERROR",
        };
        eprintln!(
            "parity {name}: {verdict} ({:.1}s)",
            case_started.elapsed().as_secs_f64()
        );
        match outcome {
            Outcome::Same => passed.push(name),
            outcome => failed.push((name, outcome)),
        }
    }
    if failed.is_empty() {
        eprintln!(
            "parity: all {} cases equal in {:.0}s",
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        return;
    }

    let mut report = format!(
        "{} of {} parity cases differ from docker stack deploy ({:.0}s); passed: {}\n",
        failed.len(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        if passed.is_empty() {
            "none".to_string()
        } else {
            passed.join(", ")
        }
    );
    // Field → cases, for the index at the end.
    let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, outcome) in &failed {
        report.push_str(&format!("\n=== {name}\n"));
        match outcome {
            Outcome::Error(error) => {
                report.push_str(error);
                report.push('\n');
                index
                    .entry("(stackroll deploy failed or case error)".to_string())
                    .or_default()
                    .insert(name.clone());
            }
            Outcome::Different(differences) => {
                for difference in differences {
                    report.push_str(&format!(
                        "  {}\n      docker stack deploy: {}\n      stackroll:           {}\n",
                        difference.path,
                        show(&difference.docker),
                        show(&difference.stackroll)
                    ));
                    index
                        .entry(difference.field())
                        .or_default()
                        .insert(name.clone());
                }
            }
            Outcome::Same => {}
        }
    }
    report.push_str("\n=== differences by field\n");
    for (field, names) in &index {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        report.push_str(&format!("  {field}: {}\n", names.join(", ")));
    }
    panic!("{report}");
}
