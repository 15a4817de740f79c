//! Private registries against a real one: the TLS + htpasswd registry `scripts/registry.sh up`
//! runs on 127.0.0.1 (its CA trusted by the local dockerd). Images are `docker import`ed from
//! local/busybox:1 with a distinct `ENV CONTENT=...`, pushed with the docker CLI from a
//! temporary DOCKER_CONFIG that ran `docker login`, and removed from the engine's image store,
//! so only a pull with credentials can run them.
//!
//! - without `--with-registry-auth` the task cannot pull: exit 3 with Swarm's error, and the
//!   plan says the registry has local credentials that were not sent; with it, the service
//!   converges (`registry_auth`);
//! - credentials from a credential helper on PATH (`registry_credential_helper`);
//! - a moving tag: `plan` shows the digest change, `deploy` rolls, the container runs the new
//!   content, the next deploy writes nothing (`registry_moving_tag`);
//! - parity: `docker stack deploy --with-registry-auth --resolve-image always` pins the same
//!   image and platforms (`registry_parity_with_docker_stack_deploy`);
//! - credentials from `DOCKER_AUTH_CONFIG` alone, as docker/cli 28.3+ reads them
//!   (`registry_docker_auth_config`);
//! - a pinned tag is checked with the registry itself: a no-op redeploy makes no
//!   `/distribution` call to the engine (counted through a proxy in front of it), a moved tag
//!   is still found and pinned with the engine's platforms (`registry_noop_asks_the_registry`);
//!   a registry whose certificate stackroll does not trust is asked through the engine, and
//!   pins the same (`registry_untrusted_certificate_falls_back_to_the_engine`).
//!
//! The registry password is registered with the leak harness: no stackroll output may hold it.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

use crate::docker::{
    docker_binary, exec_in_service, random_suffix, service_inspect, version_index,
};
use crate::faults::Proxy;
use crate::leaks::register;
use crate::stack::Stack;

/// The registry scripts/registry.sh runs.
struct Registry {
    /// `127.0.0.1:<port>`.
    address: String,
    /// The htpasswd user.
    user: String,
    /// Where its password is kept (read by the helper script, never passed as an argument).
    password_file: PathBuf,
}

/// The registry, checked once; its password is registered as a value no output may hold.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let dir = PathBuf::from(
            std::env::var("STACKROLL_REGISTRY_DIR")
                .unwrap_or_else(|_| "/var/lib/stackroll-registry".into()),
        );
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| {
                    panic!(
                        "these tests need the test registry ({}: {e}); run scripts/registry.sh up",
                        dir.join(file).display()
                    )
                })
                .trim()
                .to_string()
        };
        let password = read("password");
        register("registry password", password.as_bytes());
        Registry {
            address: read("address"),
            user: read("user"),
            password_file: dir.join("password"),
        }
    })
}

