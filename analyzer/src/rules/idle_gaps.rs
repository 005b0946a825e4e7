use traces::Nanos;
use traces::units::{format_count, format_duration};

use crate::finding::Finding;
use crate::index::{GapCause, TraceIndex};
use crate::rules::tiny_partitions::TinyPartitions;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds, seconds};

/// Time when the whole cluster had nothing to do because it waited on the client (the gap
/// ends with a new graph submission: `compute()` in a loop). Gaps waiting on the scheduler, on
/// a failed task's retry, and idle threads while work was pending are reported alongside, as
/// evidence; they are other rules' causes (`tiny-partitions`, `task-failures`).
pub struct IdleGaps;

impl IdleGaps {
    /// Client-bound idle as a share of the run: 10 / 25 / 50 / 75 % (ours; Sparklens reports
    /// the same "wasted" share of cores × wall).
    pub const IDLE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
}

impl Rule for IdleGaps {
    fn id(&self) -> &'static str {
        "idle-gaps"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let wall = index.wall_ns();
        if wall == 0 {
            return Vec::new();
        }
        let client_gaps = index.gaps.iter().filter(|g| g.cause == GapCause::Client);
        let mut client = index.gap_ns(GapCause::Client);
        if index.submissions.is_empty() {
            // Without submission events (Dask task streams) a long gap is only presumed the
            // client's: what the per-task scheduling cost explains is the scheduler's.
            let tasks: u64 = index.groups.iter().map(|g| g.tasks).sum();
            let overhead =
                per_thread_seconds(tasks * TinyPartitions::per_task_ns(index), index.threads());
            client = client.saturating_sub((overhead * 1e9) as Nanos);
        }
        let share = client as f64 / wall as f64;
        let impact = seconds(client);
        let Some(severity) = graded(share, IdleGaps::IDLE_SHARE, impact) else {
            return Vec::new();
        };
        let longest = client_gaps.clone().max_by_key(|g| g.len());
        let gaps = client_gaps.count();
        let scheduler = index.gap_ns(GapCause::Scheduler);
        let failure = index.gap_ns(GapCause::Failure);
        let restarts = index.gap_ns(GapCause::WorkerLost);
        let capacity = index.alive_ns as f64 * f64::from(index.threads());
        let pending_idle = (capacity - index.busy_ns() as f64).max(0.0);
        let computes = index.submissions.len();
        let title = format!(
            "the cluster sat idle {} ({:.0}% of the run) in {} gaps waiting on the client{}",
            format_duration(client),
            share * 100.0,
            format_count(gaps as u64),
            if computes > 0 {
                format!(" ({computes} graph submissions)")
            } else {
                String::new()
            }
        );
        let mean_gap = client / gaps.max(1) as u64;
        vec![
            Finding::new(self.id(), severity, impact, title)
                .time_range(longest.map(|g| (index.seconds(g.start), index.seconds(g.stop))))
                .with_evidence(
                    Evidence::new()
                        .seconds("idle", client + scheduler + failure + restarts)
                        .ratio("idle_share", share)
                        .seconds("waiting_on_client", client)
                        .seconds("waiting_on_scheduler", scheduler)
                        .seconds("waiting_on_retries", failure)
                        .seconds("waiting_on_worker_restarts", restarts)
                        .count("gaps", gaps as u64)
                        .count("graph_submissions", computes as u64)
                        .secs(
                            "idle_threads_with_work_pending",
                            per_thread_seconds(pending_idle as u64, 1),
                        ),
                )
                .advice(advice(index, mean_gap, gaps as u64 + 1)),
        ]
    }
}

fn advice(index: &TraceIndex, mean_gap: Nanos, rounds: u64) -> String {
    let fix = "Build all the graphs first and compute them together with \
               `dask.compute(*results)` (or `client.compute(...)` and `as_completed`) instead of \
               calling `.compute()` or `.result()` in a loop; `persist()` inputs the iterations \
               share.";
    if index.submissions.is_empty() {
        // Without submission events, a client busy pickling each task's arguments looks the
        // same as a client computing in a loop.
        format!(
            "The client is the bottleneck: the cluster waited {} on average between {rounds} \
             rounds of work. Either it computes in a loop — {fix} — or it spends that time \
             preparing each task, e.g. pickling a large object passed as an argument: \
             `client.scatter(obj, broadcast=True)` once and pass the future. Recording with \
             the taskscope plugin tells the two apart.",
            format_duration(mean_gap),
        )
    } else {
        format!(
            "The client is the bottleneck: the cluster waited {} on average between {rounds} \
             rounds of work. {fix}",
            format_duration(mean_gap),
        )
    }
}
