//! No value in any loader error (issue 13 §2): a marker value is planted in every error path
//! of the loader (env files, interpolation of environment values, labels, `content:`, driver
//! and logging options, modes and ids read from variables) and every error and warning, shown
//! and debug-printed, is searched for it. Each case also checks that the error points at the
//! right file and line, so that a case which stops failing cannot pass unnoticed.

use tempfile::TempDir;

use super::{load, LoadOptions};

/// The planted value. No message may contain it, nor any long piece of it.
const MARKER: &str = "hunter2-MARKER-9f3c";

/// One hostile project: files to write, and where the error must be reported.
struct Case {
    /// What the case exercises.
    name: &'static str,
    /// (path, text) pairs; `@` in a text stands for the marker.
    files: &'static [(&'static str, &'static str)],
    /// `--env-file`s to pass.
    env_files: &'static [&'static str],
    /// The error's expected `FILE:LINE` prefix.
    at: &'static str,
}

const IMAGE: &str = "services:\n  app:\n    image: busybox\n";

const CASES: &[Case] = &[
    Case {
        name: "dotenv unterminated double quote",
        files: &[(".env", "A=1\nDB_PASSWORD=\"@\n"), ("compose.yaml", IMAGE)],
        env_files: &[],
        at: ".env:2",
    },
    Case {
        name: "dotenv unterminated single quote spanning lines",
        files: &[(".env", "DB_PASSWORD='@\n@\n"), ("compose.yaml", IMAGE)],
        env_files: &[],
        at: ".env:1",
    },
    Case {
        name: "dotenv unexpected character in a pasted value",
        files: &[(".env", "A=1\n@!x\n"), ("compose.yaml", IMAGE)],
        env_files: &[],
        at: ".env:2",
    },
    Case {
        name: "dotenv space in a pasted value",
        files: &[(".env", "@ @=1\n"), ("compose.yaml", IMAGE)],
        env_files: &[],
        at: ".env:1",
    },
    Case {
        name: "dotenv invalid interpolation in a value",
        files: &[
            (".env", "DB_URL=postgres://u:@${w\n"),
            ("compose.yaml", IMAGE),
        ],
        env_files: &[],
        at: ".env:1",
    },
    Case {
        name: "dotenv invalid interpolation in a double-quoted value",
        files: &[
            (".env", "X=1\nDB_URL=\"postgres://u:@\n${ }\"\n"),
            ("compose.yaml", IMAGE),
        ],
        env_files: &[],
        at: ".env:2",
    },
    Case {
        name: "--env-file unterminated quote",
        files: &[("prod.env", "TOKEN=\"@\n"), ("compose.yaml", IMAGE)],
        env_files: &["prod.env"],
        at: "prod.env:1",
    },
    Case {
        name: "dotenv required message naming a secret variable",
        files: &[
            (".env", "SECRET=@\nDB_URL=${MISSING:?no $SECRET}\n"),
            ("compose.yaml", IMAGE),
        ],
        env_files: &[],
        at: ".env:2",
    },
    Case {
        name: "interpolation in a service environment value",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    environment:\n      DB_URL: \"postgres://u:@${w\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:5",
    },
    Case {
        name: "interpolation in a service environment list item",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    environment:\n      - DB_URL=postgres://u:@${w\n",
        )],
        env_files: &[],
        at: "compose.yaml:5",
    },
    Case {
        name: "interpolation in a service label",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    labels:\n      token: \"@${\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:5",
    },
    Case {
        name: "interpolation in logging options",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    logging:\n      driver: splunk\n      options:\n        splunk-token: \"@${}\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:7",
    },
    Case {
        name: "interpolation in a config's content",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    configs: [c]\nconfigs:\n  c:\n    content: |\n      password=@\n      ${A:-${ }}\n",
        )],
        env_files: &[],
        // A block scalar starts on the line after its `|`.
        at: "compose.yaml:8",
    },
    Case {
        name: "interpolation in a nested default",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: \"${A:-@${}}\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:3",
    },
    Case {
        name: "interpolation in a secret's driver options and labels",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s:\n    driver: vault\n    driver_opts:\n      o: \"password=@${\"\n    labels:\n      t: \"@${\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:9",
    },
    Case {
        name: "interpolation in a volume's driver options",
        files: &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\nvolumes:\n  data:\n    driver_opts:\n      o: \"username=u,password=@${\"\n",
        )],
        env_files: &[],
        at: "compose.yaml:7",
    },
    Case {
        name: "required variable whose message names a secret variable",
        files: &[
            (".env", "SECRET=@\n"),
            (
                "compose.yaml",
                "services:\n  app:\n    image: ${IMAGE:?set it, not $SECRET}\n",
            ),
        ],
        env_files: &[],
        at: "compose.yaml:3",
    },
    Case {
        name: "a mode read from a secret variable",
        files: &[
            (".env", "SECRET=@\n"),
            ("s.txt", "x"),
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    secrets:\n      - source: s\n        mode: ${SECRET}\nsecrets:\n  s:\n    file: ./s.txt\n",
            ),
        ],
        env_files: &[],
        at: "compose.yaml:6",
    },
    Case {
        name: "a uid read from a secret variable",
        files: &[
            (".env", "SECRET=@\n"),
            ("s.txt", "x"),
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    secrets:\n      - source: s\n        uid: ${SECRET}\nsecrets:\n  s:\n    file: ./s.txt\n",
            ),
        ],
        env_files: &[],
        at: "compose.yaml:6",
    },
];

/// Loads the case and returns every diagnostic, shown and debug-printed, one per line.
fn run(case: &Case) -> (bool, String) {
    let dir = TempDir::new().unwrap();
    for (path, text) in case.files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.replace('@', MARKER)).unwrap();
    }
    let options = LoadOptions {
        files: vec!["compose.yaml".into()],
        env_files: case.env_files.iter().map(|s| s.to_string()).collect(),
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    match load(&options) {
        Ok(loaded) => {
            let shown: Vec<String> = loaded.warnings.iter().map(|d| format!("{d}")).collect();
            (false, shown.join("\n"))
        }
        Err(diagnostics) => {
            let shown: Vec<String> = diagnostics.iter().map(|d| format!("{d}\n{d:?}")).collect();
            (true, shown.join("\n"))
        }
    }
}

/// Whether `output` holds the marker or any 6-character piece of it (so a truncated value
/// counts too).
fn leaks(output: &str) -> bool {
    let chars: Vec<char> = MARKER.chars().collect();
    chars
        .windows(6)
        .any(|piece| output.contains(&piece.iter().collect::<String>()))
}

#[test]
fn no_loader_error_shows_a_value() {
    let mut failures = Vec::new();
    for case in CASES {
        let (failed, output) = run(case);
        if !failed {
            failures.push(format!("{}: loaded without an error", case.name));
            continue;
        }
        if leaks(&output) {
            // Never print the output itself: show where the marker was found, redacted.
            failures.push(format!(
                "{}: the value appears in the errors:\n{}",
                case.name,
                output.replace(MARKER, "<MARKER>")
            ));
            continue;
        }
        let prefix = format!("error: {}", case.at);
        if !output.lines().any(|line| line.starts_with(&prefix)) {
            failures.push(format!("{}: no error at {}:\n{output}", case.name, case.at));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
