//! Which engine a command talks to, as outputs say it: the `Target:` line that opens `plan`,
//! `deploy` and `rm` text output (their JSON has the same [`Target`] as `target`), and
//! `stackroll context`, the engine stackroll would talk to and what chose it.

use std::fmt::Write as _;

use serde::Serialize;

use super::format::OutputFormat;
use crate::engine::endpoint::{ChosenBy, Endpoint, TlsSettings, Transport};
use crate::engine::Target;

/// `Target: context prod, ssh://deploy@manager1, swarm <cluster ID>, manager <node>`.
pub fn target_line(target: &Target) -> String {
    format!(
        "Target: context {}, {}, swarm {}, manager {}\n",
        target.context, target.endpoint, target.cluster_id, target.node
    )
}

/// `stackroll context`: the context, what chose it, the address and its TLS settings.
pub fn render_endpoint(endpoint: &Endpoint, format: OutputFormat) -> String {
    #[derive(Serialize)]
    struct Shown<'a> {
        context: &'a str,
        chosen_by: ChosenBy,
        endpoint: &'a str,
        tls: Option<&'a TlsSettings>,
    }
    let tls = match &endpoint.transport {
        Transport::Tcp { tls, .. } => tls.as_ref(),
        Transport::Unix { .. } | Transport::Ssh(_) => None,
    };
    if format == OutputFormat::Json {
        let shown = Shown {
            context: &endpoint.context,
            chosen_by: endpoint.chosen_by,
            endpoint: &endpoint.address,
            tls,
        };
        let mut text = serde_json::to_string_pretty(&shown).expect("endpoints serialize");
        text.push('\n');
        return text;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Context:  {} (chosen by {})",
        endpoint.context,
        endpoint.chosen_by.describe()
    );
    let _ = writeln!(out, "Endpoint: {}", endpoint.address);
    let _ = writeln!(out, "Security: {}", security(&endpoint.transport, tls));
    out
}

/// How the connection is protected, in words.
fn security(transport: &Transport, tls: Option<&TlsSettings>) -> String {
    let path = |path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map_or("-".to_string(), |path| path.display().to_string())
    };
    match (transport, tls) {
        (Transport::Unix { .. }, _) => "local socket".to_string(),
        (Transport::Ssh(_), _) => "ssh".to_string(),
        (_, None) => "none: plain HTTP".to_string(),
        (_, Some(tls)) => format!(
            "TLS, {}; CA {}, client certificate {}, key {}",
            if tls.skip_verify {
                "engine NOT verified"
            } else {
                "engine verified"
            },
            match &tls.ca {
                Some(_) => path(&tls.ca),
                None => "system roots".to_string(),
            },
            path(&tls.cert),
            path(&tls.key)
        ),
    }
}
