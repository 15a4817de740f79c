//! Endpoint resolution against an in-memory filesystem laid out as `docker context create`
//! lays it out. (tests/remote/contexts.rs checks the same rules against the real docker CLI.)

use std::collections::BTreeMap;

use super::*;

/// A filesystem of a few files.
#[derive(Default)]
struct MemoryFiles(BTreeMap<PathBuf, Vec<u8>>);

impl MemoryFiles {
    fn with(mut self, path: impl Into<PathBuf>, text: &str) -> MemoryFiles {
        self.0.insert(path.into(), text.as_bytes().to_vec());
        self
    }

    /// A context in the store at /cfg, as `docker context create NAME --docker host=HOST`
    /// writes it, with the named TLS files.
    fn context(self, name: &str, host: &str, skip: bool, tls: &[&str]) -> MemoryFiles {
        let id = context_id(name);
        let meta = format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip}}}}}}}"#
        );
        let mut files = self.with(format!("/cfg/contexts/meta/{id}/meta.json"), &meta);
        for file in tls {
            files = files.with(format!("/cfg/contexts/tls/{id}/docker/{file}"), "pem");
        }
        files
    }
}

impl Files for MemoryFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.0.contains_key(path)
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let names: Vec<String> = self
            .0
            .keys()
            .filter_map(|file| file.strip_prefix(path).ok())
            .filter_map(|rest| rest.iter().next())
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        Ok(names)
    }
}

/// The store every precedence case runs against: contexts `flagged`, `env`, `current`
/// (`currentContext`), each an ssh host named after it.
fn store() -> MemoryFiles {
    MemoryFiles::default()
        .with(
            "/cfg/config.json",
            r#"{"auths":{},"currentContext":"current"}"#,
        )
        .context("flagged", "ssh://flagged", false, &[])
        .context("env", "ssh://env", false, &[])
        .context("current", "ssh://current", false, &[])
}

fn env() -> DockerEnv {
    DockerEnv {
        config: Some(PathBuf::from("/cfg")),
        ..DockerEnv::default()
    }
}

/// One precedence case: which of the five sources are set, and what wins.
struct Case {
    context_flag: bool,
    host_flag: bool,
    host_env: bool,
    context_env: bool,
    current: bool,
    expect: Result<(&'static str, &'static str, ChosenBy), EndpointError>,
}

fn run(case: &Case) -> Result<(String, String, ChosenBy), EndpointError> {
    let flags = EngineFlags {
        context: case.context_flag.then(|| "flagged".to_string()),
        hosts: case
            .host_flag
            .then(|| "tcp://127.0.0.1:1".to_string())
            .into_iter()
            .collect(),
        ..EngineFlags::default()
    };
    let env = DockerEnv {
        host: case.host_env.then(|| "unix:///from/env.sock".to_string()),
        context: case.context_env.then(|| "env".to_string()),
        ..env()
    };
    let files = if case.current {
        store()
    } else {
        store().with("/cfg/config.json", "{}")
    };
    resolve(&flags, &env, &files)
        .map(|endpoint| (endpoint.context, endpoint.address, endpoint.chosen_by))
}

#[test]
fn every_precedence_combination_picks_what_the_docker_cli_picks() {
    use ChosenBy::*;
    let mut checked = 0;
    for bits in 0..32u8 {
        let bit = |n: u8| bits & (1 << n) != 0;
        let (context_flag, host_flag, host_env, context_env, current) =
            (bit(0), bit(1), bit(2), bit(3), bit(4));
        let expect = if context_flag && host_flag {
            Err(EndpointError::Conflict)
        } else if context_flag {
            Ok(("flagged", "ssh://flagged", ContextFlag))
        } else if host_flag {
            Ok(("default", "tcp://127.0.0.1:1", HostFlag))
        } else if host_env {
            Ok(("default", "unix:///from/env.sock", HostEnv))
        } else if context_env {
            Ok(("env", "ssh://env", ContextEnv))
        } else if current {
            Ok(("current", "ssh://current", ConfigFile))
        } else {
            Ok(("default", "unix:///var/run/docker.sock", Default))
        };
        let case = Case {
            context_flag,
            host_flag,
            host_env,
            context_env,
            current,
            expect,
        };
        let expected = case
            .expect
            .clone()
            .map(|(name, address, by)| (name.to_string(), address.to_string(), by));
        assert_eq!(run(&case), expected, "case {bits:05b}");
        checked += 1;
    }
    assert_eq!(checked, 32);
}

