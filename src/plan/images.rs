//! Images: which services' tags a deploy looks up in their registry (`--resolve-image`), and
//! each service's image pinned to the digest found, with `Placement.Platforms` from the
//! manifest, as docker/cli's stack deploy does (`resolveContainerSpecImage`). Pure: the lookups
//! are made beforehand (`crate::observe::look_up_images`) and handed in as [`ImageFacts`].
//!
//! docker/cli's rules, kept: a bare name gets `:latest`; a found digest pins the image as
//! `name:tag@digest` (a reference with a digest already keeps it) and sets the platforms, with
//! `unknown` entries (attestations) skipped, `arm` written without architecture, and repeats
//! dropped; `changed` looks up only new services and services whose `image:` changed. Where
//! stackroll goes further: a service that is not looked up, or whose lookup failed, and whose
//! `image:` is unchanged keeps the image and platforms it runs (docker/cli would roll it to the
//! unpinned tag), so an unreachable registry never restarts a service.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::engine::{Distribution, ServiceState, Spec};
use crate::registry::reference::ImageReference;
use crate::registry::{CredentialFacts, ResolveImage};
use crate::swarm::labels::IMAGE_LABEL;

/// What a registry lookup of one reference gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The digest and platforms the tag points at.
    Found(Distribution),
    /// The registry could not be asked or refused (the engine's message).
    Failed(String),
}

/// What the plan needs to know about images and registries, gathered before planning.
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    /// When tags are looked up.
    pub mode: ResolveImage,
    /// The lookups made, by tagged reference (`app:main`, `busybox:latest`).
    pub lookups: BTreeMap<String, Lookup>,
    /// Registry credentials the plan mentions.
    pub credentials: CredentialFacts,
}

/// The reference a service's image is looked up by: its familiar form with `:latest` added
/// to a bare name; `None` for an image docker could not parse either.
pub fn lookup_reference(image: &str) -> Option<String> {
    Some(ImageReference::parse(image)?.tagged().familiar())
}

/// Whether the deploy looks up the image of a service whose compose file names `image` and
/// which runs as `live` (if it exists).
pub fn looks_up(mode: ResolveImage, image: &str, live: Option<&ServiceState>) -> bool {
    match mode {
        ResolveImage::Always => true,
        ResolveImage::Changed => live.is_none_or(|live| image_label(&live.spec) != Some(image)),
        ResolveImage::Never => false,
    }
}

/// The `image:` a live service was deployed from (its `com.docker.stack.image` label).
fn image_label(spec: &Spec) -> Option<&str> {
    spec.pointer("/Labels")
        .and_then(|labels| labels.get(IMAGE_LABEL))
        .and_then(Value::as_str)
}

/// A service whose lookup failed, for the plan's notes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unresolved {
    /// It is sent with the tag unpinned (docker/cli's warning).
    Unpinned {
        /// The reference looked up.
        image: String,
    },
    /// Its `image:` is unchanged: it keeps the image it runs.
    Kept {
        /// The reference looked up.
        image: String,
        /// The service.
        service: String,
        /// The image it keeps.
        running: String,
    },
}

/// Sets the image of `spec` (converted from the compose file, its `Image` as written) as the
/// deploy sends it; `live` is the service as it runs, if it exists. Says so when a failed
/// lookup left the image unpinned or as it runs.
pub fn pin(spec: &mut Spec, live: Option<&ServiceState>, facts: &ImageFacts) -> Option<Unresolved> {
    let image = spec
        .pointer("/TaskTemplate/ContainerSpec/Image")
        .and_then(Value::as_str)?
        .to_string();
    let reference = ImageReference::parse(&image)?.tagged();
    let lookup = looks_up(facts.mode, &image, live)
        .then(|| facts.lookups.get(&reference.familiar()))
        .flatten();
    if let Some(Lookup::Found(found)) = lookup {
        let pinned = reference.pinned(&found.digest).familiar();
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = Value::from(pinned);
        let platforms = platforms(found);
        if !platforms.is_empty() {
            let task = &mut spec["TaskTemplate"];
            if !task.get("Placement").is_some_and(Value::is_object) {
                task["Placement"] = json!({});
            }
            task["Placement"]["Platforms"] = Value::Array(platforms);
        }
        return None;
    }
    let image_ref = reference.familiar();
    let unchanged = live.filter(|live| image_label(&live.spec) == Some(image.as_str()));
    let unresolved = match unchanged {
        Some(live) => {
            keep_live_image(spec, &live.spec);
            let running = spec["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match running.contains('@') {
                true => Unresolved::Kept {
                    image: image_ref,
                    service: live.name.clone(),
                    running,
                },
                false => Unresolved::Unpinned { image: image_ref },
            }
        }
        None => {
            spec["TaskTemplate"]["ContainerSpec"]["Image"] = Value::from(image_ref.clone());
            Unresolved::Unpinned { image: image_ref }
        }
    };
    matches!(lookup, Some(Lookup::Failed(_))).then_some(unresolved)
}

