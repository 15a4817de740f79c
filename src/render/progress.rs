//! Deploy progress on stderr: one plain line per event, so logs and terminals read the same.

use std::io::Write;
use std::sync::Mutex;

use crate::apply::{Progress, Reporter};

/// Writes progress lines to stderr.
#[derive(Debug, Default)]
pub struct StderrReporter {
    lock: Mutex<()>,
}

impl Reporter for StderrReporter {
    fn report(&self, event: Progress<'_>) {
        let line = match event {
            Progress::Created { resource, name } => format!("created {} {name}", resource.noun()),
            Progress::Updated { name } => format!("updated service {name}"),
            Progress::Rolling {
                service,
                running,
                desired,
                elapsed,
                last_error,
            } => format!(
                "{service}: {running}/{desired} tasks running ({:.1}s){}",
                elapsed.as_secs_f64(),
                last_error
                    .map(|e| format!("; last task error: {e}"))
                    .unwrap_or_default()
            ),
            Progress::Converged { service, elapsed } => {
                format!("{service}: converged ({:.1}s)", elapsed.as_secs_f64())
            }
            Progress::RolloutFailed {
                service,
                state,
                message,
            } => {
                format!("{service}: rollout failed ({state}): {message}")
            }
            Progress::Deleted { resource, name } => format!("deleted {} {name}", resource.noun()),
            Progress::KeptInUse {
                resource,
                name,
                reason,
            } => {
                format!("kept {} {name}: {reason}", resource.noun())
            }
        };
        let _guard = self.lock.lock();
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
