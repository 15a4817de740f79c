//! Conversion tests: each field group against the JSON docker/cli 20.10 sends for it, worked
//! out from its source (cli/compose/loader, cli/compose/convert and the API types' `omitempty`
//! tags), not from our output. Go's `null` members are left out of the expectations (the
//! engine and our client drop them the same way).

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::service::convert;
use super::{
    network_specs, warnings, ConvertedProject, Namespace, ResolvedObject, ResolvedObjects,
};
use crate::compose::{load, LoadOptions};
use crate::diagnostic::Diagnostics;
use crate::model::{ObjectKind, Project};

/// A project loaded from `files` (name, content) written into a temporary directory; the
/// first one is the compose file.
fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
    project_with_env(files, process_environment())
}

/// [`project`], loaded with `environment` as the process environment.
fn project_with_env(
    files: &[(&str, &str)],
    environment: IndexMap<String, String>,
) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let compose_files: Vec<String> = files
        .iter()
        .filter(|(name, _)| name.ends_with(".yml"))
        .map(|(name, _)| dir.path().join(name).to_string_lossy().into_owned())
        .collect();
    let options = LoadOptions {
        files: compose_files,
        working_dir: dir.path().to_path_buf(),
        process_env: environment,
        ..LoadOptions::default()
    };
    let loaded = load(&options).unwrap_or_else(|d| panic!("{:?}", d.errors().collect::<Vec<_>>()));
    (dir, loaded.project)
}

/// The fake process environment of these tests, given to the loader.
fn process_environment() -> IndexMap<String, String> {
    [
        ("FROM_PROCESS", "process-value"),
        ("FILLED", "filled-from-process"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

fn spec_with(project: &Project, service: &str, objects: &ResolvedObjects) -> Value {
    let namespace = Namespace("st".into());
    let converted = convert(&namespace, &project.services[service], project);
    assert!(
        !converted.problems.has_errors(),
        "{:?}",
        converted.problems.errors().collect::<Vec<_>>()
    );
    converted.spec(objects)
}

fn spec(project: &Project, service: &str) -> Value {
    spec_with(project, service, &ResolvedObjects::new())
}

fn errors(project: &Project, service: &str) -> Diagnostics {
    let namespace = Namespace("st".into());
    convert(&namespace, &project.services[service], project).problems
}

/// The fields of `service` docker stack deploy would ignore.
fn ignored_fields(project: &Project, service: &str) -> Vec<String> {
    convert(
        &Namespace("stack".into()),
        &project.services[service],
        project,
    )
    .ignored
}

/// Resolves `key` of `kind` to the object `name` with ID `id`.
fn resolve(objects: &mut ResolvedObjects, kind: ObjectKind, key: &str, name: &str, id: &str) {
    objects.insert(
        crate::model::ObjectKey::new(kind, key),
        ResolvedObject {
            name: name.into(),
            id: id.into(),
        },
    );
}

fn messages(problems: &Diagnostics) -> Vec<String> {
    problems.errors().map(|d| d.to_string()).collect()
}

#[test]
fn minimal_service() {
    let (_dir, project) = project(&[("compose.yml", "services:\n  app:\n    image: busybox\n")]);
    assert_eq!(
        spec(&project, "app"),
        json!({
            "Name": "st_app",
            "Labels": {"com.docker.stack.image": "busybox", "com.docker.stack.namespace": "st"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox",
                    "Labels": {"com.docker.stack.namespace": "st"},
                    "Privileges": {}
                },
                "Resources": {},
                "Placement": {},
                "Networks": [{"Target": "st_default", "Aliases": ["app"]}],
                "ForceUpdate": 0
            },
            "Mode": {"Replicated": {}},
            "EndpointSpec": {}
        })
    );
}

#[test]
fn container_fields() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    command: sh -c 'echo "a b"; sleep 1' "x\"y"
    entrypoint: ["/bin/sh", "-e"]
    hostname: host1
    user: "1000:1000"
    working_dir: /srv
    stop_signal: SIGUSR1
    stop_grace_period: 1m30s
    tty: true
    stdin_open: "yes"
    read_only: false
    init: false
    isolation: Default
    labels: [a=1, "b=x=y", c]
    sysctls: [net.core.somaxconn=1024, kernel.msgmax]
    cap_add: [net_admin, CAP_SYS_TIME, chown]
    cap_drop: [chown, " mknod "]
    ulimits:
      nproc: 65535
      nofile: {soft: 1024, hard: 2048}
    extra_hosts: ["b.example:10.0.0.2", "a.example:10.0.0.1"]
    dns: 8.8.8.8
    dns_search: [example.com, example.org]
"#,
    )]);
    let spec = spec(&project, "app");
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"],
        json!({
            "Image": "busybox",
            "Labels": {"a": "1", "b": "x=y", "c": "", "com.docker.stack.namespace": "st"},
            "Command": ["/bin/sh", "-e"],
            "Args": ["sh", "-c", "echo \"a b\"; sleep 1", "x\"y"],
            "Hostname": "host1",
            "Dir": "/srv",
            "User": "1000:1000",
            "StopSignal": "SIGUSR1",
            "StopGracePeriod": 90_000_000_000_i64,
            "TTY": true,
            "OpenStdin": true,
            "Init": false,
            "Isolation": "default",
            "Hosts": ["10.0.0.2 b.example", "10.0.0.1 a.example"],
            "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": ["example.com", "example.org"]},
            "Sysctls": {"net.core.somaxconn": "1024", "kernel.msgmax": ""},
            "CapabilityAdd": ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"],
            "CapabilityDrop": ["CAP_MKNOD"],
            "Ulimits": [
                {"Name": "nofile", "Soft": 1024, "Hard": 2048},
                {"Name": "nproc", "Soft": 65535, "Hard": 65535}
            ],
            "Privileges": {}
        })
    );
}

