//! What a service change does to running tasks, and about how long it takes: whether Swarm
//! replaces the tasks (a task-template or endpoint change) or not (labels, update settings,
//! replicas up), how many tasks are replaced or started, and an estimate of the rollout from
//! its update settings. The estimate is a model, not a promise (README, "Plan output"):
//!
//! - the tasks go in batches of `update_config.parallelism` (0: all at once; default 1);
//! - each batch takes [`TASK_SECONDS`] to stop the old task and start the new one, plus, when
//!   the service has a healthcheck, its `start_period` and one `interval` (default 30 s) before
//!   the task counts as running;
//! - `update_config.delay` passes between batches, and `monitor` (default 5 s) once after the
//!   last one, before Swarm calls the update complete;
//! - a new service, or replicas added, start at once: one batch, then the same monitor period,
//!   which a deploy waits for the new tasks to keep running (Swarm monitors no update then).
//!
//! Services roll out at the same time, so a plan's estimate is its slowest service's.

use serde::Serialize;
use serde_json::Value;

use crate::engine::Spec;

/// Seconds a batch takes to stop a task and start its replacement, without a healthcheck.
pub const TASK_SECONDS: u64 = 2;

/// Swarm's monitor period when `update_config.monitor` is not set, in seconds.
const DEFAULT_MONITOR_SECONDS: u64 = 5;

/// Docker's healthcheck interval when a healthcheck sets none, in seconds.
const DEFAULT_HEALTH_INTERVAL_SECONDS: u64 = 30;

/// What one service change does to its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// Whether running tasks are replaced (restarted with the new spec).
    pub restarts: bool,
    /// Tasks replaced (`restarts`), or started (a new service, replicas added).
    pub tasks: u64,
    /// About how long the rollout takes, in seconds (see the module docs).
    pub estimate_seconds: u64,
}

/// A plan's impact on the whole stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImpactSummary {
    /// Services whose tasks are replaced.
    pub services_restarted: usize,
    /// Tasks replaced, over all services.
    pub tasks_replaced: u64,
    /// Tasks started without replacing one (new services, replicas added).
    pub tasks_started: u64,
    /// About how long until every service converged: the slowest service's estimate.
    pub estimate_seconds: u64,
}

impl ImpactSummary {
    /// The summary of the impacts of a plan's service changes.
    pub fn of<'a>(impacts: impl IntoIterator<Item = &'a Impact>) -> ImpactSummary {
        let mut summary = ImpactSummary::default();
        for impact in impacts {
            if impact.restarts {
                summary.services_restarted += 1;
                summary.tasks_replaced += impact.tasks;
            } else {
                summary.tasks_started += impact.tasks;
            }
            summary.estimate_seconds = summary.estimate_seconds.max(impact.estimate_seconds);
        }
        summary
    }
}

/// The impact of creating a service with `spec` on a swarm of `nodes` nodes.
pub fn of_creation(spec: &Spec, nodes: u64) -> Impact {
    let tasks = task_count(spec, nodes);
    Impact {
        restarts: false,
        tasks,
        estimate_seconds: if tasks == 0 {
            0
        } else {
            start_seconds(spec) + monitor_seconds(spec)
        },
    }
}

/// The impact of updating a service from `live` to `desired`; `replaces_tasks` says whether
/// Swarm replaces its tasks (`canonical::replaces_tasks`).
pub fn of_update(live: &Spec, desired: &Spec, replaces_tasks: bool, nodes: u64) -> Impact {
    let tasks = task_count(desired, nodes);
    if replaces_tasks {
        return Impact {
            restarts: true,
            tasks,
            estimate_seconds: rollout_seconds(desired, tasks),
        };
    }
    let started = tasks.saturating_sub(task_count(live, nodes));
    Impact {
        restarts: false,
        tasks: started,
        estimate_seconds: if started == 0 {
            0
        } else {
            start_seconds(desired) + monitor_seconds(desired)
        },
    }
}

