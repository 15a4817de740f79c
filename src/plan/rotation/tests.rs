use indexmap::IndexMap;
use serde_json::json;

use super::*;
use crate::compose::{load, LoadOptions};
use crate::engine::SwarmObject;

fn object(name: &str, labels: &[(&str, &str)]) -> SwarmObject {
    SwarmObject {
        id: format!("id-{name}"),
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// A project whose secret `pw` is owned by `db` and used by `app`.
fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret").unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  db:\n    image: i\n    secrets: [pw]\n  app:\n    image: i\n    secrets: [{source: pw, target: /etc/pw}]\n  other:\n    image: i\nsecrets:\n  pw:\n    file: ./pw\n    x-stackroll-rotation:\n      owners: [{service: db, previous_target: old_pw}]\n",
    )
    .unwrap();
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    load(&options).expect("loads").project
}

fn service_mounting(name: &str, secret: &str) -> ServiceState {
    ServiceState {
        id: format!("id-{name}"),
        name: name.to_string(),
        version: 1,
        spec: json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [
            {"File": {"Name": "pw"}, "SecretID": format!("id-{secret}"), "SecretName": secret}
        ]}}}),
        previous_spec: None,
        update_status: None,
        job_iteration: None,
    }
}

fn scope(name: &str) -> String {
    format!("st_{name}")
}

fn plan_for(objects: &[SwarmObject], to: &str, services: &[ServiceState]) -> Option<Rotation> {
    let project = project();
    let definition = &project.secrets["pw"];
    let state = KeyState {
        definition,
        policy: definition.rotation.as_ref().unwrap(),
        candidates: objects.iter().collect(),
        to: VersionRef {
            name: to.to_string(),
            id: objects
                .iter()
                .find(|o| o.name == to)
                .map_or(String::new(), |o| o.id.clone()),
        },
        services,
    };
    rotation(&state, &project, scope)
}

#[test]
fn a_first_deploy_has_no_rotation() {
    assert_eq!(plan_for(&[], "st_pw_v1", &[]), None);
}

#[test]
fn a_new_version_rotates_from_the_one_the_owner_mounts() {
    let objects = [object("st_pw_v1", &[])];
    let services = [service_mounting("st_db", "st_pw_v1")];
    let rotation = plan_for(&objects, "st_pw_v2", &services).expect("a rotation");
    assert_eq!(rotation.from.name, "st_pw_v1");
    assert_eq!(rotation.to.name, "st_pw_v2");
    assert_eq!(rotation.serial, 1);
    assert_eq!(rotation.done, None);
    assert_eq!(rotation.owners[0].service, "st_db");
    assert_eq!(rotation.consumers, vec!["st_app".to_string()]);
}

#[test]
fn unchanged_content_needs_no_rotation() {
    let objects = [object("st_pw_v1", &[])];
    let services = [service_mounting("st_db", "st_pw_v1")];
    assert_eq!(plan_for(&objects, "st_pw_v1", &services), None);
}

#[test]
fn an_unfinished_rotation_resumes_after_its_last_stage() {
    let objects = [
        object("st_pw_v1", &[]),
        object(
            "st_pw_v2",
            &[
                (SERIAL_LABEL, "3"),
                (STAGE_LABEL, "applied"),
                (FROM_LABEL, "st_pw_v1"),
            ],
        ),
    ];
    let services = [service_mounting("st_db", "st_pw_v2")];
    let rotation = plan_for(&objects, "st_pw_v2", &services).expect("a resumed rotation");
    assert_eq!(rotation.from.name, "st_pw_v1");
    assert_eq!(rotation.serial, 3);
    assert_eq!(rotation.done, Some(Stage::Applied));
    assert!(!rotation.needs(Stage::Applied));
    assert!(rotation.needs(Stage::Moved));
}

#[test]
fn a_finished_rotation_is_not_repeated() {
    let objects = [
        object("st_pw_v1", &[]),
        object(
            "st_pw_v2",
            &[
                (SERIAL_LABEL, "1"),
                (STAGE_LABEL, "done"),
                (FROM_LABEL, "st_pw_v1"),
            ],
        ),
    ];
    let services = [service_mounting("st_db", "st_pw_v2")];
    assert_eq!(plan_for(&objects, "st_pw_v2", &services), None);
}