#[test]
fn hosts_are_normalized_like_the_docker_cli() {
    let table: &[(&str, bool, Result<&str, ()>)] = &[
        ("", false, Ok("unix:///var/run/docker.sock")),
        ("  ", false, Ok("unix:///var/run/docker.sock")),
        ("", true, Ok("tcp://localhost:2376")),
        ("tcp://", false, Ok("tcp://localhost:2375")),
        ("tcp://10.0.0.5", true, Ok("tcp://10.0.0.5:2375")),
        ("tcp://:2376", false, Ok("tcp://localhost:2376")),
        ("10.0.0.5:2376", false, Ok("tcp://10.0.0.5:2376")),
        ("tcp://[::1]:2376", false, Ok("tcp://[::1]:2376")),
        ("tcp://h:2376/", false, Ok("tcp://h:2376/")),
        ("unix://", false, Ok("unix:///var/run/docker.sock")),
        ("unix:///run/x.sock", false, Ok("unix:///run/x.sock")),
        ("ssh://me@h:2222", false, Ok("ssh://me@h:2222")),
        ("tcp://h:port", false, Err(())),
        ("tcp://tcp://h", false, Err(())),
        ("http://h:2375", false, Err(())),
        ("https://h:2376", false, Err(())),
        ("unix://tcp://x", false, Err(())),
    ];
    for (given, tls, expected) in table {
        let got = normalize_host(given, *tls).map_err(|_| ());
        assert_eq!(got.as_deref(), expected.as_ref().copied(), "{given:?}");
    }
}

#[test]
fn ssh_addresses_become_the_docker_cli_ssh_command() {
    let table: &[(&str, Result<&[&str], &str>)] = &[
        (
            "ssh://deploy@manager1:2222",
            Ok(&[
                "-o",
                "ConnectTimeout=30",
                "-T",
                "-l",
                "deploy",
                "-p",
                "2222",
                "--",
                "manager1",
                "docker",
                "system",
                "dial-stdio",
            ]),
        ),
        (
            "ssh://manager1",
            Ok(&[
                "-o",
                "ConnectTimeout=30",
                "-T",
                "--",
                "manager1",
                "docker",
                "system",
                "dial-stdio",
            ]),
        ),
        (
            "ssh://m/run/user/1000/docker.sock",
            Ok(&[
                "-o",
                "ConnectTimeout=30",
                "-T",
                "--",
                "m",
                "docker",
                "--host",
                "unix:///run/user/1000/docker.sock",
                "system",
                "dial-stdio",
            ]),
        ),
        ("ssh://me:pw@m", Err("password")),
        ("ssh://", Err("hostname is empty")),
        ("ssh://m?x=1", Err("query")),
        ("ssh://m:22x", Err("port")),
    ];
    for (address, expected) in table {
        let got = transport(address, None);
        match (got, expected) {
            (Ok(Transport::Ssh(target)), Ok(args)) => {
                assert_eq!(target.ssh_args(), *args, "{address}")
            }
            (Err(error), Err(part)) => assert!(error.to_string().contains(part), "{error}"),
            (got, _) => panic!("{address}: {got:?}"),
        }
    }
}

/// One TLS case of the default context: DOCKER_TLS_VERIFY, DOCKER_TLS, --tls, --tlsverify
/// and which files exist in DOCKER_CERT_PATH.
struct TlsCase {
    name: &'static str,
    tls_verify_env: Option<&'static str>,
    tls_env: bool,
    tls_flag: Option<bool>,
    tls_verify_flag: Option<bool>,
    files: &'static [&'static str],
    /// `None`: plain; `Some((skip_verify, client cert presented))`; `Err`: refused.
    expect: Result<Option<(bool, bool)>, &'static str>,
}

