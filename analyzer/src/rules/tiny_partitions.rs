use traces::units::{format_count, format_duration};

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Groups of many short tasks, where per-task overhead is a large share of the work.
pub struct TinyPartitions;

impl TinyPartitions {
    /// Dask docs: the scheduler costs ~1 ms per task (200 µs – 1 ms; measured here 1.6–1.9 ms
    /// on a LocalCluster, `bridges/dask/README.md`). Charged per task even on faster engines:
    /// it is what the job costs on Dask. When threads sit longer between tasks (the median
    /// gap on a thread, the same in every format of a run), that is used.
    pub const TASK_OVERHEAD_NS: u64 = 1_000_000;
    /// Dask docs ("Best practices"): tasks should take at least ~100 ms.
    pub const TARGET_TASK_NS: u64 = 100_000_000;
    /// Overhead share of the group's time: 10 / 25 / 50 / 75 % (ours).
    pub const OVERHEAD_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
    /// Fewer tasks than this cannot add up to much overhead.
    pub const MIN_TASKS: u64 = 100;

    /// Thread time each task costs beyond its compute.
    pub fn per_task_ns(index: &TraceIndex) -> u64 {
        index.lane_gap_ns.max(TinyPartitions::TASK_OVERHEAD_NS)
    }
}

impl Rule for TinyPartitions {
    fn id(&self) -> &'static str {
        "tiny-partitions"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let per_task = TinyPartitions::per_task_ns(index);
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            let median = group.median_compute();
            if group.tasks < TinyPartitions::MIN_TASKS || median >= TinyPartitions::TARGET_TASK_NS {
                continue;
            }
            let overhead = group.tasks * per_task;
            let share = overhead as f64 / (overhead + group.compute_total()) as f64;
            // The same work in ~100 ms tasks.
            let target = (group.compute_total() / TinyPartitions::TARGET_TASK_NS).max(1);
            let saved = group.tasks.saturating_sub(target) * per_task;
            let impact = per_thread_seconds(saved, threads);
            let Some(severity) = graded(share, TinyPartitions::OVERHEAD_SHARE, impact) else {
                continue;
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: {} tasks of median {}: at ~{} of scheduling per task, overhead is \
                         {:.0}% of the group's time",
                        group.name,
                        format_count(group.tasks),
                        format_duration(median),
                        format_duration(per_task),
                        share * 100.0
                    ),
                )
                .group(&group.name)
                .time_range(Some((
                    index.seconds(group.first_start),
                    index.seconds(group.last_stop),
                )))
                .with_evidence(
                    Evidence::new()
                        .count("tasks", group.tasks)
                        .seconds("median_task", median)
                        .seconds("compute", group.compute_total())
                        .seconds("overhead_per_task", per_task)
                        .seconds("overhead", overhead)
                        .ratio("overhead_share", share)
                        .count("suggested_partitions", target),
                )
                .advice(format!(
                    "Use ~{} partitions of ~100 ms each instead of {}: \
                     `repartition(npartitions={})`, or larger `chunks=` / `partition_size=` / \
                     `blocksize=` when the collection is created.",
                    format_count(target),
                    format_count(group.tasks),
                    target
                )),
            );
        }
        findings
    }
}
