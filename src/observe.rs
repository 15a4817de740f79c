//! Reading the swarm state a plan is made against (`plan::Observed`): five list calls, made
//! together; the registry lookups of the services' image tags (`--resolve-image`), made
//! once the live services are known (the registry asked directly whether a pinned tag still
//! points at the digest a service runs, the engine asked for everything else); and, once a plan is made, the data of
//! the config versions it replaces, for its content diffs (`plan::content_diff`). The planner
//! itself never talks to the engine.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures_util::StreamExt;

use crate::contents::Contents;
use crate::convert::ConvertedProject;
use crate::engine::{Distribution, Engine, EngineError, Platform, ServiceState};
use crate::model::ObjectKind;
use crate::plan::images::{looks_up, lookup_reference, Lookup};
use crate::plan::{content_diff, Observed, Plan};
use crate::registry::direct::TagDigests;
use crate::registry::reference::ImageReference;
use crate::registry::ResolveImage;
use crate::swarm::labels::STACK_NAMESPACE_LABEL;
use crate::swarm::namespace::Namespace;

/// Lists every secret, config, network, service and node; the services are split into the stack's
/// and the others (whose references keep objects from being pruned).
pub async fn observe<E: Engine>(
    engine: &E,
    namespace: &Namespace,
) -> Result<Observed, EngineError> {
    let (secrets, configs, all_services, networks, nodes) = futures_util::try_join!(
        engine.list_objects(ObjectKind::Secret, None),
        engine.list_objects(ObjectKind::Config, None),
        engine.list_services(None),
        engine.list_networks(None),
        engine.list_nodes(),
    )?;
    let (services, others) = all_services
        .into_iter()
        .partition(|service| in_stack(service, namespace));
    Ok(Observed {
        secrets,
        configs,
        services,
        others,
        networks,
        nodes: nodes.len() as u64,
    })
}

/// Whether the service carries the stack label of `namespace`.
fn in_stack(service: &ServiceState, namespace: &Namespace) -> bool {
    service
        .spec
        .pointer("/Labels")
        .and_then(|labels| labels.get(STACK_NAMESPACE_LABEL))
        .and_then(|value| value.as_str())
        == Some(namespace.0.as_str())
}

/// How long the registry lookups of one plan may take together: a lookup not answered by
/// then counts as failed (the image is deployed unpinned, with a warning).
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);

/// How many registry lookups run at once.
const LOOKUPS_AT_ONCE: usize = 16;

/// Looks up the tags of the services whose images `mode` says to resolve (see
/// `plan::images::looks_up`): each reference once, concurrently, all within
/// [`LOOKUP_DEADLINE`]. A tag the stack's services already run pinned is first checked with
/// `direct` (the registry itself, [`TagDigests`]): the same digest keeps the platforms they
/// run with, and the engine is not asked. A moved digest, a tag no service runs pinned, or a
/// registry `direct` cannot ask is looked up through the engine, as `docker stack deploy`
/// does. A registry the engine cannot reach at all (its `/v2/` endpoint fails: no such host,
/// connection refused) fails the engine lookups still waiting for it at once, so a registry
/// that is down costs one failed answer, not one per image. Never fails: a failed lookup is a
/// [`Lookup::Failed`] with the reason.
pub async fn look_up_images<E: Engine>(
    engine: &E,
    direct: Option<&dyn TagDigests>,
    converted: &ConvertedProject,
    namespace: &Namespace,
    observed: &Observed,
    mode: ResolveImage,
) -> BTreeMap<String, Lookup> {
    let wanted: BTreeSet<String> = converted
        .services
        .iter()
        .filter(|(name, service)| {
            let scoped = namespace.scope(name);
            let live = observed.services.iter().find(|live| live.name == scoped);
            looks_up(mode, service.image(), live)
        })
        .filter_map(|(_, service)| lookup_reference(service.image()))
        .collect();
    let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
    let down = RegistriesDown::default();
    futures_util::stream::iter(wanted)
        .map(|image| {
            let down = &down;
            async move {
                let running = direct.and_then(|_| running_pinned(&observed.services, &image));
                let lookup = match (direct, running) {
                    (Some(direct), Some(running)) => {
                        check_directly(direct, &image, running, deadline).await
                    }
                    _ => None,
                };
                let lookup = match lookup {
                    Some(found) => found,
                    None => look_up(engine, &image, deadline, down).await,
                };
                tracing::debug!(image = %image, found = matches!(lookup, Lookup::Found(_)), "registry lookup");
                (image, lookup)
            }
        })
        .buffer_unordered(LOOKUPS_AT_ONCE)
        .collect()
        .await
}

