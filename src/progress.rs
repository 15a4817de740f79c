//! What a deploy tells the user while it runs: the [`Progress`] events of applying a plan and
//! of taking the deploy lock, and the [`Reporter`] that receives them (the printers live in
//! `render::progress`, so the terminal stays at the edge).

use std::time::Duration;

use crate::plan::{Plan, Resource};

/// Something that happened while applying, for the user to see.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A secret, config, network or service was created.
    Created {
        /// What kind.
        resource: Resource,
        /// Its name.
        name: &'a str,
    },
    /// A service's spec was replaced.
    Updated {
        /// Service name.
        name: &'a str,
    },
    /// A service's rollout moved on.
    Rolling {
        /// Service name.
        service: &'a str,
        /// Tasks running.
        running: usize,
        /// Tasks wanted.
        desired: usize,
        /// Time since the writes.
        elapsed: Duration,
        /// A task's latest error.
        last_error: Option<&'a str>,
    },
    /// A job service's run moved on.
    JobRunning {
        /// Service name.
        service: &'a str,
        /// Tasks that completed.
        completed: usize,
        /// Completions wanted.
        total: usize,
        /// Time since the writes.
        elapsed: Duration,
    },
    /// A service runs its new spec (a job: its run completed).
    Converged {
        /// Service name.
        service: &'a str,
        /// Time since the writes.
        elapsed: Duration,
    },
    /// Every wanted task of a service runs its new spec on a Ready node, while Swarm's update
    /// state still waits on (or was paused by) a task of a lost node.
    ConvergedStranded {
        /// Service name.
        service: &'a str,
        /// Time since the writes.
        elapsed: Duration,
        /// What Swarm's update is stuck on.
        note: &'a str,
    },
    /// Swarm paused or rolled back a service's update.
    RolloutFailed {
        /// Service name.
        service: &'a str,
        /// UpdateStatus.State.
        state: &'a str,
        /// Swarm's message.
        message: &'a str,
    },
    /// An old version was deleted.
    Deleted {
        /// Secret or config.
        resource: Resource,
        /// Its name.
        name: &'a str,
    },
    /// A staged rotation's command starts in a task of an owner.
    RotationStep {
        /// `apply` or `finalize`.
        step: &'a str,
        /// The key rotated.
        key: &'a str,
        /// The owner service.
        service: &'a str,
    },
    /// A deletion was skipped (something started using it meanwhile).
    KeptInUse {
        /// Secret or config.
        resource: Resource,
        /// Its name.
        name: &'a str,
        /// The engine's refusal.
        reason: &'a str,
    },
    /// The deploy lock of a dead or expired holder was removed so this deploy can take it.
    LockTakenOver {
        /// Who held it (`user@host pid N`).
        holder: &'a str,
        /// Why it was taken over.
        why: &'a str,
    },
    /// The swarm manager in use was lost; the deploy goes on with the next one, reading the
    /// swarm and planning again there first.
    ManagerLost {
        /// Why the lost one failed.
        error: &'a str,
        /// The manager the deploy goes on with (address and node).
        next: &'a str,
    },
    /// The deploy lock could not be given back; `stackroll unlock` removes it.
    LockNotReleased {
        /// The stack.
        stack: &'a str,
        /// The engine's error.
        error: &'a str,
    },
}

/// Receives progress while a plan is applied.
pub trait Reporter: Sync {
    /// Called for each event, in order.
    fn report(&self, event: Progress<'_>);

    /// Called once with the plan a deploy is about to carry out, before its first write (not
    /// for dry runs or deploys with nothing to apply). Does nothing unless overridden.
    fn applying(&self, _plan: &Plan) {}
}

/// A reporter for tests: keeps each event as the line the plain printer would write, and
/// the stack of every plan it was told is being applied.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorder {
    /// The events, described.
    lines: std::sync::Mutex<Vec<String>>,
    /// The stacks of the plans passed to [`Reporter::applying`].
    applying: std::sync::Mutex<Vec<String>>,
}

#[cfg(test)]
impl Recorder {
    /// The events so far, as lines.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("recorder lock").clone()
    }

    /// How many times a plan was announced as being applied.
    pub fn applying_count(&self) -> usize {
        self.applying.lock().expect("recorder lock").len()
    }
}

#[cfg(test)]
impl Reporter for Recorder {
    fn report(&self, event: Progress<'_>) {
        let line = crate::render::progress::describe(&event);
        self.lines.lock().expect("recorder lock").push(line);
    }

    fn applying(&self, plan: &Plan) {
        let stack = plan.stack.clone();
        self.applying.lock().expect("recorder lock").push(stack);
    }
}