/// Runs the docker CLI with `config` as its configuration directory; panics on failure.
fn docker_with(config: &Path, args: &[&str], stdin: Option<&Path>) -> String {
    let mut command = StdCommand::new(docker_binary());
    command.arg("--config").arg(config).args(args);
    if let Some(file) = stdin {
        command.stdin(Stdio::from(
            std::fs::File::open(file).expect("open stdin file"),
        ));
    }
    let output = command.output().expect("run docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A DOCKER_CONFIG directory where `docker login` to the registry succeeded.
fn logged_in() -> TempDir {
    let registry = registry();
    let config = TempDir::new().expect("temporary DOCKER_CONFIG");
    docker_with(
        config.path(),
        &[
            "login",
            "--username",
            &registry.user,
            "--password-stdin",
            &registry.address,
        ],
        Some(&registry.password_file),
    );
    config
}

/// Imports local/busybox:1 with `ENV CONTENT=<content>` as `<registry>/<repository>:main`,
/// pushes it, removes it from the engine's image store and returns the pushed digest.
fn push(config: &Path, repository: &str, content: &str) -> String {
    let image = format!("{}/{repository}:main", registry().address);
    let change = format!("ENV CONTENT={content}");
    // local/busybox:1's file system, exported from a container made for it, imported anew.
    let script = r#"id=$("$0" create local/busybox:1) && "$0" export "$id" | "$0" import --change "$1" - "$2"; code=$?; "$0" rm "$id" >/dev/null; exit $code"#;
    let imported = StdCommand::new("sh")
        .args(["-c", script, docker_binary(), &change, &image])
        .output()
        .expect("run sh");
    assert!(
        imported.status.success(),
        "docker import of {image} failed: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let pushed = docker_with(config, &["push", &image], None);
    let digest = pushed
        .split_whitespace()
        .skip_while(|word| *word != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in docker push output: {pushed}"))
        .to_string();
    docker_with(config, &["image", "rm", &image], None);
    digest
}

/// A stack from `fixtures/e2e/registry` whose service `app` runs
/// `<registry>/<repository>:main`.
fn stack_on(tag: &str, repository: &str, config: &Path) -> Stack {
    let stack = Stack::new(tag);
    stack.use_compose("registry/compose.yaml");
    stack.set_env("REGISTRY", &registry().address);
    stack.set_env("REPOSITORY", repository);
    stack.set_env("DOCKER_CONFIG", config.to_str().unwrap());
    stack
}

/// What `$CONTENT` says in the running container of `service`.
fn content_in(service: &str) -> String {
    let out = exec_in_service(service, &["sh", "-c", "echo $CONTENT"]);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// A new repository name for one test.
fn repository(tag: &str) -> String {
    format!("stackroll-test/{tag}-{}", random_suffix())
}

/// Without the flag no credentials reach the swarm: the task cannot pull, the deploy exits 3
/// with Swarm's error, and the plan says why. With it, the service converges.
#[test]
fn registry_auth() {
    let config = logged_in();
    let repository = repository("auth");
    let digest = push(config.path(), &repository, "first");
    let stack = stack_on("rga", &repository, config.path());
    let app = stack.scoped("app");

    let plan = stack.plan(&[]);
    plan.expect_code(0).expect_contains(&format!(
        "registry {} has credentials in {}",
        registry().address,
        config.path().join("config.json").display()
    ));
    plan.expect_contains("--with-registry-auth was not given");

    let failed = stack.stackroll(&["deploy", "--timeout", "30s", &stack.name]);
    failed.expect_code(3);
    failed.expect_contains(&app);
    let lower = failed.all().to_lowercase();
    assert!(
        lower.contains("no such image") || lower.contains("no basic auth credentials"),
        "Swarm's pull error is reported\n{}",
        failed.context()
    );

    let deployed = stack.deploy(&["--with-registry-auth"]);
    deployed.expect_code(0);
    let image = service_inspect(&app)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        image,
        format!("{}/{repository}:main@{digest}", registry().address),
        "pinned to the pushed digest\n{}",
        deployed.context()
    );
    assert_eq!(
        service_inspect(&app)["Spec"]["TaskTemplate"]["Placement"]["Platforms"],
        serde_json::json!([{"Architecture": "amd64", "OS": "linux"}])
    );
    assert_eq!(content_in(&app), "first");
}

/// Credentials from a credential helper (`credHelpers`): run with the registry address on
/// standard input, its JSON answer sent to the swarm.
#[test]
fn registry_credential_helper() {
    let pusher = logged_in();
    let repository = repository("helper");
    push(pusher.path(), &repository, "helped");

    let config = TempDir::new().unwrap();
    let bin = TempDir::new().unwrap();
    let asked = bin.path().join("asked");
    let registry = registry();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "stackrolltest"}}}}"#,
            registry.address
        ),
    )
    .unwrap();
    let helper = bin.path().join("docker-credential-stackrolltest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {asked}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"%s\"}}' \"$(cat {asked})\" \"$(cat {password})\"\n",
            asked = asked.display(),
            user = registry.user,
            password = registry.password_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let stack = stack_on("rgh", &repository, config.path());
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    stack.set_env("PATH", &path);
    stack.deploy(&["--with-registry-auth"]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        registry.address,
        "the helper was asked for the registry's address on standard input"
    );
    assert_eq!(content_in(&stack.scoped("app")), "helped");
}

