//! A Compose service → Swarm ServiceSpec JSON, field by field as docker/cli's
//! `convert.Service` builds it (docker/cli 20.10, the `docker stack deploy` that runs against
//! the engines stackroll supports; where 20.10 refuses a field that later docker/cli versions
//! and the 20.10 engine support, the later conversion is used and says so).

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::api::{ApiRequirement, Feature};
use super::deploy::{
    self, DEPLOY_KEYS, PLACEMENT_MEMBERS, RESOURCE_MEMBERS, RESTART_POLICY_MEMBERS,
    UPDATE_CONFIG_MEMBERS,
};
use super::envfile::{container_env, variable_origins};
use super::network::service_networks;
use super::ports::{ports, Ports, PORT_MEMBERS};
use super::provenance::{Members, Provenance};
use super::references::{
    credential_spec, file_references, link, sorted, ObjectSlots, Reference, ResolvedObjects,
};
use super::units::{effective_capabilities, ram_in_bytes, shell_split};
use super::values::{
    bad, boolean, check_keys, duration, get, integer, mapping, string_list, string_map,
    string_mapping, string_or_list, text, unsigned,
};
use super::volumes::mounts;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::engine::Spec;
use crate::model::node::{Entry, Node};
use crate::model::{ObjectKind, Project, Service};
use crate::swarm::labels::IMAGE_LABEL;
use crate::swarm::namespace::Namespace;

/// Service keys `docker stack deploy` accepts and ignores (docker/cli's unsupported and
/// deprecated properties, and the ones its converter never reads), plus Compose-specification
/// keys that only matter to `docker compose`. `restart` is not here: docker/cli uses it when
/// `deploy.restart_policy` is absent.
pub const IGNORED_SERVICE_FIELDS: &[&str] = &[
    "build",
    "cgroup_parent",
    "cgroupns_mode",
    "container_name",
    "depends_on",
    "devices",
    "domainname",
    "expose",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "pull_policy",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// Service keys the loader reads and acts on itself (`profiles` chooses the services), so
/// conversion passes over them.
const LOADER_SERVICE_FIELDS: &[&str] = &["profiles"];

/// Service keys converted into the ServiceSpec.
pub const CONVERTED_SERVICE_FIELDS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "labels",
    "deploy",
    "healthcheck",
    "networks",
    "ports",
    "volumes",
    "dns",
    "dns_search",
    "dns_opt",
    "extra_hosts",
    "hostname",
    "user",
    "working_dir",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "read_only",
    "init",
    "cap_add",
    "cap_drop",
    "sysctls",
    "ulimits",
    "logging",
    "isolation",
    "credential_spec",
    "restart",
    // Beyond docker stack deploy (Swarm has them at API 1.41).
    "group_add",
    "platform",
    "pids_limit",
    "tmpfs",
    // Beyond docker stack deploy 20.10, refused by an engine API too old for them (`api`).
    "oom_score_adj",
];

/// Keys docker/cli refuses outright, with its reason.
const FORBIDDEN_SERVICE_FIELDS: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

/// A service converted once: the ServiceSpec docker/cli would build, with its secret and
/// config references not yet naming objects (planning picks their versions, then
/// [`ConvertedService::spec`] fills them in), what conversion found wrong, and what
/// docker stack deploy would ignore.
#[derive(Debug, Clone)]
pub struct ConvertedService {
    /// The spec, references without names and IDs.
    spec: Spec,
    /// Which definition each reference names.
    slots: ObjectSlots,
    /// Errors (and warnings) converting it; with errors the spec means nothing.
    pub problems: Diagnostics,
    /// Fields docker stack deploy would ignore, as field paths below the service.
    pub ignored: Vec<String>,
    /// Where it uses fields that need an engine API newer than 1.41.
    pub requirements: Vec<ApiRequirement>,
    /// Which Compose field produced which part of the spec.
    pub provenance: Provenance,
}

impl ConvertedService {
    /// The ServiceSpec with each secret and config reference naming the object `objects`
    /// resolves its definition to.
    pub fn spec(&self, objects: &ResolvedObjects) -> Spec {
        let mut spec = self.spec.clone();
        link(&mut spec, &self.slots, objects);
        spec
    }

    /// The image as the compose file names it (`image:`); empty when it has none.
    pub fn image(&self) -> &str {
        self.spec
            .pointer("/TaskTemplate/ContainerSpec/Image")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Converts `service` as docker/cli's `convert.Service` does: the container, then the task,
/// then the service around them.
pub(super) fn convert(
    namespace: &Namespace,
    service: &Service,
    project: &Project,
) -> ConvertedService {
    let mut conversion = Conversion {
        namespace,
        service,
        project,
        prefix: format!("services.{}", service.name),
        problems: Diagnostics::default(),
        ignored: Vec::new(),
        requirements: Vec::new(),
        provenance: Provenance::default(),
    };
    conversion.check_keys();
    let image = conversion.image();
    let deploy = conversion.deploy();
    let ports = conversion.ports();
    let container = conversion.container(&image);
    let task = conversion.task(container.spec, &deploy);
    let spec = service_spec(namespace, service, image, deploy, task, ports);
    ConvertedService {
        spec,
        slots: container.slots,
        problems: conversion.problems,
        ignored: conversion.ignored,
        requirements: conversion.requirements,
        provenance: conversion.provenance,
    }
}

/// What the builders share while one service is converted.
struct Conversion<'a> {
    namespace: &'a Namespace,
    service: &'a Service,
    project: &'a Project,
    /// `services.<name>`, the start of every field path.
    prefix: String,
    problems: Diagnostics,
    ignored: Vec<String>,
    requirements: Vec<ApiRequirement>,
    /// Where each part of the spec comes from, recorded as it is built.
    provenance: Provenance,
}

/// The `deploy:` settings, read before the parts they go into are built.
struct Deploy {
    labels: IndexMap<String, String>,
    mode: Value,
    update_config: Option<Value>,
    rollback_config: Option<Value>,
    resources: Value,
    restart_policy: Option<Value>,
    placement: Value,
    endpoint_mode: Option<String>,
}

/// A ContainerSpec and where its references sit.
struct Container {
    spec: Map<String, Value>,
    slots: ObjectSlots,
}

impl<'a> Conversion<'a> {
    /// The field path of the service's `name`.
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// The service's `key`, unless absent or null.
    fn get(&self, key: &str) -> Option<&'a Node> {
        let service: &'a Service = self.service;
        service.fields.get(key).filter(|node| !node.is_null())
    }

