use traces::units::{format_count, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// Groups of many short tasks, where per-task overhead is a large share of the work.
pub struct TinyPartitions;

/// Dask docs: the scheduler costs ~1 ms per task (200 µs – 1 ms; measured here 1.6–1.9 ms on
/// a LocalCluster). Charged per task even on faster engines: it is what the job costs on Dask.
/// When the trace shows more (whole-cluster gaps waiting on the scheduler), that is used.
pub const TASK_OVERHEAD_NS: u64 = 1_000_000;
/// Dask docs: tasks should take at least ~100 ms.
pub const TARGET_TASK_NS: u64 = 100_000_000;
/// Overhead share of the group's time: 10 / 25 / 50 / 75 % (ours).
pub const OVERHEAD_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
/// Fewer tasks than this cannot add up to much overhead.
pub const MIN_TASKS: u64 = 100;

impl Rule for TinyPartitions {
    fn id(&self) -> &'static str {
        "tiny-partitions"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        // The scheduler gaps of the trace, as thread time per task.
        let tasks: u64 = index.groups.iter().map(|g| g.tasks).sum();
        let measured = index.scheduler_gap_ns() * u64::from(threads) / tasks.max(1);
        let per_task = measured.max(TASK_OVERHEAD_NS);
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            if group.tasks < MIN_TASKS || group.median_compute() >= TARGET_TASK_NS {
                continue;
            }
            let overhead = group.tasks * per_task;
            let share = overhead as f64 / (overhead + group.compute_total) as f64;
            // The same work in ~100 ms tasks.
            let target = (group.compute_total / TARGET_TASK_NS).max(1);
            let saved = group.tasks.saturating_sub(target) * per_task;
            let impact = per_thread_seconds(saved, threads);
            let severity = Severity::both(Severity::grade(share, OVERHEAD_SHARE), impact);
            if severity == Severity::None {
                continue;
            }
            findings.push(Finding {
                rule: self.id(),
                severity,
                impact_seconds: impact,
                title: format!(
                    "{}: {} tasks of median {}: at ~{} of scheduling per task, overhead is \
                     {:.0}% of the group's time",
                    group.name,
                    format_count(group.tasks),
                    format_duration(group.median_compute()),
                    format_duration(per_task),
                    share * 100.0
                ),
                scope: Scope {
                    group: Some(group.name.clone()),
                    time_range: Some((
                        index.seconds(group.first_start),
                        index.seconds(group.last_stop),
                    )),
                    ..Scope::default()
                },
                evidence: vec![
                    ("tasks".into(), group.tasks as f64),
                    (
                        "median_task_seconds".into(),
                        group.median_compute() as f64 / 1e9,
                    ),
                    ("compute_seconds".into(), group.compute_total as f64 / 1e9),
                    ("overhead_per_task_seconds".into(), per_task as f64 / 1e9),
                    ("overhead_seconds".into(), overhead as f64 / 1e9),
                    ("overhead_share".into(), share),
                    ("suggested_partitions".into(), target as f64),
                ],
                advice: format!(
                    "Use ~{} partitions of ~100 ms each instead of {}: \
                     `repartition(npartitions={})`, or larger `chunks=` / `partition_size=` / \
                     `blocksize=` when the collection is created.",
                    format_count(target),
                    format_count(group.tasks),
                    target
                ),
            });
        }
        findings
    }
}