#[test]
fn extra_hosts_mapping_is_sorted_and_dns_config_appears_with_any_dns_key() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    extra_hosts: {zeta: 10.0.0.9, alpha: "10.0.0.1", skipped: null}
    dns_search: example.com
    stop_grace_period: 0s
  opt:
    image: busybox
    dns_opt: [ndots:2]
    extra_hosts: ["v6=::1", "br:[::2]", "noseparator"]
"#,
    )]);
    let app = spec(&project, "app");
    let container = &app["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        container["Hosts"],
        json!(["10.0.0.1 alpha", "10.0.0.9 zeta"])
    );
    assert_eq!(container["DNSConfig"], json!({"Search": ["example.com"]}));
    // A pointer in docker/cli: present even when zero.
    assert_eq!(container["StopGracePeriod"], json!(0));
    let opt = spec(&project, "opt");
    let container = &opt["TaskTemplate"]["ContainerSpec"];
    assert_eq!(container["DNSConfig"], json!({"Options": ["ndots:2"]}));
    assert_eq!(container["Hosts"], json!(["::1 v6", "::2 br"]));
}

#[test]
fn environment_env_file_and_process_environment() {
    let (_dir, project) = project(&[
        (
            "compose.yml",
            r#"
services:
  app:
    image: busybox
    env_file: [./one.env, conf/two.env]
    environment:
      - OVERRIDDEN=from-compose
      - FROM_PROCESS
      - UNSET_ANYWHERE
      - FILLED=
      - DUP=1
      - DUP=2
"#,
        ),
        (
            "one.env",
            "# comment\nOVERRIDDEN=from-one\nONE=1\nQUOTED=\"kept\"  \nFILLED=\n",
        ),
        (
            "conf/two.env",
            "ONE=from-two\nFROM_PROCESS\nNOT_IN_PROCESS\n",
        ),
    ]);
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["ContainerSpec"]["Env"],
        json!([
            "DUP=2",
            "FILLED=filled-from-process",
            "FROM_PROCESS=process-value",
            "ONE=from-two",
            "OVERRIDDEN=from-compose",
            "QUOTED=\"kept\"  ",
            "UNSET_ANYWHERE"
        ])
    );
}

#[test]
fn env_files_are_read_while_loading_and_optional_ones_may_be_missing() {
    let (dir, project) = project(&[
        (
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    env_file:\n      - path: ./conf/a.env\n      - {path: gone.env, required: false}\n",
        ),
        ("conf/a.env", "A=from-file\n"),
    ]);
    // Conversion reads no file: removing it after loading changes nothing.
    std::fs::remove_file(dir.path().join("conf/a.env")).unwrap();
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["A=from-file"])
    );
    let (_dir, required) = project_with_env(
        &[(
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    env_file: [{path: gone.env, required: true}]\n",
        )],
        process_environment(),
    );
    let problems = messages(&errors(&required, "app"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("cannot read env file") && problems[0].contains("gone.env"),
        "{problems:?}"
    );
}

#[test]
fn env_file_problems_are_located_and_hide_content() {
    let (dir, project) = project(&[
        (
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    env_file: [missing.env, bad.env]\n",
        ),
        ("bad.env", "GOOD=s3cr3t-value\nBAD NAME=s3cr3t-value\n"),
    ]);
    let problems = messages(&errors(&project, "app"));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("compose.yml:4:16") && problems[0].contains("missing.env"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("compose.yml:4:29") && problems[1].contains("contains whitespaces"),
        "{problems:?}"
    );
    assert!(!problems.join("\n").contains("s3cr3t"));
    drop(dir);
}

#[test]
fn ports_short_long_and_sorted_by_published_port() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    ports:
      - "8080:80"
      - 3000
      - "127.0.0.1:53:53/udp"
      - "7000-7001:7000-7001"
      - target: 90
        published: 9090
        mode: host
      - target: 91
