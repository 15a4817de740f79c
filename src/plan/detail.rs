//! What changes inside a service, as a reviewer of the Compose files reads it: each
//! difference `canonical` finds, named by the Compose field that produces it and where its
//! value is written (`convert::provenance`), with the old and new values, or none when they
//! may carry credentials. Printers (text, JSON, markdown) all read these [`Detail`]s.

use serde::Serialize;
use serde_json::Value;

use super::canonical::{FieldChange, How};
use crate::convert::Provenance;
use crate::registry::reference::ImageReference;

/// The spec path of a service's image.
const IMAGE_FIELD: &str = "TaskTemplate.ContainerSpec.Image";

/// Where a detail's field name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldSource {
    /// `field` is the Compose field that produces the spec path.
    Compose,
    /// `field` is the Compose field whose conversion produces the part of the spec holding the
    /// path (the path itself is in `api_field`).
    ComposeParent,
    /// Nothing in the Compose files produces it (an engine default, a label stackroll sets, a
    /// field the files no longer set): `field` is the API path.
    Api,
}

/// One field of a service that changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    /// The Compose field below the service (`deploy.replicas`, `environment.LOG_LEVEL`,
    /// `ports[0].published`, `secrets[db_password]`), or the API path when `source` is `api`.
    pub field: String,
    /// Where `field` comes from.
    pub source: FieldSource,
    /// The Swarm API path (`Mode.Replicated.Replicas`).
    pub api_field: String,
    /// Where the value is written, `file:line:col`; None without a Compose source.
    pub location: Option<String>,
    /// How it changes.
    pub change: How,
    /// The value before (null when absent or redacted).
    pub old: Option<Value>,
    /// The value after (null when absent or redacted).
    pub new: Option<Value>,
    /// Whether the values are withheld because they may carry credentials.
    pub redacted: bool,
}

impl Detail {
    /// The detail of `change`, named after the origin `provenance` records for its path.
    pub fn of(change: FieldChange, provenance: Option<&Provenance>) -> Detail {
        let traced = provenance.and_then(|provenance| provenance.trace(&change.path));
        let (field, source, location) = match traced {
            Some(traced) => (
                traced.field,
                if traced.exact {
                    FieldSource::Compose
                } else {
                    FieldSource::ComposeParent
                },
                Some(traced.location.to_string()),
            ),
            None => (change.path.clone(), FieldSource::Api, None),
        };
        Detail {
            field,
            source,
            api_field: change.path,
            location,
            change: change.how,
            old: change.old,
            new: change.new,
            redacted: change.redacted,
        }
    }

    /// The change in a few words: `1 -> 2`, `added "x"`, `changed (value hidden)`.
    pub fn summary(&self) -> String {
        if self.redacted {
            return format!("{} (value hidden)", self.change.word());
        }
        if let Some(moved) = self.moved_tag() {
            return moved;
        }
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => format!("{} -> {}", self.readable(old), self.readable(new)),
            (None, Some(new)) => format!("added {}", self.readable(new)),
            (Some(old), None) => format!("removed (was {})", self.readable(old)),
            (None, None) => self.change.word().to_string(),
        }
    }

    /// For an image pinned to another digest of the same tag (a tag that moved, see
    /// `--resolve-image`): `app:main digest sha256:… -> sha256:…`.
    fn moved_tag(&self) -> Option<String> {
        if self.api_field != IMAGE_FIELD {
            return None;
        }
        let reference = |value: &Option<Value>| {
            let reference = ImageReference::parse(value.as_ref()?.as_str()?)?.tagged();
            let digest = reference.digest.clone()?;
            let tag = ImageReference {
                digest: None,
                ..reference
            };
            Some((tag.familiar(), digest))
        };
        let ((old_tag, old_digest), (new_tag, new_digest)) =
            (reference(&self.old)?, reference(&self.new)?);
        (old_tag == new_tag && old_digest != new_digest)
            .then(|| format!("{new_tag} digest {old_digest} -> {new_digest}"))
    }

    /// A value of this detail as a line shows it (see [`readable`]).
    fn readable(&self, value: &Value) -> String {
        readable(&self.api_field, value)
    }

    /// The field as a line names it: the Compose field, with the API path when the field only
    /// holds it (`deploy.resources (TaskTemplate.Resources.Limits.Pids)`).
    pub fn label(&self) -> String {
        match (self.source, mount_target(&self.api_field)) {
            (FieldSource::ComposeParent, _) => format!("{} ({})", self.field, self.api_field),
            (FieldSource::Compose, Some(target)) => format!("{} (target {target})", self.field),
            (FieldSource::Compose | FieldSource::Api, _) => self.field.clone(),
        }
    }

    /// Where it comes from, for a line: the location, or that the files do not set it.
    pub fn whence(&self) -> String {
        match &self.location {
            Some(location) => location.clone(),
            None => "API field, not set in the compose files".to_string(),
        }
    }
}

/// The details of `changes`, in the order their values are written in the Compose files
/// (fields the files do not set last); a withheld detail that another detail of the same field
/// and location already shows (the image label beside the image) is left out.
pub fn details(changes: Vec<FieldChange>, provenance: Option<&Provenance>) -> Vec<Detail> {
    let mut traced: Vec<(Option<SortKey>, Detail)> = changes
        .into_iter()
        .map(|change| {
            let key = provenance
                .and_then(|provenance| provenance.trace(&change.path))
                .map(|traced| SortKey {
                    file: traced.location.file.display.clone(),
                    line: traced.location.line,
                    column: traced.location.column,
                });
            (key, Detail::of(change, provenance))
        })
        .collect();
    // Stable: details of one value, and those without a Compose source, keep their order.
    traced.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let all: Vec<Detail> = traced.into_iter().map(|(_, detail)| detail).collect();
    let shown_elsewhere = |detail: &Detail| {
        detail.redacted
            && detail.location.is_some()
            && all.iter().any(|other| {
                !other.redacted && other.field == detail.field && other.location == detail.location
            })
    };
    all.iter()
        .filter(|detail| !shown_elsewhere(detail))
        .cloned()
        .collect()
}

