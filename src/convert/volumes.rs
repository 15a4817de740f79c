//! `volumes:` → `ContainerSpec.Mounts`, and the top-level `volumes:` definitions they name, as
//! docker/cli does it: the short syntax parsed by its `ParseVolume`, relative bind sources made
//! absolute (here against the directory of the compose file that wrote them), named volumes
//! scoped by the stack unless `external` or `name:` says otherwise, with the stack label and
//! the definition's driver, options and labels.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::api::{ApiRequirement, Feature};
use super::units::{clean_path, ram_in_bytes};
use super::values::{
    bad, boolean, check_keys, get, integer, mapping, string_map, string_mapping, text,
};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::node::{Node, Typed};
use crate::model::Project;
use crate::swarm::namespace::Namespace;

/// A top-level `volumes:` entry, loaded as docker/cli's `LoadVolumes` loads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct VolumeDefinition {
    /// `name:` (for external volumes: `name:`, the legacy `external.name`, or the key).
    pub name: Option<String>,
    /// Whether the volume exists outside the stack.
    pub external: bool,
    /// `driver:`.
    pub driver: Option<String>,
    /// `driver_opts:` (present even when empty, as docker/cli tells nil from empty).
    pub driver_opts: Option<IndexMap<String, String>>,
    /// `labels:`.
    pub labels: IndexMap<String, String>,
}

/// Reads the top-level volume `key`, reporting problems; None when it is not declared.
pub(super) fn volume_definition(
    project: &Project,
    key: &str,
    problems: &mut Diagnostics,
) -> Option<VolumeDefinition> {
    let section = project.volumes.as_ref()?;
    let entry = section.as_map()?.get(key)?;
    let field = format!("volumes.{key}");
    let node = &entry.value;
    let mut definition = VolumeDefinition::default();
    if node.is_null() {
        return Some(definition);
    }
    let map = mapping(node, &field, problems)?;
    check_keys(
        map,
        &["name", "driver", "driver_opts", "external", "labels"],
        &field,
        problems,
    );
    definition.name = get(map, "name").and_then(|n| text(n, &format!("{field}.name"), problems));
    definition.driver =
        get(map, "driver").and_then(|n| text(n, &format!("{field}.driver"), problems));
    definition.driver_opts = get(map, "driver_opts")
        .and_then(|n| string_map(n, &format!("{field}.driver_opts"), problems));
    definition.labels = get(map, "labels")
        .and_then(|n| string_mapping(n, &format!("{field}.labels"), problems))
        .unwrap_or_default();
    let (external, legacy_name) = external(map, &field, problems);
    definition.external = external;
    if external {
        let conflict = |what: &str| {
            Diagnostic::error(
                Some(entry.key_location.clone()),
                format!(
                "conflicting parameters \"external\" and \"{what}\" specified for volume \"{key}\""
            ),
            )
            .field(field.clone())
            .hint("an external volume is created outside the stack: remove one of them")
        };
        if definition.driver.is_some() {
            problems.push(conflict("driver"));
        } else if definition
            .driver_opts
            .as_ref()
            .is_some_and(|o| !o.is_empty())
        {
            problems.push(conflict("driver_opts"));
        } else if !definition.labels.is_empty() {
            problems.push(conflict("labels"));
        } else if let Some(legacy) = legacy_name {
            if definition.name.is_some() {
                problems.push(
                    Diagnostic::error(Some(entry.key_location.clone()), format!(
                        "volume {key}: volume.external.name and volume.name conflict; only use volume.name"
                    ))
                    .field(field.clone()),
                );
            }
            definition.name = Some(legacy);
        } else if definition.name.is_none() {
            definition.name = Some(key.to_string());
        }
    }
    Some(definition)
}

