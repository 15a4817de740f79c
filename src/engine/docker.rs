//! The real engine: [`DockerEngine`] speaks the Docker Engine API through bollard. This is the
//! only module of the crate that imports bollard. It owns reaching the engine an [`Endpoint`]
//! names (a Unix socket or plain TCP through bollard's own clients, TLS and `ssh://` through
//! [`Connector`] as a custom transport), negotiating and pinning the API version, turning bollard's errors into [`EngineError`], retrying idempotent reads, and
//! converting between bollard's typed models and the API JSON ([`Spec`]) the rest of stackroll
//! works with.
//!
//! Quirks of bollard 0.21 handled here (all checked against dockerd 20.10, API 1.41):
//! - Request paths carry no `/vX.Y` prefix (bollard issue #736: its URI builder joins an absolute
//!   path onto the versioned base, which drops the version). A request modifier adds the
//!   negotiated version to every request, so the daemon applies that version's semantics (for
//!   API >= 1.30 it does not query a registry to pin image digests on create/update).
//! - Secret and config `Data` is a `String` that must already be standard base64.
//! - bollard's `Service` model has no `PreviousSpec`, and its structs reorder maps and drop what
//!   they do not model. Services and tasks are therefore read as plain JSON (see
//!   `DockerEngine::get_json`): specs come back exactly as `docker service inspect` shows them.
//! - Writes go through bollard's `ServiceSpec`/`NetworkCreateRequest`: nulls are stripped, and a
//!   spec with members bollard does not model is refused rather than silently truncated. The
//!   daemon spells the health check `Healthcheck` (Go), bollard `HealthCheck` (swagger); the
//!   former is renamed on the way in (the daemon reads keys case-insensitively).
//! - bollard logs request bodies at `debug`/`trace` level through the `log` crate; that includes
//!   base64 secret data, so a `log` backend must never enable those levels for `bollard`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::models::{
    ConfigSpec, Driver, EventMessage, EventMessageTypeEnum, NetworkCreateRequest, SecretSpec,
    ServiceSpec,
};
use bollard::query_parameters::{
    EventsOptions, ListConfigsOptions, ListNetworksOptions, ListSecretsOptions,
    UpdateConfigOptions, UpdateSecretOptions, UpdateServiceOptions,
};
use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::endpoint::{join_host_port, Endpoint, Transport};
use super::transport::{is_ssh_failure, Connector};
use super::{
    Distribution, Engine, EngineError, EngineEvent, EngineInfo, EventStream, ExecOutcome,
    ExecRequest, NetworkState, NewObject, NodeState, Platform, ServiceState, Spec, SwarmObject,
    TaskState, UpdateStatus, EXEC_OUTPUT_MAX,
};
use crate::model::{ObjectKind, SensitiveBytes};
use crate::registry::RegistryAuth;

/// The header registry credentials travel in (docker/cli `registry.AuthHeader`).
const REGISTRY_AUTH_HEADER: &str = "X-Registry-Auth";

/// The address requests over ssh carry (the docker CLI's); the connection decides where they go.
const SSH_REQUEST_ADDRESS: &str = "http://docker.example.com";

/// The address requests over a Unix socket carry (the docker CLI's); the socket decides.
const UNIX_REQUEST_ADDRESS: &str = "http://docker.example.com";

/// The oldest API stackroll works with (Docker 20.10).
const MIN_API_VERSION: (usize, usize) = (1, 41);

/// Per-request timeout, in seconds.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Pauses before the second and third attempt of an idempotent read.
const READ_RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(300)];

/// Fields of a NetworkCreateRequest that bollard no longer models and that may be dropped:
/// `CheckDuplicate` is deprecated (API 1.44 ignores it; swarm network names are unique anyway).
const IGNORED_NETWORK_FIELDS: &[&str] = &["CheckDuplicate"];

/// The Docker Engine, reached over a Unix socket, plain TCP or TCP with TLS, speaking the API
/// version negotiated at [`DockerEngine::connect`].
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    endpoint: String,
    api_version: String,
    /// Registry credentials to send (`--with-registry-auth`); none by default.
    registry_auth: RegistryAuth,
}

impl DockerEngine {
    /// Connects to the engine `endpoint` names (see [`super::endpoint::resolve`]). Negotiates
    /// the API version and fails with [`EngineError::TooOld`] below API 1.41, with
    /// [`EngineError::Unreachable`] when the engine cannot be reached.
    pub async fn connect(endpoint: &Endpoint) -> Result<DockerEngine, EngineError> {
        let opened = open(endpoint).map_err(|message| EngineError::Unreachable {
            endpoint: endpoint.address.clone(),
            message,
        })?;
        let unversioned = DockerEngine {
            docker: opened.docker,
            endpoint: endpoint.address.clone(),
            api_version: String::new(),
            registry_auth: RegistryAuth::default(),
        };
        let found = unversioned
            .negotiate(&opened.api_version_seen)
            .await
            .map_err(|error| plain_http_to_tls(error, endpoint))?;
        let api_version = format!("{}.{}", found.0, found.1);
        if found < MIN_API_VERSION {
            return Err(EngineError::TooOld {
                found: api_version,
                needed: format!("{}.{}", MIN_API_VERSION.0, MIN_API_VERSION.1),
            });
        }
        let prefix = format!("/v{api_version}");
        let docker = unversioned
            .docker
            .with_request_modifier(move |mut request| {
                if let Some(uri) = versioned_uri(&request.uri().to_string(), &prefix) {
                    if let Ok(uri) = uri.parse() {
                        *request.uri_mut() = uri;
                    }
                }
                request
            });
        Ok(DockerEngine {
            docker,
            endpoint: unversioned.endpoint,
            api_version,
            registry_auth: RegistryAuth::default(),
        })
    }

