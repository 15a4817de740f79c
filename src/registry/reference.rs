//! Image references as docker normalises them (distribution/reference `ParseNormalizedNamed`):
//! the registry a name lives on (`docker.io` unless the first path component looks like a host:
//! it has a `.` or a `:`, or is `localhost`), Docker Hub's `library/` namespace, the `latest` tag
//! docker adds to a bare name, the short ("familiar") form docker shows and sends to the engine,
//! and the key docker's config.json keeps a registry's credentials under.

/// Docker Hub's domain in normalised names.
const DOCKER_HUB: &str = "docker.io";
/// The legacy Docker Hub host, read as [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The config.json key of Docker Hub's credentials (docker/cli `authConfigKey`).
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The registry host (and port): `docker.io`, `127.0.0.1:5000`, `ghcr.io`.
    pub domain: String,
    /// The repository path on it; Docker Hub's official images carry `library/`.
    pub path: String,
    /// The tag, if one was written.
    pub tag: Option<String>,
    /// The digest (`sha256:<hex>`), if one was written.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses `image` as docker does; `None` for what docker would refuse as a reference (then
    /// docker sends it unchanged and cannot look it up either).
    pub fn parse(image: &str) -> Option<ImageReference> {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(valid_digest(digest)?.to_string())),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(at) => {
                let at = last_slash + at;
                (&rest[..at], Some(valid_tag(&rest[at + 1..])?.to_string()))
            }
            None => (rest, None),
        };
        let (domain, path) = split_domain(name)?;
        if path.split('/').any(|component| !valid_component(component)) {
            return None;
        }
        Some(ImageReference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The reference with `latest` added when it has neither tag nor digest (docker/cli
    /// `TagNameOnly`).
    pub fn tagged(&self) -> ImageReference {
        let mut tagged = self.clone();
        if tagged.tag.is_none() && tagged.digest.is_none() {
            tagged.tag = Some("latest".into());
        }
        tagged
    }

    /// The reference pinned to `digest`; one that already has a digest is kept as it is
    /// (docker/cli `imageWithDigestString`).
    pub fn pinned(&self, digest: &str) -> ImageReference {
        let mut pinned = self.clone();
        if pinned.digest.is_none() {
            pinned.digest = Some(digest.to_string());
        }
        pinned
    }

    /// The repository's short name: `busybox` for `docker.io/library/busybox`,
    /// `127.0.0.1:5000/app` as it is.
    pub fn familiar_name(&self) -> String {
        if self.domain != DOCKER_HUB {
            return format!("{}/{}", self.domain, self.path);
        }
        match self.path.strip_prefix("library/") {
            Some(official) if !official.contains('/') => official.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The short form docker shows and sends (`reference.FamiliarString`): familiar name,
    /// `:tag`, `@digest`.
    pub fn familiar(&self) -> String {
        let mut text = self.familiar_name();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }

    /// The key config.json keeps this registry's credentials under: the host, or
    /// `https://index.docker.io/v1/` for Docker Hub.
    pub fn config_key(&self) -> String {
        config_key(&self.domain)
    }
}

/// The config.json key of the registry at `domain` (docker/cli `getAuthConfigKey`).
pub fn config_key(domain: &str) -> String {
    if domain == DOCKER_HUB || domain == LEGACY_DOCKER_HUB {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// The host part of a config.json key, which may be a URL (`https://host:port/v1/`) in old
/// files (docker/cli `ConvertToHostname`).
pub fn key_hostname(key: &str) -> &str {
    let stripped = key.split_once("://").map_or(key, |(_, rest)| rest);
    stripped.split('/').next().unwrap_or(stripped)
}

/// Splits a name into registry domain and path, with docker's defaults.
fn split_domain(name: &str) -> Option<(String, String)> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain.is_empty() || domain.chars().any(|c| c.is_whitespace() || c == '@') {
        return None;
    }
    let domain = if domain == LEGACY_DOCKER_HUB {
        DOCKER_HUB.to_string()
    } else {
        domain
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    Some((domain, path))
}

/// A path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(&bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(&bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> Option<&str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(word);
    let rest_ok = chars.all(|c| word(c) || c == '.' || c == '-');
    (first_ok && rest_ok && tag.len() <= 128).then_some(tag)
}

/// A digest: `algorithm:hex` with at least 32 hex digits.
fn valid_digest(digest: &str) -> Option<&str> {
    let (algorithm, hex) = digest.split_once(':')?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    let hex_ok = hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
    (algorithm_ok && hex_ok).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:2be83ddac16ab50866957d9572f2d00b50ebd2ee8cbfa9807dfdb65c99317572";

    fn parsed(image: &str) -> ImageReference {
        ImageReference::parse(image).unwrap_or_else(|| panic!("{image} parses"))
    }

    #[test]
    fn names_are_normalised_as_docker_does() {
        let cases = [
            ("busybox", "docker.io", "library/busybox", None),
            ("busybox:1", "docker.io", "library/busybox", Some("1")),
            ("local/busybox:1", "docker.io", "local/busybox", Some("1")),
            (
                "docker.io/library/redis:7",
                "docker.io",
                "library/redis",
                Some("7"),
            ),
            ("index.docker.io/foo/bar", "docker.io", "foo/bar", None),
            (
                "127.0.0.1:5055/test/a:main",
                "127.0.0.1:5055",
                "test/a",
                Some("main"),
            ),
            ("localhost/app", "localhost", "app", None),
            ("ghcr.io/org/app:v1.2", "ghcr.io", "org/app", Some("v1.2")),
            ("registry:5000/app", "registry:5000", "app", None),
        ];
        for (image, domain, path, tag) in cases {
            let reference = parsed(image);
            assert_eq!(reference.domain, domain, "{image}");
            assert_eq!(reference.path, path, "{image}");
            assert_eq!(reference.tag.as_deref(), tag, "{image}");
        }
    }

    #[test]
    fn familiar_forms_add_latest_and_pin_as_docker_cli_does() {
        assert_eq!(parsed("busybox").tagged().familiar(), "busybox:latest");
        assert_eq!(
            parsed("docker.io/library/busybox:1").tagged().familiar(),
            "busybox:1"
        );
        assert_eq!(
            parsed("index.docker.io/foo/bar").tagged().familiar(),
            "foo/bar:latest"
        );
        assert_eq!(
            parsed("127.0.0.1:5055/test/a:main")
                .tagged()
                .pinned(DIGEST)
                .familiar(),
            format!("127.0.0.1:5055/test/a:main@{DIGEST}")
        );
        let digested = format!("app@{DIGEST}");
        assert_eq!(parsed(&digested).tagged().familiar(), digested);
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(parsed(&digested).pinned(other).familiar(), digested);
    }

    #[test]
    fn references_docker_refuses_do_not_parse() {
        for image in [
            "",
            "Busybox",
            "app:",
            "app:-x",
            "a//b",
            "app@sha256:short",
            "-app",
            "a b",
        ] {
            assert_eq!(ImageReference::parse(image), None, "{image:?}");
        }
    }

    #[test]
    fn config_keys_follow_docker_cli() {
        assert_eq!(parsed("busybox").config_key(), DOCKER_HUB_CONFIG_KEY);
        assert_eq!(
            parsed("index.docker.io/a/b").config_key(),
            DOCKER_HUB_CONFIG_KEY
        );
        assert_eq!(parsed("127.0.0.1:5055/a").config_key(), "127.0.0.1:5055");
        assert_eq!(
            key_hostname("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(key_hostname("http://reg:5000"), "reg:5000");
        assert_eq!(key_hostname("reg:5000"), "reg:5000");
    }
}
