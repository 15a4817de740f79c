//! No value in any error, end to end (issue 13 §2): `stackroll config` at full verbosity on
//! env files and compose files with a marker value planted in every loader error path; stdout
//! and stderr must name the file and line and never contain the marker or a piece of it.

use assert_cmd::Command;
use tempfile::TempDir;

/// The planted value.
const MARKER: &str = "hunter2-CLI-MARKER-51d7";

/// One hostile project and the `FILE:LINE` its error must name.
struct Case {
    name: &'static str,
    /// (path, text); `@` stands for the marker.
    files: &'static [(&'static str, &'static str)],
    /// Extra arguments to `stackroll config`.
    args: &'static [&'static str],
    /// Expected `FILE:LINE` in the error.
    at: &'static str,
}

const IMAGE: &str = "services:\n  app:\n    image: busybox\n";

const CASES: &[Case] = &[
    Case {
        name: ".env unterminated quote",
        files: &[(".env", "DB_PASSWORD=\"@\n"), ("compose.yaml", IMAGE)],
        args: &[],
        at: ".env:1:",
    },
    Case {
        name: ".env pasted value",
        files: &[(".env", "A=1\n@!\n"), ("compose.yaml", IMAGE)],
        args: &[],
        at: ".env:2:",
    },
    Case {
        name: ".env invalid interpolation",
        files: &[(".env", "DB_URL=postgres://u:@${w\n"), ("compose.yaml", IMAGE)],
        args: &[],
        at: ".env:1:",
    },
    Case {
        name: "--env-file unterminated quote",
        files: &[("ci.env", "X=1\nTOKEN='@\n"), ("compose.yaml", IMAGE)],
        args: &["--env-file", "ci.env"],
        at: "ci.env:2:",
    },
    Case {
        name: "environment value",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    environment:\n      DB_URL: \"postgres://u:@${w\"\n",
        )],
        args: &[],
        at: "compose.yaml:5:",
    },
    Case {
        name: "label",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    labels: [\"token=@${\"]\n",
        )],
        args: &[],
        at: "compose.yaml:4:",
    },
    Case {
        name: "content",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    configs: [c]\nconfigs:\n  c:\n    content: \"password=@ ${}\"\n",
        )],
        args: &[],
        at: "compose.yaml:7:",
    },
    Case {
        name: "driver options",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\nvolumes:\n  data:\n    driver_opts:\n      o: \"password=@${\"\n",
        )],
        args: &[],
        at: "compose.yaml:7:",
    },
    Case {
        name: "logging options",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    logging:\n      options:\n        splunk-token: \"@${\"\n",
        )],
        args: &[],
        at: "compose.yaml:6:",
    },
    Case {
        name: "required message naming a secret variable",
        files: &[
            (".env", "SECRET=@\n"),
            (
                "compose.yaml",
                "services:\n  app:\n    image: ${IMAGE:?not $SECRET}\n",
            ),
        ],
        args: &[],
        at: "compose.yaml:3:",
    },
];

fn leaks(output: &str) -> bool {
    let chars: Vec<char> = MARKER.chars().collect();
    chars
        .windows(6)
        .any(|piece| output.contains(&piece.iter().collect::<String>()))
}

#[test]
fn config_errors_never_show_a_value() {
    let mut failures = Vec::new();
    for case in CASES {
        let dir = TempDir::new().unwrap();
        for (path, text) in case.files {
            std::fs::write(dir.path().join(path), text.replace('@', MARKER)).unwrap();
        }
        let output = Command::cargo_bin("stackroll")
            .unwrap()
            .current_dir(dir.path())
            .env("RUST_LOG", "trace")
            .args(["config", "-vvv", "--format", "json"])
            .args(case.args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let redacted = all.replace(MARKER, "<MARKER>");
        if output.status.code() != Some(1) {
            failures.push(format!(
                "{}: exit {:?}, expected 1:\n{redacted}",
                case.name,
                output.status.code()
            ));
        } else if leaks(&all) {
            failures.push(format!(
                "{}: the value is in the output:\n{redacted}",
                case.name
            ));
        } else if !all.contains(&format!("error: {}", case.at)) {
            failures.push(format!(
                "{}: no error at {}:\n{redacted}",
                case.name, case.at
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