/// `external:` as docker/cli reads it: a boolean, or the legacy `{name: …}` (which means
/// true). Returns (external, legacy name).
pub(super) fn external(
    map: &IndexMap<String, crate::model::node::Entry>,
    field: &str,
    problems: &mut Diagnostics,
) -> (bool, Option<String>) {
    let Some(node) = get(map, "external") else {
        return (false, None);
    };
    let sub = format!("{field}.external");
    if let Some(inner) = node.as_map() {
        check_keys(inner, &["name"], &sub, problems);
        let name = get(inner, "name").and_then(|n| text(n, &format!("{sub}.name"), problems));
        return (true, name);
    }
    (boolean(node, &sub, problems).unwrap_or(false), None)
}

/// A service volume after docker/cli's loader: the long syntax as written, or the short syntax
/// parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ServiceVolume {
    /// `volume`, `bind`, `tmpfs`, `npipe` or `image`.
    pub kind: String,
    /// Volume name, host path, or empty.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// `consistency:` (long syntax only; the engine ignores it).
    pub consistency: String,
    /// `bind:` options: the propagation, when given.
    pub bind: Option<String>,
    /// `volume:` options: nocopy, when given.
    pub volume: Option<bool>,
    /// `volume.subpath:` (API 1.45), when given.
    pub subpath: Option<String>,
    /// `image:` options of an image mount: the subpath (empty: none), when given (API 1.48).
    pub image: Option<String>,
    /// `tmpfs:` options: the size in bytes (0: none), when given.
    pub tmpfs: Option<i64>,
}

/// docker/cli's `ParseVolume` for the short syntax `[SOURCE:]TARGET[:OPTIONS]`.
pub(super) fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let mut volume = ServiceVolume::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            volume.target = spec.to_string();
            volume.kind = "volume".into();
            return Ok(volume);
        }
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    let chars: Vec<Option<char>> = spec.chars().map(Some).chain([None]).collect();
    for next in chars {
        let is_drive = next == Some(':') && buffer.len() == 1 && buffer[0].is_alphabetic();
        match next {
            Some(c) if is_drive => buffer.push(c),
            Some(':') | None => {
                populate(next, &buffer, &mut volume)
                    .map_err(|problem| format!("invalid spec: {spec}: {problem}"))?;
                buffer.clear();
            }
            Some(c) => buffer.push(c),
        }
    }
    volume.kind = if volume.source.is_empty() || !is_file_path(&volume.source) {
        "volume".into()
    } else {
        "bind".into()
    };
    Ok(volume)
}

fn populate(next: Option<char>, buffer: &[char], volume: &mut ServiceVolume) -> Result<(), String> {
    let text: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons".into());
    }
    if volume.source.is_empty() && next.is_none() {
        volume.target = text;
        return Ok(());
    }
    if volume.source.is_empty() {
        volume.source = text;
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = text;
        return Ok(());
    }
    if next == Some(':') {
        return Err("too many colons".into());
    }
    for option in text.split(',') {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.volume = Some(true),
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                volume.bind = Some(option.to_string())
            }
            _ => {} // docker/cli ignores unknown options (z, Z, cached, delegated, ...)
        }
    }
    Ok(())
}

/// docker/cli's `isFilePath`: what makes a short-syntax source a bind mount.
fn is_file_path(source: &str) -> bool {
    if matches!(source.as_bytes().first(), Some(b'.' | b'/' | b'~')) {
        return true;
    }
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let Some(second) = chars.next() else {
        return false;
    };
    if source.starts_with("\\\\") {
        return true;
    }
    second == ':' && first.is_alphabetic()
}

