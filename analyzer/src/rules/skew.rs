use traces::Nanos;
use traces::units::{format_bytes, format_duration};

use crate::finding::{Finding, Severity};
use crate::index::{GroupStats, TaskBrief, TraceIndex};
use crate::rules::{Evidence, Rule, graded, is_array_block, seconds};

/// Within a task group, one partition far above the median: the straggler the whole group
/// (and often the job) waits for. A worker's first task of a group (imports, warm-up) and a
/// lone task of another shape (Dask's metadata task: an empty output) are not data skew and
/// are looked past.
pub struct Skew;

impl Skew {
    /// Dr. Elephant Spark task skew, max / median duration: 2 / 4 / 8 / 16.
    pub const DURATION_RATIO: [f64; 4] = [2.0, 4.0, 8.0, 16.0];
    /// A median needs a few tasks to mean anything.
    pub const MIN_TASKS: u64 = 4;
    /// Spark AQE calls a partition skewed past 5 × the median size.
    pub const SIZE_RATIO: f64 = 5.0;
    /// A slow task no larger than its peers may be noise (preemption on a loaded host, a GC
    /// pause): its duration ratio must be this many times Dr. Elephant's line. Measured on
    /// the corpus: such outliers of healthy runs on a loaded 2-core machine reach 4–7.3× (and
    /// once 15×), equal-size skew (a hot key's aggregate, a costly chunk) 11.7× and more.
    pub const SAME_SIZE_FACTOR: f64 = 2.0;
    /// ... and it must take this share of its group's span (first start to last stop): the
    /// group waits on it. Dr. Elephant asks 0.75 of the stage; measured on the corpus, real
    /// equal-size stragglers take 0.43–0.84 of theirs, outliers of healthy runs under load
    /// 0.05–0.15.
    pub const SAME_SIZE_SPAN_SHARE: f64 = 0.25;
    /// An output this many times smaller than the median is another kind of task in the same
    /// group (dataframe metadata: an empty frame), not a partition (ours).
    pub const OTHER_SHAPE_RATIO: u64 = 16;
    /// Every worker's first task of a group at least this many times the median: a warm-up
    /// (Dr. Elephant's first skew line).
    pub const WARM_UP_RATIO: u64 = 2;
    /// ... and within this factor of the slowest first task: warm-ups cost every worker about
    /// the same (ours).
    pub const WARM_UP_SPREAD: u64 = 4;
    /// A same-size straggler beside a task of another group that also took this many times its
    /// group's median (or half the straggler's own ratio, if less) may have been slowed by its
    /// host at the time (a cold process, a loaded machine) rather than by its data, and is
    /// graded low at most (Dr. Elephant's severe skew line, past the 4–7× of load noise above).
    /// Measured on real Dask runs: a healthy aligned join whose workers were slow for their
    /// first second ran its first partitions 9–24× their medians beside right-side ones at
    /// 8.5–9.4×; one on 4 workers of 2 cores a partition at 8.4× beside a task at 6.1×; but
    /// real hot partitions also run beside a stalled neighbour on a loaded host (a hot groupby
    /// beside a 76× load, 2 runs in 10 under a CPU hog), so the straggler is still named.
    pub const SLOW_TOGETHER_RATIO: f64 = 8.0;
    /// ... losing at least this share of the time the straggler lost over its median: a
    /// millisecond task at 10× its median lost nothing that could slow a neighbour (ours; the
    /// healthy join's neighbours lost 0.4–0.9 of it).
    pub const SLOW_TOGETHER_SHARE: f64 = 0.25;
}

/// Whether a task of another group ran beside `task` (which took `lost` over its median) at
/// [`Skew::SLOW_TOGETHER_RATIO`] times its own group's median or more (or half `task`'s ratio,
/// if less), losing a like share of time: what slowed `task` may have slowed its neighbours too.
fn slowed_together(index: &TraceIndex, group_id: u32, task: &TaskBrief, lost: Nanos) -> bool {
    let end = task.start.saturating_add(task.compute);
    let own_median = task.compute.saturating_sub(lost).max(1);
    let ratio = (task.compute as f64 / own_median as f64 / 2.0).min(Skew::SLOW_TOGETHER_RATIO);
    index
        .groups
        .iter()
        .enumerate()
        .filter(|(g, group)| *g as u32 != group_id && group.tasks >= Skew::MIN_TASKS)
        .any(|(_, group)| {
            let median = group.median_compute();
            group.slowest.iter().any(|t| {
                t.compute as f64 >= ratio * median.max(1) as f64
                    && t.compute.saturating_sub(median) as f64
                        >= Skew::SLOW_TOGETHER_SHARE * lost as f64
                    && t.start < end
                    && task.start < t.start.saturating_add(t.compute)
            })
        })
}

