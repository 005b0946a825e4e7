//! One rule per file, each a small type behind [`Rule`], thresholds as named constants that
//! cite their source (Dr. Elephant, Spark, Sparklens, Dask's documentation and source) or the
//! measurement behind them.

use traces::Nanos;

use crate::finding::{Finding, ImpactSource, Scope, Severity};
use crate::index::{GapCause, TraceIndex};

mod communication;
mod gil_contention;
mod idle_gaps;
mod memory_pressure;
mod oversized_argument;
mod recomputation;
mod serialization;
mod skew;
mod straggler_worker;
mod task_failures;
mod threads_per_worker;
mod tiny_partitions;
mod unmanaged_memory;

/// A check over a trace: it judges; [`Evidence`], [`Finding::new`] and [`Severity::both`]
/// carry the rest (tokio-console's `Warn<T>` shape). Adding a rule is one file plus one line
/// in [`all`].
pub trait Rule {
    /// The id findings carry (`skew`, `tiny-partitions`, …).
    fn id(&self) -> &'static str;
    fn check(&self, index: &TraceIndex) -> Vec<Finding>;
}

pub fn all() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(skew::Skew),
        Box::new(tiny_partitions::TinyPartitions),
        Box::new(oversized_argument::OversizedArgument),
        Box::new(idle_gaps::IdleGaps),
        Box::new(communication::Communication),
        Box::new(memory_pressure::MemoryPressure),
        Box::new(straggler_worker::StragglerWorker),
        Box::new(recomputation::Recomputation),
        Box::new(serialization::Serialization),
        Box::new(gil_contention::GilContention),
        Box::new(task_failures::TaskFailures),
        Box::new(unmanaged_memory::UnmanagedMemory),
        Box::new(threads_per_worker::ThreadsPerWorker),
    ]
}

/// Nanoseconds in seconds.
/// A block of an array of two or more dimensions: Dask keys it `('name-…', i, j, …)`. A
/// dataframe's or bag's partitions, and 1-D arrays', carry one index. Advice for it speaks of
/// chunks (`rechunk`, `chunks=`), not rows, keys or `repartition`.
pub(crate) fn is_array_block(key: &str) -> bool {
    let Some(inner) = key.strip_prefix('(').and_then(|k| k.strip_suffix(')')) else {
        return false;
    };
    let indices: Vec<&str> = inner.split(',').skip(1).map(str::trim).collect();
    indices.len() >= 2 && indices.iter().all(|i| i.parse::<u64>().is_ok())
}

pub(crate) fn seconds(ns: Nanos) -> f64 {
    ns as f64 / 1e9
}

/// Seconds of `ns` spread over `threads` threads.
pub(crate) fn per_thread_seconds(ns: Nanos, threads: u32) -> f64 {
    seconds(ns) / f64::from(threads.max(1))
}

/// A finding's named numbers, each with its unit in its name.
#[derive(Default)]
pub(crate) struct Evidence(Vec<(String, f64)>);

impl Evidence {
    pub fn new() -> Evidence {
        Evidence::default()
    }

    /// `{name}_seconds`, from nanoseconds.
    pub fn seconds(mut self, name: &str, ns: Nanos) -> Evidence {
        self.0.push((format!("{name}_seconds"), seconds(ns)));
        self
    }

    /// `{name}_seconds`, already in seconds.
    pub fn secs(mut self, name: &str, seconds: f64) -> Evidence {
        self.0.push((format!("{name}_seconds"), seconds));
        self
    }

    /// `{name}_bytes`.
    pub fn bytes(mut self, name: &str, bytes: u64) -> Evidence {
        self.0.push((format!("{name}_bytes"), bytes as f64));
        self
    }

    /// A count, named as it is.
    pub fn count(mut self, name: &str, n: u64) -> Evidence {
        self.0.push((name.to_string(), n as f64));
        self
    }

    /// A ratio or share (0–1), named as it is (`…_ratio`, `…_share`).
    pub fn ratio(mut self, name: &str, value: f64) -> Evidence {
        self.0.push((name.to_string(), value));
        self
    }
}