    /// The API version to speak, as the docker CLI negotiates it: the `Api-Version` header of
    /// the engine's answer to `GET /_ping` (a request dockerd answers at once, where `/version`
    /// asks containerd and takes ~10 ms), capped at the newest version bollard knows. An
    /// engine that sends no header (an old or proxied one) is asked `GET /version` instead.
    async fn negotiate(
        &self,
        api_version_seen: &Mutex<Option<String>>,
    ) -> Result<(usize, usize), EngineError> {
        self.read(|| self.docker.ping()).await?;
        let header = api_version_seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        let newest = (
            API_DEFAULT_VERSION.major_version,
            API_DEFAULT_VERSION.minor_version,
        );
        if let Some(found) = header.as_deref().and_then(parse_api_version) {
            return Ok(found.min(newest));
        }
        let docker = self
            .read(|| self.docker.clone().negotiate_version())
            .await?;
        let version = docker.client_version();
        Ok((version.major_version, version.minor_version))
    }

    /// The same engine, sending `auth`'s credentials for an image's registry with service
    /// creates and updates and with distribution lookups, as docker/cli does with
    /// `--with-registry-auth`.
    pub fn with_registry_auth(mut self, auth: RegistryAuth) -> DockerEngine {
        self.registry_auth = auth;
        self
    }

    /// This connection with every request's path rewritten by `rewrite` (after the negotiated
    /// version is added) and, when there are credentials for `image`'s registry, the
    /// `X-Registry-Auth` header (marked sensitive, so no debug output shows it).
    fn modified(
        &self,
        image: Option<&str>,
        rewrite: impl Fn(String) -> String + Send + Sync + 'static,
    ) -> Docker {
        let prefix = format!("/v{}", self.api_version);
        let header = image
            .and_then(|image| self.registry_auth.header_for(image))
            .and_then(|header| http::HeaderValue::from_str(header).ok())
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        self.docker
            .clone()
            .with_request_modifier(move |mut request| {
                let uri = request.uri().to_string();
                let uri = versioned_uri(&uri, &prefix).unwrap_or(uri);
                if let Ok(uri) = rewrite(uri).parse() {
                    *request.uri_mut() = uri;
                }
                if let Some(header) = &header {
                    request
                        .headers_mut()
                        .insert(REGISTRY_AUTH_HEADER, header.clone());
                }
                request
            })
    }

    /// The address connected to, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `GET path?filters=...` with the answer as plain JSON, retried like every read.
    ///
    /// bollard's typed models lose what the API documents loosely: its `Service` has no
    /// `PreviousSpec` (the swagger file omits it, the daemon sends it), and a round trip through
    /// its structs reorders maps and drops members it does not model. bollard has no public raw
    /// request, so this borrows `ping()` (a GET whose body comes back as text, with the usual
    /// status-code error handling) on a clone whose request modifier points it at `path`.
    async fn get_json(
        &self,
        path: &str,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<Value, EngineError> {
        let mut target = format!("/v{}{path}", self.api_version);
        if let Some(filters) = filters {
            let filters = serde_json::to_string(&filters)
                .map_err(|err| EngineError::Other(format!("cannot encode filters: {err}")))?;
            target.push_str("?filters=");
            target.push_str(&percent_encode(&filters));
        }
        let body = self
            .read(|| {
                let target = target.clone();
                let docker = self
                    .docker
                    .clone()
                    .with_request_modifier(move |mut request| {
                        if let Some(uri) = redirected_uri(&request.uri().to_string(), &target) {
                            if let Ok(uri) = uri.parse() {
                                *request.uri_mut() = uri;
                            }
                        }
                        request
                    });
                async move { docker.ping().await }
            })
            .await?;
        serde_json::from_str(&body).map_err(|err| {
            EngineError::Other(format!(
                "cannot read the engine's answer to GET {path}: {err}"
            ))
        })
    }

    /// `GET /tasks`, filtered as given, sorted by slot, creation time and ID.
    async fn tasks(
        &self,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<Vec<TaskState>, EngineError> {
        let tasks = self.get_json("/tasks", filters).await?;
        let mut states: Vec<TaskState> = as_list(tasks, "/tasks")?.iter().map(task_state).collect();
        states.sort_by(|a, b| (a.slot, &a.created_at, &a.id).cmp(&(b.slot, &b.created_at, &b.id)));
        Ok(states)
    }

    /// Runs an idempotent read, retrying twice (after 100 ms, then 300 ms) on transport errors.
    async fn read<T, F, Fut>(&self, mut call: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        let mut delays = READ_RETRY_DELAYS.iter();
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) if is_retryable(&err) => match delays.next() {
                    Some(delay) => tokio::time::sleep(*delay).await,
                    None => return Err(self.engine_error(err)),
                },
                Err(err) => return Err(self.engine_error(err)),
            }
        }
    }

    /// Runs a write once: writes are never retried.
    async fn write<T>(
        &self,
        call: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, EngineError> {
        call.await.map_err(|err| self.engine_error(err))
    }

    fn engine_error(&self, err: BollardError) -> EngineError {
        match err {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => api_error(status_code, message),
            BollardError::SocketNotFoundError(path) => EngineError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: format!("no socket at {path}"),
            },
            other if is_transport(&other) => EngineError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: describe(&other),
            },
            other => EngineError::Other(describe(&other)),
        }
    }
}

