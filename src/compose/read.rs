//! Reading the files a user names (compose files, env files, secret and config files) with
//! bounded memory and without blocking: each file is opened once, checked with `fstat` to be a
//! regular file (devices such as `/dev/zero`, FIFOs and sockets are refused before any read),
//! and read up to a limit plus one byte, so an oversized or growing file is refused without
//! being read whole. The bytes returned are the bytes of the file that was checked.
//!
//! A file that must stay inside the project directory ([`Containment::Inside`]) is resolved
//! to its real path first; the real path must lie inside the project directory, and it is
//! opened with `O_NOFOLLOW`, so a symlink swapped in after the check is refused rather than
//! followed. On Linux the opened descriptor's path (`/proc/self/fd`) is compared with the
//! checked path as well, which also catches a directory swapped for a symlink.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where a file may be.
#[derive(Debug, Clone, Copy)]
pub enum Containment<'a> {
    /// Anywhere; symlinks are followed (files named on the command line, or any file with
    /// `--allow-external-files`).
    Anywhere,
    /// Inside this directory (the project directory), symlinks resolved.
    Inside(&'a Path),
}

/// Why a file could not be read. Never holds any of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing at that path.
    #[error("file not found")]
    NotFound,
    /// A directory.
    #[error("is a directory")]
    Directory,
    /// A device, FIFO, socket or other file that is not a regular file.
    #[error("is {kind}, not a regular file")]
    NotRegular {
        /// What it is: "a character device", "a FIFO (named pipe)", ...
        kind: &'static str,
    },
    /// More than `limit` bytes; `size` is the file's size when `fstat` knew it.
    #[error("file is too large ({}at most {limit} bytes are read)", size.map(|size| format!("{size} bytes; ")).unwrap_or_default())]
    TooLarge {
        /// The size `fstat` reported, when it is over the limit.
        size: Option<u64>,
        /// The most bytes read.
        limit: u64,
    },
    /// The real path is outside the project directory.
    #[error("resolves to {}, outside the project directory {}", real.display(), project.display())]
    Outside {
        /// Where the path really leads.
        real: PathBuf,
        /// The project directory, resolved.
        project: PathBuf,
    },
    /// The path changed between the check and the open (a symlink swapped in).
    #[error("changed while it was being opened (a symlink was swapped in)")]
    Changed,
    /// Any other failure.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> ReadError {
        match error.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            std::io::ErrorKind::IsADirectory => ReadError::Directory,
            _ if error.raw_os_error() == Some(libc::ELOOP) => ReadError::Changed,
            _ => ReadError::Io(error),
        }
    }
}

/// Reads the regular file at `path`, at most `limit` bytes (a larger file is an error), opening
/// it once without blocking (a FIFO is refused, not waited on). See the module documentation.
pub fn read_file(path: &Path, limit: u64, containment: Containment) -> Result<Vec<u8>, ReadError> {
    let (target, no_follow) = match containment {
        Containment::Anywhere => (path.to_path_buf(), false),
        Containment::Inside(project) => (contained_real_path(path, project)?, true),
    };
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&target)?;
    if no_follow {
        check_descriptor_path(&file, &target)?;
    }
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if kind.is_dir() {
        return Err(ReadError::Directory);
    }
    if !kind.is_file() {
        return Err(ReadError::NotRegular {
            kind: kind_name(&kind),
        });
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            size: Some(metadata.len()),
            limit,
        });
    }
    read_to_limit(file, limit)
}