impl From<Evidence> for Vec<(String, f64)> {
    fn from(evidence: Evidence) -> Self {
        evidence.0
    }
}

impl Finding {
    /// A finding scoped to nothing yet, with no evidence or advice.
    pub(crate) fn new(
        rule: &'static str,
        severity: Severity,
        impact_seconds: f64,
        title: String,
    ) -> Finding {
        Finding {
            rule,
            severity,
            impact_seconds,
            impact_from: ImpactSource::Estimate,
            title,
            scope: Scope::default(),
            evidence: Vec::new(),
            advice: String::new(),
            simulated: None,
        }
    }

    pub(crate) fn group(mut self, group: &str) -> Finding {
        self.scope.group = Some(group.to_string());
        self
    }

    pub(crate) fn worker(mut self, worker: String) -> Finding {
        self.scope.worker = Some(worker);
        self
    }

    pub(crate) fn keys(mut self, keys: Vec<String>) -> Finding {
        self.scope.keys = keys;
        self
    }

    pub(crate) fn time_range(mut self, range: Option<(f64, f64)>) -> Finding {
        self.scope.time_range = range;
        self
    }

    pub(crate) fn with_evidence(mut self, evidence: Evidence) -> Finding {
        self.evidence = evidence.into();
        self
    }

    pub(crate) fn advice(mut self, advice: String) -> Finding {
        self.advice = advice;
        self
    }
}

/// Grades `ratio` on `limits` and `impact` on [`crate::IMPACT_SECONDS`]; `None` when either is
/// below its first line.
pub(crate) fn graded(ratio: f64, limits: [f64; 4], impact: f64) -> Option<Severity> {
    let severity = Severity::both(Severity::grade(ratio, limits), impact);
    (severity > Severity::None).then_some(severity)
}

/// A cause, a symptom it can explain, and whether it does in this trace.
type Explains = (
    &'static str,
    &'static str,
    fn(&TraceIndex, &Finding, &Finding) -> bool,
);

/// Causes and the symptoms they explain. A client that pickles a large argument into every
/// task leaves the cluster idle while it does: that idle time is `oversized-argument`'s, not
/// `idle-gaps`'. One skewed task keeps its worker busy after the others are done: the
/// unbalanced worker (the same one) is the skew's symptom. Transfers slowed by pickling are
/// `serialization`'s. Without submission events (Dask task streams), whole-cluster gaps are
/// only presumed the client's: workers paused under memory pressure leave the cluster just as
/// idle. A worker that spilled holds memory it freed and its allocator kept (Dask counts it
/// unmanaged): that unmanaged memory is the spilling's.
const EXPLAINS: [Explains; 5] = [
    ("oversized-argument", "idle-gaps", gaps_end_with_the_group),
    ("skew", "straggler-worker", same_worker),
    ("serialization", "communication", pickling_of_transfers),
    ("memory-pressure", "idle-gaps", presumed_gaps),
    ("memory-pressure", "unmanaged-memory", spilled_there),
];

/// A cause explains a symptom when its own estimate accounts for at least this share of the
/// symptom's (ours: estimates from assumed bandwidths are good to a factor of a few, not
/// better).
const EXPLAINED_SHARE: f64 = 1.0 / 3.0;

fn comparable(_: &TraceIndex, cause: &Finding, symptom: &Finding) -> bool {
    cause.impact_seconds >= EXPLAINED_SHARE * symptom.impact_seconds
}

/// Pickling took its share of the transfers' time. Both count the same transfers, so their
/// seconds compare directly; the two impacts do not: `communication`'s counts every thread of
/// a worker idle while it waits (twice the time with two threads a worker), `serialization`'s
/// the pickling spread over all threads. Findings without the seconds (per-group
/// deserialization) compare impacts.
fn pickling_of_transfers(index: &TraceIndex, cause: &Finding, symptom: &Finding) -> bool {
    let pickling = cause
        .evidence("serialize_seconds")
        .zip(cause.evidence("deserialize_seconds"))
        .map(|(s, d)| s + d);
    match (pickling, symptom.evidence("transfer_seconds")) {
        (Some(pickling), Some(transfer)) if transfer > 0.0 => {
            pickling >= EXPLAINED_SHARE * transfer
        }
        _ => comparable(index, cause, symptom),
    }
}