/// Whether a bind source is absolute, for Unix or Windows (docker/cli checks both).
fn is_absolute(path: &str) -> bool {
    if path.starts_with('/') {
        return true;
    }
    let bytes = path.as_bytes();
    // C:\ or C:/
    if bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return matches!(bytes[2], b'\\' | b'/');
    }
    // \\server\share\...
    if bytes.len() >= 5
        && matches!(bytes[0], b'\\' | b'/')
        && matches!(bytes[1], b'\\' | b'/')
        && !matches!(bytes[2], b'\\' | b'/' | b'.')
    {
        let rest = &path[3..];
        if let Some(at) = rest.find(['\\', '/']) {
            let share = &rest[at + 1..];
            return !share.is_empty()
                && !share.starts_with(['\\', '/', '.'])
                && share.contains(['\\', '/']);
        }
    }
    false
}

/// docker/cli's `resolveVolumePaths` for one bind source: `~` expanded with `home` (the
/// process's `HOME`), a relative path joined to `dir` (and cleaned, as Go's `filepath.Join`
/// does).
pub(super) fn resolve_bind_source(
    source: &str,
    dir: &std::path::Path,
    home: Option<&str>,
) -> String {
    let mut path = source.to_string();
    if path.starts_with('~') {
        if let Some(home) = home {
            path = path.replacen('~', home, 1);
        }
    }
    if is_absolute(&path) {
        return path;
    }
    clean_path(&format!("{}/{path}", dir.to_string_lossy()))
}

/// What converting `volumes:` gives: the mounts, and the options that docker/cli accepts but
/// ignores (for the warning).
#[derive(Debug, Default)]
pub(super) struct Mounts {
    /// The `ContainerSpec.Mounts` items, in document order.
    pub mounts: Vec<Value>,
    /// For each mount, the index of the `volumes:` item it comes from.
    pub items: Vec<usize>,
    /// Ignored options, as field paths.
    pub ignored: Vec<String>,
    /// Mounts an engine older than their API version would not know.
    pub requirements: Vec<ApiRequirement>,
}

/// Converts a service's `volumes:` list.
pub(super) fn mounts(
    node: &Node,
    namespace: &Namespace,
    project: &Project,
    field: &str,
    problems: &mut Diagnostics,
) -> Mounts {
    let mut result = Mounts::default();
    let Some(items) = node.as_seq() else {
        problems.push(bad(
            node,
            field,
            format!("expected a list, not {}", node.kind_name()),
        ));
        return result;
    };
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(mut volume) = service_volume(item, &item_field, &mut result.ignored, problems)
        else {
            continue;
        };
        if volume.kind == "bind" && !volume.source.is_empty() {
            let dir = &item.location.file.dir;
            volume.source =
                resolve_bind_source(&volume.source, dir, project.environment.get("HOME"));
        }
        let Some(mount) = mount(&volume, namespace, project, problems, item, &item_field) else {
            continue;
        };
        let mut require = |feature, field: String| {
            result.requirements.push(ApiRequirement {
                feature,
                field,
                location: item.location.clone(),
            })
        };
        if mount.pointer("/VolumeOptions/Subpath").is_some() {
            require(
                Feature::VolumeSubpath,
                format!("{item_field}.volume.subpath"),
            );
        }
        if mount["Type"] == "image" {
            require(Feature::ImageMount, item_field.clone());
        }
        result.mounts.push(mount);
        result.items.push(index);
    }
    result
}

