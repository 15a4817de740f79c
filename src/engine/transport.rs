//! Every connection to the engine: a Unix socket, plain TCP, TLS that trusts only the given CA
//! (bollard's adds the system's roots) with an optional client certificate and the docker
//! CLI's `SkipTLSVerify`, and `ssh://` as `ssh ... -- HOST docker system dial-stdio`, with HTTP
//! over the command's standard input and output. [`Connector`] is a hyper-util connector for
//! each; `docker.rs` hands a client built on it to bollard as a custom transport, so every
//! answer passes through one place (where the engine's `Api-Version` header is read).
//!
//! The client key is a secret: it is read into memory that is zeroed when dropped, and its path,
//! never its content, appears in errors. An `ssh` that fails ends the connection with ssh's own
//! message (from its standard error), which [`is_ssh_failure`] recognizes so it is not retried.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::endpoint::{SshTarget, TlsSettings};

/// How long a TCP connection may take to open (the docker CLI's dialer timeout).
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of ssh's standard error is kept for the error message (its end).
const SSH_STDERR_MAX: usize = 4096;

/// Opens connections to one engine: a Unix socket, plain TCP, TLS or through ssh.
#[derive(Clone)]
pub struct Connector {
    dial: Arc<Dial>,
}

/// What a [`Connector`] does for each new connection.
enum Dial {
    /// The Unix socket at this path.
    Unix(PathBuf),
    /// Plain TCP to `host:port`.
    Tcp { host: String, port: u16 },
    /// TCP to `host:port`, then a TLS handshake.
    Tls {
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        config: Arc<ClientConfig>,
        /// How long the TCP connection may take to open.
        connect_timeout: Duration,
    },
    /// `ssh ARGS`: HTTP over its standard input and output.
    Ssh { args: Vec<String> },
}

impl Connector {
    /// The Unix socket at `path`.
    pub fn unix(path: &Path) -> Connector {
        Connector {
            dial: Arc::new(Dial::Unix(path.to_path_buf())),
        }
    }

    /// Plain TCP to `host:port`.
    pub fn tcp(host: &str, port: u16) -> Connector {
        Connector {
            dial: Arc::new(Dial::Tcp {
                host: host.to_string(),
                port,
            }),
        }
    }

    /// TLS to `host:port` with `settings`; reads the CA, certificate and key files now.
    pub fn tls(host: &str, port: u16, settings: &TlsSettings) -> Result<Connector, String> {
        let config = tls_config(settings)?;
        Connector::tls_with(host, port, Arc::new(config), TCP_CONNECT_TIMEOUT)
    }

    /// TLS to `host:port` with a ready client configuration; a TCP connection not open within
    /// `connect_timeout` fails.
    pub fn tls_with(
        host: &str,
        port: u16,
        config: Arc<ClientConfig>,
        connect_timeout: Duration,
    ) -> Result<Connector, String> {
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
        Ok(Connector {
            dial: Arc::new(Dial::Tls {
                host: host.to_string(),
                port,
                server_name,
                config,
                connect_timeout,
            }),
        })
    }

    /// Through `ssh` (the one on PATH, so `~/.ssh/config` applies) to `target`.
    pub fn ssh(target: &SshTarget) -> Connector {
        Connector {
            dial: Arc::new(Dial::Ssh {
                args: target.ssh_args(),
            }),
        }
    }

    /// Opens one connection.
    async fn open(&self) -> io::Result<Stream> {
        match &*self.dial {
            Dial::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Dial::Tcp { host, port } => Ok(Stream::Tcp(
                tcp_connect(host, *port, TCP_CONNECT_TIMEOUT).await?,
            )),
            Dial::Tls {
                host,
                port,
                server_name,
                config,
                connect_timeout,
            } => {
                let tcp = tcp_connect(host, *port, *connect_timeout).await?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(explain_tls_error)?;
                Ok(Stream::Tls(Box::new(tls)))
            }
            Dial::Ssh { args } => SshStream::spawn(args).map(Stream::Ssh),
        }
    }
}

/// A TCP connection to `host:port`, given up after `timeout`.
async fn tcp_connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out connecting"))??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.open().await.map(TokioIo::new) })
    }
}

/// One connection to the engine.
pub enum Stream {
    /// A Unix socket.
    Unix(UnixStream),
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// An `ssh` process's standard input and output.
    Ssh(SshStream),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(unix) => Pin::new(unix).poll_read(cx, buf),
            Stream::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut())
                .poll_read(cx, buf)
                .map_err(explain_tls_error),
            Stream::Ssh(ssh) => ssh.poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(unix) => Pin::new(unix).poll_write(cx, buf),
            Stream::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut())
                .poll_write(cx, buf)
                .map_err(explain_tls_error),
            Stream::Ssh(ssh) => ssh.poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(unix) => Pin::new(unix).poll_flush(cx),
            Stream::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Stream::Ssh(ssh) => Pin::new(&mut ssh.stdin).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(unix) => Pin::new(unix).poll_shutdown(cx),
            Stream::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Stream::Ssh(ssh) => Pin::new(&mut ssh.stdin).poll_shutdown(cx),
        }
    }
}

/// A running `ssh ... docker system dial-stdio`.
pub struct SshStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// ssh's exit, once it ended: its status and the end of its standard error.
    exit: oneshot::Receiver<SshExit>,
}