#[test]
fn reverting_before_apply_abandons_the_rotation_without_a_new_one() {
    // v2's rotation never reached `apply`: the owners still hold v1's credential.
    let objects = [
        object("st_pw_v1", &[]),
        object(
            "st_pw_v2",
            &[
                (SERIAL_LABEL, "1"),
                (STAGE_LABEL, "holding"),
                (FROM_LABEL, "st_pw_v1"),
            ],
        ),
    ];
    let services = [service_mounting("st_db", "st_pw_v2")];
    assert_eq!(plan_for(&objects, "st_pw_v1", &services), None);
}

#[test]
fn a_change_after_apply_rotates_from_the_applied_version() {
    let objects = [
        object("st_pw_v1", &[]),
        object(
            "st_pw_v2",
            &[
                (SERIAL_LABEL, "1"),
                (STAGE_LABEL, "applied"),
                (FROM_LABEL, "st_pw_v1"),
            ],
        ),
    ];
    let services = [service_mounting("st_db", "st_pw_v2")];
    let rotation = plan_for(&objects, "st_pw_v3", &services).expect("a rotation");
    assert_eq!(rotation.from.name, "st_pw_v2");
    assert_eq!(rotation.serial, 2);
    assert_eq!(rotation.done, None);
}

fn final_spec(target: &str) -> Spec {
    json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [
        {"File": {"Name": target, "UID": "0", "GID": "0", "Mode": 256}, "SecretID": "", "SecretName": "st_pw_v2"}
    ]}}})
}

#[test]
fn stage_specs_mount_both_versions_on_owners_and_the_old_one_on_consumers_until_they_move() {
    let objects = [object("st_pw_v1", &[])];
    let services = [service_mounting("st_db", "st_pw_v1")];
    let rotation = plan_for(&objects, "st_pw_v2", &services).unwrap();
    let mut desired = IndexMap::new();
    desired.insert("st_db".to_string(), final_spec("pw"));
    desired.insert("st_app".to_string(), final_spec("/etc/pw"));
    desired.insert(
        "st_other".to_string(),
        json!({"TaskTemplate": {"ContainerSpec": {}}}),
    );
    let staged = staged_services(std::slice::from_ref(&rotation), &desired);
    assert_eq!(staged.len(), 2, "st_other is not part of the rotation");
    let names = |spec: &Spec| -> Vec<String> {
        spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}@{}#{}",
                    r["SecretName"].as_str().unwrap(),
                    r["File"]["Name"].as_str().unwrap(),
                    r["File"]["Mode"]
                )
            })
            .collect()
    };
    let db = &staged[0];
    assert_eq!(db.name, "st_db");
    assert_eq!(names(&db.start), ["st_pw_v2@pw#256", "st_pw_v1@old_pw#256"]);
    assert_eq!(names(&db.moved), ["st_pw_v2@pw#256", "st_pw_v1@old_pw#256"]);
    assert_eq!(names(&db.final_spec), ["st_pw_v2@pw#256"]);
    let app = &staged[1];
    assert_eq!(names(&app.start), ["st_pw_v1@/etc/pw#256"]);
    assert_eq!(
        app.start["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"],
        "id-st_pw_v1"
    );
    assert_eq!(names(&app.moved), ["st_pw_v2@/etc/pw#256"]);
}

#[test]
fn a_resumed_rotation_starts_its_services_where_it_stopped() {
    let objects = [
        object("st_pw_v1", &[]),
        object(
            "st_pw_v2",
            &[
                (SERIAL_LABEL, "1"),
                (STAGE_LABEL, "moved"),
                (FROM_LABEL, "st_pw_v1"),
            ],
        ),
    ];
    let services = [service_mounting("st_db", "st_pw_v2")];
    let rotation = plan_for(&objects, "st_pw_v2", &services).unwrap();
    let mut desired = IndexMap::new();
    desired.insert("st_app".to_string(), final_spec("/etc/pw"));
    let staged = staged_services(std::slice::from_ref(&rotation), &desired);
    assert_eq!(
        staged[0].start, staged[0].final_spec,
        "consumers already moved"
    );
}