"#,
    )]);
    assert_eq!(
        spec(&project, "app")["EndpointSpec"],
        json!({"Ports": [
            {"Protocol": "tcp", "TargetPort": 3000, "PublishMode": "ingress"},
            {"TargetPort": 91},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 7000, "PublishedPort": 7000, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 7001, "PublishedPort": 7001, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}
        ]})
    );
    let problems = errors(&project, "app");
    assert!(!problems.has_errors());
    let ignored = ignored_fields(&project, "app");
    assert_eq!(
        ignored,
        vec!["ports[2] host IP 127.0.0.1 (Swarm publishes on all addresses)"]
    );
}

#[test]
fn volumes_short_and_long_syntax() {
    let (dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    volumes:
      - data:/data:ro
      - ./conf:/etc/conf:rshared
      - /anonymous
      - ext:/ext:nocopy
      - type: tmpfs
        target: /run
        tmpfs: {size: 1000}
      - type: bind
        source: ../shared/./x
        target: /x
        read_only: true
        bind: {propagation: rslave}
      - type: volume
        source: named
        target: /n
        volume: {nocopy: true}
volumes:
  data:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs, o: 1000}
    labels: [backup=yes]
  ext:
    external: true
  named:
    name: global-name
"#,
    )]);
    let root = dir.path().to_string_lossy().into_owned();
    let parent = dir.path().parent().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["ContainerSpec"]["Mounts"],
        json!([
            {"Type": "volume", "Source": "st_data", "Target": "/data", "ReadOnly": true,
             "VolumeOptions": {
                "Labels": {"backup": "yes", "com.docker.stack.namespace": "st"},
                "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs", "o": "1000"}}}},
            {"Type": "bind", "Source": format!("{root}/conf"), "Target": "/etc/conf",
             "BindOptions": {"Propagation": "rshared"}},
            {"Type": "volume", "Target": "/anonymous"},
            {"Type": "volume", "Source": "ext", "Target": "/ext", "VolumeOptions": {"NoCopy": true}},
            {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1000}},
            {"Type": "bind", "Source": format!("{parent}/shared/x"), "Target": "/x", "ReadOnly": true,
             "BindOptions": {"Propagation": "rslave"}},
            {"Type": "volume", "Source": "global-name", "Target": "/n",
             "VolumeOptions": {"NoCopy": true, "Labels": {"com.docker.stack.namespace": "st"}}}
        ])
    );
}

#[test]
fn relative_bind_sources_resolve_against_the_declaring_file() {
    let (dir, project) = project(&[
        ("compose.yml", "services:\n  app:\n    image: busybox\n"),
        (
            "override/compose.override.yml",
            "services:\n  app:\n    volumes: ['./data:/data']\n",
        ),
    ]);
    let expected = format!("{}/override/data", dir.path().to_string_lossy());
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"],
        json!(expected)
    );
}

#[test]
fn volume_problems() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    volumes:
      - undeclared:/u
      - data:/d:rshared
      - ./x:/x:nocopy
      - {type: tmpfs, source: x, target: /t}
      - {type: image, target: /i}
      - {type: weird, target: /w}
      - {type: bind, source: /x, target: /b, image: {subpath: s}}
  other:
    image: busybox
    volumes: [data:/d]
volumes:
  data:
    external: true
    driver: local
"#,
    )]);
    let problems = messages(&errors(&project, "app"));
    let joined = problems.join("\n");
    for expected in [
        "undefined volume \"undeclared\"",
        "bind options are incompatible with type volume",
        "volume options are incompatible with type bind",
        "invalid tmpfs source, source must be empty",
        "invalid image source, source cannot be empty",
        "invalid volume type \"weird\"",
        "image options are incompatible with type bind",
    ] {
        assert!(joined.contains(expected), "{expected} missing in {joined}");
    }
    // The definition problem is reported once in the converted project, though two services use it.
    let other = messages(&errors(&project, "other")).join("\n");
    assert!(
        other.contains(
            "conflicting parameters \"external\" and \"driver\" specified for volume \"data\""
        ),
        "{other}"
    );
    let all = messages(&ConvertedProject::new(&Namespace("st".into()), &project).problems);
    assert_eq!(
        all.iter()
            .filter(|m| m.contains("conflicting parameters"))
            .count(),
        1
    );
}

#[test]
fn deploy_settings() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    restart: always
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: DNSRR
      labels: {tier: web}
      resources:
        limits: {cpus: "0.5", memory: 512M, pids: 100}
        reservations:
          cpus: "0.25"
          memory: 1g
          generic_resources:
            - discrete_resource_spec: {kind: gpu, value: 2}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      placement:
        constraints: [node.role==manager]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 30s, max_failure_ratio: 0.3, order: start-first}
      rollback_config: {parallelism: 0}
