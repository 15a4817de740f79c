//! Snapshots (insta) of everything stackroll prints: plan and deploy reports (text and JSON),
//! `ls`, `ps`, `status`, `rm`, `config` (YAML and JSON) and the progress lines. Plans and stack
//! states come from a project planned and deployed against the in-memory engine; the snapshots
//! live in `src/render/snapshots/`. Every rendered text is also searched for the project's
//! secret values (raw and as SHA-256 hex): a snapshot never holds one.

use std::time::Duration;

use indexmap::IndexMap;
use insta::assert_snapshot;
use sha2::Digest as _;
use tempfile::TempDir;

use super::config::{render_project, ConfigFormat};
use super::format::OutputFormat;
use super::markdown::render_markdown;
use super::plan::{render, Outcome, Report};
use super::progress::describe;
use super::stacks::{render_removed, render_stacks, render_status, render_tasks};
use crate::apply::rollout::RolloutFailure;
use crate::apply::{apply, ApplyInput, ApplyOptions};
use crate::compose::{load, LoadOptions, Loaded};
use crate::contents::Contents;
use crate::convert::ConvertedProject;
use crate::engine::fake::{FakeEngine, TARGET};
use crate::observe::observe;
use crate::plan::fingerprint::Fingerprinter;
use crate::plan::images::ImageFacts;
use crate::plan::{plan, Plan, PlanInput, Resource};
use crate::progress::{Progress, Reporter};
use crate::stacks::{list_stacks, remove_stack, stack_status, stack_tasks};
use crate::swarm::namespace::Namespace;

/// The secret values of the project: no snapshot may contain them.
const DB_VALUE: &str = "db-snapshot-value-7f3a9c";
const DB_VALUE_ROTATED: &str = "db-snapshot-value-rotated-51e0";
const TOKEN_VALUE: &str = "token-snapshot-value-c4d2e8";

/// Two services, a file secret, an environment secret, a config and a network.
const COMPOSE: &str = "\
services:
  app:
    image: local/busybox:1
    environment:
      MODE: ${MODE:-one}
    secrets: [db, token]
    configs:
      - source: site
        target: /etc/site.conf
    networks: [back]
  worker:
    image: local/busybox:1
    deploy:
      replicas: 2
    secrets:
      - source: db
        target: /run/db
        mode: 0400
    networks: [back]
secrets:
  db:
    file: ./db.txt
  token:
    environment: TOKEN
configs:
  site:
    file: ./site.conf
networks:
  back: {}
";

struct Quiet;
impl Reporter for Quiet {
    fn report(&self, _: Progress<'_>) {}
}

/// A project directory deployed (or not) to an in-memory engine as stack `demo`.
struct Scene {
    dir: TempDir,
    engine: FakeEngine,
    env: IndexMap<String, String>,
}

impl Scene {
    fn new() -> Scene {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
        std::fs::write(dir.path().join("db.txt"), DB_VALUE).unwrap();
        std::fs::write(dir.path().join("site.conf"), "listen 8080\n").unwrap();
        let env = IndexMap::from([("TOKEN".to_string(), TOKEN_VALUE.to_string())]);
        Scene {
            dir,
            engine: FakeEngine::new(),
            env,
        }
    }

    fn namespace() -> Namespace {
        Namespace("demo".into())
    }

    fn load(&self) -> Loaded {
        let options = LoadOptions {
            working_dir: self.dir.path().to_path_buf(),
            process_env: self.env.clone(),
            ..LoadOptions::default()
        };
        load(&options).unwrap_or_else(|d| panic!("{:?}", d.errors().collect::<Vec<_>>()))
    }

    /// Plans the project against the engine and, if `write`, applies the plan (waiting for
    /// the rollouts, keeping one old version); returns the plan.
    fn plan(&self, write: bool) -> Plan {
        let loaded = self.load();
        let contents = Contents::read(&loaded, self.dir.path()).unwrap();
        let namespace = Scene::namespace();
        let fingerprinter =
            Fingerprinter::from_key(Some("snapshot-key-0123456789abcdef012345".into())).unwrap();
        runtime().block_on(async {
            let observed = observe(&self.engine, &namespace).await.unwrap();
            let input = PlanInput {
                namespace: &namespace,
                project: &loaded.project,
                contents: &contents,
                fingerprinter: &fingerprinter,
                keep: 1,
                prune: true,
                images: &ImageFacts::default(),
            };
            let converted = ConvertedProject::new(&namespace, &loaded.project);
            let mut plan = plan(&input, &converted, &observed).expect("the project plans");
            crate::observe::add_content_diffs(&self.engine, &mut plan, &contents).await;
            if write {
                let apply_input = ApplyInput {
                    plan: &plan,
                    namespace: &namespace,
                    contents: &contents,
                    fingerprinter: &fingerprinter,
                    project: &loaded.project,
                    keep: 1,
                };
                let options = ApplyOptions {
                    detach: false,
                    timeout: Duration::from_secs(5),
                    poll: Duration::from_millis(1),
                    settle: Duration::ZERO,
                    kill_at: None,
                };
                apply(&self.engine, &apply_input, &Quiet, &options)
                    .await
                    .expect("the plan applies");
            }
            plan
        })
    }

