//! The type casts applied to interpolated values: a value produced by interpolation is a
//! string, except in the fields compose-go (`loader/interpolate.go`,
//! `interpolateTypeCastMapping`) and docker/cli (`cli/compose/loader/interpolate.go`) cast,
//! where `external: ${EXTERNAL}` reads as a boolean and `replicas: ${N}` as a number. A value
//! that does not read as the field's type stays a string, and the stage that reads the field
//! reports it at its location.

/// What an interpolated value in a field is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// `true`/`false` in any case (`y`, `yes`, `on`, `n`, `no`, `off` too, with a warning).
    Boolean,
    /// A whole number, as Go's `strconv.Atoi` reads it.
    Integer,
    /// A number, as Go's `strconv.ParseFloat` reads it.
    Float,
}

/// One step of a path into a document: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Field patterns and their casts: `*` matches any key, `[]` any list index.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.cpu_count", Cast::Integer),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Integer),
    ("services.*.cpu_quota", Cast::Integer),
    ("services.*.cpu_rt_period", Cast::Integer),
    ("services.*.cpu_rt_runtime", Cast::Integer),
    ("services.*.cpus", Cast::Float),
    ("services.*.cpu_shares", Cast::Integer),
    ("services.*.init", Cast::Boolean),
    ("services.*.depends_on.*.required", Cast::Boolean),
    ("services.*.depends_on.*.restart", Cast::Boolean),
    ("services.*.deploy.replicas", Cast::Integer),
    ("services.*.deploy.update_config.parallelism", Cast::Integer),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    (
        "services.*.deploy.rollback_config.parallelism",
        Cast::Integer,
    ),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    (
        "services.*.deploy.restart_policy.max_attempts",
        Cast::Integer,
    ),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Integer,
    ),
    ("services.*.healthcheck.retries", Cast::Integer),
    ("services.*.healthcheck.disable", Cast::Boolean),
    ("services.*.oom_kill_disable", Cast::Boolean),
    ("services.*.oom_score_adj", Cast::Integer),
    ("services.*.pids_limit", Cast::Integer),
    ("services.*.ports.[].target", Cast::Integer),
    ("services.*.privileged", Cast::Boolean),
    ("services.*.read_only", Cast::Boolean),
    ("services.*.scale", Cast::Integer),
    ("services.*.stdin_open", Cast::Boolean),
    ("services.*.tty", Cast::Boolean),
    ("services.*.ulimits.*", Cast::Integer),
    ("services.*.ulimits.*.hard", Cast::Integer),
    ("services.*.ulimits.*.soft", Cast::Integer),
    ("services.*.volumes.[].read_only", Cast::Boolean),
    ("services.*.volumes.[].volume.nocopy", Cast::Boolean),
    ("networks.*.external", Cast::Boolean),
    ("networks.*.internal", Cast::Boolean),
    ("networks.*.attachable", Cast::Boolean),
    ("networks.*.enable_ipv4", Cast::Boolean),
    ("networks.*.enable_ipv6", Cast::Boolean),
    ("volumes.*.external", Cast::Boolean),
    ("secrets.*.external", Cast::Boolean),
    ("configs.*.external", Cast::Boolean),
];

/// The cast for the field at `path`, if interpolated values there are typed.
pub fn cast_for(path: &[Step]) -> Option<Cast> {
    CASTS
        .iter()
        .find(|(pattern, _)| matches(pattern, path))
        .map(|(_, cast)| *cast)
}

fn matches(pattern: &str, path: &[Step]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len()
        && parts.iter().zip(path).all(|(part, step)| match step {
            Step::Key(key) => *part == "*" || part == key,
            Step::Index(_) => *part == "[]",
        })
}

/// The result of casting an interpolated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Casted {
    /// The plain scalar text the value becomes (`true`, `3`, `0.5`).
    Typed(String),
    /// A boolean spelled the YAML 1.1 way (`yes`, `off`, ...): read, with a warning.
    LegacyBoolean(bool),
    /// The value does not read as the field's type: it stays a string.
    Unchanged,
}

/// Casts `text` (an interpolated value) as `cast` reads it.
pub fn apply(cast: Cast, text: &str) -> Casted {
    match cast {
        Cast::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Casted::Typed("true".into()),
            "false" => Casted::Typed("false".into()),
            "y" | "yes" | "on" => Casted::LegacyBoolean(true),
            "n" | "no" | "off" => Casted::LegacyBoolean(false),
            _ => Casted::Unchanged,
        },
        Cast::Integer => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            let whole = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            match text.parse::<i64>() {
                Ok(value) if whole => Casted::Typed(value.to_string()),
                _ => Casted::Unchanged,
            }
        }
        Cast::Float => match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Casted::Typed(value.to_string()),
            _ => Casted::Unchanged,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<Step> {
        text.split('.')
            .map(|part| match part.parse::<usize>() {
                Ok(index) => Step::Index(index),
                Err(_) => Step::Key(part.to_string()),
            })
            .collect()
    }

    #[test]
    fn fields_are_matched_by_pattern() {
        assert_eq!(cast_for(&path("secrets.db.external")), Some(Cast::Boolean));
        assert_eq!(cast_for(&path("services.app.tty")), Some(Cast::Boolean));
        assert_eq!(
            cast_for(&path("services.app.ports.0.target")),
            Some(Cast::Integer)
        );
        assert_eq!(
            cast_for(&path("services.app.ulimits.nofile")),
            Some(Cast::Integer)
        );
        assert_eq!(cast_for(&path("services.app.environment.TTY")), None);
        assert_eq!(cast_for(&path("services.app.labels.tty")), None);
        assert_eq!(cast_for(&path("services.app.ports.target")), None);
    }

    #[test]
    fn values_are_cast_like_compose_go() {
        assert_eq!(apply(Cast::Boolean, "TRUE"), Casted::Typed("true".into()));
        assert_eq!(apply(Cast::Boolean, "False"), Casted::Typed("false".into()));
        assert_eq!(apply(Cast::Boolean, "yes"), Casted::LegacyBoolean(true));
        assert_eq!(apply(Cast::Boolean, "Off"), Casted::LegacyBoolean(false));
        assert_eq!(apply(Cast::Boolean, "1"), Casted::Unchanged);
        assert_eq!(apply(Cast::Boolean, ""), Casted::Unchanged);
        assert_eq!(apply(Cast::Integer, "+3"), Casted::Typed("3".into()));
        assert_eq!(apply(Cast::Integer, "007"), Casted::Typed("7".into()));
        assert_eq!(apply(Cast::Integer, "0x10"), Casted::Unchanged);
        assert_eq!(apply(Cast::Integer, "3.0"), Casted::Unchanged);
        assert_eq!(apply(Cast::Float, "0.5"), Casted::Typed("0.5".into()));
        assert_eq!(apply(Cast::Float, "abc"), Casted::Unchanged);
    }
}