"#,
    )]);
    let spec = spec(&project, "app");
    assert_eq!(
        spec["Labels"],
        json!({"tier": "web", "com.docker.stack.namespace": "st", "com.docker.stack.image": "busybox"})
    );
    assert_eq!(spec["Mode"], json!({"Replicated": {"Replicas": 3}}));
    assert_eq!(spec["EndpointSpec"], json!({"Mode": "dnsrr"}));
    assert_eq!(
        spec["TaskTemplate"]["Resources"],
        json!({
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 536_870_912, "Pids": 100},
            "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 1_073_741_824_i64,
                             "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}
        })
    );
    assert_eq!(
        spec["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "on-failure", "Delay": 5_000_000_000_i64, "MaxAttempts": 3, "Window": 120_000_000_000_i64})
    );
    assert_eq!(
        spec["TaskTemplate"]["Placement"],
        json!({"Constraints": ["node.role==manager"],
               "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
               "MaxReplicas": 2})
    );
    assert_eq!(
        spec["UpdateConfig"],
        json!({"Parallelism": 2, "Delay": 10_000_000_000_i64, "FailureAction": "rollback",
               "Monitor": 30_000_000_000_i64, "MaxFailureRatio": 0.3, "Order": "start-first"})
    );
    assert_eq!(
        spec["RollbackConfig"],
        json!({"Parallelism": 0, "MaxFailureRatio": 0, "Order": ""})
    );
    // `restart` loses to deploy.restart_policy, and is reported as ignored.
    let ignored = ignored_fields(&project, "app");
    assert_eq!(ignored, vec!["restart (deploy.restart_policy is used)"]);
}

#[test]
fn restart_is_the_fallback_restart_policy() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  always: {image: busybox, restart: always}
  unless: {image: busybox, restart: unless-stopped}
  failure: {image: busybox, restart: on-failure}
  failure3: {image: busybox, restart: "on-failure:3"}
  no: {image: busybox, restart: "no"}
  empty: {image: busybox, deploy: {restart_policy: {}}}
  bad: {image: busybox, restart: sometimes}
"#,
    )]);
    let policy = |name: &str| spec(&project, name)["TaskTemplate"]["RestartPolicy"].clone();
    assert_eq!(policy("always"), json!({"Condition": "any"}));
    assert_eq!(policy("unless"), json!({"Condition": "any"}));
    assert_eq!(
        policy("failure"),
        json!({"Condition": "on-failure", "MaxAttempts": 0})
    );
    assert_eq!(
        policy("failure3"),
        json!({"Condition": "on-failure", "MaxAttempts": 3})
    );
    assert_eq!(policy("no"), Value::Null);
    assert_eq!(policy("empty"), json!({}));
    assert!(messages(&errors(&project, "bad"))[0].contains("unknown restart policy: sometimes"));
    assert!(ignored_fields(&project, "always").is_empty());
}

#[test]
fn modes() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  global: {image: busybox, deploy: {mode: global}}
  job: {image: busybox, deploy: {mode: replicated-job, replicas: 4}}
  gjob: {image: busybox, deploy: {mode: global-job}}
  unset: {image: busybox, deploy: {mode: replicated-job}}
  bad: {image: busybox, deploy: {mode: global, replicas: 2}}
  unknown: {image: busybox, deploy: {mode: daemon}}
"#,
    )]);
    assert_eq!(spec(&project, "global")["Mode"], json!({"Global": {}}));
    assert_eq!(
        spec(&project, "job")["Mode"],
        json!({"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}})
    );
    assert_eq!(spec(&project, "gjob")["Mode"], json!({"GlobalJob": {}}));
    assert_eq!(
        spec(&project, "unset")["Mode"],
        json!({"ReplicatedJob": {}})
    );
    assert!(
        messages(&errors(&project, "bad"))[0].contains("replicas can only be used with replicated")
    );
    assert!(messages(&errors(&project, "unknown"))[0].contains("unknown mode: daemon"));
}

#[test]
fn healthchecks() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  shell:
    image: busybox
    healthcheck: {test: "curl -f localhost", interval: 10s, timeout: 5s, retries: 3, start_period: 30s}
  exec:
    image: busybox
    healthcheck: {test: ["CMD", "true"], retries: 0, interval: 0s}
  disabled:
    image: busybox
    healthcheck: {disable: true}
  both:
    image: busybox
    healthcheck: {disable: true, test: ["CMD", "true"]}
"#,
    )]);
    let health =
        |name: &str| spec(&project, name)["TaskTemplate"]["ContainerSpec"]["Healthcheck"].clone();
    assert_eq!(
        health("shell"),
        json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 10_000_000_000_i64,
               "Timeout": 5_000_000_000_i64, "StartPeriod": 30_000_000_000_i64, "Retries": 3})
    );
    assert_eq!(health("exec"), json!({"Test": ["CMD", "true"]}));
    assert_eq!(health("disabled"), json!({"Test": ["NONE"]}));
    assert!(messages(&errors(&project, "both"))[0]
        .contains("test and disable can't be set at the same time"));
}

