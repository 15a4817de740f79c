//! `ports:` → `EndpointSpec.Ports`, as docker/cli does it: the short syntax goes through
//! go-connections' `nat.ParsePortSpecs` and `ConvertPortToPortConfig` (ranges expanded, host IP
//! ignored, publish mode `ingress`), the long syntax is taken as written, and the result is
//! sorted by published port.

use serde_json::{Map, Value};

use super::values::{bad, check_keys, get, integer, text};
use crate::diagnostic::Diagnostics;
use crate::model::node::Node;

/// One `EndpointSpec.Ports` item.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PortConfig {
    /// `tcp`, `udp`, `sctp`, or empty (the engine's default, tcp).
    pub protocol: String,
    /// The container port.
    pub target: u32,
    /// The published port, 0 for none (the engine picks one).
    pub published: u32,
    /// `ingress`, `host`, or empty (the engine's default, ingress).
    pub mode: String,
    /// The index in `ports:` of the item it comes from (`convert::provenance`; set by
    /// [`ports`]).
    pub item: usize,
}

/// Long-syntax `ports:` keys and the `PortConfig` members they set.
pub(super) const PORT_MEMBERS: &[(&str, &str)] = &[
    ("target", "TargetPort"),
    ("published", "PublishedPort"),
    ("protocol", "Protocol"),
    ("mode", "PublishMode"),
];

impl PortConfig {
    /// The API JSON, empty members left out as Go's `omitempty` does.
    pub(super) fn to_json(&self) -> Value {
        let mut port = Map::new();
        if !self.protocol.is_empty() {
            port.insert("Protocol".into(), self.protocol.clone().into());
        }
        if self.target != 0 {
            port.insert("TargetPort".into(), self.target.into());
        }
        if self.published != 0 {
            port.insert("PublishedPort".into(), self.published.into());
        }
        if !self.mode.is_empty() {
            port.insert("PublishMode".into(), self.mode.clone().into());
        }
        Value::Object(port)
    }
}

/// What converting `ports:` gives: the ports in docker/cli's order, and the items whose host
/// IP docker/cli ignores.
#[derive(Debug, Default)]
pub(super) struct Ports {
    /// Sorted by published port (a stable sort, as Go's sort.Slice is for short lists).
    pub ports: Vec<PortConfig>,
    /// Short-syntax items naming a host IP other than 0.0.0.0, which Swarm cannot bind.
    pub ignored_ips: Vec<IgnoredHostIp>,
}

/// A short-syntax `ports:` item whose host IP docker/cli ignores.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IgnoredHostIp {
    /// The item's index in `ports:`.
    pub index: usize,
    /// The host IP it names.
    pub ip: String,
}

/// Converts a service's `ports:` list.
pub(super) fn ports(node: &Node, field: &str, problems: &mut Diagnostics) -> Ports {
    let mut result = Ports::default();
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
        if let Some(map) = item.as_map() {
            check_keys(
                map,
                &["target", "published", "protocol", "mode"],
                &item_field,
                problems,
            );
            let port_number = |key: &str, problems: &mut Diagnostics| -> u32 {
                let Some(node) = get(map, key) else { return 0 };
                let sub = format!("{item_field}.{key}");
                match integer(node, &sub, problems) {
                    Some(value) => u32::try_from(value).unwrap_or_else(|_| {
                        problems.push(bad(node, &sub, format!("invalid port number {value}")));
                        0
                    }),
                    None => 0,
                }
            };
            let target = port_number("target", problems);
            let published = port_number("published", problems);
            let protocol = lower_choice(
                map,
                "protocol",
                &["tcp", "udp", "sctp"],
                &item_field,
                problems,
            );
            let mode = lower_choice(map, "mode", &["ingress", "host"], &item_field, problems);
            result.ports.push(PortConfig {
                protocol,
                target,
                published,
                mode,
                item: index,
            });
            continue;
        }
        let Some(spec) = item.scalar_text() else {
            problems.push(bad(
                item,
                &item_field,
                format!("expected a port or a mapping, not {}", item.kind_name()),
            ));
            continue;
        };
        match parse_short(spec) {
            Ok(ShortPorts { host_ip, ports }) => {
                if !host_ip.is_empty() && !is_unspecified(&host_ip) {
                    result
                        .ignored_ips
                        .push(IgnoredHostIp { index, ip: host_ip });
                }
                result
                    .ports
                    .extend(ports.into_iter().map(|port| PortConfig {
                        item: index,
                        ..port
                    }));
            }
            Err(problem) => {
                problems.push(bad(item, &item_field, problem).hint(
                    "write [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. 8080:80 or 53:53/udp",
                ))
            }
        }
    }
    result.ports.sort_by_key(|port| port.published);
    result
}

/// An optional string restricted to `choices`, compared without case (the engine does) and
/// sent lower-case.
fn lower_choice(
    map: &indexmap::IndexMap<String, crate::model::node::Entry>,
    key: &str,
    choices: &[&str],
    field: &str,
    problems: &mut Diagnostics,
) -> String {
    let Some(node) = get(map, key) else {
        return String::new();
    };
    let sub = format!("{field}.{key}");
    let Some(value) = text(node, &sub, problems) else {
        return String::new();
    };
    let lower = value.to_ascii_lowercase();
    if !choices.contains(&lower.as_str()) {
        problems.push(
            bad(node, &sub, format!("invalid {key} {value:?}"))
                .hint(format!("use {}", choices.join(" or "))),
        );
        return String::new();
    }
    lower
}