/// How an `ssh` ended.
struct SshExit {
    status: io::Result<ExitStatus>,
    stderr: Vec<u8>,
}

/// ssh failed: its exit status and what it said. Carried inside the `io::Error` a failed
/// connection ends with, so callers can tell it from a dropped connection.
#[derive(Debug)]
pub struct SshFailed {
    /// `exit status: 255`, ...
    status: String,
    /// ssh's standard error, trimmed.
    message: String,
}

impl std::fmt::Display for SshFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "ssh ended ({})", self.status)
        } else {
            write!(f, "ssh ended ({}): {}", self.status, self.message)
        }
    }
}

impl std::error::Error for SshFailed {}

impl SshStream {
    /// Starts `ssh ARGS`; a task collects its standard error and exit status.
    fn spawn(args: &[String]) -> io::Result<SshStream> {
        let mut child = Command::new("ssh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| io::Error::new(error.kind(), format!("cannot run ssh: {error}")))?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(stdin), Some(stdout), Some(stderr)) => (stdin, stdout, stderr),
                _ => return Err(io::Error::other("ssh started without its pipes")),
            };
        let (send, exit) = oneshot::channel();
        tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut chunk = [0u8; 1024];
            let mut stderr = stderr;
            while let Ok(read @ 1..) = stderr.read(&mut chunk).await {
                tail.extend_from_slice(&chunk[..read]);
                if tail.len() > SSH_STDERR_MAX {
                    tail.drain(..tail.len() - SSH_STDERR_MAX);
                }
            }
            let status = child.wait().await;
            let _ = send.send(SshExit {
                status,
                stderr: tail,
            });
        });
        Ok(SshStream {
            stdin,
            stdout,
            exit,
        })
    }

    /// Reads; at the end of ssh's output, waits for ssh to end and reports its failure.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => self.poll_exit(cx),
            other => other,
        }
    }

    /// Writes; a write into a closed pipe reports why ssh ended.
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stdin).poll_write(cx, data) {
            Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
                match self.poll_exit(cx) {
                    Poll::Ready(Err(failed)) => Poll::Ready(Err(failed)),
                    Poll::Ready(Ok(())) => Poll::Ready(Err(error)),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    /// Ready once ssh ended: `Ok` (end of stream) if it succeeded, its failure otherwise.
    fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.exit).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(exit)) => Poll::Ready(match exit.status {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    SshFailed {
                        status: status.to_string(),
                        message: String::from_utf8_lossy(&exit.stderr).trim().to_string(),
                    },
                )),
                Err(error) => Err(error),
            }),
        }
    }
}

/// Whether `error` or one of its causes is ssh's failure (not worth retrying: it would fail
/// the same way, after the same connect time).
pub fn is_ssh_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<SshFailed>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<SshFailed>()) {
                return true;
            }
        }
        cause = error.source();
    }
    false
}

/// The TLS client configuration the docker CLI would use: TLS 1.2 or newer; trust only `ca`
/// (the system's roots when there is none); the client certificate when both files are there;
/// no verification of the engine with `skip_verify`.
fn tls_config(settings: &TlsSettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot set up TLS: {error}"))?;
    let builder = if settings.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(trusted_roots(settings.ca.as_deref())?)
    };
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            builder
                .with_client_auth_cert(chain, private_key(key)?)
                .map_err(|error| {
                    format!(
                        "{} and {} do not make a client certificate: {error}",
                        cert.display(),
                        key.display()
                    )
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The CA certificates of `ca`, or the system's roots when there is no CA file.
fn trusted_roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = match ca {
        Some(ca) => certificates(ca)?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    for cert in certs {
        roots.add(cert).map_err(|error| match ca {
            Some(ca) => format!("{}: not a usable CA certificate: {error}", ca.display()),
            None => format!("a system CA certificate is not usable: {error}"),
        })?;
    }
    if roots.is_empty() {
        return Err(match ca {
            Some(ca) => format!("{}: no CA certificate in it", ca.display()),
            None => "no CA certificate to verify the engine with (give ca.pem)".to_string(),
        });
    }
    Ok(roots)
}

/// The PEM certificates of `path`.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{}: not PEM certificates: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The PEM private key of `path`, read into memory that is zeroed afterwards.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?,
    );
    if bytes.windows(9).any(|window| window == b"ENCRYPTED") {
        return Err(format!(
            "{}: the private key is encrypted; the docker CLI and stackroll need it unencrypted",
            path.display()
        ));
    }
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| format!("{}: no private key in it", path.display()))
}

/// `SkipTLSVerify`: any certificate is accepted, as Go's `InsecureSkipVerify` does; the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS failure, said in terms of the files the user gave.
fn explain_tls_error(error: io::Error) -> io::Error {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return error;
    };
    let explained = match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            format!("the engine's certificate is not signed by the trusted CA (ca.pem): {tls}")
        }
        rustls::Error::InvalidCertificate(_) => {
            format!("the engine's certificate is not acceptable: {tls}")
        }
        rustls::Error::AlertReceived(_) => format!(
            "the engine refused the TLS connection (is the client certificate, cert.pem, \
             signed by a CA the engine trusts?): {tls}"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("the engine did not answer in TLS (does it listen with --tlsverify?): {tls}")
        }
        _ => return error,
    };
    io::Error::new(error.kind(), explained)
}