impl Engine for DockerEngine {
    fn api_version(&self) -> String {
        self.api_version.clone()
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        // /info is read as plain JSON: bollard's SystemInfo has many closed enums, and a daemon
        // with a value it does not know would make the whole answer unreadable.
        let info = self.get_json("/info", None).await?;
        Ok(EngineInfo {
            api_version: self.api_version.clone(),
            swarm_state: text(&info, "/Swarm/LocalNodeState"),
            is_manager: info
                .pointer("/Swarm/ControlAvailable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            node_id: text(&info, "/Swarm/NodeID"),
            node_name: text(&info, "/Name"),
            cluster_id: text(&info, "/Swarm/Cluster/ID"),
            system_time: text(&info, "/SystemTime"),
        })
    }

    async fn list_objects(
        &self,
        kind: ObjectKind,
        label: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        let filters = label_filter(label);
        let mut objects: Vec<SwarmObject> = match kind {
            ObjectKind::Secret => {
                let options = ListSecretsOptions { filters };
                let secrets = self
                    .read(|| self.docker.list_secrets(Some(options.clone())))
                    .await?;
                secrets
                    .into_iter()
                    .map(|secret| {
                        let spec = secret.spec.unwrap_or_default();
                        SwarmObject {
                            id: secret.id.unwrap_or_default(),
                            name: spec.name.unwrap_or_default(),
                            labels: sorted_labels(spec.labels),
                            created_at: date_text(&secret.created_at),
                            updated_at: date_text(&secret.updated_at),
                        }
                    })
                    .collect()
            }
            ObjectKind::Config => {
                let options = ListConfigsOptions { filters };
                let configs = self
                    .read(|| self.docker.list_configs(Some(options.clone())))
                    .await?;
                configs
                    .into_iter()
                    .map(|config| {
                        let spec = config.spec.unwrap_or_default();
                        SwarmObject {
                            id: config.id.unwrap_or_default(),
                            name: spec.name.unwrap_or_default(),
                            labels: sorted_labels(spec.labels),
                            created_at: date_text(&config.created_at),
                            updated_at: date_text(&config.updated_at),
                        }
                    })
                    .collect()
            }
        };
        objects.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(objects)
    }

    async fn create_object(&self, object: &NewObject) -> Result<String, EngineError> {
        let labels: HashMap<String, String> = object
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let templating = object.template_driver.as_ref().map(|name| Driver {
            name: name.clone(),
            options: None,
        });
        let created = match object.kind {
            ObjectKind::Secret => {
                let driver = object.driver.as_ref().map(|name| Driver {
                    name: name.clone(),
                    options: (!object.driver_opts.is_empty()).then(|| {
                        object
                            .driver_opts
                            .iter()
                            .map(|(key, value)| (key.clone(), value.clone()))
                            .collect()
                    }),
                });
                let data = match driver {
                    Some(_) => None,
                    None => Some(base64_encode(object.data.expose())),
                };
                let spec = SecretSpec {
                    name: Some(object.name.clone()),
                    labels: Some(labels),
                    data,
                    driver,
                    templating,
                };
                self.write(self.docker.create_secret(spec)).await?
            }
            ObjectKind::Config => {
                if object.driver.is_some() {
                    return Err(EngineError::Other(format!(
                        "config '{}' cannot use a secret driver: Swarm configs have none",
                        object.name
                    )));
                }
                let spec = ConfigSpec {
                    name: Some(object.name.clone()),
                    labels: Some(labels),
                    data: Some(base64_encode(object.data.expose())),
                    templating,
                };
                self.write(self.docker.create_config(spec)).await?
            }
        };
        Ok(created.id)
    }

    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), EngineError> {
        match kind {
            ObjectKind::Secret => self.write(self.docker.delete_secret(id)).await,
            ObjectKind::Config => self.write(self.docker.delete_config(id)).await,
        }
    }

    async fn list_services(&self, label: Option<&str>) -> Result<Vec<ServiceState>, EngineError> {
        let services = self.get_json("/services", label_filter(label)).await?;
        let mut states: Vec<ServiceState> = as_list(services, "/services")?
            .iter()
            .map(service_state)
            .collect();
        states.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(states)
    }

    async fn inspect_service(&self, id: &str) -> Result<ServiceState, EngineError> {
        let service = self
            .get_json(&format!("/services/{}", percent_encode(id)), None)
            .await?;
        Ok(service_state(&service))
    }

    async fn create_service(&self, spec: &Spec) -> Result<String, EngineError> {
        let docker = self.modified(spec_image(spec), |uri| uri);
        let spec = bollard_service_spec(spec)?;
        let created = self.write(docker.create_service(spec, None)).await?;
        created
            .id
            .ok_or_else(|| EngineError::Other("the engine created a service without an ID".into()))
    }

