//! A secret mounted twice in one service: the engine writes one file per secret and task and
//! gives every target the owner and mode of one reference, so stackroll orders them for the
//! most restrictive mode to be the one applied (issue 13 §6), checked in a running container.

use crate::docker::stat_in_service;
use crate::stack::Stack;

#[test]
fn a_secret_mounted_twice_keeps_its_most_restrictive_mode() {
    let stack = Stack::new("mode");
    // `db` at its default target (mode 0444) and at /etc/app/db.conf with mode 0440.
    stack.use_compose("basic/compose.yaml");
    stack.write_secret("db.txt", "db");
    stack.write_secret("api.txt", "api");
    stack.deploy_ok(&[]);
    let app = stack.scoped("app");
    assert_eq!(stat_in_service(&app, "/etc/app/db.conf"), "440 0 0");
    assert_eq!(stat_in_service(&app, "/run/secrets/db"), "440 0 0");
    assert_eq!(stat_in_service(&app, "/etc/app/api.key"), "400 1000 1000");
}
