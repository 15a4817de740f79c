//! `docker stackroll`: `stackroll plugin install` puts the binary in the docker CLI's plugin
//! directory; the docker CLI 28 lists it from its metadata and runs it with its own global
//! flags (`--context`, `-H`) meaning what they mean to stackroll.

use std::path::Path;

use serde_json::Value;

use crate::command::stackroll_command;
use crate::remote::DockerConfig;

#[test]
fn docker_runs_stackroll_as_a_plugin_with_its_global_flags() {
    let config = DockerConfig::new();
    let install = stackroll_command(config.dir.path())
        .env("DOCKER_CONFIG", config.path())
        .args(["plugin", "install"])
        .output()
        .expect("run stackroll");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let link = config.dir.path().join("cli-plugins/docker-stackroll");
    assert!(link.is_symlink(), "{} is a link", link.display());

    let plugins = config.docker_ok(&["info", "--format", "{{json .ClientInfo.Plugins}}"]);
    let plugins: Value = serde_json::from_str(&plugins).expect("plugins JSON");
    let ours = plugins
        .as_array()
        .and_then(|list| list.iter().find(|p| p["Name"] == "stackroll"))
        .unwrap_or_else(|| panic!("docker does not list the plugin: {plugins}"));
    assert_eq!(ours["Version"], env!("CARGO_PKG_VERSION"), "{ours}");
    assert_eq!(ours["SchemaVersion"], "0.1.0", "{ours}");
    assert!(ours["Err"].is_null(), "{ours}");

    config.create_context("unixctx", "host=unix:///var/run/docker.sock");
    let project = config.dir.path();
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  app:\n    image: local/busybox:1\n",
    )
    .expect("write compose file");
    let plan = |docker_flags: &[&str]| {
        let mut args = docker_flags.to_vec();
        args.extend(["stackroll", "plan", "plugstack"]);
        let out = std::process::Command::new(crate::remote::docker_cli())
            .current_dir(project)
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(&args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let through_context = plan(&["--context", "unixctx"]);
    assert!(
        through_context.starts_with("Target: context unixctx, unix:///var/run/docker.sock"),
        "{through_context}"
    );
    let through_host = plan(&["-H", "unix:///var/run/docker.sock"]);
    assert!(
        through_host.starts_with("Target: context default, unix:///var/run/docker.sock"),
        "{through_host}"
    );
    assert!(Path::new(&link).exists());
}