/// A tag that moves: the plan shows the digest change, the deploy rolls the service onto the
/// new content, and the next deploy writes nothing.
#[test]
fn registry_moving_tag() {
    let config = logged_in();
    let repository = repository("moving");
    let first = push(config.path(), &repository, "alpha");
    let stack = stack_on("rgm", &repository, config.path());
    let app = stack.scoped("app");
    stack.deploy_ok(&["--with-registry-auth"]);
    assert_eq!(content_in(&app), "alpha");

    let second = push(config.path(), &repository, "beta");
    assert_ne!(first, second);
    let plan = stack.plan(&["--with-registry-auth", "--detailed-exitcode"]);
    plan.expect_code(2).expect_contains(&format!(
        "image: {}/{repository}:main digest {first} -> {second}",
        registry().address
    ));

    stack.deploy_ok(&["--with-registry-auth"]);
    assert_eq!(content_in(&app), "beta");

    let index = version_index(&app);
    let again = stack.deploy_ok(&["--with-registry-auth"]);
    again.expect_contains("No changes");
    assert_eq!(version_index(&app), index, "a redeploy writes nothing");
}

/// `docker stack deploy --with-registry-auth --resolve-image always` and stackroll pin a
/// registry image the same way: the same image reference with digest, the same platforms.
#[test]
fn registry_parity_with_docker_stack_deploy() {
    let config = logged_in();
    let repository = repository("parity");
    push(config.path(), &repository, "same");
    let ours = stack_on("rgp", &repository, config.path());
    ours.deploy_ok(&["--with-registry-auth", "--detach"]);
    let theirs = Stack::new("rgq");
    let compose = format!(
        "version: \"3.8\"\nservices:\n  app:\n    image: {}/{repository}:main\n",
        registry().address
    );
    std::fs::write(theirs.path("compose.yaml"), compose).unwrap();
    let compose_file = theirs.path("compose.yaml");
    docker_with(
        config.path(),
        &[
            "stack",
            "deploy",
            "--with-registry-auth",
            "--resolve-image",
            "always",
            "-c",
            compose_file.to_str().unwrap(),
            &theirs.name,
        ],
        None,
    );
    let pinned = |service: &str| {
        let spec = &service_inspect(service)["Spec"];
        (
            spec["TaskTemplate"]["ContainerSpec"]["Image"].clone(),
            spec["TaskTemplate"]["Placement"]["Platforms"].clone(),
            spec["Labels"]["com.docker.stack.image"].clone(),
        )
    };
    let (ours, theirs) = (pinned(&ours.scoped("app")), pinned(&theirs.scoped("app")));
    assert!(
        ours.0
            .as_str()
            .is_some_and(|image| image.contains("@sha256:")),
        "{ours:?}"
    );
    assert_eq!(
        ours, theirs,
        "stackroll (left) and docker stack deploy (right)"
    );
}

/// The engine's `/distribution` lookups `proxy` has forwarded so far.
fn distribution_calls(proxy: &Proxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|line| line.contains("/distribution/"))
        .count()
}

/// The image and platforms `service` runs with.
fn pinned_spec(service: &str) -> (serde_json::Value, serde_json::Value) {
    let spec = &service_inspect(service)["Spec"]["TaskTemplate"];
    (
        spec["ContainerSpec"]["Image"].clone(),
        spec["Placement"]["Platforms"].clone(),
    )
}

/// A tag the service runs pinned is checked with the registry itself: the no-op redeploy
/// asks the engine nothing about it; a moved tag is still found, looked up through the engine
/// (for its platforms) and rolled.
#[test]
fn registry_noop_asks_the_registry() {
    let config = logged_in();
    let repository = repository("direct");
    let first = push(config.path(), &repository, "one");
    let stack = stack_on("rgd", &repository, config.path());
    let app = stack.scoped("app");
    let proxy = Proxy::start();
    let host = proxy.host();
    stack.deploy_ok(&["-H", &host, "--with-registry-auth"]);
    // (A deploy that finds the swarm changed when it takes the lock plans again, with its
    // lookups: other tests write to the same swarm, so counts are compared, not fixed.)
    let first_deploy = distribution_calls(&proxy);
    assert!(
        first_deploy >= 1,
        "a new service's tag is looked up through the engine: {:?}",
        proxy.requests()
    );
    let image = |digest: &str| format!("{}/{repository}:main@{digest}", registry().address);
    let platforms = serde_json::json!([{"Architecture": "amd64", "OS": "linux"}]);
    assert_eq!(
        pinned_spec(&app),
        (serde_json::json!(image(&first)), platforms.clone())
    );

    let index = version_index(&app);
    let again = stack.deploy_ok(&["-H", &host, "--with-registry-auth"]);
    again.expect_contains("No changes");
    assert_eq!(version_index(&app), index, "a redeploy writes nothing");
    assert_eq!(
        distribution_calls(&proxy),
        first_deploy,
        "the unchanged tag was checked with the registry, not the engine\n{}",
        again.context()
    );

    let second = push(config.path(), &repository, "two");
    assert_ne!(first, second);
    let moved = stack.deploy_ok(&["-H", &host, "--with-registry-auth"]);
    assert!(
        distribution_calls(&proxy) > first_deploy,
        "the moved tag is looked up through the engine\n{}",
        moved.context()
    );
    assert_eq!(
        pinned_spec(&app),
        (serde_json::json!(image(&second)), platforms)
    );
    assert_eq!(content_in(&app), "two");
}