fn is_unspecified(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// What one short-syntax port spec says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ShortPorts {
    /// The host IP it binds to (empty when none): Swarm's ingress ignores it.
    pub host_ip: String,
    /// The port configs.
    pub ports: Vec<PortConfig>,
}

/// One short-syntax port spec → its host IP and port configs, as `nat.ParsePortSpecs` followed
/// by `ConvertPortToPortConfig` (ports of a range sorted as strings, as docker/cli sorts the
/// map keys).
pub(super) fn parse_short(spec: &str) -> Result<ShortPorts, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let count = parts.len();
    let container = parts[count - 1];
    let (raw_ip, host) = match count {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..count - 2].join(":"), parts[count - 2]),
    };
    let (proto, container) = split_proto_port(container);
    let ip = if let Some(inner) = raw_ip.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(inner) if !inner.contains(['[', ']']) => inner.to_string(),
            _ => return Err(format!("invalid ip address {raw_ip}")),
        }
    } else if raw_ip.contains([':', '[', ']']) {
        return Err(format!("invalid ip address {raw_ip}: too many colons"));
    } else {
        raw_ip.clone()
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid ip address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (host_start, host_end) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && end - start != host_end - host_start && end != start {
        return Err(format!(
            "invalid ranges specified for container and host ports: {container} and {host}"
        ));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // One binding per container port: (container port, host port text).
    let mut bindings: Vec<(u64, String)> = Vec::new();
    for offset in 0..=(end - start) {
        let mut host_port = if host.is_empty() {
            String::new()
        } else {
            (host_start + offset).to_string()
        };
        if start == end && host_start != host_end {
            host_port = format!("{host_port}-{host_end}");
        }
        bindings.push((start + offset, host_port));
    }
    // docker/cli walks the ports in string order of their "PORT/PROTO" keys.
    bindings.sort_by_key(|(port, _)| format!("{port}/{proto}"));
    let mut ports = Vec::new();
    for (port, host_port) in bindings {
        let (first, last) = if host_port.is_empty() {
            (0, 0)
        } else {
            parse_port_range(&host_port)
                .map_err(|_| format!("invalid hostport binding ({host_port}) for port ({port})"))?
        };
        for published in first..=last {
            ports.push(PortConfig {
                protocol: proto.clone(),
                target: port as u32,
                published: published as u32,
                mode: "ingress".into(),
                item: 0,
            });
        }
    }
    Ok(ShortPorts { host_ip: ip, ports })
}

/// go-connections' `SplitProtoPort`.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    if parts.len() == 1 {
        return ("tcp", raw);
    }
    if parts[1].is_empty() {
        return ("tcp", parts[0]);
    }
    (parts[1], parts[0])
}

/// go-connections' `ParsePortRange`: `80` or `8000-8010` (parts past a second `-` ignored).
fn parse_port_range(text: &str) -> Result<(u64, u64), ()> {
    let parse = |part: &str| -> Result<u64, ()> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        part.parse::<u16>().map(u64::from).map_err(|_| ())
    };
    if text.is_empty() {
        return Err(());
    }
    match text.split_once('-') {
        None => {
            let port = parse(text)?;
            Ok((port, port))
        }
        Some((first, rest)) => {
            let second = rest.split('-').next().unwrap_or_default();
            let (start, end) = (parse(first)?, parse(second)?);
            if end < start {
                return Err(());
            }
            Ok((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports_of(spec: &str) -> Vec<Value> {
        parse_short(spec)
            .unwrap()
            .ports
            .iter()
            .map(PortConfig::to_json)
            .collect()
    }

    #[test]
    fn short_syntax_like_nat_parse_port_specs() {
        use serde_json::json;
        assert_eq!(
            ports_of("8080:80"),
            vec![
                json!({"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"})
            ]
        );
        assert_eq!(
            ports_of("80"),
            vec![json!({"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"})]
        );
        assert_eq!(
            ports_of("53:53/UDP"),
            vec![
                json!({"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"})
            ]
        );
        assert_eq!(
            ports_of("127.0.0.1:8080:80"),
            vec![
                json!({"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"})
            ]
        );
        assert_eq!(
            parse_short("127.0.0.1:8080:80").unwrap().host_ip,
            "127.0.0.1"
        );
        assert_eq!(parse_short("[::1]:8080:80").unwrap().host_ip, "::1");
        // A range maps port to port; the map keys are walked in string order.
        let targets: Vec<(u32, u32)> = parse_short("98-101:98-101")
            .unwrap()
            .ports
            .iter()
            .map(|p| (p.target, p.published))
            .collect();
        assert_eq!(targets, vec![(100, 100), (101, 101), (98, 98), (99, 99)]);
        // A single container port with a host range publishes every host port of the range.
        let published: Vec<u32> = parse_short("8000-8002:80")
            .unwrap()
            .ports
            .iter()
            .map(|p| p.published)
            .collect();
        assert_eq!(published, vec![8000, 8001, 8002]);
        // A container range without host ports publishes nothing.
        assert_eq!(parse_short("7000-7001").unwrap().ports.len(), 2);
        assert!(parse_short("8000-8001:80-82").is_err());
        assert!(parse_short("80/xyz").is_err());
        assert!(parse_short("70000").is_err());
        assert!(parse_short("a:80:80").is_err());
        assert!(parse_short("8080:").is_err());
        assert!(parse_short("::1:80:80").is_err());
    }
}