    async fn update_service(&self, id: &str, version: u64, spec: &Spec) -> Result<(), EngineError> {
        // bollard types `version` as i32, but Version.Index is a 64-bit counter that passes
        // i32::MAX on long-lived swarms: the query is sent with a placeholder that the request
        // modifier replaces with the full number.
        let docker = self.modified(spec_image(spec), move |uri| {
            with_version_query(&uri, version)
        });
        let spec = bollard_service_spec(spec)?;
        // Without credentials to send, the engine keeps the pull options the current spec has
        // (`registryAuthFrom=spec`), as docker/cli's update does; with a versioned path
        // (API >= 1.30) it does not query a registry to re-pin the image itself.
        let options = UpdateServiceOptions {
            version: 0,
            registry_auth_from: "spec".to_string(),
            rollback: None,
        };
        self.write(docker.update_service(id, spec, options, None))
            .await?;
        Ok(())
    }

    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        self.write(self.docker.delete_service(id)).await
    }

    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskState>, EngineError> {
        let filters = HashMap::from([("service".to_string(), vec![service_id.to_string()])]);
        self.tasks(Some(filters)).await
    }

    async fn list_all_tasks(&self) -> Result<Vec<TaskState>, EngineError> {
        self.tasks(None).await
    }

    async fn list_networks(&self, label: Option<&str>) -> Result<Vec<NetworkState>, EngineError> {
        let options = ListNetworksOptions {
            filters: label_filter(label),
        };
        let networks = self
            .read(|| self.docker.list_networks(Some(options.clone())))
            .await?;
        let mut states: Vec<NetworkState> = networks
            .into_iter()
            .map(|network| NetworkState {
                id: network.id.unwrap_or_default(),
                name: network.name.unwrap_or_default(),
                driver: network.driver.unwrap_or_default(),
                labels: sorted_labels(network.labels),
            })
            .collect();
        states.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(states)
    }

    async fn create_network(&self, spec: &Spec) -> Result<String, EngineError> {
        let request: NetworkCreateRequest =
            from_spec(spec, "network spec", IGNORED_NETWORK_FIELDS)?;
        let name = request.name.clone();
        match self.docker.create_network(request).await {
            Ok(created) => Ok(created.id),
            // The engine answered 2xx but bollard could not decode the reply (a daemon that
            // leaves out `Warning`): the network exists, so look its ID up instead of failing.
            Err(BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. }) => {
                let network = self
                    .read(|| self.docker.inspect_network(&name, None))
                    .await?;
                network.id.ok_or_else(|| {
                    EngineError::Other(format!("network '{name}' was created without an ID"))
                })
            }
            Err(err) => Err(self.engine_error(err)),
        }
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.write(self.docker.remove_network(id)).await
    }

    async fn set_object_labels(
        &self,
        kind: ObjectKind,
        id: &str,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let labels: HashMap<String, String> = labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        // Swarm refuses an update that carries Data ("only updates to Labels are allowed"), so
        // the spec is sent back as read, with new labels and without data.
        match kind {
            ObjectKind::Secret => {
                let secret = self.read(|| self.docker.inspect_secret(id)).await?;
                let version = secret.version.and_then(|v| v.index).unwrap_or(0);
                let spec = SecretSpec {
                    labels: Some(labels),
                    data: None,
                    ..secret.spec.unwrap_or_default()
                };
                let options = UpdateSecretOptions {
                    version: version as i64,
                };
                self.write(self.docker.update_secret(id, spec, options))
                    .await
            }
            ObjectKind::Config => {
                let config = self.read(|| self.docker.inspect_config(id)).await?;
                let version = config.version.and_then(|v| v.index).unwrap_or(0);
                let spec = ConfigSpec {
                    labels: Some(labels),
                    data: None,
                    ..config.spec.unwrap_or_default()
                };
                let options = UpdateConfigOptions {
                    version: version as i64,
                };
                self.write(self.docker.update_config(id, spec, options))
                    .await
            }
        }
    }

    async fn config_data(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        use base64::Engine as _;
        let config = self.read(|| self.docker.inspect_config(id)).await?;
        let data = config.spec.and_then(|spec| spec.data).unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|error| {
                EngineError::Other(format!("config {id}: data is not base64: {error}"))
            })
    }

    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutcome, EngineError> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(request.command.clone()),
            user: request.user.clone(),
            ..Default::default()
        };
        let created = self
            .write(self.docker.create_exec(&request.container_id, config))
            .await?;
        let started = self
            .write(self.docker.start_exec(&created.id, None))
            .await?;
        let mut output = TailBuffer::default();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|err| self.engine_error(err))?;
                output.push(&chunk.into_bytes());
            }
        }
        let inspected = self.read(|| self.docker.inspect_exec(&created.id)).await?;
        let exit_code = inspected.exit_code.ok_or_else(|| {
            EngineError::Other(format!(
                "the engine reported no exit code for the command in container {}",
                request.container_id
            ))
        })?;
        Ok(ExecOutcome {
            exit_code,
            output: SensitiveBytes::new(output.into_bytes()),
        })
    }

    async fn inspect_distribution(&self, image: &str) -> Result<Distribution, EngineError> {
        let docker = self.modified(Some(image), |uri| uri);
        let found = self
            .write(docker.inspect_registry_image(image, None))
            .await?;
        Ok(Distribution {
            digest: found.descriptor.digest.unwrap_or_default(),
            platforms: found
                .platforms
                .into_iter()
                .map(|platform| Platform {
                    architecture: platform.architecture.unwrap_or_default(),
                    os: platform.os.unwrap_or_default(),
                })
                .collect(),
        })
    }

    async fn list_nodes(&self) -> Result<Vec<NodeState>, EngineError> {
        let nodes = self.get_json("/nodes", None).await?;
        let mut states: Vec<NodeState> = as_list(nodes, "/nodes")?
            .iter()
            .map(|node| NodeState {
                id: text(node, "/ID"),
                hostname: text(node, "/Description/Hostname"),
                state: text(node, "/Status/State"),
            })
            .collect();
        states.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
        Ok(states)
    }

    /// `GET /events` filtered to what can move a rollout: services updated or removed (an
    /// UpdateStatus change is a service `update`, dockerd's `updatestate.new` attribute), nodes
    /// updated or removed, and task containers started or ended on this node.
    fn watch_events(&self) -> EventStream {
        let filters = HashMap::from([
            (
                "type".to_string(),
                vec!["service".into(), "node".into(), "container".into()],
            ),
            (
                "event".to_string(),
                vec![
                    "update".into(),
                    "remove".into(),
                    "start".into(),
                    "die".into(),
                ],
            ),
        ]);
        let options = EventsOptions {
            filters: Some(filters),
            ..EventsOptions::default()
        };
        let engine = self.clone();
        let events = self.docker.events(Some(options)).filter_map(move |item| {
            let event = match item {
                Ok(message) => engine_event(message).map(Ok),
                Err(err) => Some(Err(engine.engine_error(err))),
            };
            futures_util::future::ready(event)
        });
        Box::pin(events)
    }
}

/// What an event from `GET /events` says moved, if it is one stackroll watches: a task's
/// container carries its service's ID in the label `com.docker.swarm.service.id`.
fn engine_event(message: EventMessage) -> Option<EngineEvent> {
    let actor = message.actor.unwrap_or_default();
    match message.typ? {
        EventMessageTypeEnum::SERVICE => Some(EngineEvent::Service { id: actor.id? }),
        EventMessageTypeEnum::NODE => Some(EngineEvent::Node),
        EventMessageTypeEnum::CONTAINER => {
            let service_id = actor
                .attributes?
                .remove("com.docker.swarm.service.id")
                .filter(|id| !id.is_empty())?;
            Some(EngineEvent::Task { service_id })
        }
        _ => None,
    }
}

/// The image a ServiceSpec runs, if it names one.
fn spec_image(spec: &Spec) -> Option<&str> {
    spec.pointer("/TaskTemplate/ContainerSpec/Image")
        .and_then(Value::as_str)
}