/// One item of `volumes:`, short or long syntax.
fn service_volume(
    item: &Node,
    field: &str,
    ignored: &mut Vec<String>,
    problems: &mut Diagnostics,
) -> Option<ServiceVolume> {
    if let Some(spec) = item.scalar_text() {
        return match parse_volume(spec) {
            Ok(volume) => Some(volume),
            Err(problem) => {
                problems.push(bad(item, field, problem).hint(
                    "write [SOURCE:]TARGET[:ro], e.g. data:/var/lib/data or ./conf:/etc/app:ro",
                ));
                None
            }
        };
    }
    let map = mapping(item, field, problems)?;
    check_keys(
        map,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind",
            "volume",
            "tmpfs",
            "image",
        ],
        field,
        problems,
    );
    let sub = |key: &str| format!("{field}.{key}");
    let mut volume = ServiceVolume::default();
    match get(map, "type") {
        Some(node) => volume.kind = text(node, &sub("type"), problems)?,
        None => {
            problems.push(
                bad(item, field, "a volume in the long syntax needs `type`")
                    .hint("add `type: volume`, `type: bind` or `type: tmpfs`"),
            );
            return None;
        }
    }
    if let Some(node) = get(map, "source") {
        volume.source = text(node, &sub("source"), problems)?;
    }
    if let Some(node) = get(map, "target") {
        volume.target = text(node, &sub("target"), problems)?;
    }
    if let Some(node) = get(map, "read_only") {
        volume.read_only = boolean(node, &sub("read_only"), problems)?;
    }
    if let Some(node) = get(map, "consistency") {
        // docker/cli sends it, but the engine drops it from service mounts (it only matters
        // to Docker Desktop's file sharing): it is reported as ignored and not sent, so that
        // the spec compares equal to what the engine keeps.
        volume.consistency = text(node, &sub("consistency"), problems)?;
        ignored.push(sub("consistency"));
    }
    if let Some(node) = map.get("bind").map(|e| &e.value) {
        volume.bind = Some(bind_options(node, &sub("bind"), ignored, problems)?);
    }
    if let Some(node) = map.get("volume").map(|e| &e.value) {
        let options = volume_options(node, &sub("volume"), problems)?;
        volume.volume = Some(options.nocopy);
        volume.subpath = options.subpath;
    }
    if let Some(node) = map.get("image").map(|e| &e.value) {
        volume.image = Some(image_options(node, &sub("image"), problems)?);
    }
    if let Some(node) = map.get("tmpfs").map(|e| &e.value) {
        volume.tmpfs = Some(tmpfs_options(node, &sub("tmpfs"), ignored, problems)?);
    }
    Some(volume)
}

/// `bind:` options of a long-syntax volume: the propagation (empty when unset).
fn bind_options(
    node: &Node,
    field: &str,
    ignored: &mut Vec<String>,
    problems: &mut Diagnostics,
) -> Option<String> {
    let options = options_map(node, field, problems)?;
    let mut propagation = String::new();
    for (key, entry) in options {
        let key_field = format!("{field}.{key}");
        match key.as_str() {
            "propagation" => {
                if entry.value.is_null() {
                    continue;
                }
                let value = text(&entry.value, &key_field, problems)?;
                let lower = value.to_ascii_lowercase();
                if !matches!(
                    lower.as_str(),
                    "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave"
                ) {
                    problems.push(
                        bad(
                            &entry.value,
                            &key_field,
                            format!("invalid propagation {value:?}"),
                        )
                        .hint("use rprivate, private, rshared, shared, rslave or slave"),
                    );
                    return None;
                }
                propagation = lower;
            }
            "create_host_path" | "selinux" => ignored.push(key_field),
            other if other.starts_with("x-") => {}
            _ => problems.push(unknown_option(
                &entry.key_location,
                &key_field,
                key,
                "propagation",
            )),
        }
    }
    Some(propagation)
}

/// The `volume:` options of a long-syntax volume.
struct VolumeOptions {
    /// `nocopy`.
    nocopy: bool,
    /// `subpath`, when given and not empty.
    subpath: Option<String>,
}

