//! Deploy progress on stderr. On a terminal each rolling service gets a live line (indicatif);
//! elsewhere (CI logs, pipes) every event is one plain line, so logs stay readable.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Reporter};

/// Chooses the terminal or the plain reporter for stderr. `command` is how the user runs
/// stackroll against this engine (`stackroll -H ...`): the commands events suggest repeat it.
pub fn stderr_reporter(command: &str) -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalReporter {
            state: Mutex::default(),
            command: command.to_string(),
        })
    } else {
        Box::new(PlainReporter {
            lock: Mutex::default(),
            command: command.to_string(),
        })
    }
}

/// One line of text for an event, suggesting commands as plain `stackroll`.
pub fn describe(event: &Progress<'_>) -> String {
    describe_for(event, "stackroll")
}

/// One line of text for an event; a command it suggests starts with `command`.
pub fn describe_for(event: &Progress<'_>, command: &str) -> String {
    match *event {
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
        Progress::JobRunning {
            service,
            completed,
            total,
            elapsed,
        } => format!(
            "{service}: {completed}/{total} job tasks complete ({:.1}s)",
            elapsed.as_secs_f64()
        ),
        Progress::Converged { service, elapsed } => {
            format!("{service}: converged ({:.1}s)", elapsed.as_secs_f64())
        }
        Progress::ConvergedStranded {
            service,
            elapsed,
            note,
        } => format!(
            "{service}: converged ({:.1}s); {note}",
            elapsed.as_secs_f64()
        ),
        Progress::RolloutFailed {
            service,
            state,
            message,
        } => {
            format!("{service}: rollout failed ({state}): {message}")
        }
        Progress::Deleted { resource, name } => format!("deleted {} {name}", resource.noun()),
        Progress::RotationStep { step, key, service } => {
            format!("rotation of {key}: running the {step} step in service {service}")
        }
        Progress::KeptInUse {
            resource,
            name,
            reason,
        } => {
            format!("kept {} {name}: {reason}", resource.noun())
        }
        Progress::LockTakenOver { holder, why } => {
            format!("warning: taking over the deploy lock held by {holder}: {why}")
        }
        Progress::ManagerLost { error, next } => format!(
            "warning: lost the swarm manager ({error}); going on with {next}, reading the swarm and planning again first"
        ),
        Progress::LockNotReleased { stack, error } => format!(
            "warning: could not release the deploy lock: {error}; run `{command} unlock {stack}`"
        ),
    }
}

/// Writes every event as a plain line.
#[derive(Debug, Default)]
pub struct PlainReporter {
    lock: Mutex<()>,
    /// How the user runs stackroll (see [`stderr_reporter`]).
    command: String,
}

impl Reporter for PlainReporter {
    fn report(&self, event: Progress<'_>) {
        let line = describe_for(&event, &self.command);
        let _guard = self.lock.lock();
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Live lines per rolling service on a terminal.
#[derive(Default)]
pub struct TerminalReporter {
    state: Mutex<TerminalState>,
    /// How the user runs stackroll (see [`stderr_reporter`]).
    command: String,
}

#[derive(Default)]
struct TerminalState {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Reporter for TerminalReporter {
    fn report(&self, event: Progress<'_>) {
        let mut state = self.state.lock().expect("reporter lock");
        let multi = state
            .multi
            .get_or_insert_with(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            .clone();
        let service = match event {
            Progress::Rolling { service, .. }
            | Progress::JobRunning { service, .. }
            | Progress::Converged { service, .. }
            | Progress::ConvergedStranded { service, .. }
            | Progress::RolloutFailed { service, .. } => service,
            _ => {
                let _ = multi.println(describe_for(&event, &self.command));
                return;
            }
        };
        let bar = state
            .bars
            .entry(service.to_string())
            .or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone();
        match event {
            Progress::Rolling { .. } | Progress::JobRunning { .. } => {
                bar.set_message(describe_for(&event, &self.command))
            }
            _ => bar.finish_with_message(describe_for(&event, &self.command)),
        }
    }
}
