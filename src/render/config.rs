//! `stackroll config`: the resolved project as JSON or YAML. Sources show where data comes
//! from (absolute path, variable name, external name), never the data.

use serde_json::{json, Map, Value};

use crate::compose::yaml;
use crate::model::{Definition, FileReference, Project, RotationPolicy, RotationStep, Source};

/// Output format of `stackroll config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigFormat {
    /// YAML, like `docker stack config`.
    Yaml,
    /// JSON.
    Json,
}

/// The resolved project as a JSON value.
pub fn project_to_json(project: &Project) -> Value {
    let mut top = Map::new();
    if let Some(name) = &project.name {
        top.insert("name".into(), name.value.clone().into());
    }
    let services = project
        .services
        .values()
        .map(|service| {
            let mut fields: Map<String, Value> = service
                .fields
                .iter()
                .map(|(key, node)| (key.clone(), node.to_json()))
                .collect();
            fields.insert(
                "secrets".into(),
                service.secrets.iter().map(reference_to_json).collect(),
            );
            fields.insert(
                "configs".into(),
                service.configs.iter().map(reference_to_json).collect(),
            );
            (service.name.clone(), Value::Object(fields))
        })
        .collect::<Map<_, _>>();
    top.insert("services".into(), Value::Object(services));
    for (key, definitions) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        let map = definitions
            .iter()
            .map(|(name, d)| (name.clone(), definition_to_json(d)))
            .collect();
        top.insert(key.into(), Value::Object(map));
    }
    if let Some(networks) = &project.networks {
        top.insert("networks".into(), networks.to_json());
    }
    if let Some(volumes) = &project.volumes {
        top.insert("volumes".into(), volumes.to_json());
    }
    Value::Object(top)
}

/// Renders the project in `format`, ending with a newline.
pub fn render_project(project: &Project, format: ConfigFormat) -> String {
    let value = project_to_json(project);
    match format {
        ConfigFormat::Json => {
            let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
            text.push('\n');
            text
        }
        ConfigFormat::Yaml => yaml::to_yaml_string(&value),
    }
}

fn reference_to_json(reference: &FileReference) -> Value {
    json!({
        "source": reference.source.value,
        "target": reference.target,
        "uid": reference.uid,
        "gid": reference.gid,
        "mode": reference.mode,
    })
}

fn definition_to_json(definition: &Definition) -> Value {
    let mut map = Map::new();
    match &definition.source {
        Source::File(path) => {
            map.insert("file".into(), path.value.display().to_string().into());
        }
        Source::Environment { variable, .. } => {
            map.insert("environment".into(), variable.value.clone().into());
        }
        Source::External => {
            map.insert("external".into(), true.into());
        }
        Source::Content(content) => {
            map.insert("content_bytes".into(), content.len().into());
        }
        Source::Driver(driver) => {
            map.insert("driver".into(), driver.clone().into());
        }
    }
    if let Some(name) = &definition.name {
        map.insert("name".into(), name.value.clone().into());
    }
    if !definition.labels.is_empty() {
        map.insert("labels".into(), json!(definition.labels));
    }
    if !definition.driver_opts.is_empty() {
        map.insert("driver_opts".into(), json!(definition.driver_opts));
    }
    if let Some(template_driver) = &definition.template_driver {
        map.insert("template_driver".into(), template_driver.clone().into());
    }
    if let Some(rotation) = &definition.rotation {
        map.insert("x-stackroll-rotation".into(), rotation_to_json(rotation));
    }
    Value::Object(map)
}

fn rotation_to_json(rotation: &RotationPolicy) -> Value {
    let step = |step: &Option<RotationStep>| {
        step.as_ref().map(|step| {
            let mut exec = Map::new();
            exec.insert("service".into(), step.service.value.clone().into());
            exec.insert("command".into(), json!(step.command));
            if let Some(user) = &step.user {
                exec.insert("user".into(), user.clone().into());
            }
            json!({ "exec": exec })
        })
    };
    let owners: Vec<Value> = rotation
        .owners
        .iter()
        .map(|owner| {
            json!({
                "service": owner.service.value,
                "previous_target": owner.previous_target.value,
            })
        })
        .collect();
    let mut map = Map::new();
    map.insert("owners".into(), owners.into());
    for (key, value) in [
        ("apply", step(&rotation.apply)),
        ("finalize", step(&rotation.finalize)),
    ] {
        if let Some(value) = value {
            map.insert(key.into(), value);
        }
    }
    Value::Object(map)
}