/// Builds a client for `endpoint`; errors are messages for [`EngineError::Unreachable`].
fn open(endpoint: &Endpoint) -> Result<Opened, String> {
    let (connector, address) = match &endpoint.transport {
        Transport::Unix { path } => {
            if !path.exists() {
                return Err(format!("no socket at {}", path.display()));
            }
            (Connector::unix(path), UNIX_REQUEST_ADDRESS.to_string())
        }
        Transport::Tcp {
            host,
            port,
            tls: None,
        } => (
            Connector::tcp(host, *port),
            format!("http://{}", join_host_port(host, &port.to_string())),
        ),
        Transport::Tcp {
            host,
            port,
            tls: Some(tls),
        } => (
            Connector::tls(host, *port, tls)?,
            format!("https://{}", join_host_port(host, &port.to_string())),
        ),
        Transport::Ssh(target) => (Connector::ssh(target), SSH_REQUEST_ADDRESS.to_string()),
    };
    with_connector(connector, address).map_err(|err| describe(&err))
}

/// A bollard client and what the engine's answers say of its API version.
struct Opened {
    docker: Docker,
    /// The `Api-Version` header of the engine's latest answer, once one came.
    api_version_seen: Arc<Mutex<Option<String>>>,
}

/// A bollard client whose connections `connector` opens; requests carry `address`. Every
/// answer's `Api-Version` header is kept, so `GET /_ping` can negotiate the version.
fn with_connector(connector: Connector, address: String) -> Result<Opened, BollardError> {
    let client = Arc::new(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    );
    let api_version_seen = Arc::new(Mutex::new(None));
    let seen = api_version_seen.clone();
    let docker = Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = client.clone();
            let seen = seen.clone();
            async move {
                let response = client.request(request).await.map_err(BollardError::from)?;
                if let Some(version) = response.headers().get("api-version") {
                    if let Ok(version) = version.to_str() {
                        *seen.lock().unwrap_or_else(|poison| poison.into_inner()) =
                            Some(version.to_string());
                    }
                }
                Ok(response)
            }
        },
        Some(address),
        REQUEST_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )?;
    Ok(Opened {
        docker,
        api_version_seen,
    })
}

/// The first answer of an engine that speaks TLS to a client that sent plain HTTP, said so.
fn plain_http_to_tls(error: EngineError, endpoint: &Endpoint) -> EngineError {
    match error {
        EngineError::Api { message, .. } if message.contains("HTTP request to an HTTPS server") => {
            EngineError::Unreachable {
                endpoint: endpoint.address.clone(),
                message: "the engine speaks TLS and stackroll sent plain HTTP: turn TLS on \
                          (--tlsverify, DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH, or a context \
                          with ca, cert and key)"
                    .to_string(),
            }
        }
        other => other,
    }
}

/// `1.41` as `(1, 41)`.
fn parse_api_version(text: &str) -> Option<(usize, usize)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `uri` with `prefix` (`/v1.41`) put before its path, or `None` when it already has a version.
fn versioned_uri(uri: &str, prefix: &str) -> Option<String> {
    let authority_start = uri.find("://")? + 3;
    let path_start = authority_start + uri[authority_start..].find('/')?;
    let path = &uri[path_start..];
    let already_versioned = path
        .strip_prefix("/v")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_digit());
    if already_versioned {
        return None;
    }
    Some(format!("{}{prefix}{path}", &uri[..path_start]))
}

/// Maps an HTTP error answer onto [`EngineError`].
fn api_error(status: u16, message: String) -> EngineError {
    if message.contains("update out of sequence") {
        return EngineError::OutOfSequence(message);
    }
    // Swarm refuses to remove a secret, config or network that a service uses with
    // InvalidArgument / FailedPrecondition (HTTP 400/500), not 409: it is a conflict all the same.
    if message.contains(" is in use by ") {
        return EngineError::Conflict(message);
    }
    // Swarm reports some objects that are already gone with 500: a network removed a moment
    // ago (still listed) and gRPC NotFound answers.
    let gone = message.contains("code = NotFound")
        || (message.starts_with("network ") && message.ends_with(" not found"));
    match status {
        404 => EngineError::NotFound(message),
        500 if gone => EngineError::NotFound(message),
        409 => EngineError::Conflict(message),
        _ => EngineError::Api { status, message },
    }
}

/// Errors that mean the request did not get an answer from the engine.
fn is_transport(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::RequestTimeoutError
            | BollardError::SocketNotFoundError(_)
    )
}

/// Transport errors worth another try for a read (not timeouts: those already waited long;
/// not an ssh that failed: it would fail again the same way).
fn is_retryable(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::HyperResponseError { .. }
    ) && !is_ssh_failure(err)
}

/// An error and its causes on one line ("client error (Connect): ... Connection refused").
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let top = err.to_string();
    let mut message = top
        .strip_prefix("Error in the hyper legacy client: ")
        .unwrap_or(&top)
        .to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The `filters` query for an optional `key=value` label.
fn label_filter(label: Option<&str>) -> Option<HashMap<String, Vec<String>>> {
    label.map(|label| HashMap::from([("label".to_string(), vec![label.to_string()])]))
}

/// Labels in a stable (sorted) order.
fn sorted_labels(labels: Option<HashMap<String, String>>) -> IndexMap<String, String> {
    let mut labels: IndexMap<String, String> = labels.unwrap_or_default().into_iter().collect();
    labels.sort_keys();
    labels
}

/// A timestamp as the engine wrote it (RFC 3339), whatever type bollard's features give it.
fn date_text<T: Serialize>(date: &Option<T>) -> String {
    match serde_json::to_value(date) {
        Ok(Value::String(text)) => text,
        _ => String::new(),
    }
}

/// A service from the engine's JSON (`GET /services/{id}`), specs exactly as sent.
fn service_state(service: &Value) -> ServiceState {
    ServiceState {
        id: text(service, "/ID"),
        name: text(service, "/Spec/Name"),
        version: service
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        spec: json_member(service, "/Spec").unwrap_or_else(|| Value::Object(Default::default())),
        previous_spec: json_member(service, "/PreviousSpec"),
        update_status: service.get("UpdateStatus").map(|status| UpdateStatus {
            state: text(status, "/State"),
            message: text(status, "/Message"),
        }),
        job_iteration: service.get("JobStatus").map(|status| {
            status
                .pointer("/JobIteration/Index")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        }),
    }
}

