//! What a plan or deploy starts from: a valid stack name, the loaded and checked project,
//! the secret and config contents read from disk, and the fingerprinter. Every problem the
//! engine would refuse is found here, before anything reads or writes the swarm.

use std::path::Path;

use std::collections::HashMap;

use crate::compose::validate::{dns_name_problem, swarm_name_problem, VERSION_SUFFIX_ROOM};
use crate::compose::{self, LoadOptions, Loaded};
use crate::contents::Contents;
use crate::convert::ConvertedProject;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::Node;
use crate::model::{NameOrigin, ObjectKind, Project};
use crate::plan::base_name;
use crate::plan::fingerprint::Fingerprinter;
use crate::swarm::namespace::Namespace;

/// A project ready to plan and deploy as one stack.
pub struct Prepared {
    /// The stack.
    pub namespace: Namespace,
    /// The loaded project (and its warnings).
    pub loaded: Loaded,
    /// Its services and networks converted once, for every plan of this run.
    pub converted: ConvertedProject,
    /// The data of every secret and config with a file, environment or content source.
    pub contents: Contents,
    /// Makes and checks fingerprints of that data.
    pub fingerprinter: Fingerprinter,
}

/// Why a project cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The stack name is not one Swarm accepts.
    #[error("invalid stack name {stack:?}: {problem}")]
    StackName {
        /// The name given.
        stack: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No stack name: none given, no `COMPOSE_PROJECT_NAME`, no top-level `name:`.
    #[error("no stack name: give one after the command, set a top-level `name:` in the compose file, or set COMPOSE_PROJECT_NAME")]
    NoStackName,
    /// The compose files (or the files they name) have errors; every one is listed.
    #[error("the compose files have {} errors", .0.errors().count())]
    Invalid(Diagnostics),
}

/// Room the stack's own objects need after the stack name: `_stackroll-seal_<serial>` (the
/// longest; `_stackroll-lock` is shorter), with a serial of up to 6 digits.
const STACK_SUFFIX_ROOM: usize = "_stackroll-seal_".len() + 6;

/// The stack `stack` names, if Swarm accepts it as a name prefix with room for the names of
/// the stack's own lock and seal.
pub fn namespace(stack: &str) -> Result<Namespace, PrepareError> {
    let problem = match stack.contains('.') {
        true => Some("'.' is not allowed: the stack's service and network names start with it, and Swarm refuses '.' in those".to_string()),
        false => swarm_name_problem(stack, STACK_SUFFIX_ROOM),
    };
    match problem {
        Some(problem) => Err(PrepareError::StackName {
            stack: stack.to_string(),
            problem: problem.replace("the version suffix `_vN`", "`_stackroll-seal_N`"),
        }),
        None => Ok(Namespace(stack.to_string())),
    }
}

/// A project loaded and converted (once) for one stack.
pub struct LoadedStack {
    /// The loaded project; its warnings include the fields stackroll ignores.
    pub loaded: Loaded,
    /// Its services and networks converted for the stack.
    pub converted: ConvertedProject,
}

/// Loads the project and converts it for `namespace`.
pub fn load(options: &LoadOptions, namespace: &Namespace) -> Result<LoadedStack, PrepareError> {
    let loaded = compose::load(options).map_err(PrepareError::Invalid)?;
    Ok(convert(loaded, namespace))
}

/// Loads the project and converts it for the stack it names: `options.project_name` (the stack
/// argument), else `COMPOSE_PROJECT_NAME`, else the top-level `name:` (see
/// [`compose::project_name`]); the name must be one Swarm accepts.
pub fn load_stack(options: &LoadOptions) -> Result<(Namespace, LoadedStack), PrepareError> {
    let loaded = compose::load(options).map_err(PrepareError::Invalid)?;
    let name = loaded
        .project
        .name
        .as_ref()
        .ok_or(PrepareError::NoStackName)?;
    let stack = namespace(&name.value).map_err(|error| match (error, &name.origin) {
        (PrepareError::StackName { stack, problem }, NameOrigin::Argument) => {
            PrepareError::StackName { stack, problem }
        }
        (PrepareError::StackName { stack, problem }, origin) => PrepareError::StackName {
            stack,
            problem: format!("{problem} (the name comes from {origin})"),
        },
        (other, _) => other,
    })?;
    let loaded = convert(loaded, &stack);
    Ok((stack, loaded))
}

