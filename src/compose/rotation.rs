//! The `x-stackroll-rotation:` extension on a secret or config definition: reading it into a
//! [`RotationPolicy`] and checking it against the services. The syntax is a public contract
//! (README "Rotating credentials held by a service"):
//!
//! ```yaml
//! x-stackroll-rotation:
//!   owners:
//!     - service: db
//!       previous_target: old_db_password
//!   apply:
//!     exec: { service: db, command: [sh, /rotate.sh], user: "0" }
//!   finalize:
//!     exec: { service: db, command: [sh, /revoke.sh] }
//! ```

use indexmap::IndexMap;

use super::scalars::string_field;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::{Entry, Node, Value};
use crate::model::{
    Definition, Located, ObjectKind, Project, RotationOwner, RotationPolicy, RotationStep, Source,
};

/// The extension key on a definition.
pub const KEY: &str = "x-stackroll-rotation";

const POLICY_KEYS: &[&str] = &["owners", "apply", "finalize"];
const OWNER_KEYS: &[&str] = &["service", "previous_target"];
const STEP_KEYS: &[&str] = &["exec"];
const EXEC_KEYS: &[&str] = &["service", "command", "user"];

/// Reads an `x-stackroll-rotation:` entry of the definition at `field`. Problems go to `diagnostics`.
pub fn parse(entry: &Entry, field: &str, diagnostics: &mut Diagnostics) -> Option<RotationPolicy> {
    let field = format!("{field}.{KEY}");
    let map = mapping(&entry.value, &field, POLICY_KEYS, diagnostics)?;
    let owners = match map.get("owners") {
        Some(owners) => parse_owners(&owners.value, &field, diagnostics),
        None => {
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    "x-stackroll-rotation has no owners",
                )
                .field(field.clone())
                .hint("list the services that hold the credential under `owners:`"),
            );
            None
        }
    };
    // Every part is read before giving up, so all of its problems are reported together.
    let apply = step(map.get("apply"), &format!("{field}.apply"), diagnostics);
    let finalize = step(
        map.get("finalize"),
        &format!("{field}.finalize"),
        diagnostics,
    );
    Some(RotationPolicy {
        owners: owners?,
        apply: apply?,
        finalize: finalize?,
        location: entry.key_location.clone(),
    })
}

fn parse_owners(
    node: &Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<RotationOwner>> {
    let field = format!("{field}.owners");
    let Value::Seq(items) = &node.value else {
        diagnostics.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("owners must be a list, not {}", node.kind_name()),
            )
            .field(field)
            .hint("write `- service: NAME` items with `previous_target:`"),
        );
        return None;
    };
    if items.is_empty() {
        diagnostics.push(
            Diagnostic::error(Some(node.location.clone()), "owners is empty")
                .field(field)
                .hint("list at least one service that holds the credential"),
        );
        return None;
    }
    let owners: Vec<Option<RotationOwner>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = format!("{field}[{index}]");
            let map = mapping(item, &field, OWNER_KEYS, diagnostics)?;
            let service = required_string(map, item, "service", &field, diagnostics);
            let previous_target =
                required_string(map, item, "previous_target", &field, diagnostics);
            Some(RotationOwner {
                service: service?,
                previous_target: previous_target?,
            })
        })
        .collect();
    owners.into_iter().collect()
}