#[test]
fn tls_of_the_default_context_follows_the_docker_cli() {
    let all: &[&str] = &["ca.pem", "cert.pem", "key.pem"];
    let cases = [
        TlsCase {
            name: "nothing set: plain",
            tls_verify_env: None,
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: None,
            files: all,
            expect: Ok(None),
        },
        TlsCase {
            name: "DOCKER_TLS_VERIFY=1",
            tls_verify_env: Some("1"),
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: None,
            files: all,
            expect: Ok(Some((false, true))),
        },
        TlsCase {
            name: "DOCKER_TLS_VERIFY=0 still verifies",
            tls_verify_env: Some("0"),
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: None,
            files: all,
            expect: Ok(Some((false, true))),
        },
        TlsCase {
            name: "DOCKER_TLS alone: TLS without verification",
            tls_verify_env: None,
            tls_env: true,
            tls_flag: None,
            tls_verify_flag: None,
            files: all,
            expect: Ok(Some((true, true))),
        },
        TlsCase {
            name: "--tls",
            tls_verify_env: None,
            tls_env: false,
            tls_flag: Some(true),
            tls_verify_flag: None,
            files: all,
            expect: Ok(Some((true, true))),
        },
        TlsCase {
            name: "--tlsverify=false turns TLS on, unverified",
            tls_verify_env: Some("1"),
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: Some(false),
            files: all,
            expect: Ok(Some((true, true))),
        },
        TlsCase {
            name: "--tls=false does not undo DOCKER_TLS_VERIFY",
            tls_verify_env: Some("1"),
            tls_env: false,
            tls_flag: Some(false),
            tls_verify_flag: None,
            files: all,
            expect: Ok(Some((false, true))),
        },
        TlsCase {
            name: "only a CA: no client certificate",
            tls_verify_env: Some("1"),
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: None,
            files: &["ca.pem"],
            expect: Ok(Some((false, false))),
        },
        TlsCase {
            name: "no CA: refused",
            tls_verify_env: Some("1"),
            tls_env: false,
            tls_flag: None,
            tls_verify_flag: None,
            files: &["cert.pem", "key.pem"],
            expect: Err("/certs/ca.pem"),
        },
    ];
    for case in cases {
        let mut files = MemoryFiles::default();
        for file in case.files {
            files = files.with(format!("/certs/{file}"), "pem");
        }
        let flags = EngineFlags {
            hosts: vec!["tcp://10.0.0.5:2376".into()],
            tls: case.tls_flag,
            tls_verify: case.tls_verify_flag,
            ..EngineFlags::default()
        };
        let env = DockerEnv {
            tls_verify: case.tls_verify_env.map(str::to_string),
            tls: case.tls_env.then(|| "1".to_string()),
            cert_path: Some(PathBuf::from("/certs")),
            ..env()
        };
        let got = resolve(&flags, &env, &files).map(|endpoint| match endpoint.transport {
            Transport::Tcp { tls, .. } => {
                tls.map(|tls| (tls.skip_verify, tls.cert.is_some() && tls.key.is_some()))
            }
            other => panic!("{other:?}"),
        });
        match (got, case.expect) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{}", case.name),
            (Err(error), Err(part)) => {
                assert!(error.to_string().contains(part), "{}: {error}", case.name)
            }
            (got, expected) => panic!("{}: {got:?}, expected {expected:?}", case.name),
        }
    }
}

#[test]
fn tls_flags_name_the_files_and_missing_ones_are_refused() {
    let files = MemoryFiles::default()
        .with("/a/my-ca.pem", "pem")
        .with("/a/me.pem", "pem")
        .with("/a/me-key.pem", "pem");
    let flags = EngineFlags {
        hosts: vec!["tcp://10.0.0.5:2376".into()],
        tls_verify: Some(true),
        tls_ca_cert: Some("/a/my-ca.pem".into()),
        tls_cert: Some("/a/me.pem".into()),
        tls_key: Some("/a/me-key.pem".into()),
        ..EngineFlags::default()
    };
    let endpoint = resolve(&flags, &env(), &files).unwrap();
    let Transport::Tcp { tls: Some(tls), .. } = endpoint.transport else {
        panic!("{:?}", endpoint.transport)
    };
    assert_eq!(
        tls,
        TlsSettings {
            ca: Some("/a/my-ca.pem".into()),
            cert: Some("/a/me.pem".into()),
            key: Some("/a/me-key.pem".into()),
            skip_verify: false,
        }
    );
    let missing_key = EngineFlags {
        tls_key: Some("/a/nope.pem".into()),
        ..flags
    };
    let error = resolve(&missing_key, &env(), &files).unwrap_err();
    assert!(error.to_string().contains("/a/nope.pem"), "{error}");
}

