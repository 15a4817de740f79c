//! The project name, as Compose decides it (compose-go `cli/options.go` and `loader.projectName`):
//! the name given on the command line (the stack argument), else `COMPOSE_PROJECT_NAME` (from
//! the process environment or the env files), else the top-level `name:` of the last file that
//! sets one, interpolated. The result is what `${COMPOSE_PROJECT_NAME}` reads in the files.
//! Unlike compose-go, a name from a file is not lower-cased or stripped: Swarm's stack-name
//! rules are checked on it as written, so a name is never silently changed.

use super::environment::Environment;
use super::interpolate::{interpolate_within, MAX_OUTPUT_BYTES};
use crate::diagnostic::Location;
use crate::model::node::Node;
use crate::model::{NameOrigin, ProjectName};

/// The variable that names the project.
pub const PROJECT_NAME_VARIABLE: &str = "COMPOSE_PROJECT_NAME";

/// The project name from `given` (the command line), the environment or the documents' `name:`
/// (uninterpolated documents, in file order); `None` when there is none.
pub fn resolve(
    given: Option<&str>,
    environment: &Environment,
    documents: &[Node],
) -> Option<ProjectName> {
    if let Some(name) = given {
        return Some(ProjectName {
            value: name.to_string(),
            origin: NameOrigin::Argument,
        });
    }
    if let Some(name) = environment
        .get(PROJECT_NAME_VARIABLE)
        .filter(|name| !name.is_empty())
    {
        return Some(ProjectName {
            value: name,
            origin: NameOrigin::Environment,
        });
    }
    let (text, location) = documents.iter().rev().find_map(top_level_name)?;
    // A `name:` that fails to interpolate is reported where the documents are interpolated.
    let value = interpolate_within(&text, &|name| environment.get(name), MAX_OUTPUT_BYTES)
        .ok()?
        .value;
    (!value.is_empty()).then_some(ProjectName {
        value,
        origin: NameOrigin::File(location),
    })
}

/// A document's top-level `name:` text and where it is.
fn top_level_name(document: &Node) -> Option<(String, Location)> {
    let entry = document.as_map()?.get("name")?;
    let text = entry.value.scalar_text()?;
    Some((text.to_string(), entry.value.location.clone()))
}