/// Gives `spec` the image and platforms the live service runs with.
fn keep_live_image(spec: &mut Spec, live: &Spec) {
    if let Some(image) = live.pointer("/TaskTemplate/ContainerSpec/Image") {
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = image.clone();
    }
    let live_platforms = live.pointer("/TaskTemplate/Placement/Platforms").cloned();
    let task = &mut spec["TaskTemplate"];
    match live_platforms {
        Some(platforms) => {
            if !task.get("Placement").is_some_and(Value::is_object) {
                task["Placement"] = json!({});
            }
            task["Placement"]["Platforms"] = platforms;
        }
        None => {
            if let Some(placement) = task.get_mut("Placement").and_then(Value::as_object_mut) {
                placement.remove("Platforms");
            }
        }
    }
}

/// The platforms a found image sets, as docker/cli keeps them (swarm.Platform JSON, empty
/// members left out).
fn platforms(found: &Distribution) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    let mut platforms = Vec::new();
    for platform in &found.platforms {
        if platform.os == "unknown" || platform.architecture == "unknown" {
            continue;
        }
        let architecture = match platform.architecture.eq_ignore_ascii_case("arm") {
            true => String::new(),
            false => platform.architecture.clone(),
        };
        if !seen.insert((architecture.clone(), platform.os.clone())) {
            continue;
        }
        let mut entry = serde_json::Map::new();
        if !architecture.is_empty() {
            entry.insert("Architecture".into(), Value::from(architecture));
        }
        if !platform.os.is_empty() {
            entry.insert("OS".into(), Value::from(platform.os.clone()));
        }
        platforms.push(Value::Object(entry));
    }
    platforms
}

/// The plan's notes about images: for each reference whose lookup failed, docker/cli's
/// warning with the registry's answer (or, for a service that keeps its pinned image, that it
/// does), then what the plan should say about registry credentials.
pub fn notes(unresolved: &BTreeSet<Unresolved>, facts: &ImageFacts) -> Vec<String> {
    let reason = |image: &str| match facts.lookups.get(image) {
        Some(Lookup::Failed(reason)) => format!(" ({reason})"),
        _ => String::new(),
    };
    let mut notes: Vec<String> = unresolved
        .iter()
        .map(|unresolved| match unresolved {
            Unresolved::Unpinned { image } => format!(
                "image {image} could not be accessed on a registry to record its digest{}. Each node will access {image} independently, possibly leading to different nodes running different versions of the image.",
                reason(image)
            ),
            Unresolved::Kept { image, service, running } => format!(
                "image {image} could not be accessed on a registry to check its digest{}; service {service} keeps running {running}",
                reason(image)
            ),
        })
        .collect();
    let credentials = &facts.credentials;
    for registry in &credentials.not_sent {
        let source = match credentials.in_env.contains(registry) {
            true => "DOCKER_AUTH_CONFIG",
            false => credentials.config.as_str(),
        };
        notes.push(format!(
            "registry {registry} has credentials in {source}, but --with-registry-auth was not given: none are sent, so nodes without its images cannot pull them (and their digests are looked up without credentials)"
        ));
    }
    for registry in &credentials.missing {
        notes.push(format!(
            "--with-registry-auth: {} has no credentials for registry {registry}; none are sent for its images",
            credentials.config
        ));
    }
    notes
}