#[test]
fn a_stored_context_brings_its_tls_material_and_skip_verify() {
    let files = MemoryFiles::default()
        .context(
            "prod",
            "tcp://10.0.0.5:2376",
            false,
            &["ca.pem", "cert.pem", "key.pem"],
        )
        .context("lab", "tcp://10.0.0.6:2376", true, &[])
        .context("plain", "tcp://10.0.0.7:2375", false, &[]);
    let tls_of = |name: &str| {
        let flags = EngineFlags {
            context: Some(name.to_string()),
            ..EngineFlags::default()
        };
        match resolve(&flags, &env(), &files).unwrap().transport {
            Transport::Tcp { tls, .. } => tls,
            other => panic!("{other:?}"),
        }
    };
    let id = context_id("prod");
    let prod = tls_of("prod").unwrap();
    assert_eq!(
        prod.ca,
        Some(PathBuf::from(format!(
            "/cfg/contexts/tls/{id}/docker/ca.pem"
        )))
    );
    assert!(prod.cert.is_some() && prod.key.is_some() && !prod.skip_verify);
    let lab = tls_of("lab").unwrap();
    assert!(lab.skip_verify && lab.ca.is_none());
    assert_eq!(tls_of("plain"), None);
}

#[test]
fn an_unknown_context_is_named_with_the_ones_that_exist() {
    let flags = EngineFlags {
        context: Some("prd".into()),
        ..EngineFlags::default()
    };
    let error = resolve(&flags, &env(), &store()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "context \"prd\" (chosen by --context) does not exist; known contexts: default, \
         current, env, flagged"
    );
    let from_config =
        MemoryFiles::default().with("/cfg/config.json", r#"{"currentContext":"gone"}"#);
    match resolve(&EngineFlags::default(), &env(), &from_config).unwrap_err() {
        EndpointError::UnknownContext {
            name, chosen_by, ..
        } => {
            assert_eq!((name.as_str(), chosen_by), ("gone", ChosenBy::ConfigFile));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_context_named_default_is_the_flags_and_environment() {
    let flags = EngineFlags {
        context: Some("default".into()),
        ..EngineFlags::default()
    };
    let env = DockerEnv {
        host: Some("unix:///from/env.sock".into()),
        ..env()
    };
    let endpoint = resolve(&flags, &env, &store()).unwrap();
    assert_eq!(endpoint.address, "unix:///from/env.sock");
    assert_eq!(endpoint.chosen_by, ChosenBy::ContextFlag);
}

#[test]
fn warnings_name_plain_http_unverified_tls_and_a_hidden_context() {
    let warnings = |flags: EngineFlags, env: DockerEnv| {
        resolve(&flags, &env, &store().with("/certs/ca.pem", "pem"))
            .unwrap()
            .warnings
    };
    let host = |host: &str| EngineFlags {
        hosts: vec![host.to_string()],
        ..EngineFlags::default()
    };
    let plain = warnings(host("tcp://10.0.0.5:2375"), env());
    assert!(plain[0].contains("secrets travel unencrypted"), "{plain:?}");
    assert!(warnings(host("tcp://127.0.0.1:2375"), env()).is_empty());
    assert!(warnings(host("tcp://localhost:2375"), env()).is_empty());
    assert!(warnings(host("tcp://[::1]:2375"), env()).is_empty());
    let unverified = warnings(
        EngineFlags {
            tls: Some(true),
            ..host("tcp://10.0.0.5:2376")
        },
        DockerEnv {
            cert_path: Some("/certs".into()),
            ..env()
        },
    );
    assert!(unverified[0].contains("does not verify"), "{unverified:?}");
    let hidden = warnings(
        EngineFlags::default(),
        DockerEnv {
            host: Some("unix:///x.sock".into()),
            ..env()
        },
    );
    assert!(
        hidden[0].contains("overrides the active context \"current\""),
        "{hidden:?}"
    );
}

#[test]
fn context_ids_are_the_sha256_docker_uses() {
    // `docker context create ca ...` writes contexts/meta/ca978112.../meta.json.
    assert_eq!(
        context_id("a"),
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    );
}

#[test]
fn a_broken_config_file_is_refused_with_its_path() {
    let files = MemoryFiles::default().with("/cfg/config.json", "{not json");
    let error = resolve(&EngineFlags::default(), &env(), &files).unwrap_err();
    assert!(
        error.to_string().starts_with("/cfg/config.json: "),
        "{error}"
    );
}

#[test]
fn the_docker_config_flag_wins_over_docker_config() {
    let chosen = |docker_config: Option<&str>| {
        let flags = EngineFlags {
            docker_config: docker_config.map(PathBuf::from),
            ..EngineFlags::default()
        };
        resolve(&flags, &env(), &store()).unwrap().context
    };
    assert_eq!(chosen(None), "current");
    assert_eq!(chosen(Some("/empty")), "default");
}
