//! Converting the Compose model into Swarm API specs the way `docker stack deploy`
//! (docker/cli's cli/compose/convert, 20.10) does: names scoped by the stack, the stack label on
//! everything, references sorted so that an unchanged file gives an identical spec.
//!
//! A project is converted once ([`ConvertedProject`]); planning then points each service's
//! secret and config references at the versions it picked (`references`).
//!
//! - `service`: the ServiceSpec (container, task, mode, update settings, endpoint);
//! - `references`: secret and config references, sorted, then linked to objects;
//! - `deploy`, `ports`, `volumes`, `network`, `envfile`: the field groups;
//! - `values`, `units`, `duration`: reading values as docker/cli's loader reads them;
//! - `api`: the fields a newer engine API must know, refused once the engine's version is known.
//! - `provenance`: which Compose field produced which part of a spec, recorded as it is built.

mod api;
mod deploy;
mod duration;
mod envfile;
mod network;
mod ports;
mod provenance;
mod references;
mod service;
mod units;
mod values;
mod volumes;

#[cfg(test)]
mod tests;

pub use api::{ApiRequirement, ApiVersion, Feature};
pub use duration::parse_duration;
pub use network::{network_specs, NetworkSpecs};
pub use provenance::{Provenance, Traced};
pub use references::{ResolvedObject, ResolvedObjects};
use service::convert;
pub use service::{ConvertedService, CONVERTED_SERVICE_FIELDS, IGNORED_SERVICE_FIELDS};
pub use units::shell_split;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Project, Service};
use crate::swarm::namespace::Namespace;

/// A project converted once, after loading: every service and the networks, what is wrong
/// with them and what docker stack deploy would ignore. The checks, the warnings and every
/// plan of a deploy read this one value.
#[derive(Debug, Clone)]
pub struct ConvertedProject {
    /// Each service by name, in document order.
    pub services: IndexMap<String, ConvertedService>,
    /// The networks services use, or why they cannot be converted.
    pub networks: Result<NetworkSpecs, Diagnostics>,
    /// Every problem converting the project hits (services, networks, volume definitions),
    /// each reported once even when several services hit it. Object names and IDs do not
    /// matter for these.
    pub problems: Diagnostics,
    /// One warning per service that uses fields docker stack deploy ignores.
    pub warnings: Diagnostics,
    /// Where services use fields that need an engine API newer than 1.41.
    pub requirements: Vec<ApiRequirement>,
}

impl ConvertedProject {
    /// Converts every service and network of `project` for the stack `namespace`.
    pub fn new(namespace: &Namespace, project: &Project) -> ConvertedProject {
        let services: IndexMap<String, ConvertedService> = project
            .services
            .values()
            .map(|service| (service.name.clone(), convert(namespace, service, project)))
            .collect();
        let networks = network_specs(namespace, project);
        let mut found = Diagnostics::default();
        for service in services.values() {
            if service.problems.has_errors() {
                found.extend(service.problems.clone());
            }
        }
        if let Err(problems) = &networks {
            found.extend(problems.clone());
        }
        found.extend(volumes::check_definitions(project));
        let requirements = services
            .values()
            .flat_map(|service| service.requirements.iter().cloned())
            .collect();
        let mut warnings = Diagnostics::default();
        for (service, converted) in project.services.values().zip(services.values()) {
            if let Some(warning) = ignored_warning(service, &converted.ignored) {
                warnings.push(warning);
            }
        }
        ConvertedProject {
            services,
            networks,
            problems: unique(found),
            warnings,
            requirements,
        }
    }

    /// The fields an engine speaking API `api_version` (as negotiated) would not know, as
    /// errors at their places: each needs a newer engine.
    pub fn unsupported_by(&self, api_version: &str) -> Diagnostics {
        api::unsupported(&self.requirements, api_version)
    }
}

/// The warnings of [`ConvertedProject`] for a command that has no stack (`config`): what docker
/// stack deploy ignores does not depend on the stack's name.
pub fn warnings(project: &Project) -> Diagnostics {
    ConvertedProject::new(&Namespace("stack".into()), project).warnings
}

/// Each diagnostic once, first occurrence first.
fn unique(found: Diagnostics) -> Diagnostics {
    let mut unique = Diagnostics::default();
    let mut seen: Vec<Diagnostic> = Vec::new();
    for diagnostic in found.iter() {
        if !seen.contains(diagnostic) {
            seen.push(diagnostic.clone());
            unique.push(diagnostic.clone());
        }
    }
    unique
}

/// The warning for a service that uses fields `docker stack deploy` accepts but ignores
/// (`build`, `depends_on`, `container_name`, ..., `restart` when `deploy.restart_policy` is
/// set, a host IP in a port, per-network addresses, ...), located at the service's key.
fn ignored_warning(service: &Service, ignored: &[String]) -> Option<Diagnostic> {
    if ignored.is_empty() {
        return None;
    }
    Some(
        Diagnostic::warning(
            Some(service.location.clone()),
            format!(
                "docker stack deploy ignores {} of service \"{}\": {}",
                if ignored.len() == 1 {
                    "this field"
                } else {
                    "these fields"
                },
                service.name,
                ignored.join(", ")
            ),
        )
        .field(format!("services.{}", service.name))
        .hint("Swarm has no equivalent for them: remove them, or keep them for docker compose"),
    )
}
