//! Files the loader reads itself (compose files, `.env`, `--env-file`) are read with bounded
//! memory and never block: devices and FIFOs are refused with an error naming the file
//! (issue 13 §3).

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use super::{load, LoadOptions};

/// Loads with `options` on another thread; fails the test if loading does not finish in 20 s
/// (a blocking read would otherwise hang the run). Returns every diagnostic shown.
fn load_quickly(options: LoadOptions) -> Result<(), String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = load(&options).map(|_| ()).map_err(|diagnostics| {
            let shown: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            shown.join("\n")
        });
        let _ = sender.send(result);
    });
    receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("loading blocked")
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
}

fn project() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n",
    )
    .unwrap();
    dir
}

fn options(dir: &TempDir, files: &[&str], env_files: &[&str]) -> LoadOptions {
    LoadOptions {
        files: files.iter().map(|s| s.to_string()).collect(),
        env_files: env_files.iter().map(|s| s.to_string()).collect(),
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    }
}

#[test]
fn a_device_as_compose_file_is_refused() {
    let dir = project();
    let error = load_quickly(options(&dir, &["/dev/zero"], &[])).unwrap_err();
    assert!(
        error.contains("error: /dev/zero: is a character device, not a regular file"),
        "{error}"
    );
}

#[test]
fn a_fifo_as_compose_file_is_refused_without_blocking() {
    let dir = project();
    mkfifo(&dir.path().join("pipe.yaml"));
    let error = load_quickly(options(&dir, &["pipe.yaml"], &[])).unwrap_err();
    assert!(
        error.contains("error: pipe.yaml: is a FIFO (named pipe), not a regular file"),
        "{error}"
    );
}

#[test]
fn devices_and_fifos_as_env_files_are_refused_without_blocking() {
    let dir = project();
    mkfifo(&dir.path().join("pipe.env"));
    let error = load_quickly(options(&dir, &["compose.yaml"], &["pipe.env"])).unwrap_err();
    assert!(
        error.contains("error: pipe.env: is a FIFO (named pipe), not a regular file"),
        "{error}"
    );
    let error = load_quickly(options(&dir, &["compose.yaml"], &["/dev/zero"])).unwrap_err();
    assert!(
        error.contains("error: /dev/zero: is a character device, not a regular file"),
        "{error}"
    );
    // The project's `.env` too.
    mkfifo(&dir.path().join(".env"));
    let error = load_quickly(options(&dir, &["compose.yaml"], &[])).unwrap_err();
    assert!(
        error.contains("error: .env: is a FIFO (named pipe), not a regular file"),
        "{error}"
    );
}

#[test]
fn oversized_env_files_are_refused() {
    let dir = project();
    let big = format!("A={}\n", "x".repeat(super::MAX_FILE_BYTES as usize));
    std::fs::write(dir.path().join("big.env"), big).unwrap();
    let error = load_quickly(options(&dir, &["compose.yaml"], &["big.env"])).unwrap_err();
    assert!(
        error.contains("error: big.env: file is too large"),
        "{error}"
    );
}

#[test]
fn devices_and_fifos_as_secret_files_are_refused_by_kind() {
    let dir = TempDir::new().unwrap();
    mkfifo(&dir.path().join("pipe"));
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n    secrets: [p, z]\nsecrets:\n  p:\n    file: ./pipe\n  z:\n    file: /dev/zero\n",
    )
    .unwrap();
    let mut options = options(&dir, &["compose.yaml"], &[]);
    options.allow_external_files = true;
    let error = load_quickly(options).unwrap_err();
    assert!(
        error.contains("compose.yaml:7:11: secrets.p.file: ")
            && error.contains("pipe: is a FIFO (named pipe), not a regular file"),
        "{error}"
    );
    assert!(
        error.contains("/dev/zero: is a character device, not a regular file"),
        "{error}"
    );
}

#[test]
fn a_fifo_as_a_service_env_file_is_not_waited_on() {
    let dir = TempDir::new().unwrap();
    mkfifo(&dir.path().join("app.env"));
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n    env_file: ./app.env\n",
    )
    .unwrap();
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    let started = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let loaded = super::load(&options).map(|loaded| loaded.project.env_files);
        let _ = tx.send(loaded.is_ok());
    });
    let loaded = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("loading must not block on a FIFO");
    assert!(
        loaded,
        "reading is conversion's to judge: the file is recorded as unreadable"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