#[test]
fn logging_and_credential_spec() {
    let (_dir, project) = project(&[
        (
            "compose.yml",
            r#"
services:
  log:
    image: busybox
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
  registry:
    image: busybox
    credential_spec: {registry: my-cred}
  config:
    image: busybox
    credential_spec: {config: cred}
    configs: [other]
  both:
    image: busybox
    credential_spec: {file: a.json, registry: b}
configs:
  cred: {file: ./cred.json}
  other: {file: ./cred.json}
"#,
        ),
        ("cred.json", "{}"),
    ]);
    assert_eq!(
        spec(&project, "log")["TaskTemplate"]["LogDriver"],
        json!({"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}})
    );
    assert_eq!(
        spec(&project, "registry")["TaskTemplate"]["ContainerSpec"]["Privileges"],
        json!({"CredentialSpec": {"Config": "", "File": "", "Registry": "my-cred"}})
    );
    let mut objects = ResolvedObjects::new();
    resolve(
        &mut objects,
        ObjectKind::Config,
        "cred",
        "st_cred_v1",
        "ID-CRED",
    );
    resolve(
        &mut objects,
        ObjectKind::Config,
        "other",
        "st_other_v2",
        "ID-OTHER",
    );
    let config = spec_with(&project, "config", &objects);
    let container = &config["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        container["Privileges"],
        json!({"CredentialSpec": {"Config": "ID-CRED", "File": "", "Registry": ""}})
    );
    // Sorted by docker/cli's name: st_cred before st_other.
    assert_eq!(
        container["Configs"],
        json!([
            {"Runtime": {}, "ConfigID": "ID-CRED", "ConfigName": "st_cred_v1"},
            {"File": {"Name": "other", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigID": "ID-OTHER", "ConfigName": "st_other_v2"}
        ])
    );
    assert!(messages(&errors(&project, "both"))[0]
        .contains("invalid credential spec: cannot specify both \"File\" and \"Registry\""));
}

#[test]
fn references_sort_by_docker_cli_names_not_versioned_names() {
    let (_dir, project) = project(&[
        (
            "compose.yml",
            r#"
services:
  app:
    image: busybox
    secrets: [a_b, a, {source: a, target: /x}]
secrets:
  a: {file: ./s}
  a_b: {file: ./s}
"#,
        ),
        ("s", "x"),
    ]);
    let mut objects = ResolvedObjects::new();
    resolve(&mut objects, ObjectKind::Secret, "a", "st_a_v1", "IA");
    resolve(&mut objects, ObjectKind::Secret, "a_b", "st_a_b_v1", "IB");
    let spec = spec_with(&project, "app", &objects);
    let names: Vec<(&str, &str)> = spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["SecretName"].as_str().unwrap(),
                r["File"]["Name"].as_str().unwrap(),
            )
        })
        .collect();
    // docker/cli sorts by st_a < st_a_b ("st_a_b_v1" < "st_a_v1" would be the other order).
    assert_eq!(
        names,
        vec![("st_a_v1", "/x"), ("st_a_v1", "a"), ("st_a_b_v1", "a_b")]
    );
}

#[test]
fn networks_and_attachments() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    networks:
      front: {aliases: [web], ipv4_address: 10.0.0.5, driver_opts: {mtu: 1400}}
      back:
      ext:
      legacy:
  default_user:
    image: busybox
networks:
  front:
    attachable: true
    internal: "true"
    labels: [team=a]
    driver_opts: {encrypted: ""}
  back:
    name: global-back
    ipam:
      driver: default
      config:
        - subnet: 10.5.0.0/24
          gateway: 10.5.0.1
  ext: {external: true}
  legacy: {external: {name: old-name}}
  unused: {driver: weird}
"#,
    )]);
    let namespace = Namespace("st".into());
    let networks = network_specs(&namespace, &project).unwrap();
    let (created, external) = (networks.created, networks.external);
    assert_eq!(external, vec!["ext", "old-name"]);
    assert_eq!(
        created.keys().collect::<Vec<_>>(),
        vec!["st_front", "global-back", "st_default"]
    );
    assert_eq!(
        created["st_front"],
        json!({"Name": "st_front", "CheckDuplicate": false, "Driver": "overlay", "Scope": "",
               "EnableIPv6": false, "Internal": true, "Attachable": true, "Ingress": false,
               "ConfigOnly": false, "Options": {"encrypted": ""},
               "Labels": {"team": "a", "com.docker.stack.namespace": "st"}})
    );
    assert_eq!(
        created["global-back"]["IPAM"],
        json!({"Driver": "default", "Config": [{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}]})
    );
    assert_eq!(
        created["st_default"]["Labels"],
        json!({"com.docker.stack.namespace": "st"})
    );
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["Networks"],
        json!([
            {"Target": "ext", "Aliases": ["app"]},
            {"Target": "global-back", "Aliases": ["app"]},
            {"Target": "old-name", "Aliases": ["app"]},
            {"Target": "st_front", "Aliases": ["web", "app"], "DriverOpts": {"mtu": "1400"}}
        ])
    );
    let ignored = ignored_fields(&project, "app");
    assert_eq!(ignored, vec!["networks.front.ipv4_address"]);
}

