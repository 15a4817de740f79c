//! Fields whose Swarm support came after API 1.41, the oldest engine stackroll talks to:
//! conversion converts them and records where each is written ([`ApiRequirement`]); once the
//! engine is reached, [`unsupported`] refuses every one the negotiated API version does not
//! know, naming the version it needs and the one the engine speaks, before anything is written.

use std::fmt;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};

/// A Docker Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// The major number (1).
    pub major: u32,
    /// The minor number.
    pub minor: u32,
}

impl ApiVersion {
    /// Reads `1.44`; None for anything else.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A service field that needs a newer engine than API 1.41.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `healthcheck.start_interval` → `Healthcheck.StartInterval`.
    StartInterval,
    /// A named volume's `volume.subpath` → `VolumeOptions.Subpath`.
    VolumeSubpath,
    /// `oom_score_adj` → `ContainerSpec.OomScoreAdj`.
    OomScoreAdj,
    /// A `type: image` volume → an image mount.
    ImageMount,
}

impl Feature {
    /// The API version that added it to services.
    pub fn needs(self) -> ApiVersion {
        let minor = match self {
            Feature::StartInterval => 44,
            Feature::VolumeSubpath => 45,
            Feature::OomScoreAdj => 46,
            Feature::ImageMount => 48,
        };
        ApiVersion { major: 1, minor }
    }

    /// The first Docker release speaking that API version.
    fn docker_release(self) -> &'static str {
        match self {
            Feature::StartInterval => "25.0",
            Feature::VolumeSubpath => "26.0",
            Feature::OomScoreAdj => "27.0",
            Feature::ImageMount => "28.0",
        }
    }

    /// What it is, as the user wrote it.
    fn describe(self) -> &'static str {
        match self {
            Feature::StartInterval => "healthcheck.start_interval",
            Feature::VolumeSubpath => "a volume subpath",
            Feature::OomScoreAdj => "oom_score_adj",
            Feature::ImageMount => "an image mount (type: image)",
        }
    }
}

/// Where a service uses a [`Feature`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequirement {
    /// The feature.
    pub feature: Feature,
    /// Its field path, e.g. `services.app.oom_score_adj`.
    pub field: String,
    /// Where it is written.
    pub location: Location,
}

/// The requirements an engine speaking `api_version` cannot meet, as errors at their places.
/// A version that cannot be read counts as 1.41, the oldest stackroll accepts.
pub(super) fn unsupported(requirements: &[ApiRequirement], api_version: &str) -> Diagnostics {
    let engine = ApiVersion::parse(api_version).unwrap_or(ApiVersion {
        major: 1,
        minor: 41,
    });
    let mut problems = Diagnostics::default();
    for requirement in requirements {
        let feature = requirement.feature;
        if feature.needs() <= engine {
            continue;
        }
        problems.push(
            Diagnostic::error(
                Some(requirement.location.clone()),
                format!(
                    "{} needs Docker Engine API {} (Docker {}); this engine speaks API {engine}",
                    feature.describe(),
                    feature.needs(),
                    feature.docker_release()
                ),
            )
            .field(requirement.field.clone())
            .hint(format!(
                "upgrade the swarm's managers to Docker {} or newer, or remove it",
                feature.docker_release()
            )),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        let v = |text| ApiVersion::parse(text).unwrap();
        assert!(v("1.9") < v("1.41"));
        assert!(v("1.41") < v("1.44"));
        assert_eq!(v("1.48").to_string(), "1.48");
        assert_eq!(ApiVersion::parse("1"), None);
        assert_eq!(ApiVersion::parse("x.y"), None);
    }
}