    /// Records that the service uses `feature` at `location` (field `field`).
    fn require(&mut self, feature: Feature, location: &Location, field: String) {
        self.requirements.push(ApiRequirement {
            feature,
            field,
            location: location.clone(),
        });
    }

    /// The service's `key` read with `read`, unless absent or null.
    fn read<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&Node, &str, &mut Diagnostics) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(key)?;
        read(node, &self.field(key), &mut self.problems)
    }

    /// [`Self::read`], recording the service's `key` as the origin of spec path `api`.
    fn read_at<T>(
        &mut self,
        key: &str,
        api: &str,
        read: impl FnOnce(&Node, &str, &mut Diagnostics) -> Option<T>,
    ) -> Option<T> {
        let value = self.read(key, read)?;
        self.trace(api, key);
        Some(value)
    }

    /// Records the service's `key`, when written, as the origin of spec path `api`.
    fn trace(&mut self, api: &str, key: &str) {
        if let Some(node) = self.get(key) {
            self.provenance.record(api, key, &node.location);
        }
    }

    /// Reports service keys stackroll cannot convert; collects the ones docker stack deploy
    /// ignores.
    fn check_keys(&mut self) {
        check_service_keys(
            self.service,
            &self.prefix,
            &mut self.ignored,
            &mut self.problems,
        );
    }

    /// `image`, required.
    fn image(&mut self) -> String {
        match self.read_at("image", "TaskTemplate.ContainerSpec.Image", text) {
            Some(image) if !image.is_empty() => {
                self.trace(&format!("Labels.{IMAGE_LABEL}"), "image");
                image
            }
            _ => {
                self.problems.push(
                    Diagnostic::error(Some(self.service.location.clone()), "service has no image")
                        .field(self.field("image"))
                        .hint("add `image: NAME:TAG`; docker stack deploy does not build images"),
                );
                String::new()
            }
        }
    }

    /// `deploy:` and `restart` (which docker/cli uses without `deploy.restart_policy`).
    fn deploy(&mut self) -> Deploy {
        let field = self.field("deploy");
        let sub = |key: &str| format!("{field}.{key}");
        let (node, restart) = (self.get("deploy"), self.get("restart"));
        let problems = &mut self.problems;
        let map = node.and_then(|node| mapping(node, &field, problems));
        if let Some(map) = map {
            check_keys(map, DEPLOY_KEYS, &field, problems);
        }
        let get = |key: &str| map.and_then(|map| super::values::get(map, key));
        let labels = get("labels")
            .and_then(|node| string_mapping(node, &sub("labels"), problems))
            .unwrap_or_default();
        let mode = deploy::mode(get("mode"), get("replicas"), &field, problems);
        let update_config = get("update_config")
            .map(|node| deploy::update_config(node, &sub("update_config"), problems));
        let rollback_config = get("rollback_config")
            .map(|node| deploy::update_config(node, &sub("rollback_config"), problems));
        let mut resources = deploy::resources(get("resources"), &sub("resources"), problems);
        let restart_policy =
            deploy::restart_policy(get("restart_policy"), restart, &self.prefix, problems);
        if get("restart_policy").is_some() && restart.is_some() {
            self.ignored
                .push("restart (deploy.restart_policy is used)".into());
        }
        let mut placement = deploy::placement(get("placement"), &sub("placement"), problems);
        let endpoint_mode = get("endpoint_mode")
            .and_then(|node| endpoint_mode(node, &sub("endpoint_mode"), problems));
        if let Some(pids) = self.read("pids_limit", pids_limit) {
            self.add_pids_limit(&mut resources, pids);
        }
        if let Some(platform) = self.read("platform", platform) {
            placement["Platforms"] = json!([platform]);
        }
        if let Some(map) = map {
            record_deploy(&mut self.provenance, map);
        }
        if let (None, Some(restart)) = (get("restart_policy"), restart) {
            let location = &restart.location;
            self.provenance
                .record("TaskTemplate.RestartPolicy", "restart", location);
        }
        Deploy {
            labels,
            mode,
            update_config,
            rollback_config,
            resources,
            restart_policy,
            placement,
            endpoint_mode,
        }
    }

    /// `pids_limit` into `Resources.Limits.Pids`; a different `deploy.resources.limits.pids`
    /// is an error, as in compose-go. `0` and `-1` mean no limit.
    fn add_pids_limit(&mut self, resources: &mut Value, pids: i64) {
        let pids = if pids == -1 { 0 } else { pids };
        let written = resources.pointer("/Limits/Pids").and_then(Value::as_i64);
        if written.is_some_and(|written| written != pids) {
            let node = self.get("pids_limit").expect("pids_limit was read");
            self.problems.push(
                bad(
                    node,
                    &self.field("pids_limit"),
                    "can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids'",
                )
                .hint("keep one of them"),
            );
            return;
        }
        if pids != 0 {
            let limits = resources
                .as_object_mut()
                .expect("resources is an object")
                .entry("Limits")
                .or_insert_with(|| json!({}));
            limits["Pids"] = pids.into();
        }
    }

    /// `ports`, noting host IPs docker/cli ignores.
    fn ports(&mut self) -> Option<Ports> {
        let ports = self.read("ports", |node, field, problems| {
            Some(ports(node, field, problems))
        })?;
        if let Some(items) = self.get("ports") {
            self.provenance
                .record("EndpointSpec.Ports", "ports", &items.location);
            for (index, port) in ports.ports.iter().enumerate() {
                if let Some(item) = items.as_seq().and_then(|items| items.get(port.item)) {
                    let api = format!("EndpointSpec.Ports[{index}]");
                    let field = format!("ports[{}]", port.item);
                    self.provenance
                        .record_members(&api, &field, item, PORT_MEMBERS);
                }
            }
        }
        for ignored in &ports.ignored_ips {
            self.ignored.push(format!(
                "ports[{}] host IP {} (Swarm publishes on all addresses)",
                ignored.index, ignored.ip
            ));
        }
        Some(ports)
    }

    /// The ContainerSpec: what runs and how, its files, its privileges and its references.
    fn container(&mut self, image: &str) -> Container {
        let mut spec = Map::new();
        self.add_process(&mut spec, image);
        self.add_files(&mut spec);
        let credential = self.add_privileges(&mut spec);
        let project = self.project;
        let namespace = self.namespace;
        let secrets = file_references(
            ObjectKind::Secret,
            &self.service.secrets,
            project,
            namespace,
        );
        let mut configs = file_references(
            ObjectKind::Config,
            &self.service.configs,
            project,
            namespace,
        );
        let mut slots = ObjectSlots::default();
        if let Some(runtime) = credential {
            slots.credential_config = Some(runtime.key().to_string());
            configs.push(runtime);
        }
        for reference in &self.service.secrets {
            self.trace_reference(ObjectKind::Secret, reference);
        }
        for reference in &self.service.configs {
            self.trace_reference(ObjectKind::Config, reference);
        }
        let secrets = sorted(secrets);
        let configs = sorted(configs);
        if !secrets.values.is_empty() {
            spec.insert("Secrets".into(), Value::Array(secrets.values));
        }
        if !configs.values.is_empty() {
            spec.insert("Configs".into(), Value::Array(configs.values));
        }
        slots.secrets = secrets.keys;
        slots.configs = configs.keys;
        Container { spec, slots }
    }

    /// Records a secret or config reference (`secrets[db]`) as the origin of the mount at its
    /// target (`TaskTemplate.ContainerSpec.Secrets[/run/secrets/db]`).
    fn trace_reference(&mut self, kind: ObjectKind, reference: &crate::model::FileReference) {
        let (list, _, _) = kind.spec_keys();
        let target = kind.effective_target(&reference.target);
        self.provenance.record(
            format!("TaskTemplate.ContainerSpec.{list}[{target}]"),
            format!("{}[{}]", kind.plural(), reference.source.value),
            &reference.location,
        );
    }

    /// What runs: image, labels, command, identity, name resolution, health and environment,
    /// each traced to its Compose field.
    fn add_process(&mut self, container: &mut Map<String, Value>, image: &str) {
        container.insert("Image".into(), image.into());
        let labels = self.read("labels", string_mapping).unwrap_or_default();
        if let Some(node) = self.get("labels") {
            self.provenance
                .record_keys("TaskTemplate.ContainerSpec.Labels", "labels", node);
        }
        container.insert("Labels".into(), json!(self.namespace.add_label(&labels)));
        // Empty lists are left out (Go's omitempty): the image's own entrypoint and command run.
        let entrypoint = self.read_at("entrypoint", "TaskTemplate.ContainerSpec.Command", command);
        if let Some(entrypoint) = entrypoint.filter(|w| !w.is_empty()) {
            container.insert("Command".into(), json!(entrypoint));
        }
        let args = self.read_at("command", "TaskTemplate.ContainerSpec.Args", command);
        if let Some(args) = args.filter(|w| !w.is_empty()) {
            container.insert("Args".into(), json!(args));
        }
        for (key, api) in [
            ("hostname", "Hostname"),
            ("working_dir", "Dir"),
            ("user", "User"),
            ("stop_signal", "StopSignal"),
        ] {
            let at = format!("TaskTemplate.ContainerSpec.{api}");
            if let Some(value) = self
                .read_at(key, &at, text)
                .filter(|value| !value.is_empty())
            {
                container.insert(api.into(), value.into());
            }
        }
        if let Some(hosts) = self
            .read_at(
                "extra_hosts",
                "TaskTemplate.ContainerSpec.Hosts",
                extra_hosts,
            )
            .filter(|h| !h.is_empty())
        {
            container.insert("Hosts".into(), json!(hosts));
        }
        let (dns, search, options) = (self.get("dns"), self.get("dns_search"), self.get("dns_opt"));
        if let Some(dns) = dns_config(dns, search, options, &self.prefix, &mut self.problems) {
            container.insert("DNSConfig".into(), dns);
        }
        for (key, api) in [
            ("dns", "Nameservers"),
            ("dns_search", "Search"),
            ("dns_opt", "Options"),
        ] {
            self.trace(&format!("TaskTemplate.ContainerSpec.DNSConfig.{api}"), key);
        }
        if let Some(health) = self.read("healthcheck", healthcheck) {
            if health.get("StartInterval").is_some() {
                let key = self
                    .get("healthcheck")
                    .and_then(Node::as_map)
                    .and_then(|map| map.get("start_interval"))
                    .map(|entry| entry.key_location.clone())
                    .unwrap_or_else(|| self.service.location.clone());
                let field = self.field("healthcheck.start_interval");
                self.require(Feature::StartInterval, &key, field);
            }
            container.insert("Healthcheck".into(), health);
            if let Some(node) = self.get("healthcheck") {
                let api = "TaskTemplate.ContainerSpec.Healthcheck";
                self.provenance
                    .record_members(api, "healthcheck", node, HEALTHCHECK_MEMBERS);
            }
        }
        self.add_environment(container);
    }

    /// The environment: `env_file:` then `environment:`, each variable traced to where it
    /// is set.
    fn add_environment(&mut self, container: &mut Map<String, Value>) {
        let project = self.project;
        if let Some(env) = container_env(
            self.get("env_file"),
            self.get("environment"),
            &self.prefix,
            &mut self.problems,
            &project.env_files,
            &|name| project.environment.get(name).map(str::to_string),
        ) {
            for origin in variable_origins(self.get("env_file"), self.get("environment"), &env) {
                let api = format!("TaskTemplate.ContainerSpec.Env.{}", origin.name);
                self.provenance.record(api, origin.field, &origin.location);
            }
            if !env.is_empty() {
                container.insert("Env".into(), json!(env));
            }
        }
    }

    /// Its files and terminal: mounts, stop grace period, tty, stdin, read-only root.
    fn add_files(&mut self, container: &mut Map<String, Value>) {
        if let Some(node) = self.get("volumes") {
            let field = self.field("volumes");
            let converted = mounts(
                node,
                self.namespace,
                self.project,
                &field,
                &mut self.problems,
            );
            let prefix = format!("{}.", self.prefix);
            self.ignored.extend(
                converted
                    .ignored
                    .into_iter()
                    .map(|path| path.trim_start_matches(&prefix).to_string()),
            );
            self.requirements.extend(converted.requirements);
            self.provenance.record(
                "TaskTemplate.ContainerSpec.Mounts",
                "volumes",
                &node.location,
            );
            for (index, item) in converted.items.iter().enumerate() {
                if let Some(written) = node.as_seq().and_then(|items| items.get(*item)) {
                    self.provenance.record(
                        format!("TaskTemplate.ContainerSpec.Mounts[{index}]"),
                        format!("volumes[{item}]"),
                        &written.location,
                    );
                }
            }
            if !converted.mounts.is_empty() {
                container.insert("Mounts".into(), Value::Array(converted.mounts));
            }
        }
        if let Some(tmpfs) = self.read("tmpfs", tmpfs_mounts) {
            self.add_tmpfs(container, tmpfs);
        }
        let api = "TaskTemplate.ContainerSpec.StopGracePeriod";
        if let Some(nanos) = self.read_at("stop_grace_period", api, duration) {
            container.insert("StopGracePeriod".into(), nanos.into());
        }
        for (key, api) in [
            ("tty", "TTY"),
            ("stdin_open", "OpenStdin"),
            ("read_only", "ReadOnly"),
        ] {
            let at = format!("TaskTemplate.ContainerSpec.{api}");
            if let Some(true) = self.read_at(key, &at, boolean) {
                container.insert(api.into(), true.into());
            }
        }
    }

    /// Service-level `tmpfs:` mounts after the `volumes:` ones; a target already mounted is an
    /// error (the engine refuses duplicate mount points).
    fn add_tmpfs(&mut self, container: &mut Map<String, Value>, tmpfs: Vec<Value>) {
        let node = self.get("tmpfs").expect("tmpfs was read");
        let field = self.field("tmpfs");
        let mounts = container
            .entry("Mounts")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(mounts) = mounts else {
            return;
        };
        for mount in tmpfs {
            let target = &mount["Target"];
            if mounts.iter().any(|other| &other["Target"] == target) {
                self.problems.push(
                    bad(node, &field, format!("duplicate mount point {target}"))
                        .hint("mount each container path once, under `volumes:` or `tmpfs:`"),
                );
                continue;
            }
            mounts.push(mount);
        }
        if mounts.is_empty() {
            container.remove("Mounts");
        }
    }

    /// Its privileges and limits: credential spec, isolation, init, sysctls, capabilities,
    /// ulimits. Returns the runtime config reference a credential spec adds.
    fn add_privileges(&mut self, container: &mut Map<String, Value>) -> Option<Reference> {
        let mut privileges = Map::new();
        let (project, namespace) = (self.project, self.namespace);
        let api = "TaskTemplate.ContainerSpec.Privileges.CredentialSpec";
        let credential = self.read_at("credential_spec", api, |node, field, problems| {
            credential_spec(node, field, project, namespace, problems)
        });
        let mut runtime = None;
        if let Some(credential) = credential {
            privileges.insert("CredentialSpec".into(), credential.value);
            runtime = credential.runtime;
        }
        container.insert("Privileges".into(), Value::Object(privileges));
        let api = "TaskTemplate.ContainerSpec.Isolation";
        if let Some(value) = self.read_at("isolation", api, isolation) {
            container.insert("Isolation".into(), value.into());
        }
        if let Some(init) = self.read_at("init", "TaskTemplate.ContainerSpec.Init", boolean) {
            container.insert("Init".into(), init.into());
        }
        if let Some(groups) = self
            .read("group_add", string_list)
            .filter(|g| !g.is_empty())
        {
            container.insert("Groups".into(), json!(groups));
        }
        if let Some(score) = self
            .read("oom_score_adj", oom_score_adj)
            .filter(|s| *s != 0)
        {
            let node = self.get("oom_score_adj").expect("oom_score_adj was read");
            let location = node.location.clone();
            self.require(Feature::OomScoreAdj, &location, self.field("oom_score_adj"));
            container.insert("OomScoreAdj".into(), score.into());
        }
        if let Some(sysctls) = self
            .read("sysctls", string_mapping)
            .filter(|s| !s.is_empty())
        {
            container.insert("Sysctls".into(), json!(sysctls));
        }
        if let Some(node) = self.get("sysctls") {
            self.provenance
                .record_keys("TaskTemplate.ContainerSpec.Sysctls", "sysctls", node);
        }
        let api = "TaskTemplate.ContainerSpec.CapabilityAdd";
        let cap_add = self
            .read_at("cap_add", api, string_list)
            .unwrap_or_default();
        let api = "TaskTemplate.ContainerSpec.CapabilityDrop";
        let cap_drop = self
            .read_at("cap_drop", api, string_list)
            .unwrap_or_default();
        let (cap_add, cap_drop) = effective_capabilities(&cap_add, &cap_drop);
        if !cap_add.is_empty() {
            container.insert("CapabilityAdd".into(), json!(cap_add));
        }
        if !cap_drop.is_empty() {
            container.insert("CapabilityDrop".into(), json!(cap_drop));
        }
        let api = "TaskTemplate.ContainerSpec.Ulimits";
        if let Some(ulimits) = self
            .read_at("ulimits", api, ulimits)
            .filter(|u| !u.is_empty())
        {
            container.insert("Ulimits".into(), Value::Array(ulimits));
        }
        runtime
    }

    /// The TaskTemplate: the container, resources, restart policy, placement, networks and
    /// log driver.
    fn task(&mut self, container: Map<String, Value>, deploy: &Deploy) -> Map<String, Value> {
        let mut task = Map::new();
        task.insert("ContainerSpec".into(), Value::Object(container));
        task.insert("Resources".into(), deploy.resources.clone());
        if let Some(restart_policy) = &deploy.restart_policy {
            task.insert("RestartPolicy".into(), restart_policy.clone());
        }
        task.insert("Placement".into(), deploy.placement.clone());
        let attachments = service_networks(
            self.namespace,
            self.service,
            self.project,
            &mut self.problems,
        );
        self.ignored.extend(attachments.ignored);
        self.trace("TaskTemplate.Networks", "networks");
        task.insert("Networks".into(), Value::Array(attachments.networks));
        // docker/cli sends it (no omitempty); a deploy keeps the live value (see the planner).
        task.insert("ForceUpdate".into(), 0.into());
        if let Some(driver) = self.read("logging", logging) {
            task.insert("LogDriver".into(), driver);
            self.trace_logging();
        }
        task
    }
}