#[test]
fn undefined_network_is_located() {
    let (_dir, project) = project(&[(
        "compose.yml",
        "services:\n  app:\n    image: busybox\n    networks: [nope]\n",
    )]);
    let problems = messages(&errors(&project, "app"));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("compose.yml:4:15"), "{problems:?}");
    assert!(problems[0].contains("undefined network \"nope\""));
}

#[test]
fn field_errors_are_located_with_hints() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    mem_limit: 1g
    oom_score_adj: 2000
    platform: linux//amd64
    deploy:
      resources:
        limits: {cpus: "0.0000000001", memory: lots}
      restart_policy: {condition: sometimes}
    stop_grace_period: 10
    healthcheck: {start_interval: soon}
    tmpfs: ["/t:size=1m,noexec", relative]
    pids_limit: -2
"#,
    )]);
    let problems = errors(&project, "app");
    let text = messages(&problems).join("\n");
    for expected in [
        "compose.yml:5:16: services.app.mem_limit: docker stack deploy does not support \"mem_limit\"\n  hint: Set resource limits using deploy.resources",
        "compose.yml:6:20: services.app.oom_score_adj: must be from -1000 to 1000",
        "compose.yml:7:15: services.app.platform: invalid platform \"linux//amd64\"",
        "services.app.deploy.resources.limits.cpus: value is too precise",
        "services.app.deploy.resources.limits.memory: invalid size: 'lots'",
        "services.app.deploy.restart_policy.condition: invalid restart condition \"sometimes\"",
        "compose.yml:12:24: services.app.stop_grace_period: invalid duration \"10\"",
        "services.app.healthcheck.start_interval: invalid duration \"soon\"",
        "compose.yml:14:12: services.app.tmpfs: tmpfs /t: option \"noexec\" is not supported by Swarm",
        "services.app.tmpfs: tmpfs target \"relative\" is not an absolute path",
        "compose.yml:15:17: services.app.pids_limit: must be -1 (no limit), 0 or more",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(problems
        .errors()
        .all(|d| d.location.is_some() && d.field.is_some()));
}

#[test]
fn one_warning_per_service_listing_ignored_fields() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    build: .
    depends_on: [db]
    container_name: app
    restart: always
    volumes:
      - {type: tmpfs, target: /t, tmpfs: {mode: 1777}}
  db:
    image: busybox
  clean:
    image: busybox
    restart: on-failure
"#,
    )]);
    let found = warnings(&project);
    let warnings: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("compose.yml:3:3: services.app: docker stack deploy ignores these fields of service \"app\": build, depends_on, container_name, volumes[0].tmpfs.mode"),
        "{warnings:?}"
    );
    assert!(!found.has_errors());
}

#[test]
fn unknown_nested_keys_are_errors_at_the_key() {
    let (_dir, project) = project(&[(
        "compose.yml",
        "services:\n  app:\n    image: busybox\n    deploy:\n      replica: 2\n",
    )]);
    let problems = messages(&errors(&project, "app"));
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .contains("compose.yml:5:7: services.app.deploy.replica: unknown key \"replica\""),
        "{problems:?}"
    );
}

#[test]
fn the_process_environment_is_the_one_loading_saw() {
    // PATH and HOME are set in any test run, but conversion reads only the environment given
    // to the loader: the live process's PATH stays unset, HOME comes from the loader.
    let mut environment = process_environment();
    environment.insert("HOME".into(), "/home/loaded".into());
    let (_dir, project) = project_with_env(
        &[(
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    environment: [PATH, FROM_PROCESS]\n    volumes: [\"~/data:/data\"]\n",
        )],
        environment,
    );
    let spec = spec(&project, "app");
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        container["Env"],
        json!(["FROM_PROCESS=process-value", "PATH"])
    );
    assert_eq!(container["Mounts"][0]["Source"], json!("/home/loaded/data"));
}