fn presumed_gaps(index: &TraceIndex, cause: &Finding, symptom: &Finding) -> bool {
    index.submissions.is_empty() && comparable(index, cause, symptom)
}

/// The worker holding the unmanaged memory spilled at least [`EXPLAINED_SHARE`] of it: memory
/// Dask moved to disk and the process did not give back to the OS (measured on
/// `memory-spill-4x1`: a worker spilled while its unmanaged memory grew to 332 MB with 157 MB
/// of results; a leak (`unmanaged-leak`) spills nothing).
fn spilled_there(index: &TraceIndex, _: &Finding, symptom: &Finding) -> bool {
    let (Some(name), Some(unmanaged)) = (
        symptom.scope.worker.as_deref(),
        symptom.evidence("unmanaged_peak_bytes"),
    ) else {
        return false;
    };
    index.workers.iter().any(|(id, w)| {
        index.worker_name(*id) == name && w.max_spilled as f64 >= EXPLAINED_SHARE * unmanaged
    })
}

fn same_worker(index: &TraceIndex, cause: &Finding, symptom: &Finding) -> bool {
    cause.scope.worker == symptom.scope.worker && comparable(index, cause, symptom)
}

/// Most of the client's gaps end with tasks of the cause's group starting: the client spent
/// them preparing those tasks.
fn gaps_end_with_the_group(index: &TraceIndex, cause: &Finding, _: &Finding) -> bool {
    let Some(group) = cause.scope.group.as_deref() else {
        return false;
    };
    let Some(id) = index.groups.iter().position(|g| g.name == group) else {
        return false;
    };
    let mut starts: Vec<Nanos> = index
        .runs
        .iter()
        .filter(|r| r.group == id as u32)
        .map(|r| r.start)
        .collect();
    starts.sort_unstable();
    let (mut explained, mut total) = (0, 0);
    for gap in index.gaps.iter().filter(|g| g.cause == GapCause::Client) {
        total += gap.len();
        let next = starts.partition_point(|&s| s < gap.stop);
        if starts
            .get(next)
            .is_some_and(|&s| s <= gap.stop + crate::index::SUBMIT_SLACK_NS)
        {
            explained += gap.len();
        }
    }
    total > 0 && explained * 2 >= total
}

/// Folds each explained symptom into its cause: the cause's impact becomes the larger of the
/// two, and the symptom goes, so the top finding names the cause whatever the run's timing.
pub(crate) fn attribute_causes(index: &TraceIndex, findings: &mut Vec<Finding>) {
    for (cause, symptom, explains) in EXPLAINS {
        loop {
            let found = findings.iter().enumerate().find_map(|(s, sf)| {
                (sf.rule == symptom).then_some(())?;
                let c = findings
                    .iter()
                    .enumerate()
                    .filter(|(_, cf)| cf.rule == cause && explains(index, cf, sf))
                    .max_by(|a, b| a.1.impact_seconds.total_cmp(&b.1.impact_seconds))?
                    .0;
                Some((c, s))
            });
            let Some((c, s)) = found else { break };
            let symptom = findings.remove(s);
            let cause = &mut findings[if s < c { c - 1 } else { c }];
            if symptom.impact_seconds > cause.impact_seconds {
                cause.impact_seconds = symptom.impact_seconds;
                cause.severity = cause.severity.max(symptom.severity);
            }
            let name = format!("explains_{}_seconds", symptom.rule.replace('-', "_"));
            match cause.evidence.iter_mut().find(|(n, _)| *n == name) {
                Some((_, seconds)) => *seconds += symptom.impact_seconds,
                None => cause.evidence.push((name, symptom.impact_seconds)),
            }
        }
    }
}