impl Conversion<'_> {
    /// Records `logging` as the origin of `TaskTemplate.LogDriver`, its driver and each of its
    /// options.
    fn trace_logging(&mut self) {
        let Some(node) = self.get("logging") else {
            return;
        };
        let api = "TaskTemplate.LogDriver";
        let members = &[("driver", "Name"), ("options", "Options")];
        self.provenance
            .record_members(api, "logging", node, members);
        if let Some(options) = node.as_map().and_then(|map| get(map, "options")) {
            self.provenance
                .record_keys(&format!("{api}.Options"), "logging.options", options);
        }
    }
}

/// Records the `deploy:` keys as the origins of what they set: mode and replicas, labels,
/// update and rollback settings, resources, restart policy, placement, endpoint mode.
fn record_deploy(provenance: &mut Provenance, map: &IndexMap<String, Entry>) {
    if let Some(node) = get(map, "mode") {
        provenance.record("Mode", "deploy.mode", &node.location);
    }
    if let Some(node) = get(map, "replicas") {
        for api in [
            "Mode.Replicated.Replicas",
            "Mode.ReplicatedJob.MaxConcurrent",
            "Mode.ReplicatedJob.TotalCompletions",
        ] {
            provenance.record(api, "deploy.replicas", &node.location);
        }
    }
    if let Some(node) = get(map, "labels") {
        provenance.record_keys("Labels", "deploy.labels", node);
    }
    let groups: [(&str, &str, &Members); 4] = [
        ("update_config", "UpdateConfig", UPDATE_CONFIG_MEMBERS),
        ("rollback_config", "RollbackConfig", UPDATE_CONFIG_MEMBERS),
        (
            "restart_policy",
            "TaskTemplate.RestartPolicy",
            RESTART_POLICY_MEMBERS,
        ),
        ("placement", "TaskTemplate.Placement", PLACEMENT_MEMBERS),
    ];
    for (key, api, members) in groups {
        if let Some(node) = get(map, key) {
            provenance.record_members(api, &format!("deploy.{key}"), node, members);
        }
    }
    if let Some(node) = get(map, "resources") {
        provenance.record("TaskTemplate.Resources", "deploy.resources", &node.location);
        for (key, api) in [("limits", "Limits"), ("reservations", "Reservations")] {
            if let Some(part) = node.as_map().and_then(|parts| get(parts, key)) {
                let api = format!("TaskTemplate.Resources.{api}");
                let field = format!("deploy.resources.{key}");
                provenance.record_members(&api, &field, part, RESOURCE_MEMBERS);
            }
        }
    }
    if let Some(node) = get(map, "endpoint_mode") {
        provenance.record("EndpointSpec.Mode", "deploy.endpoint_mode", &node.location);
    }
}