#[test]
fn fields_swarm_has_at_api_1_41_beyond_docker_stack_deploy() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    group_add: [audio, 1001]
    platform: linux/arm64/v8
    pids_limit: 100
    tmpfs: ["/run", "/cache:size=64m,mode=1777,ro"]
    volumes: [data:/data]
    deploy:
      placement: {constraints: [node.role==manager]}
  same:
    image: busybox
    pids_limit: 7
    platform: linux
    deploy: {resources: {limits: {pids: 7, memory: 1m}}}
  unlimited:
    image: busybox
    pids_limit: -1
    tmpfs: /run
  clash:
    image: busybox
    pids_limit: 7
    deploy: {resources: {limits: {pids: 8}}}
    volumes: [data:/run]
    tmpfs: /run
volumes:
  data: {}
"#,
    )]);
    let app = spec(&project, "app");
    let task = &app["TaskTemplate"];
    assert_eq!(task["ContainerSpec"]["Groups"], json!(["audio", "1001"]));
    assert_eq!(
        task["Placement"],
        json!({"Constraints": ["node.role==manager"], "Platforms": [{"Architecture": "arm64", "OS": "linux"}]})
    );
    assert_eq!(task["Resources"], json!({"Limits": {"Pids": 100}}));
    let mounts = &task["ContainerSpec"]["Mounts"];
    assert_eq!(mounts.as_array().unwrap().len(), 3);
    assert_eq!(mounts[1], json!({"Type": "tmpfs", "Target": "/run"}));
    assert_eq!(
        mounts[2],
        json!({"Type": "tmpfs", "Target": "/cache", "ReadOnly": true,
               "TmpfsOptions": {"SizeBytes": 64 * 1024 * 1024, "Mode": 0o1777}})
    );
    let same = spec(&project, "same");
    assert_eq!(
        same["TaskTemplate"]["Resources"]["Limits"],
        json!({"MemoryBytes": 1048576, "Pids": 7})
    );
    assert_eq!(
        same["TaskTemplate"]["Placement"],
        json!({"Platforms": [{"OS": "linux"}]})
    );
    let unlimited = spec(&project, "unlimited");
    assert_eq!(unlimited["TaskTemplate"]["Resources"], json!({}));
    assert_eq!(
        unlimited["TaskTemplate"]["ContainerSpec"]["Mounts"],
        json!([{"Type": "tmpfs", "Target": "/run"}])
    );
    let clash = messages(&errors(&project, "clash")).join("\n");
    assert!(
        clash.contains("services.clash.pids_limit: can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids'"),
        "{clash}"
    );
    assert!(
        clash.contains("services.clash.tmpfs: duplicate mount point \"/run\""),
        "{clash}"
    );
    // None of them needs a newer engine, and docker stack deploy's warning does not list them.
    let converted = ConvertedProject::new(&Namespace("st".into()), &project);
    assert!(converted.requirements.is_empty());
    assert_eq!(
        converted.warnings.iter().count(),
        0,
        "{:?}",
        converted.warnings
    );
}

#[test]
fn fields_a_newer_engine_api_brought_are_converted_and_recorded_where_written() {
    let (_dir, project) = project(&[(
        "compose.yml",
        r#"
services:
  app:
    image: busybox
    oom_score_adj: -500
    healthcheck: {test: [CMD, "true"], start_interval: 2s}
    volumes:
      - {type: volume, source: data, target: /d, volume: {subpath: sub/dir, nocopy: true}}
      - {type: image, source: "alpine:3", target: /img, read_only: true, image: {subpath: etc}}
      - {type: image, source: "alpine:3", target: /whole}
  zero:
    image: busybox
    oom_score_adj: 0
    healthcheck: {start_interval: 0s}
volumes:
  data: {}
"#,
    )]);
    let app = spec(&project, "app");
    let container = &app["TaskTemplate"]["ContainerSpec"];
    assert_eq!(container["OomScoreAdj"], json!(-500));
    assert_eq!(
        container["Healthcheck"]["StartInterval"],
        json!(2_000_000_000)
    );
    assert_eq!(
        container["Mounts"][0]["VolumeOptions"]["Subpath"],
        json!("sub/dir")
    );
    assert_eq!(
        container["Mounts"][0]["VolumeOptions"]["NoCopy"],
        json!(true)
    );
    assert_eq!(
        container["Mounts"][1],
        json!({"Type": "image", "Source": "alpine:3", "Target": "/img", "ReadOnly": true,
               "ImageOptions": {"Subpath": "etc"}})
    );
    assert_eq!(
        container["Mounts"][2],
        json!({"Type": "image", "Source": "alpine:3", "Target": "/whole"})
    );
    let converted = ConvertedProject::new(&Namespace("st".into()), &project);
    let located: Vec<String> = converted
        .requirements
        .iter()
        .map(|r| {
            format!(
                "{}:{} {} {:?}",
                r.location.line, r.location.column, r.field, r.feature
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            "6:40 services.app.healthcheck.start_interval StartInterval",
            "8:9 services.app.volumes[0].volume.subpath VolumeSubpath",
            "9:9 services.app.volumes[1] ImageMount",
            "10:9 services.app.volumes[2] ImageMount",
            "5:20 services.app.oom_score_adj OomScoreAdj",
        ]
    );
    // Zero values are not sent, so they need nothing.
    let zero = spec(&project, "zero");
    assert!(zero["TaskTemplate"]["ContainerSpec"]
        .get("OomScoreAdj")
        .is_none());
    let at = |version: &str| -> Vec<String> {
        converted
            .unsupported_by(version)
            .iter()
            .map(|d| d.to_string())
            .collect()
    };
    let refused = at("1.41");
    assert_eq!(refused.len(), 5, "{refused:#?}");
    assert!(refused[4].contains("compose.yml:5:20: services.app.oom_score_adj: oom_score_adj needs Docker Engine API 1.46 (Docker 27.0); this engine speaks API 1.41"), "{refused:#?}");
    assert_eq!(at("1.45").len(), 3);
    assert_eq!(at("1.46").len(), 2);
    assert!(at("1.48").is_empty());
}

#[test]
fn env_file_format_raw_is_how_every_env_file_is_read() {
    let (_dir, project) = project(&[
        (
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    env_file: [{path: raw.env, format: raw}]\n  other:\n    image: busybox\n    env_file: [{path: raw.env, format: dotenv}]\n",
        ),
        ("raw.env", "A=\"quoted\" $HOME\n"),
    ]);
    assert_eq!(
        spec(&project, "app")["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["A=\"quoted\" $HOME"])
    );
    let other = messages(&errors(&project, "other")).join("\n");
    assert!(
        other.contains("compose.yml:7:40: services.other.env_file[0].format: unsupported env_file format \"dotenv\""),
        "{other}"
    );
}