/// How many tasks the spec runs: its replicas (1 when unset), a job's completions, one per
/// node for a global service.
fn task_count(spec: &Spec, nodes: u64) -> u64 {
    let mode = &spec["Mode"];
    if mode.get("Global").is_some() || mode.get("GlobalJob").is_some() {
        return nodes;
    }
    if let Some(job) = mode.get("ReplicatedJob") {
        return job["TotalCompletions"].as_u64().unwrap_or(1);
    }
    mode.pointer("/Replicated/Replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

/// Seconds to roll `tasks` tasks out in batches (see the module docs).
fn rollout_seconds(spec: &Spec, tasks: u64) -> u64 {
    if tasks == 0 {
        return 0;
    }
    let update = &spec["UpdateConfig"];
    let parallelism = update["Parallelism"].as_u64().unwrap_or(1);
    let batches = if parallelism == 0 {
        1
    } else {
        tasks.div_ceil(parallelism)
    };
    let delay = seconds(&update["Delay"]).unwrap_or(0);
    batches * start_seconds(spec) + (batches - 1) * delay + monitor_seconds(spec)
}

/// `update_config.monitor` in seconds, or Swarm's default.
fn monitor_seconds(spec: &Spec) -> u64 {
    seconds(&spec["UpdateConfig"]["Monitor"])
        .filter(|monitor| *monitor > 0)
        .unwrap_or(DEFAULT_MONITOR_SECONDS)
}

/// Seconds one task takes to start and count as running: [`TASK_SECONDS`], plus the
/// healthcheck's start period and one interval when it has one.
fn start_seconds(spec: &Spec) -> u64 {
    let health = spec.pointer("/TaskTemplate/ContainerSpec/Healthcheck");
    let checked = health
        .and_then(|health| health["Test"].as_array())
        .is_some_and(|test| test.first().and_then(Value::as_str) != Some("NONE"));
    if !checked {
        return TASK_SECONDS;
    }
    let health = health.expect("a healthcheck with a test");
    let interval = seconds(&health["Interval"]).unwrap_or(DEFAULT_HEALTH_INTERVAL_SECONDS);
    let start_period = seconds(&health["StartPeriod"]).unwrap_or(0);
    TASK_SECONDS + start_period + interval
}

/// A duration in nanoseconds as whole seconds, rounded up.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().map(|nanos| nanos.div_ceil(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replicated(replicas: u64, update: Value) -> Spec {
        json!({"Mode": {"Replicated": {"Replicas": replicas}}, "UpdateConfig": update,
               "TaskTemplate": {"ContainerSpec": {"Image": "i"}}})
    }

    #[test]
    fn a_restart_goes_in_batches_with_delays_and_one_monitor_period() {
        // 3 tasks, 2 at a time: 2 batches of 2 s, one 10 s delay, the 5 s default monitor.
        let spec = replicated(3, json!({"Parallelism": 2, "Delay": 10_000_000_000u64}));
        let impact = of_update(&spec, &spec, true, 1);
        assert_eq!(
            impact,
            Impact {
                restarts: true,
                tasks: 3,
                estimate_seconds: 2 * 2 + 10 + 5
            }
        );
        // Parallelism 0: one batch; a monitor set: that one.
        let spec = replicated(4, json!({"Parallelism": 0, "Monitor": 1_500_000_000u64}));
        assert_eq!(of_update(&spec, &spec, true, 1).estimate_seconds, 2 + 2);
        // A healthcheck: its start period and one interval per batch (default parallelism 1).
        let mut spec = replicated(2, Value::Null);
        spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"] =
            json!({"Test": ["CMD", "true"], "Interval": 3_000_000_000u64});
        assert_eq!(
            of_update(&spec, &spec, true, 1).estimate_seconds,
            2 * (2 + 3) + 5
        );
    }

    #[test]
    fn scaling_up_starts_only_the_new_tasks_and_restarts_nothing() {
        let (live, desired) = (replicated(2, Value::Null), replicated(5, Value::Null));
        let impact = of_update(&live, &desired, false, 1);
        assert_eq!(
            impact,
            Impact {
                restarts: false,
                tasks: 3,
                estimate_seconds: 2 + 5
            }
        );
        let down = of_update(&desired, &live, false, 1);
        assert_eq!(
            down,
            Impact {
                restarts: false,
                tasks: 0,
                estimate_seconds: 0
            }
        );
        let global = json!({"Mode": {"Global": {}}});
        assert_eq!(of_creation(&global, 3).tasks, 3);
    }

    #[test]
    fn the_summary_counts_restarts_and_takes_the_slowest_service() {
        let impacts = [
            Impact {
                restarts: true,
                tasks: 2,
                estimate_seconds: 9,
            },
            Impact {
                restarts: false,
                tasks: 3,
                estimate_seconds: 2,
            },
            Impact {
                restarts: true,
                tasks: 1,
                estimate_seconds: 7,
            },
        ];
        let summary = ImpactSummary::of(&impacts);
        assert_eq!(
            summary,
            ImpactSummary {
                services_restarted: 2,
                tasks_replaced: 3,
                tasks_started: 3,
                estimate_seconds: 9
            }
        );
    }
}