/// `healthcheck` keys and the `Healthcheck` members they set.
const HEALTHCHECK_MEMBERS: &[(&str, &str)] = &[
    ("test", "Test"),
    ("disable", "Test"),
    ("interval", "Interval"),
    ("timeout", "Timeout"),
    ("start_period", "StartPeriod"),
    ("retries", "Retries"),
];

/// The ServiceSpec around a task: name, labels, mode, update and rollback settings, endpoint.
fn service_spec(
    namespace: &Namespace,
    service: &Service,
    image: String,
    deploy: Deploy,
    task: Map<String, Value>,
    ports: Option<Ports>,
) -> Spec {
    let mut labels = namespace.add_label(&deploy.labels);
    labels.insert(IMAGE_LABEL.to_string(), image);
    let mut spec = Map::new();
    spec.insert("Name".into(), namespace.scope(&service.name).into());
    spec.insert("Labels".into(), json!(labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    spec.insert("Mode".into(), deploy.mode);
    if let Some(update_config) = deploy.update_config {
        spec.insert("UpdateConfig".into(), update_config);
    }
    if let Some(rollback_config) = deploy.rollback_config {
        spec.insert("RollbackConfig".into(), rollback_config);
    }
    spec.insert(
        "EndpointSpec".into(),
        endpoint_spec(deploy.endpoint_mode, ports),
    );
    Value::Object(spec)
}

/// The EndpointSpec: `deploy.endpoint_mode` and the published ports.
fn endpoint_spec(mode: Option<String>, ports: Option<Ports>) -> Value {
    let mut endpoint = Map::new();
    if let Some(mode) = mode.filter(|mode| !mode.is_empty()) {
        endpoint.insert("Mode".into(), mode.into());
    }
    if let Some(ports) = ports.filter(|ports| !ports.ports.is_empty()) {
        endpoint.insert(
            "Ports".into(),
            ports
                .ports
                .iter()
                .map(super::ports::PortConfig::to_json)
                .collect(),
        );
    }
    Value::Object(endpoint)
}

/// `deploy.endpoint_mode`: vip or dnsrr, without case.
fn endpoint_mode(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    let value = text(node, field, problems)?;
    let lower = value.to_ascii_lowercase();
    if matches!(lower.as_str(), "" | "vip" | "dnsrr") {
        Some(lower)
    } else {
        problems.push(
            bad(node, field, format!("invalid endpoint mode {value:?}")).hint("use vip or dnsrr"),
        );
        None
    }
}

/// Reports service keys stackroll cannot convert; collects the ones docker stack deploy
/// ignores.
fn check_service_keys(
    service: &Service,
    prefix: &str,
    ignored: &mut Vec<String>,
    problems: &mut Diagnostics,
) {
    for (key, node) in &service.fields {
        if CONVERTED_SERVICE_FIELDS.contains(&key.as_str())
            || LOADER_SERVICE_FIELDS.contains(&key.as_str())
            || key.starts_with("x-")
        {
            continue;
        }
        if IGNORED_SERVICE_FIELDS.contains(&key.as_str()) {
            ignored.push(key.clone());
            continue;
        }
        let field = format!("{prefix}.{key}");
        let diagnostic = if let Some((_, reason)) = FORBIDDEN_SERVICE_FIELDS
            .iter()
            .find(|(name, _)| name == key)
        {
            Diagnostic::error(
                Some(node.location.clone()),
                format!("docker stack deploy does not support \"{key}\""),
            )
            .hint(*reason)
        } else {
            Diagnostic::error(
                Some(node.location.clone()),
                format!("service field \"{key}\" is not supported by docker stack deploy"),
            )
            .hint("remove it, or deploy with docker compose; stackroll converts the fields docker stack deploy converts")
        };
        problems.push(diagnostic.field(field));
    }
}

/// `command` / `entrypoint`: a list as written, a string split as google/shlex splits it.
fn command(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<String>> {
    if node.as_seq().is_some() {
        return string_list(node, field, problems);
    }
    let text = text(node, field, problems)?;
    match shell_split(&text) {
        Ok(words) => Some(words),
        Err(problem) => {
            problems.push(
                bad(node, field, problem).hint("close the quote, or write the command as a list"),
            );
            None
        }
    }
}

/// `extra_hosts` → `Hosts`, "IP NAME" lines. A mapping is sorted by "NAME:IP" as docker/cli
/// sorts it; list items may be "NAME:IP" or (docker/cli 23+, the Compose specification)
/// "NAME=IP", with an IPv6 address optionally in brackets. Items without a separator are
/// dropped, as docker/cli drops them.
fn extra_hosts(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<String>> {
    let entries: Vec<String> = if let Some(map) = node.as_map() {
        let mut entries = Vec::new();
        for (name, entry) in map {
            if entry.value.is_null() {
                continue;
            }
            let ip = text(&entry.value, &format!("{field}.{name}"), problems)?;
            entries.push(format!("{name}:{ip}"));
        }
        entries.sort();
        entries
    } else if node.as_seq().is_some() {
        string_list(node, field, problems)?
            .into_iter()
            .filter_map(|item| {
                let (name, ip) = item.split_once('=').or_else(|| item.split_once(':'))?;
                Some(format!("{name}:{ip}"))
            })
            .collect()
    } else {
        problems.push(bad(
            node,
            field,
            format!("expected a mapping or a list, not {}", node.kind_name()),
        ));
        return None;
    };
    Some(
        entries
            .into_iter()
            .filter_map(|entry| {
                let (name, ip) = entry.split_once(':')?;
                let ip = ip
                    .strip_prefix('[')
                    .and_then(|inner| inner.strip_suffix(']'))
                    .filter(|_| ip.len() > 2)
                    .unwrap_or(ip);
                Some(format!("{ip} {name}"))
            })
            .collect(),
    )
}

/// `dns`, `dns_search` (and `dns_opt`, which docker/cli does not read; the engine does) →
/// `DNSConfig`, present when any of them is.
fn dns_config(
    dns: Option<&Node>,
    search: Option<&Node>,
    options: Option<&Node>,
    prefix: &str,
    problems: &mut Diagnostics,
) -> Option<Value> {
    if dns.is_none() && search.is_none() && options.is_none() {
        return None;
    }
    let mut config = Map::new();
    for (node, key, api) in [
        (dns, "dns", "Nameservers"),
        (search, "dns_search", "Search"),
        (options, "dns_opt", "Options"),
    ] {
        let Some(node) = node else { continue };
        let values = if key == "dns_opt" {
            string_list(node, &format!("{prefix}.{key}"), problems)
        } else {
            string_or_list(node, &format!("{prefix}.{key}"), problems)
        };
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            config.insert(api.into(), json!(values));
        }
    }
    Some(Value::Object(config))
}

/// `healthcheck` → `Healthcheck` (docker/cli's `convertHealthcheck`).
fn healthcheck(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let map = mapping(node, field, problems)?;
    check_keys(
        map,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        field,
        problems,
    );
    let sub = |key: &str| format!("{field}.{key}");
    let test: Option<Vec<String>> = get(map, "test").and_then(|node| {
        if node.as_seq().is_some() {
            string_list(node, &sub("test"), problems)
        } else {
            text(node, &sub("test"), problems).map(|command| vec!["CMD-SHELL".to_string(), command])
        }
    });
    let disabled = get(map, "disable")
        .and_then(|node| boolean(node, &sub("disable"), problems))
        .unwrap_or(false);
    if disabled {
        if test.as_ref().is_some_and(|test| !test.is_empty()) {
            problems.push(
                bad(
                    node,
                    field,
                    "test and disable can't be set at the same time",
                )
                .hint("remove `test`, or `disable: true`"),
            );
            return None;
        }
        return Some(json!({"Test": ["NONE"]}));
    }
    let mut health = Map::new();
    if let Some(test) = test.filter(|test| !test.is_empty()) {
        health.insert("Test".into(), json!(test));
    }
    for (key, api) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ] {
        if let Some(nanos) = get(map, key).and_then(|node| duration(node, &sub(key), problems)) {
            if nanos != 0 {
                health.insert(api.into(), nanos.into());
            }
        }
    }
    if let Some(retries) =
        get(map, "retries").and_then(|node| unsigned(node, &sub("retries"), problems))
    {
        if retries != 0 {
            health.insert("Retries".into(), retries.into());
        }
    }
    Some(Value::Object(health))
}

/// `logging` → `LogDriver`.
fn logging(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let map = mapping(node, field, problems)?;
    check_keys(map, &["driver", "options"], field, problems);
    let mut driver = Map::new();
    if let Some(name) =
        get(map, "driver").and_then(|node| text(node, &format!("{field}.driver"), problems))
    {
        if !name.is_empty() {
            driver.insert("Name".into(), name.into());
        }
    }
    if let Some(options) =
        get(map, "options").and_then(|node| string_map(node, &format!("{field}.options"), problems))
    {
        if !options.is_empty() {
            driver.insert("Options".into(), json!(options));
        }
    }
    Some(Value::Object(driver))
}

/// `isolation`: the engine reads it without case and knows default, process and hyperv.
fn isolation(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    let value = text(node, field, problems)?;
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "" => None,
        "default" | "process" | "hyperv" => Some(lower),
        _ => {
            problems.push(
                bad(node, field, format!("invalid isolation {value:?}"))
                    .hint("use default, process or hyperv"),
            );
            None
        }
    }
}

/// One `ulimits` entry.
struct Ulimit {
    name: String,
    soft: i64,
    hard: i64,
}

/// `ulimits` → `Ulimits`, sorted by name: a number sets both limits, `{soft, hard}` each.
fn ulimits(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<Value>> {
    let map = mapping(node, field, problems)?;
    let mut limits: Vec<Ulimit> = Vec::new();
    for (name, entry) in map {
        let sub = format!("{field}.{name}");
        let value = &entry.value;
        let name = name.clone();
        if let Some(pair) = value.as_map() {
            check_keys(pair, &["soft", "hard"], &sub, problems);
            let (Some(soft), Some(hard)) = (get(pair, "soft"), get(pair, "hard")) else {
                problems.push(
                    bad(value, &sub, "a ulimit needs both `soft` and `hard`")
                        .hint("write e.g. {soft: 1024, hard: 2048}, or one number for both"),
                );
                continue;
            };
            let (Some(soft), Some(hard)) = (
                integer(soft, &format!("{sub}.soft"), problems),
                integer(hard, &format!("{sub}.hard"), problems),
            ) else {
                continue;
            };
            limits.push(Ulimit { name, soft, hard });
        } else if let Some(single) = integer(value, &sub, problems) {
            limits.push(Ulimit {
                name,
                soft: single,
                hard: single,
            });
        }
    }
    limits.sort_by(|a, b| a.name.cmp(&b.name));
    Some(
        limits
            .into_iter()
            .map(|limit| json!({"Name": limit.name, "Hard": limit.hard, "Soft": limit.soft}))
            .collect(),
    )
}

/// `pids_limit`: a whole number, `-1` for no limit.
fn pids_limit(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    let pids = integer(node, field, problems)?;
    if pids < -1 {
        problems.push(bad(node, field, "must be -1 (no limit), 0 or more"));
        return None;
    }
    Some(pids)
}

/// `oom_score_adj`: from -1000 to 1000, as the kernel (and the Compose schema) takes it.
fn oom_score_adj(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    let score = integer(node, field, problems)?;
    if !(-1000..=1000).contains(&score) {
        problems.push(bad(node, field, "must be from -1000 to 1000"));
        return None;
    }
    Some(score)
}

/// `platform: OS[/ARCH[/VARIANT]]` → one `Placement.Platforms` item. Swarm's platform has no
/// variant, so it is not sent (as docker/cli leaves it out of the platforms it reads from an
/// image's manifest list); the scheduler compares OS and architecture.
fn platform(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Value> {
    let written = text(node, field, problems)?;
    let parts: Vec<&str> = written.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|part| part.trim().is_empty()) {
        problems.push(
            bad(node, field, format!("invalid platform {written:?}"))
                .hint("write OS[/ARCH[/VARIANT]], e.g. linux/amd64 or linux/arm64/v8"),
        );
        return None;
    }
    let mut platform = Map::new();
    if let Some(architecture) = parts.get(1) {
        platform.insert("Architecture".into(), architecture.to_string().into());
    }
    platform.insert("OS".into(), parts[0].to_string().into());
    Some(Value::Object(platform))
}

/// Service-level `tmpfs:` (a path or a list of them, each `PATH[:OPTIONS]`) → tmpfs mounts.
/// Swarm's tmpfs mounts at API 1.41 take a size and a mode: the options `size=` (bytes, or
/// with a k/m/g unit), `mode=` (octal), `ro` and `rw`; any other option is an error.
fn tmpfs_mounts(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<Vec<Value>> {
    let items = string_or_list(node, field, problems)?;
    let mut mounts = Vec::new();
    for item in items {
        let (target, options) = item.split_once(':').unwrap_or((&item, ""));
        if !target.starts_with('/') {
            problems.push(
                bad(
                    node,
                    field,
                    format!("tmpfs target {target:?} is not an absolute path"),
                )
                .hint("write e.g. /run or /tmp:size=64m,mode=1777"),
            );
            continue;
        }
        let mut mount = Map::new();
        mount.insert("Type".into(), "tmpfs".into());
        mount.insert("Target".into(), target.into());
        let mut tmpfs = Map::new();
        let mut valid = true;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match tmpfs_option(option) {
                Ok(TmpfsOption::Size(bytes)) => {
                    tmpfs.insert("SizeBytes".into(), bytes.into());
                }
                Ok(TmpfsOption::Mode(mode)) => {
                    tmpfs.insert("Mode".into(), mode.into());
                }
                Ok(TmpfsOption::ReadOnly(read_only)) => {
                    if read_only {
                        mount.insert("ReadOnly".into(), true.into());
                    } else {
                        mount.remove("ReadOnly");
                    }
                }
                Err(problem) => {
                    problems.push(bad(node, field, format!("tmpfs {target}: {problem}")).hint(
                        "Swarm's tmpfs mounts take size=, mode=, ro and rw (e.g. /tmp:size=64m,mode=1777)",
                    ));
                    valid = false;
                }
            }
        }
        if !tmpfs.is_empty() {
            mount.insert("TmpfsOptions".into(), Value::Object(tmpfs));
        }
        if valid {
            mounts.push(Value::Object(mount));
        }
    }
    Some(mounts)
}

/// One option of a service-level `tmpfs:` item.
enum TmpfsOption {
    /// `size=`: bytes.
    Size(i64),
    /// `mode=`: permission bits, written in octal.
    Mode(u32),
    /// `ro` (true) or `rw` (false).
    ReadOnly(bool),
}

/// Reads one `tmpfs:` option.
fn tmpfs_option(option: &str) -> Result<TmpfsOption, String> {
    match option.split_once('=') {
        None if option == "ro" => Ok(TmpfsOption::ReadOnly(true)),
        None if option == "rw" => Ok(TmpfsOption::ReadOnly(false)),
        Some(("size", size)) => match ram_in_bytes(size) {
            Ok(bytes) if bytes > 0 => Ok(TmpfsOption::Size(bytes)),
            _ => Err(format!("invalid size {size:?}")),
        },
        Some(("mode", mode)) => u32::from_str_radix(mode, 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .map(TmpfsOption::Mode)
            .ok_or_else(|| format!("invalid mode {mode:?} (octal, e.g. 1777)")),
        _ => Err(format!("option {option:?} is not supported by Swarm")),
    }
}