/// A task from the engine's JSON (`GET /tasks`).
fn task_state(task: &Value) -> TaskState {
    TaskState {
        id: text(task, "/ID"),
        service_id: text(task, "/ServiceID"),
        node_id: text(task, "/NodeID"),
        slot: task.get("Slot").and_then(Value::as_u64),
        desired_state: text(task, "/DesiredState"),
        state: text(task, "/Status/State"),
        message: text(task, "/Status/Message"),
        error: task
            .pointer("/Status/Err")
            .and_then(Value::as_str)
            .filter(|err| !err.is_empty())
            .map(str::to_string),
        spec: json_member(task, "/Spec").unwrap_or_else(|| Value::Object(Default::default())),
        container_id: task
            .pointer("/Status/ContainerStatus/ContainerID")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        created_at: text(task, "/CreatedAt"),
        job_iteration: task
            .get("JobIteration")
            .map(|iteration| iteration.get("Index").and_then(Value::as_u64).unwrap_or(0)),
    }
}

/// The last [`EXEC_OUTPUT_MAX`] bytes of a stream, zeroed when dropped (output may hold
/// secret values).
#[derive(Default)]
struct TailBuffer(Vec<u8>);

impl TailBuffer {
    /// Appends `bytes`, dropping the oldest beyond the limit.
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > EXEC_OUTPUT_MAX {
            let excess = self.0.len() - EXEC_OUTPUT_MAX;
            self.0[..excess].iter_mut().for_each(|byte| *byte = 0);
            self.0.drain(..excess);
        }
    }

    /// The bytes kept.
    fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for TailBuffer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The string at `pointer`, or empty.
fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The JSON at `pointer` without `null` members, if present and not null.
fn json_member(value: &Value, pointer: &str) -> Option<Value> {
    let mut member = value.pointer(pointer).filter(|v| !v.is_null())?.clone();
    strip_nulls(&mut member);
    Some(member)
}

/// The elements of a JSON array answer (`null` counts as none).
fn as_list(answer: Value, path: &str) -> Result<Vec<Value>, EngineError> {
    match answer {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(EngineError::Other(format!(
            "the engine's answer to GET {path} is not a list"
        ))),
    }
}

/// `uri` with its path and query replaced by `target`.
fn redirected_uri(uri: &str, target: &str) -> Option<String> {
    let authority_start = uri.find("://")? + 3;
    let path_start = uri[authority_start..]
        .find('/')
        .map_or(uri.len(), |at| authority_start + at);
    Some(format!("{}{target}", &uri[..path_start]))
}

/// `uri` with its `version` query parameter set to `version` (every other part unchanged).
fn with_version_query(uri: &str, version: u64) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return format!("{uri}?version={version}");
    };
    let mut parameters: Vec<String> = query
        .split('&')
        .filter(|parameter| !parameter.starts_with("version="))
        .map(str::to_string)
        .collect();
    parameters.insert(0, format!("version={version}"));
    format!("{path}?{}", parameters.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A ServiceSpec as bollard's model. The daemon (Go) writes the container health check as
/// `Healthcheck` and reads keys case-insensitively; bollard (from the swagger file) only knows
/// `HealthCheck`, so the inspect spelling is renamed before conversion.
fn bollard_service_spec(spec: &Spec) -> Result<ServiceSpec, EngineError> {
    let mut spec = spec.clone();
    if let Some(Value::Object(container)) = spec.pointer_mut("/TaskTemplate/ContainerSpec") {
        if !container.contains_key("HealthCheck") {
            if let Some(health) = container.remove("Healthcheck") {
                container.insert("HealthCheck".to_string(), health);
            }
        }
    }
    from_spec(&spec, "service spec", &[])
}

/// A bollard model as API JSON, with no `null` members (bollard skips most `None`s itself).
fn to_spec<T: Serialize>(value: &T) -> Result<Spec, EngineError> {
    let mut json = serde_json::to_value(value)
        .map_err(|err| EngineError::Other(format!("cannot convert an engine answer: {err}")))?;
    strip_nulls(&mut json);
    Ok(json)
}

/// API JSON as a bollard model. Refuses JSON with members bollard does not model (serde would
/// drop them silently), except the `ignored` top-level ones.
fn from_spec<T: DeserializeOwned + Serialize>(
    spec: &Spec,
    what: &str,
    ignored: &[&str],
) -> Result<T, EngineError> {
    let mut input = spec.clone();
    strip_nulls(&mut input);
    let typed: T = serde_json::from_value(input.clone())
        .map_err(|err| EngineError::Other(format!("invalid {what}: {err}")))?;
    let sent = to_spec(&typed)?;
    let mut lost = Vec::new();
    lost_members(&input, &sent, "", &mut lost);
    lost.retain(|path| !ignored.contains(&path.as_str()));
    if !lost.is_empty() {
        return Err(EngineError::Other(format!(
            "invalid {what}: the Docker client library does not know {}",
            lost.join(", ")
        )));
    }
    Ok(typed)
}

/// Removes `null` object members, recursively.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, member| !member.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Collects the paths (`TaskTemplate.ContainerSpec.Foo`) of members of `input` absent from
/// `output`.
fn lost_members(input: &Value, output: &Value, path: &str, lost: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(input), Value::Object(output)) => {
            for (key, value) in input {
                let member = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match output.get(key) {
                    Some(kept) => lost_members(value, kept, &member, lost),
                    None => lost.push(member),
                }
            }
        }
        (Value::Array(input), Value::Array(output)) => {
            for (index, (value, kept)) in input.iter().zip(output).enumerate() {
                lost_members(value, kept, &format!("{path}[{index}]"), lost);
            }
        }
        _ => {}
    }
}

