//! Private registries: image references as docker normalises them (`reference`), registry
//! credentials read as the docker CLI reads them (`credentials`), which of them a deploy sends
//! (`--with-registry-auth`, [`RegistryAuth`]) and when image tags are looked up to pin digests
//! (`--resolve-image`, [`ResolveImage`]).

pub mod credentials;
pub mod direct;
pub mod reference;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroizing;

use credentials::{CredentialError, Credentials, DockerConfig};
use reference::ImageReference;

/// When a deploy looks image tags up in their registry to pin the digest they point at
/// (`--resolve-image`, as `docker stack deploy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ResolveImage {
    /// For every service, on every deploy: a tag that moved rolls the service.
    #[default]
    Always,
    /// Only for new services and services whose `image:` changed.
    Changed,
    /// Never: images are sent as written (with `:latest` added to a bare name).
    Never,
}

/// The `X-Registry-Auth` values a deploy sends, by registry (config.json key), and the
/// credentials they encode (for asking registries directly, `direct`). Secret: shown by
/// `Debug` only as the registries it covers.
#[derive(Clone, Default)]
pub struct RegistryAuth {
    /// Encoded credentials by config key.
    headers: BTreeMap<String, Arc<Zeroizing<String>>>,
    /// The credentials themselves, by config key.
    credentials: BTreeMap<String, Arc<Credentials>>,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.headers.keys()).finish()
    }
}

impl RegistryAuth {
    /// The header value for the registry `image` lives on, if credentials for it were loaded.
    pub fn header_for(&self, image: &str) -> Option<&str> {
        let reference = ImageReference::parse(image)?;
        self.headers
            .get(&reference.config_key())
            .map(|header| header.as_str())
    }

    /// The credentials for the registry `reference` lives on, if they were loaded.
    pub fn credentials_for(&self, reference: &ImageReference) -> Option<&Credentials> {
        self.credentials
            .get(&reference.config_key())
            .map(|credentials| &**credentials)
    }
}

/// What the local docker configuration holds for the registries of a stack's images.
#[derive(Debug, Default)]
pub struct LocalCredentials {
    /// With `--with-registry-auth`: the credentials to send.
    pub auth: RegistryAuth,
    /// Facts about them for the plan's notes.
    pub facts: CredentialFacts,
}

/// Facts about registry credentials a plan mentions (registries by their familiar host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFacts {
    /// The config.json they were looked for in.
    pub config: String,
    /// Registries with local credentials that are not sent: `--with-registry-auth` not given.
    pub not_sent: Vec<String>,
    /// Registries with no credentials although `--with-registry-auth` was given.
    pub missing: Vec<String>,
    /// Registries (of `not_sent`) whose credentials are in `DOCKER_AUTH_CONFIG`, not `config`.
    pub in_env: Vec<String>,
}

/// Loads what `config` holds for the registries of `images`: with `send`
/// (`--with-registry-auth`), their credentials (running credential helpers); without, only
/// which of them have credentials (no helper is run).
pub fn local_credentials(
    config: &DockerConfig,
    images: &[&str],
    send: bool,
) -> Result<LocalCredentials, CredentialError> {
    let mut registries: BTreeMap<String, String> = BTreeMap::new();
    for image in images {
        if let Some(reference) = ImageReference::parse(image) {
            registries.insert(reference.config_key(), reference.domain.clone());
        }
    }
    let mut local = LocalCredentials {
        facts: CredentialFacts {
            config: config.path().display().to_string(),
            ..CredentialFacts::default()
        },
        ..LocalCredentials::default()
    };
    for (key, domain) in registries {
        if !send {
            if config.has_credentials(&key) {
                if config.in_env(&key) {
                    local.facts.in_env.push(domain.clone());
                }
                local.facts.not_sent.push(domain);
            }
            continue;
        }
        match config.credentials(&key)? {
            Some(credentials) => {
                let header = Arc::new(credentials.header());
                local.auth.headers.insert(key.clone(), header);
                local.auth.credentials.insert(key, Arc::new(credentials));
            }
            None => local.facts.missing.push(domain),
        }
    }
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn config_with(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        let config = DockerConfig::load(&path).unwrap();
        (dir, config)
    }

    #[test]
    fn credentials_are_sent_only_with_the_flag_and_only_for_the_images_registries() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p-secret-1");
        let hub = base64::engine::general_purpose::STANDARD.encode("h:p-secret-2");
        let (_dir, config) = config_with(&format!(
            r#"{{"auths": {{"127.0.0.1:5055": {{"auth": "{auth}"}},
                "https://index.docker.io/v1/": {{"auth": "{hub}"}}}}}}"#
        ));
        let images = ["127.0.0.1:5055/app:main", "busybox", "ghcr.io/x/y:1"];
        let sent = local_credentials(&config, &images, true).unwrap();
        assert!(sent
            .auth
            .header_for("127.0.0.1:5055/other:1")
            .is_some_and(|h| !h.is_empty()));
        assert!(sent.auth.header_for("library/busybox:1").is_some());
        assert_eq!(sent.auth.header_for("ghcr.io/x/y:1"), None);
        assert_eq!(sent.facts.missing, vec!["ghcr.io".to_string()]);
        assert!(sent.facts.not_sent.is_empty());
        let shown = format!("{:?}", sent.auth);
        assert!(
            !shown.contains("secret") && !shown.contains(&auth),
            "{shown}"
        );

        let unsent = local_credentials(&config, &images, false).unwrap();
        assert_eq!(unsent.auth.header_for("127.0.0.1:5055/app:main"), None);
        assert_eq!(
            unsent.facts.not_sent,
            vec!["127.0.0.1:5055".to_string(), "docker.io".to_string()]
        );
    }
}
