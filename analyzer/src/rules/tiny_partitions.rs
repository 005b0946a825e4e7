use traces::units::{format_count, format_duration};

use crate::finding::Finding;
use crate::index::{GroupStats, TraceIndex};
use crate::rules::{Evidence, Rule, graded, is_array_block, per_thread_seconds};

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
    /// Dask docs ("Best practices", avoid very large partitions): "it's common for Dask to have
    /// 2-3 times as many chunks available to work on so that it always has something to work
    /// on". Too little work for ~100 ms partitions is still cut this many per thread, not into
    /// one partition that leaves every other thread idle.
    pub const MIN_PARTITIONS_PER_THREAD: u64 = 2;

    /// The partitions to advise for `compute_ns` of work in `tasks` tasks on `threads`
    /// threads: ~100 ms each, at least [`Self::MIN_PARTITIONS_PER_THREAD`] per thread, never
    /// more than there are.
    pub fn suggested_partitions(compute_ns: u64, tasks: u64, threads: u32) -> u64 {
        (compute_ns / TinyPartitions::TARGET_TASK_NS)
            .max(TinyPartitions::MIN_PARTITIONS_PER_THREAD * u64::from(threads))
            .min(tasks)
            .max(1)
    }

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
            // The same work in ~100 ms tasks, enough of them for every thread.
            let target =
                TinyPartitions::suggested_partitions(group.compute_total(), group.tasks, threads);
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
                .advice(advice(group, target, threads)),
            );
        }
        findings
    }
}

/// The fix in the vocabulary of the API that made the group: an array's chunks (keys
/// `('name-…', i, j)`) are made bigger or rechunked; a dataframe's or bag's partitions (keys
/// `('name-…', i)`) are repartitioned or made bigger; tasks submitted one per item (futures or
/// delayed, keys `name-…`) are batched, which `repartition` cannot do.
fn advice(group: &GroupStats, target: u64, threads: u32) -> String {
    let size = format_duration(group.compute_total() / target);
    let floor = if group.compute_total() / TinyPartitions::TARGET_TASK_NS < target {
        format!(
            " (less than 100 ms each: {} per thread keep the cluster's {threads} threads busy)",
            TinyPartitions::MIN_PARTITIONS_PER_THREAD
        )
    } else {
        String::new()
    };
    if is_array_block(&group.largest_key) {
        format!(
            "Use ~{} chunks of ~{size} each instead of {}{floor}: larger `chunks=` when the \
             array is created (`da.from_array(x, chunks=...)`, `da.random.random(shape, \
             chunks=...)`), or `x.rechunk(...)` to fewer, larger chunks before this step.",
            format_count(target),
            format_count(group.tasks),
        )
    } else if group.largest_key.starts_with('(') {
        format!(
            "Use ~{} partitions of ~{size} each instead of {}{floor}: \
             `repartition(npartitions={target})`, or larger `chunks=` / `partition_size=` / \
             `blocksize=` when the collection is created.",
            format_count(target),
            format_count(group.tasks),
        )
    } else {
        let per_task = group.tasks.div_ceil(target);
        format!(
            "Submit ~{} tasks of ~{size} each instead of one per item ({}){floor}: batch the \
             items, ~{} a task: `client.map(process_batch, batches)` over lists of that many, \
             or `dask.bag.from_sequence(items, npartitions={target}).map(process)`.",
            format_count(target),
            format_count(group.tasks),
            format_count(per_task),
        )
    }
}
