//! The signals that stop a run that writes (`deploy`, `rm`): SIGINT and SIGTERM. A run
//! listening for them stops writing, gives its deploy lock back and exits 128 + the signal's
//! number, instead of being killed with the lock still held.

use std::future::Future;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// Its number (the exit code is 128 plus it).
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// A future that yields the first SIGINT or SIGTERM this process gets; from the call on,
/// neither ends the process by itself. Must be called inside a tokio runtime.
pub fn first_signal() -> std::io::Result<impl Future<Output = Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => Signal::Interrupt,
            _ = terminate.recv() => Signal::Terminate,
        }
    })
}
