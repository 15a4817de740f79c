//! The swarm managers a command may talk to: every engine the flags name (`-H` given several
//! times names several managers of one swarm), the first that answers as a manager connected,
//! the others kept for a deploy that loses it ([`Failover`]).

use super::resolve_endpoints;
use crate::deploy::Failover;
use crate::engine::docker::DockerEngine;
use crate::engine::endpoint::{Endpoint, EngineFlags};
use crate::engine::{Engine, Target};
use crate::error::{CliError, ErrorKind};

/// The managers named, and the one in use.
pub(super) struct Managers {
    /// Every engine named, in the order given.
    endpoints: Vec<Endpoint>,
    /// The index of the one in use.
    current: usize,
    /// The one in use, as outputs name it; the swarm any next one must belong to.
    pub target: Target,
}

/// Connects to the first engine the flags name that answers as a swarm manager. With one
/// engine named, its own error is the error; with several, each one's.
pub(super) async fn connect_first(
    flags: &EngineFlags,
) -> Result<(DockerEngine, Managers), CliError> {
    let endpoints = resolve_endpoints(flags)?;
    let mut failures = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        match connect_manager(endpoint).await {
            Ok((docker, target)) => {
                let managers = Managers {
                    endpoints,
                    current: index,
                    target,
                };
                return Ok((docker, managers));
            }
            Err(error) if endpoints.len() == 1 => return Err(error),
            Err(error) => failures.push(format!("{}: {}", endpoint.address, error.message)),
        }
    }
    Err(CliError::new(
        ErrorKind::Engine,
        format!(
            "none of the engines given answers as a swarm manager ({})",
            failures.join("; ")
        ),
    )
    .hint("give the addresses of the swarm's managers with -H, one per -H"))
}

/// Connects to `endpoint` and checks that it is a swarm manager.
async fn connect_manager(endpoint: &Endpoint) -> Result<(DockerEngine, Target), CliError> {
    let docker = DockerEngine::connect(endpoint).await?;
    let info = docker.info().await?;
    if info.swarm_state != "active" {
        return Err(CliError::new(
            ErrorKind::Engine,
            format!(
                "the Docker engine at {} is not part of a swarm (state: {})",
                endpoint.address, info.swarm_state
            ),
        )
        .hint("run `docker swarm init`, or choose a swarm manager (--context, -H, DOCKER_HOST)"));
    }
    if !info.is_manager {
        return Err(CliError::new(
            ErrorKind::Engine,
            format!("{} is not a swarm manager", endpoint.address),
        )
        .hint("deploy from a manager node, or choose one (--context, -H, DOCKER_HOST)"));
    }
    let target = Target {
        context: endpoint.context.clone(),
        endpoint: endpoint.address.clone(),
        cluster_id: info.cluster_id,
        node: info.node_name,
    };
    Ok((docker, target))
}

impl Failover<DockerEngine> for Managers {
    /// The next engine named after the one in use (wrapping around, never the lost one) that
    /// answers as a manager of the same swarm.
    async fn next_manager(&mut self) -> Option<(DockerEngine, String)> {
        let count = self.endpoints.len();
        for offset in 1..count {
            let index = (self.current + offset) % count;
            let endpoint = &self.endpoints[index];
            match connect_manager(endpoint).await {
                Ok((docker, target)) if target.cluster_id == self.target.cluster_id => {
                    let named = format!("{} (node {})", target.endpoint, target.node);
                    self.current = index;
                    self.target = target;
                    return Some((docker, named));
                }
                Ok((_, target)) => tracing::warn!(
                    "{} is a manager of another swarm ({}); not going on with it",
                    endpoint.address,
                    target.cluster_id
                ),
                Err(error) => tracing::info!(
                    "{} does not answer as a manager: {}",
                    endpoint.address,
                    error.message
                ),
            }
        }
        None
    }
}