/// Provenance: every spec path a reviewer changes is traced to the Compose field and the
/// line and column of its value; ports and mounts by the item they come from, variables by
/// `environment:` over `env_file:`.
#[test]
fn spec_paths_are_traced_to_compose_fields_and_locations() {
    let compose = "\
services:
  app:
    image: i
    env_file: app.env
    environment:
      - LOG_LEVEL=debug
    ports:
      - \"9000:90\"
      - target: 80
        published: 8080
    volumes:
      - /data:/data
      - /srv:/srv
    deploy:
      replicas: 2
      update_config:
        delay: 5s
      resources:
        limits:
          cpus: '0.5'
    secrets:
      - source: db
        target: db_password
secrets:
  db:
    file: ./db.txt
";
    let (_dir, project) = project(&[
        ("compose.yml", compose),
        ("app.env", "FROM_FILE=1\nLOG_LEVEL=info\n"),
        ("db.txt", "x"),
    ]);
    let converted = ConvertedProject::new(&Namespace("s".into()), &project);
    let provenance = &converted.services["app"].provenance;
    let traced = |api: &str| {
        let traced = provenance
            .trace(api)
            .unwrap_or_else(|| panic!("{api} untraced"));
        let at = (traced.location.line, traced.location.column);
        (traced.field, traced.exact, at)
    };
    assert_eq!(
        traced("TaskTemplate.ContainerSpec.Image"),
        ("image".into(), true, (3, 12))
    );
    assert_eq!(
        traced("Mode.Replicated.Replicas"),
        ("deploy.replicas".into(), true, (15, 17))
    );
    assert_eq!(
        traced("UpdateConfig.Delay"),
        ("deploy.update_config.delay".into(), true, (17, 16))
    );
    assert_eq!(
        traced("TaskTemplate.Resources.Limits.NanoCPUs"),
        ("deploy.resources.limits.cpus".into(), true, (20, 17))
    );
    // Sorted by published port: 8080 (item 1) before 9000 (item 0).
    assert_eq!(
        traced("EndpointSpec.Ports[0].PublishedPort"),
        ("ports[1].published".into(), true, (10, 20))
    );
    assert_eq!(
        traced("EndpointSpec.Ports[1].TargetPort"),
        ("ports[0]".into(), false, (8, 9))
    );
    assert_eq!(
        traced("TaskTemplate.ContainerSpec.Mounts[1].Source"),
        ("volumes[1]".into(), false, (13, 9))
    );
    assert_eq!(
        traced("TaskTemplate.ContainerSpec.Env.LOG_LEVEL"),
        ("environment.LOG_LEVEL".into(), true, (6, 9))
    );
    assert_eq!(
        traced("TaskTemplate.ContainerSpec.Env.FROM_FILE"),
        ("env_file".into(), true, (4, 15))
    );
    assert_eq!(
        traced("TaskTemplate.ContainerSpec.Secrets[/run/secrets/db_password]"),
        ("secrets[db]".into(), true, (22, 9))
    );
    assert!(provenance.trace("TaskTemplate.ForceUpdate").is_none());
    assert!(provenance
        .trace("Labels.com.docker.stack.namespace")
        .is_none());
}