/// Reads `apply:` or `finalize:`. `Some(None)`: not written; `None`: written wrongly.
fn step(
    entry: Option<&Entry>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Option<RotationStep>> {
    let Some(entry) = entry else {
        return Some(None);
    };
    let map = mapping(&entry.value, field, STEP_KEYS, diagnostics)?;
    let Some(exec) = map.get("exec") else {
        diagnostics.push(
            Diagnostic::error(Some(entry.key_location.clone()), "the step has no `exec:`")
                .field(field)
                .hint("write `exec: { service: OWNER, command: [...] }`"),
        );
        return None;
    };
    let field = format!("{field}.exec");
    let map = mapping(&exec.value, &field, EXEC_KEYS, diagnostics)?;
    let service = required_string(map, &exec.value, "service", &field, diagnostics)?;
    let command = command(map, &exec.value, &field, diagnostics)?;
    let user = match map.get("user") {
        Some(user) => Some(string_field(
            &user.value,
            &format!("{field}.user"),
            diagnostics,
        )?),
        None => None,
    };
    Some(Some(RotationStep {
        service,
        command,
        user,
        location: exec.key_location.clone(),
    }))
}

fn command(
    map: &IndexMap<String, Entry>,
    parent: &Node,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<String>> {
    let field = format!("{field}.command");
    let Some(entry) = map.get("command") else {
        diagnostics.push(
            Diagnostic::error(Some(parent.location.clone()), "the exec has no `command:`")
                .field(field)
                .hint("write the command as a list, e.g. [\"sh\", \"/rotate.sh\"]"),
        );
        return None;
    };
    let node = &entry.value;
    let items = match &node.value {
        Value::Seq(items) if !items.is_empty() => items,
        _ => {
            diagnostics.push(
                Diagnostic::error(
                    Some(node.location.clone()),
                    format!("command must be a non-empty list, not {}", node.kind_name()),
                )
                .field(field)
                .hint("write the command as a list, e.g. [\"sh\", \"-c\", \"...\"]"),
            );
            return None;
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| string_field(item, &format!("{field}[{index}]"), diagnostics))
        .collect()
}

/// The mapping at `node`, with every key checked against `allowed` (`x-` keys pass; an
/// unknown key is an error, and the known ones are still read).
fn mapping<'n>(
    node: &'n Node,
    field: &str,
    allowed: &[&str],
    diagnostics: &mut Diagnostics,
) -> Option<&'n IndexMap<String, Entry>> {
    let Some(map) = node.as_map() else {
        diagnostics.push(
            Diagnostic::error(
                Some(node.location.clone()),
                format!("{field} must be a mapping, not {}", node.kind_name()),
            )
            .field(field)
            .hint(format!("it takes {}", allowed.join(", "))),
        );
        return None;
    };
    for (key, entry) in map {
        if !allowed.contains(&key.as_str()) && !key.starts_with("x-") {
            diagnostics.push(
                Diagnostic::error(
                    Some(entry.key_location.clone()),
                    format!("unknown key \"{key}\""),
                )
                .field(format!("{field}.{key}"))
                .hint(format!("{field} takes {}", allowed.join(", "))),
            );
        }
    }
    Some(map)
}

fn required_string(
    map: &IndexMap<String, Entry>,
    parent: &Node,
    key: &str,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Located<String>> {
    let Some(entry) = map.get(key) else {
        diagnostics.push(
            Diagnostic::error(Some(parent.location.clone()), format!("missing `{key}:`"))
                .field(format!("{field}.{key}"))
                .hint(format!("add `{key}:`")),
        );
        return None;
    };
    let value = string_field(&entry.value, &format!("{field}.{key}"), diagnostics)?;
    if value.is_empty() {
        diagnostics.push(
            Diagnostic::error(
                Some(entry.value.location.clone()),
                format!("`{key}` is empty"),
            )
            .field(format!("{field}.{key}"))
            .hint("write a value"),
        );
        return None;
    }
    Some(Located {
        value,
        location: entry.value.location.clone(),
    })
}

/// Checks every rotation policy against the services: owners exist and mount the object,
/// the old version's target clashes with nothing, steps run in an owner.
pub fn validate(project: &Project, diagnostics: &mut Diagnostics) {
    for kind in [ObjectKind::Secret, ObjectKind::Config] {
        for definition in project.definitions(kind).values() {
            if let Some(policy) = &definition.rotation {
                validate_policy(project, definition, policy, diagnostics);
            }
        }
    }
}

fn validate_policy(
    project: &Project,
    definition: &Definition,
    policy: &RotationPolicy,
    diagnostics: &mut Diagnostics,
) {
    let kind = definition.kind;
    let field = format!("{}.{}.{KEY}", kind.plural(), definition.key);
    if matches!(definition.source, Source::External | Source::Driver(_)) {
        diagnostics.push(
            Diagnostic::error(
                Some(policy.location.clone()),
                format!(
                    "{} \"{}\" is external or driver-backed: stackroll never sees its content, so it cannot rotate it",
                    kind.noun(),
                    definition.key
                ),
            )
            .field(field.clone())
            .hint("remove `x-stackroll-rotation`, or let stackroll create the object from a file"),
        );
        return;
    }
    for (index, owner) in policy.owners.iter().enumerate() {
        let field = format!("{field}.owners[{index}]");
        check_owner(project, definition, owner, &field, diagnostics);
        if policy.owners[..index]
            .iter()
            .any(|earlier| earlier.service.value == owner.service.value)
        {
            diagnostics.push(
                Diagnostic::error(
                    Some(owner.service.location.clone()),
                    format!("service \"{}\" is listed twice", owner.service.value),
                )
                .field(format!("{field}.service"))
                .hint("list each owner once"),
            );
        }
    }
    for (name, step) in [("apply", &policy.apply), ("finalize", &policy.finalize)] {
        let Some(step) = step else { continue };
        if !policy
            .owners
            .iter()
            .any(|owner| owner.service.value == step.service.value)
        {
            let owners: Vec<&str> = policy
                .owners
                .iter()
                .map(|o| o.service.value.as_str())
                .collect();
            diagnostics.push(
                Diagnostic::error(
                    Some(step.service.location.clone()),
                    format!(
                        "the {name} step runs in \"{}\", which is not an owner",
                        step.service.value
                    ),
                )
                .field(format!("{field}.{name}.exec.service"))
                .hint(format!(
                    "only owners have both versions mounted; use one of: {}",
                    owners.join(", ")
                )),
            );
        }
    }
}

fn check_owner(
    project: &Project,
    definition: &Definition,
    owner: &RotationOwner,
    field: &str,
    diagnostics: &mut Diagnostics,
) {
    let kind = definition.kind;
    let Some(service) = project.services.get(&owner.service.value) else {
        let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
        diagnostics.push(
            Diagnostic::error(
                Some(owner.service.location.clone()),
                format!("service \"{}\" is not defined", owner.service.value),
            )
            .field(format!("{field}.service"))
            .hint(format!(
                "owners are services of this stack: {}",
                known.join(", ")
            )),
        );
        return;
    };
    let references = service.references(kind);
    if !references
        .iter()
        .any(|reference| reference.source.value == definition.key)
    {
        diagnostics.push(
            Diagnostic::error(
                Some(owner.service.location.clone()),
                format!(
                    "service \"{}\" does not use {} \"{}\"",
                    service.name,
                    kind.noun(),
                    definition.key
                ),
            )
            .field(format!("{field}.service"))
            .hint(format!(
                "an owner mounts the {} it holds: add it to services.{}.{}",
                kind.noun(),
                service.name,
                kind.plural()
            )),
        );
    }
    let previous = kind.effective_target(&owner.previous_target.value);
    if let Some(clash) = references
        .iter()
        .find(|reference| kind.effective_target(&reference.target) == previous)
    {
        diagnostics.push(
            Diagnostic::error(
                Some(owner.previous_target.location.clone()),
                format!("conflicting target \"{previous}\""),
            )
            .field(format!("{field}.previous_target"))
            .hint(format!(
                "{} already mounts a {} there; the old version needs a path of its own",
                clash.location,
                kind.noun()
            )),
        );
    }
}