/// Whether `task` is a warm-up: its worker's first of the group (or started beside it on
/// another thread, as slow), while every other worker's first of the group was slow too (each
/// Python worker pays its imports and first allocations there). A hot partition that happens
/// to run first on its worker is not one.
fn warm_up(index: &TraceIndex, group_id: u32, task: &TaskBrief, median: Nanos) -> bool {
    let Some(&(first_start, first_compute)) = index.first_on_worker.get(&(group_id, task.worker))
    else {
        return false;
    };
    // As slow as a warm-up: past Dr. Elephant's first line, and of the same order as `task`.
    let slow = median
        .saturating_mul(Skew::WARM_UP_RATIO)
        .max(task.compute / Skew::WARM_UP_SPREAD);
    // A task that started on another thread while its worker's first of the group still ran
    // warmed up beside it, if that first one was as slow (`straggler-restricted-2x2`: both
    // threads' first sorts took 0.9-1.2 s against a median 81 ms).
    let beside_first = task.start > first_start
        && task.start < first_start.saturating_add(first_compute)
        && first_compute >= slow;
    if task.start != first_start && !beside_first {
        return false;
    }
    let mut others = index
        .first_on_worker
        .iter()
        .filter(|((g, w), _)| *g == group_id && *w != task.worker)
        .peekable();
    // With one worker there is nothing to compare with: a first task stays a warm-up.
    others.peek().is_none() || others.all(|(_, (_, compute))| *compute >= slow)
}

/// The slowest task that is a partition like the others: neither a warm-up nor a task of
/// another shape.
fn straggler<'a>(
    index: &TraceIndex,
    group_id: u32,
    group: &'a GroupStats,
) -> Option<&'a TaskBrief> {
    let median_output = group.median_output();
    let median = group.median_compute();
    // With one task per worker, every task is a worker's first: nothing can be told apart.
    let per_worker = group.tasks / index.workers.len().max(1) as u64;
    group.slowest.iter().find(|t| {
        let other_shape = t.nbytes.saturating_mul(Skew::OTHER_SHAPE_RATIO) < median_output;
        !other_shape && (per_worker < 2 || !warm_up(index, group_id, t, median))
    })
}

impl Rule for Skew {
    fn id(&self) -> &'static str {
        "skew"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (group_id, group) in index.groups.iter().enumerate() {
            if group.tasks < Skew::MIN_TASKS {
                continue;
            }
            let Some(slow) = straggler(index, group_id as u32, group) else {
                continue;
            };
            let median = group.median_compute().max(1);
            let ratio = slow.compute as f64 / median as f64;
            let median_size = group.median_output().max(1);
            let size_ratio = slow.nbytes as f64 / median_size as f64;
            let larger = size_ratio >= Skew::SIZE_RATIO;
            // Had the largest partition been split to median size, the group ends that much
            // sooner (it runs last: everything else finished while it ran).
            let impact = seconds(slow.compute.saturating_sub(median));
            let span = group.last_stop.saturating_sub(group.first_start).max(1);
            let span_share = slow.compute as f64 / span as f64;
            if !larger && span_share < Skew::SAME_SIZE_SPAN_SHARE {
                continue;
            }
            let evidence = if larger {
                ratio
            } else {
                ratio / Skew::SAME_SIZE_FACTOR
            };
            let Some(mut severity) = graded(evidence, Skew::DURATION_RATIO, impact) else {
                continue;
            };
            if !larger && slowed_together(index, group_id as u32, slow, slow.compute - median) {
                severity = severity.min(Severity::Low);
            }
            let pieces = ratio.ceil() as u64;
            let size_note = if larger {
                format!(
                    " and holds {} against a median {}",
                    format_bytes(slow.nbytes),
                    format_bytes(median_size)
                )
            } else {
                String::new()
            };
            // What the slow task's size says, where the trace records sizes (a performance
            // report does not: "0 B against a median 1 B" said nothing).
            let sizes = (group.output_total > 0).then(|| {
                format!(
                    "{} against a median {}",
                    format_bytes(slow.nbytes),
                    format_bytes(median_size)
                )
            });
            let costlier = match &sizes {
                Some(sizes) => format!(" is not larger than the others ({sizes}): its"),
                None => "'s size is not recorded; its".to_string(),
            };
            let advice = if is_array_block(&slow.key) {
                // Arrays have chunks, not rows or keys to salt.
                let what = match (larger, &sizes) {
                    (true, Some(sizes)) => format!(" is larger than the others ({sizes})"),
                    _ => format!("{costlier} values cost more to process, or its worker was slow"),
                };
                format!(
                    "The slow block{what}: split its work over ~{pieces} chunks with `rechunk` \
                     (regular chunks, the costly region cut finer), or set `chunks=` when the \
                     array is created.",
                )
            } else if larger {
                format!(
                    "Split the hot partition: repartition so no partition exceeds ~{} \
                     (`df.repartition(partition_size=\"{}\")`), or salt the hot key so its \
                     rows spread over ~{pieces} partitions before the groupby.",
                    format_bytes(median_size),
                    format_bytes(median_size.max(1 << 20)).replace(' ', ""),
                )
            } else {
                format!(
                    "The slow task{costlier} data is costlier to process (a hot key, a \
                     pathological record) or its worker was slow. Salt or split that key over \
                     ~{pieces} partitions, or repartition to spread its rows.",
                )
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: task {} took {} against a median {} ({ratio:.1}x){size_note}",
                        group.name,
                        slow.key,
                        format_duration(slow.compute),
                        format_duration(median),
                    ),
                )
                .group(&group.name)
                .worker(index.worker_name(slow.worker))
                .keys(vec![slow.key.clone()])
                .with_evidence(
                    Evidence::new()
                        .count("tasks", group.tasks)
                        .seconds("max", slow.compute)
                        .seconds("median", median)
                        .ratio("duration_ratio", ratio)
                        .bytes("max_output", slow.nbytes)
                        .bytes("median_output", median_size)
                        .ratio("size_ratio", size_ratio)
                        .ratio("group_span_share", span_share),
                )
                .advice(advice),
            );
        }
        findings
    }
}