/// The container target of a secret or config mount's spec path
/// (`TaskTemplate.ContainerSpec.Secrets[/run/secrets/db]`).
fn mount_target(api_field: &str) -> Option<&str> {
    [
        "TaskTemplate.ContainerSpec.Secrets[",
        "TaskTemplate.ContainerSpec.Configs[",
    ]
    .iter()
    .find_map(|list| api_field.strip_prefix(list))
    .and_then(|rest| rest.split_once(']'))
    .map(|(target, _)| target)
}

/// Where a traced value is written, to order details as the files read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    file: String,
    line: usize,
    column: usize,
}

/// Spec members holding durations in nanoseconds.
const DURATIONS: &[&str] = &[
    "Delay",
    "Monitor",
    "Window",
    "Interval",
    "Timeout",
    "StartPeriod",
    "StopGracePeriod",
];

/// A value as a line shows it: durations as `1m30s`, CPUs as `0.5 CPUs`, a plain string
/// without quotes, anything else as JSON.
fn readable(api_field: &str, value: &Value) -> String {
    let member = api_field.rsplit('.').next().unwrap_or(api_field);
    match value.as_u64() {
        Some(nanos) if DURATIONS.contains(&member) => duration_text(nanos),
        Some(nanos) if member == "NanoCPUs" => format!("{} CPUs", nanos as f64 / 1e9),
        _ => match value {
            Value::String(text)
                if !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || c == '"') =>
            {
                text.clone()
            }
            other => other.to_string(),
        },
    }
}

/// Nanoseconds as Go prints a duration: `1h2m3s`, `1.5s`, `300ms`, `0s`.
pub fn duration_text(nanos: u64) -> String {
    if nanos < 1_000_000_000 {
        return match nanos {
            0 => "0s".into(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n => format!("{}us", n / 1_000),
        };
    }
    let whole = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    let (hours, minutes, seconds) = (whole / 3600, whole / 60 % 60, whole % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if fraction == 0 {
        text.push_str(&format!("{seconds}s"));
    } else {
        let decimals = format!("{fraction:09}");
        text.push_str(&format!("{seconds}.{}s", decimals.trim_end_matches('0')));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_detail_without_an_origin_keeps_its_api_name() {
        let change = FieldChange {
            path: "TaskTemplate.ForceUpdate".into(),
            how: How::Changed,
            old: Some(json!(1)),
            new: Some(json!(2)),
            redacted: false,
        };
        let detail = Detail::of(change, Some(&Provenance::default()));
        assert_eq!(detail.source, FieldSource::Api);
        assert_eq!(detail.label(), "TaskTemplate.ForceUpdate");
        assert_eq!(detail.summary(), "1 -> 2");
        assert_eq!(detail.whence(), "API field, not set in the compose files");
    }

    #[test]
    fn summaries_say_what_changed_and_hide_redacted_values() {
        let detail = |old: Option<Value>, new: Option<Value>, redacted| Detail {
            field: "f".into(),
            source: FieldSource::Compose,
            api_field: "F".into(),
            location: None,
            change: How::Changed,
            old,
            new,
            redacted,
        };
        assert_eq!(
            detail(None, Some(json!("a b")), false).summary(),
            "added \"a b\""
        );
        assert_eq!(
            detail(Some(json!(["x"])), None, false).summary(),
            "removed (was [\"x\"])"
        );
        assert_eq!(detail(None, None, true).summary(), "changed (value hidden)");
    }

    #[test]
    fn durations_and_cpus_read_as_written() {
        assert_eq!(
            readable("UpdateConfig.Delay", &json!(3_000_000_000u64)),
            "3s"
        );
        assert_eq!(
            readable("UpdateConfig.Monitor", &json!(90_500_000_000u64)),
            "1m30.5s"
        );
        assert_eq!(
            readable("X.Healthcheck.Interval", &json!(300_000_000u64)),
            "300ms"
        );
        assert_eq!(
            readable("X.Limits.NanoCPUs", &json!(500_000_000u64)),
            "0.5 CPUs"
        );
        assert_eq!(readable("X.Replicas", &json!(3)), "3");
        assert_eq!(duration_text(3_723_000_000_000), "1h2m3s");
    }

    /// A tag that moved shows as its digests; other image changes as the whole references.
    #[test]
    fn a_moved_tag_shows_its_digests() {
        let a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let image = |old: String, new: String| {
            Detail::of(
                FieldChange {
                    path: IMAGE_FIELD.to_string(),
                    how: How::Changed,
                    old: Some(Value::from(old)),
                    new: Some(Value::from(new)),
                    redacted: false,
                },
                None,
            )
            .summary()
        };
        assert_eq!(
            image(format!("app:main@{a}"), format!("app:main@{b}")),
            format!("app:main digest {a} -> {b}")
        );
        assert_eq!(
            image(format!("app:1@{a}"), format!("app:2@{b}")),
            format!("app:1@{a} -> app:2@{b}")
        );
        assert_eq!(
            image("app:main".into(), format!("app:main@{a}")),
            format!("app:main -> app:main@{a}")
        );
    }
}