fn convert(mut loaded: Loaded, namespace: &Namespace) -> LoadedStack {
    let converted = ConvertedProject::new(namespace, &loaded.project);
    loaded.warnings.extend(converted.warnings.clone());
    LoadedStack { loaded, converted }
}

/// Checks the loaded project as stack `namespace` and reads its secret and config contents
/// (relative to `working_dir`).
pub fn prepare(
    namespace: Namespace,
    stack: LoadedStack,
    working_dir: &Path,
    fingerprinter: Fingerprinter,
) -> Result<Prepared, PrepareError> {
    let LoadedStack { loaded, converted } = stack;
    let mut problems = stack_name_problems(&loaded.project, &namespace, &converted);
    problems.extend(converted.problems.clone());
    if problems.has_errors() {
        return Err(PrepareError::Invalid(problems));
    }
    let contents = Contents::read(&loaded, working_dir).map_err(PrepareError::Invalid)?;
    Ok(Prepared {
        namespace,
        loaded,
        converted,
        contents,
        fingerprinter,
    })
}

/// Names the stack would create that Swarm would refuse, and definitions that would share one.
fn stack_name_problems(
    project: &Project,
    namespace: &Namespace,
    converted: &ConvertedProject,
) -> Diagnostics {
    let mut problems = Diagnostics::default();
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        object_name_problems(project, namespace, kind, &mut problems);
    }
    for service in project.services.values() {
        let name = namespace.scope(&service.name);
        if let Some(problem) = dns_name_problem(&name) {
            problems.push(
                Diagnostic::error(
                    Some(service.location.clone()),
                    format!("invalid service name {name:?}: {problem}"),
                )
                .field(format!("services.{}", service.name))
                .hint(DNS_NAME_HINT),
            );
        }
    }
    network_name_problems(project, namespace, converted, &mut problems);
    problems
}

/// What Swarm accepts as a service or network name.
const DNS_NAME_HINT: &str = "service and network names are at most 63 characters of letters, digits, `-` and `_`, starting and ending with a letter or digit";

/// The versioned names of `kind` the stack would create: each one Swarm accepts, and no two
/// definitions sharing one.
fn object_name_problems(
    project: &Project,
    namespace: &Namespace,
    kind: ObjectKind,
    problems: &mut Diagnostics,
) {
    let mut first_with_base: HashMap<String, &str> = HashMap::new();
    for definition in project.definitions(kind).values() {
        if definition.is_external() {
            continue;
        }
        let base = base_name(namespace, definition);
        let field = format!("{}.{}", kind.plural(), definition.key);
        if let Some(other) = first_with_base.insert(base.clone(), &definition.key) {
            problems.push(
                Diagnostic::error(
                    Some(definition.location.clone()),
                    format!(
                        "{field} and {}.{other} would both be versioned as `{base}_v<N>`",
                        kind.plural()
                    ),
                )
                .field(field.clone())
                .hint("give one of them another `name:`"),
            );
        }
        if definition.name.is_some() {
            continue; // the loader checks a `name:`
        }
        if let Some(problem) = swarm_name_problem(&base, VERSION_SUFFIX_ROOM) {
            problems.push(
                Diagnostic::error(
                    Some(definition.location.clone()),
                    format!("invalid swarm name {base:?}: {problem}"),
                )
                .field(field)
                .hint("use a shorter key or stack name, or set `name:`"),
            );
        }
    }
}

/// The names of the networks the stack creates, each one Swarm accepts.
fn network_name_problems(
    project: &Project,
    namespace: &Namespace,
    converted: &ConvertedProject,
    problems: &mut Diagnostics,
) {
    let (Some(created), Some(declared)) = (
        converted
            .networks
            .as_ref()
            .ok()
            .map(|networks| &networks.created),
        project.networks.as_ref().and_then(Node::as_map),
    ) else {
        return;
    };
    for (key, entry) in declared {
        let given = entry
            .value
            .as_map()
            .and_then(|map| map.get("name"))
            .and_then(|name| name.value.scalar_text());
        let name = given.map_or_else(|| namespace.scope(key), str::to_string);
        if !created.contains_key(&name) {
            continue; // external
        }
        if let Some(problem) = dns_name_problem(&name) {
            problems.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("invalid network name {name:?}: {problem}"),
                )
                .field(format!("networks.{key}"))
                .hint(DNS_NAME_HINT),
            );
        }
    }
}