    /// The project deployed once.
    fn deployed() -> Scene {
        let scene = Scene::new();
        scene.plan(true);
        scene
    }

    /// Replaces the project's temporary directory, which differs per run, by `<DIR>`.
    fn stable(&self, text: &str) -> String {
        let dir = self.dir.path().canonicalize().unwrap();
        text.replace(&dir.display().to_string(), "<DIR>")
            .replace(&self.dir.path().display().to_string(), "<DIR>")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `text`, after checking that it holds no secret value of the project (raw or SHA-256 hex).
fn checked(text: String) -> String {
    for value in [DB_VALUE, DB_VALUE_ROTATED, TOKEN_VALUE] {
        let digest: String = sha2::Sha256::digest(value.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            !text.contains(value) && !text.to_lowercase().contains(&digest),
            "a secret value shows in:\n{text}"
        );
    }
    text
}

/// `text`, after checking that it is a JSON document schema/plan.schema.json accepts.
fn valid(text: String) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let document: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid: {errors:?}\n{text}");
    text
}

fn report(plan: &Plan, outcome: Outcome) -> Report<'_> {
    Report {
        target: &TARGET,
        plan,
        outcome,
        deleted: Vec::new(),
        failures: Vec::new(),
        measured_seconds: None,
    }
}

#[test]
fn plan_of_a_new_stack() {
    let scene = Scene::new();
    let plan = scene.plan(false);
    let report = report(&plan, Outcome::Planned);
    assert_snapshot!(
        "plan_new_stack_text",
        checked(render(&report, OutputFormat::Text))
    );
    assert_snapshot!(
        "plan_new_stack_json",
        valid(checked(render(&report, OutputFormat::Json)))
    );
}

#[test]
fn plan_of_changes_to_a_deployed_stack() {
    let mut scene = Scene::deployed();
    std::fs::write(scene.dir.path().join("db.txt"), DB_VALUE_ROTATED).unwrap();
    std::fs::write(scene.dir.path().join("site.conf"), "listen 9090\n").unwrap();
    scene.env.insert("MODE".into(), "two".into());
    let plan = scene.plan(false);
    let report = report(&plan, Outcome::Planned);
    assert_snapshot!(
        "plan_changes_text",
        checked(render(&report, OutputFormat::Text))
    );
    assert_snapshot!(
        "plan_changes_json",
        valid(checked(render(&report, OutputFormat::Json)))
    );
}

/// The project after a pull request touching each kind of service field: replicas, update
/// settings, an environment variable added and one changed, a port published, a label, a
/// healthcheck, a config reference's target, a secret removed from a service; plus a field set
/// by hand on the live service that the files do not set.
const COMPOSE_AFTER_REVIEW: &str = "\
services:
  app:
    image: local/busybox:2
    environment:
      MODE: ${MODE:-one}
      LOG_LEVEL: debug
    secrets: [db]
    configs:
      - source: site
        target: /etc/site/site.conf
    networks: [back]
    ports:
      - target: 80
        published: 8080
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 5s
    labels:
      team: web
  worker:
    image: local/busybox:1
    deploy:
      replicas: 3
      update_config:
        parallelism: 2
        delay: 3s
    secrets:
      - source: db
        target: /run/db
        mode: 0400
    networks: [back]
secrets:
  db:
    file: ./db.txt
  token:
    environment: TOKEN
configs:
  site:
    file: ./site.conf
networks:
  back: {}
";

#[test]
fn plan_of_a_pull_request_names_compose_fields_and_locations() {
    let scene = Scene::deployed();
    let rt = runtime();
    // Someone set a stop grace period by hand: the files do not set it.
    let app = scene
        .engine
        .services()
        .into_iter()
        .find(|service| service.name == "demo_app")
        .unwrap();
    let mut spec = app.spec.clone();
    spec["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] = serde_json::json!(30_000_000_000u64);
    rt.block_on(crate::engine::Engine::update_service(
        &scene.engine,
        &app.id,
        app.version,
        &spec,
    ))
    .unwrap();
    std::fs::write(scene.dir.path().join("compose.yaml"), COMPOSE_AFTER_REVIEW).unwrap();
    let plan = scene.plan(false);
    let report = report(&plan, Outcome::Planned);
    assert_snapshot!(
        "plan_review_text",
        checked(scene.stable(&render(&report, OutputFormat::Text)))
    );
    assert_snapshot!(
        "plan_review_json",
        valid(checked(scene.stable(&render(&report, OutputFormat::Json))))
    );
}

#[test]
fn plan_of_a_stack_that_matches_the_files() {
    let scene = Scene::deployed();
    let plan = scene.plan(false);
    let report = report(&plan, Outcome::NoChanges);
    assert_snapshot!(
        "plan_no_changes_text",
        checked(render(&report, OutputFormat::Text))
    );
    assert_snapshot!(
        "plan_no_changes_json",
        valid(checked(render(&report, OutputFormat::Json)))
    );
}

/// What deploy adds to the plan in JSON (the text printer shows the plan only; the CLI
/// reports deletions and failures as they happen).
#[test]
fn deploy_reports_with_deletions_or_a_failed_rollout() {
    let mut scene = Scene::deployed();
    std::fs::write(scene.dir.path().join("db.txt"), DB_VALUE_ROTATED).unwrap();
    scene.env.insert("MODE".into(), "two".into());
    let plan = scene.plan(false);
    let applied = Report {
        deleted: vec!["demo_db_v1".into()],
        ..report(&plan, Outcome::Applied)
    };
    assert_snapshot!(
        "deploy_applied_json",
        valid(checked(render(&applied, OutputFormat::Json)))
    );
    let failed = Report {
        failures: vec![RolloutFailure {
            service: "demo_app".into(),
            reason: "rollback_completed: update rolled back due to failure or early termination \
                     of task"
                .into(),
        }],
        ..report(&plan, Outcome::RolloutFailed)
    };
    assert_snapshot!(
        "deploy_rollout_failed_json",
        valid(checked(render(&failed, OutputFormat::Json)))
    );
}

#[test]
fn ls_ps_status_and_rm_of_a_deployed_stack() {
    let scene = Scene::deployed();
    let namespace = Scene::namespace();
    let rt = runtime();
    let stacks = rt.block_on(list_stacks(&scene.engine)).unwrap();
    let tasks = rt.block_on(stack_tasks(&scene.engine, &namespace)).unwrap();
    let status = rt
        .block_on(stack_status(&scene.engine, &namespace))
        .unwrap();
    for (name, format) in [("text", OutputFormat::Text), ("json", OutputFormat::Json)] {
        assert_snapshot!(
            format!("ls_{name}"),
            checked(render_stacks(&stacks, format))
        );
        assert_snapshot!(format!("ps_{name}"), checked(render_tasks(&tasks, format)));
        assert_snapshot!(
            format!("status_{name}"),
            checked(render_status(&status, format))
        );
    }
    let removed = rt
        .block_on(remove_stack(
            &scene.engine,
            &namespace,
            Duration::from_secs(5),
            &crate::apply::lock::LockTiming::waiting(Duration::ZERO, Duration::from_millis(1)),
            &Quiet,
            std::future::pending(),
        ))
        .unwrap();
    for (name, format) in [("text", OutputFormat::Text), ("json", OutputFormat::Json)] {
        assert_snapshot!(
            format!("rm_{name}"),
            checked(render_removed(&TARGET, "demo", &removed, format))
        );
    }
}

#[test]
fn config_as_yaml_and_json() {
    let scene = Scene::new();
    let loaded = scene.load();
    for (name, format) in [("yaml", ConfigFormat::Yaml), ("json", ConfigFormat::Json)] {
        let text = scene.stable(&render_project(&loaded.project, format));
        assert_snapshot!(format!("config_{name}"), checked(text));
    }
}

#[test]
fn progress_lines() {
    let events = [
        Progress::Created {
            resource: Resource::Secret,
            name: "demo_db_v2",
        },
        Progress::Updated { name: "demo_app" },
        Progress::Rolling {
            service: "demo_app",
            running: 1,
            desired: 2,
            elapsed: Duration::from_millis(2500),
            last_error: None,
        },
        Progress::Rolling {
            service: "demo_app",
            running: 0,
            desired: 2,
            elapsed: Duration::from_millis(6100),
            last_error: Some("task: non-zero exit (1)"),
        },
        Progress::Converged {
            service: "demo_app",
            elapsed: Duration::from_millis(7250),
        },
        Progress::RolloutFailed {
            service: "demo_worker",
            state: "rollback_completed",
            message: "update rolled back due to failure or early termination of task",
        },
        Progress::Deleted {
            resource: Resource::Config,
            name: "demo_site_v1",
        },
        Progress::KeptInUse {
            resource: Resource::Secret,
            name: "demo_db_v1",
            reason: "still referenced by demo_worker's previous spec",
        },
    ];
    let lines: Vec<String> = events.iter().map(describe).collect();
    assert_snapshot!("progress_lines", checked(lines.join("\n")));
}

#[test]
fn context_of_a_tls_endpoint_and_an_ssh_one() {
    use crate::engine::endpoint::{ChosenBy, Endpoint, SshTarget, TlsSettings, Transport};
    use crate::render::target::render_endpoint;
    let tls = Endpoint {
        context: "prod".to_string(),
        chosen_by: ChosenBy::ContextEnv,
        address: "tcp://10.0.0.5:2376".to_string(),
        transport: Transport::Tcp {
            host: "10.0.0.5".to_string(),
            port: 2376,
            tls: Some(TlsSettings {
                ca: Some("/certs/ca.pem".into()),
                cert: Some("/certs/cert.pem".into()),
                key: Some("/certs/key.pem".into()),
                skip_verify: false,
            }),
        },
        warnings: Vec::new(),
    };
    let ssh = Endpoint {
        context: "default".to_string(),
        chosen_by: ChosenBy::HostFlag,
        address: "ssh://deploy@manager1".to_string(),
        transport: Transport::Ssh(SshTarget {
            user: Some("deploy".to_string()),
            host: "manager1".to_string(),
            port: None,
            socket: None,
        }),
        warnings: Vec::new(),
    };
    for (name, endpoint) in [("tls", &tls), ("ssh", &ssh)] {
        for (format_name, format) in [("text", OutputFormat::Text), ("json", OutputFormat::Json)] {
            assert_snapshot!(
                format!("context_{name}_{format_name}"),
                render_endpoint(endpoint, format)
            );
        }
    }
}

/// The Markdown of a plan, checked to render to HTML (pulldown-cmark, with GitHub's tables):
/// one table of changes, collapsible details, and no HTML but the `<details>` blocks.
fn markdown_checked(report: &Report<'_>, warnings: &[String]) -> String {
    let markdown = checked(render_markdown(report, warnings));
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::new();
    pulldown_cmark::html::push_html(
        &mut html,
        pulldown_cmark::Parser::new_ext(&markdown, options),
    );
    let changes = report.plan.changes.len();
    assert_eq!(
        html.matches("<table>").count(),
        usize::from(changes > 0),
        "{html}"
    );
    assert_eq!(
        html.matches("<tr>").count(),
        if changes > 0 { changes + 1 } else { 0 },
        "{html}"
    );
    let detailed = report
        .plan
        .changes
        .iter()
        .filter(|c| !c.details.is_empty() || c.content_diff.is_some())
        .count();
    assert_eq!(html.matches("<details>").count(), detailed, "{html}");
    assert!(html.contains("<h3>stackroll plan for <code>"), "{html}");
    markdown
}

#[test]
fn plans_as_markdown_for_pull_requests() {
    let mut scene = Scene::deployed();
    let plan = scene.plan(false);
    let report_same = report(&plan, Outcome::NoChanges);
    assert_snapshot!(
        "plan_no_changes_markdown",
        markdown_checked(&report_same, &[])
    );

    std::fs::write(scene.dir.path().join("db.txt"), DB_VALUE_ROTATED).unwrap();
    std::fs::write(scene.dir.path().join("site.conf"), "listen 9090\n").unwrap();
    scene.env.insert("MODE".into(), "two".into());
    let plan = scene.plan(false);
    let warnings = vec![
        "warning: compose.yaml:3:5: services.app.x: a <b>warning</b> | with pipes\n  hint: h"
            .to_string(),
    ];
    let text = markdown_checked(&report(&plan, Outcome::Planned), &warnings);
    assert_snapshot!("plan_changes_markdown", scene.stable(&text));

    let new = Scene::new().plan(false);
    assert_snapshot!(
        "plan_new_stack_markdown",
        markdown_checked(&report(&new, Outcome::Planned), &[])
    );
}

#[test]
fn markdown_escapes_what_the_input_names() {
    let mut plan = Scene::new().plan(false);
    plan.changes[0].name = "x` | <script>alert(1)</script>".into();
    plan.changes[0].reason = "a | b <img src=x> **bold**".into();
    plan.changes[0].details = vec![crate::plan::detail::Detail {
        field: "``` fence".into(),
        source: crate::plan::detail::FieldSource::Api,
        api_field: "``` fence".into(),
        location: None,
        change: crate::plan::canonical::How::Changed,
        old: None,
        new: None,
        redacted: true,
    }];
    let text = markdown_checked(&report(&plan, Outcome::Planned), &[]);
    let mut html = String::new();
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new_ext(&text, options));
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(!html.contains("<strong>"), "{html}");
}