/// Reads `reader` to its end, but at most `limit` bytes: one byte more is an error, so an
/// endless stream (`-c -` fed from `/dev/zero`) stops there.
pub fn read_to_limit(reader: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// The real path of `path`, which must lie inside `project` (also resolved).
fn contained_real_path(path: &Path, project: &Path) -> Result<PathBuf, ReadError> {
    let real = path.canonicalize()?;
    let project = project.canonicalize().map_err(ReadError::Io)?;
    if !real.starts_with(&project) {
        return Err(ReadError::Outside { real, project });
    }
    Ok(real)
}

/// On Linux: the path the kernel has for the open `file` must be `expected`. Elsewhere, or
/// without `/proc`, `O_NOFOLLOW` on the resolved path is the whole check.
fn check_descriptor_path(file: &File, expected: &Path) -> Result<(), ReadError> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let link = format!("/proc/self/fd/{}", file.as_raw_fd());
        if let Ok(opened) = std::fs::read_link(link) {
            if opened != expected {
                return Err(ReadError::Changed);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, expected);
    Ok(())
}

/// A short description of a file that is not regular, for messages.
pub fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tempfile::TempDir;

    /// Runs `f` on another thread and fails the test if it does not finish in 10 s (a read
    /// that blocks would otherwise hang the test run).
    fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(f()));
        receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the read blocked")
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(
            read_file(&path, 5, Containment::Anywhere).unwrap(),
            b"12345"
        );
        let inside = Containment::Inside(dir.path());
        assert_eq!(read_file(&path, 5, inside).unwrap(), b"12345");
        let error = read_file(&path, 4, Containment::Anywhere).unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::TooLarge {
                    size: Some(5),
                    limit: 4
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "file is too large (5 bytes; at most 4 bytes are read)"
        );
    }

    #[test]
    fn devices_are_refused_without_reading() {
        let error = within_seconds(|| read_file(Path::new("/dev/zero"), 16, Containment::Anywhere))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "is a character device, not a regular file"
        );
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("pipe");
        mkfifo(&path);
        let project = dir.path().to_path_buf();
        let (anywhere, inside) = within_seconds(move || {
            (
                read_file(&path, 16, Containment::Anywhere),
                read_file(&path, 16, Containment::Inside(&project)),
            )
        });
        for result in [anywhere, inside] {
            assert_eq!(
                result.unwrap_err().to_string(),
                "is a FIFO (named pipe), not a regular file"
            );
        }
    }

    #[test]
    fn directories_and_missing_files() {
        let dir = TempDir::new().unwrap();
        assert!(matches!(
            read_file(dir.path(), 16, Containment::Anywhere),
            Err(ReadError::Directory)
        ));
        assert!(matches!(
            read_file(&dir.path().join("nope"), 16, Containment::Anywhere),
            Err(ReadError::NotFound)
        ));
    }

    #[test]
    fn containment_follows_symlinks_only_inside_the_project() {
        let outside = TempDir::new().unwrap();
        let secret = outside.path().join("id_rsa");
        std::fs::write(&secret, b"key").unwrap();
        let project = TempDir::new().unwrap();
        std::fs::write(project.path().join("real.txt"), b"inside").unwrap();
        std::os::unix::fs::symlink("real.txt", project.path().join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&secret, project.path().join("out-link")).unwrap();
        let inside = Containment::Inside(project.path());

        let link = project.path().join("link.txt");
        assert_eq!(read_file(&link, 16, inside).unwrap(), b"inside");
        let out_link = project.path().join("out-link");
        assert!(matches!(
            read_file(&out_link, 16, inside),
            Err(ReadError::Outside { .. })
        ));
        // `..` leading out is refused as well, not only symlinks.
        let relative = project
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("id_rsa");
        assert!(matches!(
            read_file(&relative, 16, inside),
            Err(ReadError::Outside { .. })
        ));
        // With containment off (`--allow-external-files`), both are read.
        assert_eq!(
            read_file(&out_link, 16, Containment::Anywhere).unwrap(),
            b"key"
        );
        assert_eq!(
            read_file(&relative, 16, Containment::Anywhere).unwrap(),
            b"key"
        );
    }

    #[test]
    fn streams_are_read_to_the_limit_plus_one() {
        let endless = std::io::repeat(0);
        let error = within_seconds(move || read_to_limit(endless, 1 << 20)).unwrap_err();
        assert!(
            matches!(error, ReadError::TooLarge { size: None, limit } if limit == 1 << 20),
            "{error:?}"
        );
        assert_eq!(read_to_limit(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(read_to_limit(&b"abcd"[..], 3).is_err());
    }
}