/// Standard base64 with padding (RFC 4648 §4), what Swarm expects in secret and config `Data`
/// (not the URL-safe alphabet: `+/` and `=` matter).
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A one-thread HTTP responder on 127.0.0.1 standing in for dockerd: it answers
    /// `/version` (API 1.41) and anything else with `{}`, and records each request line.
    fn fake_daemon() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        fake_daemon_sending(None)
    }

    /// [`fake_daemon`], with an `Api-Version` header on every answer when `header` is given.
    fn fake_daemon_sending(
        header: Option<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("tcp://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut length = 0usize;
                let mut first = true;
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if first {
                        record.lock().unwrap().push(line.trim_end().to_string());
                        first = false;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let answer = if record
                    .lock()
                    .unwrap()
                    .last()
                    .is_some_and(|l| l.contains("/version"))
                {
                    r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.24"}"#
                } else {
                    "{}"
                };
                let version = header
                    .map(|v| format!("Api-Version: {v}\r\n"))
                    .unwrap_or_default();
                let _ = write!(
                    &stream,
                    "HTTP/1.1 200 OK\r\n{version}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        (address, seen)
    }

    /// The endpoint `-H address` resolves to, with nothing else set.
    fn tcp_endpoint(address: &str) -> Endpoint {
        use crate::engine::endpoint::{resolve, DockerEnv, EngineFlags, RealFiles};
        let flags = EngineFlags {
            hosts: vec![address.to_string()],
            ..EngineFlags::default()
        };
        resolve(&flags, &DockerEnv::default(), &RealFiles).unwrap()
    }

    #[test]
    fn a_service_update_sends_a_64_bit_version_index() {
        let (address, seen) = fake_daemon();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let engine = DockerEngine::connect(&tcp_endpoint(&address)).await.unwrap();
            let spec = json!({"Name": "demo_app", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}});
            engine
                .update_service("abc", 3_000_000_000, &spec)
                .await
                .unwrap();
        });
        let seen = seen.lock().unwrap();
        let update = seen
            .iter()
            .find(|line| line.contains("/services/abc/update"))
            .unwrap_or_else(|| panic!("no update request: {seen:?}"));
        assert!(
            update.starts_with("POST /v1.41/services/abc/update?version=3000000000&"),
            "{update}"
        );
        assert!(update.contains("registryAuthFrom=spec"), "{update}");
    }

    /// The requests `connect` then `info` send to an engine whose answers carry `header`.
    fn negotiation_requests(header: Option<&'static str>) -> Vec<String> {
        let (address, seen) = fake_daemon_sending(header);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let engine = DockerEngine::connect(&tcp_endpoint(&address))
                .await
                .unwrap();
            engine.info().await.unwrap();
        });
        let seen = seen.lock().unwrap().clone();
        seen
    }

    #[test]
    fn the_api_version_is_negotiated_from_the_ping_answer_and_capped() {
        let newest = format!(
            "{}.{}",
            API_DEFAULT_VERSION.major_version, API_DEFAULT_VERSION.minor_version
        );
        assert_eq!(
            negotiation_requests(Some("1.43")),
            ["GET /_ping HTTP/1.1", "GET /v1.43/info HTTP/1.1"],
            "one cheap request negotiates; /version (slow: dockerd asks containerd) is not sent"
        );
        assert_eq!(
            negotiation_requests(Some("1.999")),
            [
                "GET /_ping HTTP/1.1".to_string(),
                format!("GET /v{newest}/info HTTP/1.1")
            ],
        );
        assert_eq!(
            negotiation_requests(None),
            [
                "GET /_ping HTTP/1.1",
                "GET /version HTTP/1.1",
                "GET /v1.41/info HTTP/1.1"
            ],
            "an engine that sends no Api-Version header is asked /version"
        );
    }

    #[test]
    fn events_name_the_service_they_concern() {
        // As dockerd 20.10 (API 1.41) sends them, shortened.
        let event = |line: &str| engine_event(serde_json::from_str(line).unwrap());
        let service = |id: &str| Some(EngineEvent::Service { id: id.into() });
        assert_eq!(
            event(
                r#"{"Type":"service","Action":"update","Actor":{"ID":"wp8s","Attributes":{"name":"demo_app","updatestate.new":"completed","updatestate.old":"updating"}},"scope":"swarm","time":1796023356,"timeNano":1796023356793181807}"#
            ),
            service("wp8s")
        );
        assert_eq!(
            event(
                r#"{"status":"start","id":"522a","from":"local/busybox:1","Type":"container","Action":"start","Actor":{"ID":"522a","Attributes":{"com.docker.stack.namespace":"demo","com.docker.swarm.service.id":"wp8s","com.docker.swarm.task.id":"lb73","image":"local/busybox:1","name":"demo_app.1.lb73"}},"scope":"local","time":1796023351,"timeNano":1796023351793181807}"#
            ),
            Some(EngineEvent::Task {
                service_id: "wp8s".into()
            })
        );
        assert_eq!(
            event(
                r#"{"Type":"node","Action":"update","Actor":{"ID":"8ykx","Attributes":{"name":"vm","state.new":"down","state.old":"ready"}},"scope":"swarm","time":1,"timeNano":1}"#
            ),
            Some(EngineEvent::Node)
        );
        // A container that is no task, and events of other kinds, are not ours.
        assert_eq!(
            event(
                r#"{"Type":"container","Action":"die","Actor":{"ID":"9e28","Attributes":{"name":"plain"}},"scope":"local","time":1,"timeNano":1}"#
            ),
            None
        );
        assert_eq!(
            event(
                r#"{"Type":"secret","Action":"create","Actor":{"ID":"s1","Attributes":{"name":"demo_db_v2"}},"scope":"swarm","time":1,"timeNano":1}"#
            ),
            None
        );
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
        assert_eq!(base64_encode(&[0xfb, 0xff, 0x00, 0x0a]), "+/8ACg==");
    }

    #[test]
    fn version_prefix_goes_before_the_path_once() {
        assert_eq!(
            versioned_uri("unix://2f7661722f72756e/services?filters=x", "/v1.41").as_deref(),
            Some("unix://2f7661722f72756e/v1.41/services?filters=x")
        );
        assert_eq!(
            versioned_uri("http://127.0.0.1:2375/volumes", "/v1.41").as_deref(),
            Some("http://127.0.0.1:2375/v1.41/volumes")
        );
        assert_eq!(
            versioned_uri("http://127.0.0.1:2375/v1.44/info", "/v1.41"),
            None
        );
    }

    #[test]
    fn http_errors_map_to_engine_errors() {
        assert_eq!(
            api_error(404, "service x not found".into()),
            EngineError::NotFound("service x not found".into())
        );
        // A swarm network removed a moment ago is still listed; removing it again gives 500.
        assert_eq!(
            api_error(500, "network qbr0pn0g96x7bl9rfh21ukkk7 not found".into()),
            EngineError::NotFound("network qbr0pn0g96x7bl9rfh21ukkk7 not found".into())
        );
        assert!(matches!(
            api_error(
                500,
                "rpc error: code = NotFound desc = secret abc not found".into()
            ),
            EngineError::NotFound(_)
        ));
        assert_eq!(
            api_error(409, "secret x already exists".into()),
            EngineError::Conflict("secret x already exists".into())
        );
        assert!(matches!(
            api_error(
                500,
                "rpc error: code = Unknown desc = update out of sequence".into()
            ),
            EngineError::OutOfSequence(_)
        ));
        assert!(matches!(
            api_error(
                400,
                "rpc error: code = InvalidArgument desc = secret 'a' is in use by the following \
                 service: b"
                    .into()
            ),
            EngineError::Conflict(_)
        ));
        assert_eq!(
            api_error(400, "bad".into()),
            EngineError::Api {
                status: 400,
                message: "bad".into()
            }
        );
    }

    #[test]
    fn service_spec_round_trips_without_inventing_fields() {
        let spec = json!({
            "Name": "demo_app",
            "Labels": {"com.docker.stack.namespace": "demo"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "local/busybox:1",
                    "Command": ["sh", "-c", "sleep 1"],
                    "Secrets": [{
                        "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292},
                        "SecretID": "abc",
                        "SecretName": "demo_db_v1"
                    }]
                },
                "Networks": [{"Target": "net", "Aliases": ["app"]}],
                "ForceUpdate": 0
            },
            "Mode": {"Global": {}},
            "EndpointSpec": {"Mode": "vip"}
        });
        let typed: ServiceSpec = from_spec(&spec, "service spec", &[]).unwrap();
        assert_eq!(to_spec(&typed).unwrap(), spec);
    }

    #[test]
    fn unknown_members_are_refused_not_dropped() {
        let spec = json!({
            "Name": "x",
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Imgae": "typo"}}
        });
        let err = from_spec::<ServiceSpec>(&spec, "service spec", &[]).unwrap_err();
        assert!(
            err.to_string().contains("TaskTemplate.ContainerSpec.Imgae"),
            "{err}"
        );
        let network = json!({"Name": "n", "Driver": "overlay", "CheckDuplicate": true});
        let request: NetworkCreateRequest =
            from_spec(&network, "network spec", IGNORED_NETWORK_FIELDS).unwrap();
        assert_eq!(request.driver.as_deref(), Some("overlay"));
    }

    #[test]
    fn inspect_spelling_of_the_health_check_is_accepted() {
        let spec = json!({
            "Name": "x",
            "TaskTemplate": {"ContainerSpec": {
                "Image": "i",
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000}
            }}
        });
        let typed = bollard_service_spec(&spec).unwrap();
        let sent = to_spec(&typed).unwrap();
        assert_eq!(
            sent["TaskTemplate"]["ContainerSpec"]["HealthCheck"]["Test"],
            json!(["CMD", "true"])
        );
    }

    #[test]
    fn services_are_read_from_plain_json_with_previous_spec() {
        let answer = json!({
            "ID": "svc1",
            "Version": {"Index": 36},
            "Spec": {"Name": "demo_app", "Labels": {}, "TaskTemplate": {"ForceUpdate": 0}},
            "PreviousSpec": {"Name": "demo_app", "Labels": {"old": null}},
            "UpdateStatus": {"State": "completed", "Message": "update completed"}
        });
        let state = service_state(&answer);
        assert_eq!(state.id, "svc1");
        assert_eq!(state.name, "demo_app");
        assert_eq!(state.version, 36);
        assert_eq!(state.spec, answer["Spec"]);
        assert_eq!(
            state.previous_spec,
            Some(json!({"Name": "demo_app", "Labels": {}}))
        );
        assert_eq!(state.update_status.unwrap().state, "completed");
        let fresh = service_state(&json!({"ID": "s", "Version": {"Index": 1}, "Spec": {}}));
        assert_eq!((fresh.previous_spec, fresh.update_status), (None, None));
    }

    #[test]
    fn tasks_are_read_from_plain_json() {
        let answer = json!({
            "ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 2,
            "CreatedAt": "2026-11-29T15:53:51.78Z", "DesiredState": "shutdown",
            "Status": {"State": "failed", "Message": "started", "Err": "task: non-zero exit (1)"},
            "Spec": {"ContainerSpec": {"Image": "i"}}
        });
        let task = task_state(&answer);
        assert_eq!(task.slot, Some(2));
        assert_eq!(task.state, "failed");
        assert_eq!(task.desired_state, "shutdown");
        assert_eq!(task.error.as_deref(), Some("task: non-zero exit (1)"));
        assert_eq!(task.spec, json!({"ContainerSpec": {"Image": "i"}}));
        let global = task_state(&json!({"ID": "t2", "Status": {"Err": ""}}));
        assert_eq!((global.slot, global.error), (None, None));
    }

    #[test]
    fn raw_reads_redirect_the_carrier_request() {
        assert_eq!(
            redirected_uri("unix://2f7661722f/v1.41/_ping", "/v1.41/services/abc").as_deref(),
            Some("unix://2f7661722f/v1.41/services/abc")
        );
        assert_eq!(
            redirected_uri("https://h:2376/_ping", "/v1.41/info").as_deref(),
            Some("https://h:2376/v1.41/info")
        );
        assert_eq!(
            percent_encode(r#"{"label":["a=b c"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D"
        );
        assert_eq!(percent_encode("demo_app-1.x~"), "demo_app-1.x~");
    }

    #[test]
    fn nulls_are_stripped_recursively() {
        let mut value = json!({"a": null, "b": {"c": null, "d": [ {"e": null, "f": 1} ]}});
        strip_nulls(&mut value);
        assert_eq!(value, json!({"b": {"d": [{"f": 1}]}}));
    }
}