/// Asks the registry directly whether `image` still points at the digest the stack's services
/// run (`running`): `Some` (those digest and platforms, exactly what the engine's lookup gave
/// when they were pinned) when it does; `None` when it moved or the registry could not be
/// asked, and the engine is asked instead.
async fn check_directly(
    direct: &dyn TagDigests,
    image: &str,
    running: Distribution,
    deadline: tokio::time::Instant,
) -> Option<Lookup> {
    let reference = ImageReference::parse(image)?;
    let answer = tokio::time::timeout_at(deadline, direct.digest(&reference)).await;
    match answer {
        Ok(Ok(digest)) if digest == running.digest => Some(Lookup::Found(running)),
        Ok(Ok(digest)) => {
            tracing::debug!(image, %digest, "the tag moved; looked up through the engine");
            None
        }
        Ok(Err(error)) => {
            tracing::debug!(image, %error, "the registry could not be asked directly; looked up through the engine");
            None
        }
        Err(_) => None,
    }
}

/// The digest and platforms the stack's services run `image` (a tagged reference) pinned
/// with, when at least one runs it as `image@digest` with platforms and all that do agree.
fn running_pinned(services: &[ServiceState], image: &str) -> Option<Distribution> {
    let mut found: Option<Distribution> = None;
    for service in services {
        let spec = &service.spec;
        let Some(running) = spec
            .pointer("/TaskTemplate/ContainerSpec/Image")
            .and_then(|image| image.as_str())
            .and_then(ImageReference::parse)
        else {
            continue;
        };
        let Some(digest) = running.digest.clone() else {
            continue;
        };
        let unpinned = ImageReference {
            digest: None,
            ..running
        };
        if unpinned.tag.is_none() || unpinned.familiar() != image {
            continue;
        }
        let platforms: Vec<Platform> = spec
            .pointer("/TaskTemplate/Placement/Platforms")
            .and_then(|platforms| platforms.as_array())
            .into_iter()
            .flatten()
            .map(|platform| Platform {
                architecture: text_at(platform, "Architecture"),
                os: text_at(platform, "OS"),
            })
            .collect();
        if platforms.is_empty() {
            return None;
        }
        let this = Distribution { digest, platforms };
        match &found {
            Some(earlier) if *earlier != this => return None,
            _ => found = Some(this),
        }
    }
    found
}

/// The text member `name` of a JSON object, empty when absent.
fn text_at(value: &serde_json::Value, name: &str) -> String {
    value
        .get(name)
        .and_then(|text| text.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Registries found unreachable during one round of lookups, by domain, with the reason;
/// lookups waiting for one of them are woken.
#[derive(Default)]
struct RegistriesDown {
    /// Domain -> the engine's message.
    reasons: RefCell<BTreeMap<String, String>>,
    /// Wakes the lookups waiting when a registry is found down.
    found: tokio::sync::Notify,
}

/// One lookup: the engine's answer, unless the deadline passes or another lookup finds the
/// image's registry unreachable first.
async fn look_up<E: Engine>(
    engine: &E,
    image: &str,
    deadline: tokio::time::Instant,
    down: &RegistriesDown,
) -> Lookup {
    let domain = ImageReference::parse(image).map(|reference| reference.domain);
    let known_down = || {
        let reasons = down.reasons.borrow();
        domain
            .as_ref()
            .and_then(|domain| reasons.get(domain).cloned())
    };
    if let Some(reason) = known_down() {
        return Lookup::Failed(reason);
    }
    let answer = tokio::time::timeout_at(deadline, engine.inspect_distribution(image));
    tokio::pin!(answer);
    let answer = loop {
        let woken = down.found.notified();
        tokio::select! {
            answer = &mut answer => break answer,
            () = woken => {
                if let Some(reason) = known_down() {
                    return Lookup::Failed(reason);
                }
            }
        }
    };
    match answer {
        Ok(Ok(found)) => Lookup::Found(found),
        Ok(Err(EngineError::Api { message, .. })) => {
            // The engine could not reach the registry's API root: the registry is down.
            if let (Some(domain), true) = (domain, message.contains("/v2/\": ")) {
                down.reasons.borrow_mut().insert(domain, message.clone());
                down.found.notify_waiters();
            }
            Lookup::Failed(message)
        }
        Ok(Err(other)) => Lookup::Failed(other.to_string()),
        Err(_) => Lookup::Failed(format!("no answer within {} s", LOOKUP_DEADLINE.as_secs())),
    }
}

/// Reads the data of the config versions `plan` replaces (configs only: the engine never
/// returns a secret's data) and gives their changes content diffs against the new contents.
/// A version that cannot be read gets a diff marked unavailable: a diff never stops a plan.
pub async fn add_content_diffs<E: Engine>(engine: &E, plan: &mut Plan, contents: &Contents) {
    let mut old = HashMap::new();
    for id in content_diff::replaced_configs(plan) {
        match engine.config_data(&id).await {
            Ok(data) => {
                old.insert(id, data);
            }
            Err(error) => {
                tracing::warn!(config = %id, %error, "cannot read a replaced config's data; its diff is left out")
            }
        }
    }
    content_diff::attach(plan, &old, contents);
}
