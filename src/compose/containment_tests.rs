//! The "outside the project directory" rule (issue 13 §3) applies to every path a project
//! resolves, `file:` and `env_file:`, not only to symlinks: `file: ../../home/ci/.ssh/id_rsa`
//! is refused unless `--allow-external-files`.

use tempfile::TempDir;

use super::{load, LoadOptions};

/// A project directory `project/` beside a directory `outside/` that holds `id_rsa` and
/// `ci.env`; the compose file is written into `project/`.
fn layout(compose: &str) -> TempDir {
    let root = TempDir::new().unwrap();
    let project = root.path().join("project");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("id_rsa"), "key").unwrap();
    std::fs::write(outside.join("ci.env"), "A=1\n").unwrap();
    std::fs::write(project.join("db.txt"), "pw").unwrap();
    std::fs::write(project.join("app.env"), "B=2\n").unwrap();
    let compose = compose.replace("<OUTSIDE>", &outside.display().to_string());
    std::fs::write(project.join("compose.yaml"), compose).unwrap();
    root
}

/// Loads `project/compose.yaml`; the errors shown, or Ok.
fn run(root: &TempDir, allow_external_files: bool) -> Result<(), String> {
    let options = LoadOptions {
        files: vec!["compose.yaml".into()],
        working_dir: root.path().join("project"),
        allow_external_files,
        ..LoadOptions::default()
    };
    load(&options).map(|_| ()).map_err(|diagnostics| {
        let shown: Vec<String> = diagnostics.errors().map(|d| d.to_string()).collect();
        shown.join("\n")
    })
}

const SECRET_OUTSIDE: &str = "services:\n  app:\n    image: busybox\n    secrets: [key]\nsecrets:\n  key:\n    file: ../outside/id_rsa\n";

#[test]
fn a_relative_file_leading_out_is_refused() {
    let root = layout(SECRET_OUTSIDE);
    let error = run(&root, false).unwrap_err();
    assert!(
        error.contains("compose.yaml:7:11: secrets.key.file: ")
            && error.contains("outside the project directory")
            && error.contains("--allow-external-files"),
        "{error}"
    );
    run(&root, true).unwrap();
}

#[test]
fn an_absolute_file_outside_is_refused() {
    let root = layout(
        "services:\n  app:\n    image: busybox\n    configs: [c]\nconfigs:\n  c:\n    file: <OUTSIDE>/id_rsa\n",
    );
    let error = run(&root, false).unwrap_err();
    assert!(
        error.contains("compose.yaml:7:11: configs.c.file: ")
            && error.contains("outside the project directory"),
        "{error}"
    );
    run(&root, true).unwrap();
}

#[test]
fn a_missing_file_outside_is_refused_as_outside() {
    let root = layout(
        "services:\n  app:\n    image: busybox\n    secrets: [key]\nsecrets:\n  key:\n    file: ../../nope/id_rsa\n",
    );
    let error = run(&root, false).unwrap_err();
    assert!(error.contains("outside the project directory"), "{error}");
}

#[test]
fn env_files_leading_out_are_refused_in_every_form() {
    let root = layout(
        "services:\n  one:\n    image: busybox\n    env_file: ../outside/ci.env\n  two:\n    image: busybox\n    env_file:\n      - ./app.env\n      - <OUTSIDE>/ci.env\n  three:\n    image: busybox\n    env_file:\n      - path: ../outside/ci.env\n        required: false\n",
    );
    let error = run(&root, false).unwrap_err();
    for expected in [
        "compose.yaml:4:15: services.one.env_file: ",
        "compose.yaml:9:9: services.two.env_file[1]: ",
        "compose.yaml:13:15: services.three.env_file[0].path: ",
    ] {
        assert!(error.contains(expected), "{expected} in\n{error}");
    }
    assert_eq!(
        error.matches("outside the project directory").count(),
        3,
        "{error}"
    );
    run(&root, true).unwrap();
}

#[test]
fn paths_inside_the_project_are_accepted() {
    let root = layout(
        "services:\n  app:\n    image: busybox\n    secrets: [db]\n    env_file: [./sub/../app.env, app.env]\nsecrets:\n  db:\n    file: ./sub/../db.txt\n",
    );
    run(&root, false).unwrap();
}

#[test]
fn a_project_reached_through_a_symlink_accepts_its_real_paths() {
    let root = layout(SECRET_OUTSIDE);
    let project = root.path().join("project");
    let alias = root.path().join("alias");
    std::os::unix::fs::symlink(&project, &alias).unwrap();
    let compose = format!(
        "services:\n  app:\n    image: busybox\n    secrets: [db]\nsecrets:\n  db:\n    file: {}/db.txt\n",
        project.canonicalize().unwrap().display()
    );
    std::fs::write(project.join("compose.yaml"), compose).unwrap();
    let options = LoadOptions {
        files: vec!["compose.yaml".into()],
        working_dir: alias,
        ..LoadOptions::default()
    };
    load(&options).unwrap();
}

#[test]
fn a_symlink_then_dot_dot_is_judged_where_the_kernel_leads() {
    // `link/../outside/ci.env` reads as `project/outside/ci.env` but the kernel follows
    // `link` first: it leads to `root/outside/ci.env`, outside.
    let root =
        layout("services:\n  app:\n    image: busybox\n    env_file: link/../outside/ci.env\n");
    std::os::unix::fs::symlink(
        root.path().join("outside"),
        root.path().join("project/link"),
    )
    .unwrap();
    let error = run(&root, false).unwrap_err();
    assert!(
        error.contains("compose.yaml:4:15: services.app.env_file: ")
            && error.contains("outside the project directory"),
        "{error}"
    );
}