/// A registry whose certificate stackroll does not trust (`localhost:<port>`: no certs.d
/// entry, and the certificate names only 127.0.0.1) is asked through the engine, which
/// reaches it (dockerd treats loopback registries as insecure): the no-op redeploy still pins
/// the same digest and platforms and writes nothing.
#[test]
fn registry_untrusted_certificate_falls_back_to_the_engine() {
    let pusher = logged_in();
    let repository = repository("untrusted");
    let digest = push(pusher.path(), &repository, "plain");
    let registry = registry();
    let port = registry.address.rsplit(':').next().unwrap();
    let address = format!("localhost:{port}");
    let config = TempDir::new().unwrap();
    let password = std::fs::read_to_string(&registry.password_file).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        registry.user,
        password.trim()
    ));
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths": {{"{address}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    let stack = stack_on("rgu", &repository, config.path());
    stack.set_env("REGISTRY", &address);
    let app = stack.scoped("app");
    let proxy = Proxy::start();
    let host = proxy.host();
    stack.deploy_ok(&["-H", &host, "--with-registry-auth"]);
    let pinned = (
        serde_json::json!(format!("{address}/{repository}:main@{digest}")),
        serde_json::json!([{"Architecture": "amd64", "OS": "linux"}]),
    );
    assert_eq!(pinned_spec(&app), pinned);
    let index = version_index(&app);
    let first_deploy = distribution_calls(&proxy);
    let again = stack.deploy_ok(&["-H", &host, "--with-registry-auth"]);
    again.expect_contains("No changes");
    again.expect_contains("could not be asked directly");
    assert!(
        distribution_calls(&proxy) > first_deploy,
        "the redeploy looked the tag up through the engine\n{}",
        again.context()
    );
    assert_eq!(version_index(&app), index, "a redeploy writes nothing");
    assert_eq!(pinned_spec(&app), pinned);
    assert_eq!(content_in(&app), "plain");
}

/// Credentials given only in `DOCKER_AUTH_CONFIG` (an empty DOCKER_CONFIG directory), as
/// docker/cli 28.3.0 and later reads them: sent to the swarm, which pulls the private image,
/// and used for the lookups.
#[test]
fn registry_docker_auth_config() {
    let pusher = logged_in();
    let repository = repository("envauth");
    let digest = push(pusher.path(), &repository, "from-env");
    let registry = registry();
    let password = std::fs::read_to_string(&registry.password_file).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        registry.user,
        password.trim()
    ));
    register("registry auth in DOCKER_AUTH_CONFIG", auth.as_bytes());
    let empty = TempDir::new().unwrap();
    let stack = stack_on("rge", &repository, empty.path());
    stack.set_env(
        "DOCKER_AUTH_CONFIG",
        &format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.address
        ),
    );
    let app = stack.scoped("app");
    let plan = stack.plan(&[]);
    plan.expect_code(0).expect_contains(&format!(
        "registry {} has credentials in DOCKER_AUTH_CONFIG",
        registry.address
    ));
    stack.deploy_ok(&["--with-registry-auth"]);
    assert_eq!(
        pinned_spec(&app).0,
        serde_json::json!(format!("{}/{repository}:main@{digest}", registry.address))
    );
    assert_eq!(content_in(&app), "from-env");
}