/// `volume:` options of a long-syntax volume: `nocopy` and `subpath`.
fn volume_options(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<VolumeOptions> {
    let entries = options_map(node, field, problems)?;
    let mut options = VolumeOptions {
        nocopy: false,
        subpath: None,
    };
    for (key, entry) in entries {
        let key_field = format!("{field}.{key}");
        if entry.value.is_null() {
            continue;
        }
        match key.as_str() {
            "nocopy" => options.nocopy = boolean(&entry.value, &key_field, problems)?,
            "subpath" => {
                options.subpath = Some(text(&entry.value, &key_field, problems)?)
                    .filter(|subpath| !subpath.is_empty());
            }
            other if other.starts_with("x-") => {}
            _ => problems.push(unknown_option(
                &entry.key_location,
                &key_field,
                key,
                "nocopy, subpath",
            )),
        }
    }
    Some(options)
}

/// `image:` options of an image mount: the subpath (empty when unset).
fn image_options(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<String> {
    let mut subpath = String::new();
    for (key, entry) in options_map(node, field, problems)? {
        let key_field = format!("{field}.{key}");
        match key.as_str() {
            "subpath" if entry.value.is_null() => {}
            "subpath" => subpath = text(&entry.value, &key_field, problems)?,
            other if other.starts_with("x-") => {}
            _ => problems.push(unknown_option(
                &entry.key_location,
                &key_field,
                key,
                "subpath",
            )),
        }
    }
    Some(subpath)
}

/// `tmpfs:` options of a long-syntax volume: the size in bytes (0 when unset).
fn tmpfs_options(
    node: &Node,
    field: &str,
    ignored: &mut Vec<String>,
    problems: &mut Diagnostics,
) -> Option<i64> {
    let options = options_map(node, field, problems)?;
    let mut size = 0;
    for (key, entry) in options {
        let key_field = format!("{field}.{key}");
        match key.as_str() {
            "size" => {
                if entry.value.is_null() {
                    continue;
                }
                size = tmpfs_size(&entry.value, &key_field, problems)?;
            }
            "mode" => ignored.push(key_field),
            other if other.starts_with("x-") => {}
            _ => problems.push(unknown_option(&entry.key_location, &key_field, key, "size")),
        }
    }
    Some(size)
}

/// A nested options mapping (`bind:`, `volume:`, `tmpfs:`); null is an empty one.
fn options_map<'n>(
    node: &'n Node,
    field: &str,
    problems: &mut Diagnostics,
) -> Option<Vec<(&'n String, &'n crate::model::node::Entry)>> {
    if node.is_null() {
        return Some(Vec::new());
    }
    mapping(node, field, problems).map(|map| map.iter().collect())
}

fn unknown_option(
    location: &crate::diagnostic::Location,
    field: &str,
    key: &str,
    allowed: &str,
) -> Diagnostic {
    Diagnostic::error(Some(location.clone()), format!("unknown key \"{key}\""))
        .field(field)
        .hint(format!("allowed here: {allowed}"))
}

/// `tmpfs.size`: bytes (docker/cli reads an integer; a size string such as `64m` is read as the
/// Compose specification allows).
fn tmpfs_size(node: &Node, field: &str, problems: &mut Diagnostics) -> Option<i64> {
    let value = match node.typed() {
        Some(Typed::Str(text)) if !text.bytes().all(|b| b.is_ascii_digit()) => {
            match ram_in_bytes(text) {
                Ok(bytes) => bytes,
                Err(problem) => {
                    problems.push(bad(node, field, problem));
                    return None;
                }
            }
        }
        _ => integer(node, field, problems)?,
    };
    if value < 0 {
        problems.push(bad(node, field, "must not be negative"));
        return None;
    }
    Some(value)
}

/// docker/cli's `convertVolumeToMount` for one volume.
fn mount(
    volume: &ServiceVolume,
    namespace: &Namespace,
    project: &Project,
    problems: &mut Diagnostics,
    item: &Node,
    field: &str,
) -> Option<Value> {
    let fail = |problems: &mut Diagnostics, message: &str| {
        problems.push(bad(item, field, message));
        None
    };
    let mut mount = Map::new();
    mount.insert("Type".into(), volume.kind.clone().into());
    if !volume.source.is_empty() {
        mount.insert("Source".into(), volume.source.clone().into());
    }
    if !volume.target.is_empty() {
        mount.insert("Target".into(), volume.target.clone().into());
    }
    if volume.read_only {
        mount.insert("ReadOnly".into(), true.into());
    }
    let bind_options = |propagation: &String| {
        let mut options = Map::new();
        if !propagation.is_empty() {
            options.insert("Propagation".into(), propagation.clone().into());
        }
        Value::Object(options)
    };
    if let Some(message) = incompatibility(volume) {
        return fail(problems, message);
    }
    match volume.kind.as_str() {
        "volume" => {
            if volume.source.is_empty() {
                return Some(Value::Object(mount)); // an anonymous volume
            }
            let Some(definition) = volume_definition(project, &volume.source, problems) else {
                problems.push(
                    bad(item, field, format!("undefined volume \"{}\"", volume.source))
                        .hint("define it under the top-level `volumes:` key, or write a path starting with ./ or / for a bind mount"),
                );
                return None;
            };
            let source = definition
                .name
                .clone()
                .unwrap_or_else(|| namespace.scope(&volume.source));
            mount.insert("Source".into(), source.into());
            let options = named_volume_options(volume, &definition, namespace);
            mount.insert("VolumeOptions".into(), options);
        }
        "bind" | "npipe" => {
            if let Some(propagation) = &volume.bind {
                mount.insert("BindOptions".into(), bind_options(propagation));
            }
        }
        "image" => {
            if let Some(subpath) = &volume.image {
                let mut options = Map::new();
                if !subpath.is_empty() {
                    options.insert("Subpath".into(), subpath.clone().into());
                }
                mount.insert("ImageOptions".into(), Value::Object(options));
            }
        }
        "tmpfs" => {
            if let Some(size) = volume.tmpfs {
                let mut options = Map::new();
                if size != 0 {
                    options.insert("SizeBytes".into(), size.into());
                }
                mount.insert("TmpfsOptions".into(), Value::Object(options));
            }
        }
        other => {
            problems.push(
                bad(item, field, format!("invalid volume type {other:?}"))
                    .hint("volume type must be volume, bind, tmpfs, npipe or image"),
            );
            return None;
        }
    }
    Some(Value::Object(mount))
}

/// What `volume`'s type does not allow in it, as docker/cli says it (checked in its order).
fn incompatibility(volume: &ServiceVolume) -> Option<&'static str> {
    let (source, bind, options, tmpfs, image) = (
        !volume.source.is_empty(),
        volume.bind.is_some(),
        volume.volume.is_some(),
        volume.tmpfs.is_some(),
        volume.image.is_some(),
    );
    let checks: &[(bool, &'static str)] = match volume.kind.as_str() {
        "volume" => &[
            (tmpfs, "tmpfs options are incompatible with type volume"),
            (bind, "bind options are incompatible with type volume"),
            (image, "image options are incompatible with type volume"),
        ],
        "bind" => &[
            (!source, "invalid bind source, source cannot be empty"),
            (options, "volume options are incompatible with type bind"),
            (image, "image options are incompatible with type bind"),
            (tmpfs, "tmpfs options are incompatible with type bind"),
        ],
        "tmpfs" => &[
            (source, "invalid tmpfs source, source must be empty"),
            (bind, "bind options are incompatible with type tmpfs"),
            (options, "volume options are incompatible with type tmpfs"),
            (image, "image options are incompatible with type tmpfs"),
        ],
        "npipe" => &[
            (!source, "invalid npipe source, source cannot be empty"),
            (options, "volume options are incompatible with type npipe"),
            (tmpfs, "tmpfs options are incompatible with type npipe"),
            (image, "image options are incompatible with type npipe"),
        ],
        "image" => &[
            (!source, "invalid image source, source cannot be empty"),
            (options, "volume options are incompatible with type image"),
            (bind, "bind options are incompatible with type image"),
            (tmpfs, "tmpfs options are incompatible with type image"),
        ],
        _ => &[],
    };
    checks
        .iter()
        .find(|(failed, _)| *failed)
        .map(|(_, message)| *message)
}

/// `VolumeOptions` of a named volume: `nocopy`, and for a volume the stack creates its labels
/// and driver.
fn named_volume_options(
    volume: &ServiceVolume,
    definition: &VolumeDefinition,
    namespace: &Namespace,
) -> Value {
    let mut options = Map::new();
    if volume.volume == Some(true) {
        options.insert("NoCopy".into(), true.into());
    }
    if let Some(subpath) = &volume.subpath {
        options.insert("Subpath".into(), subpath.clone().into());
    }
    if !definition.external {
        options.insert(
            "Labels".into(),
            json!(namespace.add_label(&definition.labels)),
        );
        if definition.driver.is_some() || definition.driver_opts.is_some() {
            let mut driver = Map::new();
            if let Some(name) = definition.driver.as_ref().filter(|n| !n.is_empty()) {
                driver.insert("Name".into(), name.clone().into());
            }
            if let Some(opts) = definition.driver_opts.as_ref().filter(|o| !o.is_empty()) {
                driver.insert("Options".into(), json!(opts));
            }
            options.insert("DriverConfig".into(), Value::Object(driver));
        }
    }
    Value::Object(options)
}

/// Problems in top-level volume definitions, including ones no service uses.
pub(super) fn check_definitions(project: &Project) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let Some(section) = &project.volumes else {
        return problems;
    };
    if section.is_null() {
        return problems;
    }
    let Some(map) = mapping(section, "volumes", &mut problems) else {
        return problems;
    };
    for key in map.keys() {
        volume_definition(project, key, &mut problems);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> ServiceVolume {
        parse_volume(spec).unwrap()
    }

    #[test]
    fn short_syntax_like_parse_volume() {
        assert_eq!(
            parsed("data:/var/lib/data"),
            ServiceVolume {
                kind: "volume".into(),
                source: "data".into(),
                target: "/var/lib/data".into(),
                ..Default::default()
            }
        );
        assert_eq!(
            parsed("./conf:/etc/app:ro"),
            ServiceVolume {
                kind: "bind".into(),
                source: "./conf".into(),
                target: "/etc/app".into(),
                read_only: true,
                ..Default::default()
            }
        );
        assert_eq!(
            parsed("/tmp"),
            ServiceVolume {
                kind: "volume".into(),
                target: "/tmp".into(),
                ..Default::default()
            }
        );
        assert_eq!(
            parsed("/host:/c:rw,rshared,z"),
            ServiceVolume {
                kind: "bind".into(),
                source: "/host".into(),
                target: "/c".into(),
                bind: Some("rshared".into()),
                ..Default::default()
            }
        );
        assert_eq!(parsed("data:/d:nocopy").volume, Some(true));
        assert_eq!(parsed("~/x:/y").kind, "bind");
        assert_eq!(parsed("C:\\data:/data").source, "C:\\data");
        assert_eq!(parsed("C:\\data:/data").kind, "bind");
        assert_eq!(parsed("ab").target, "ab");
        assert!(parse_volume("").is_err());
        assert!(parse_volume(":/x").is_err());
        assert!(parse_volume("aa:bb:ro:x").is_err());
        assert_eq!(parsed("a:b:ro:x").source, "a:b"); // a one-letter source is a drive letter
    }

    #[test]
    fn bind_sources_resolve_like_docker_cli() {
        let dir = std::path::Path::new("/srv/app");
        assert_eq!(resolve_bind_source("./conf", dir, None), "/srv/app/conf");
        assert_eq!(
            resolve_bind_source("../shared/x", dir, None),
            "/srv/shared/x"
        );
        assert_eq!(resolve_bind_source("/abs/./p/", dir, None), "/abs/./p/");
        assert_eq!(resolve_bind_source("rel", dir, None), "/srv/app/rel");
        assert_eq!(resolve_bind_source("C:\\x", dir, None), "C:\\x");
    }
}
