//! [`TraceIndex`]: everything the rules need, built in one streaming pass over a trace — on two
//! threads, each indexing its own batches of lines, merged at the end.
//!
//! Per task it keeps a few fixed-size numbers (its interval on its thread, its key's hash, its
//! dependencies' hashes for the critical path) — never the records themselves.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashMap;
use traces::{
    Action, ActionTotals, EventKind, GroupMetrics, Header, Key, MemorySample, Nanos, Record,
    SparseHistogram, TaskRecord, TaskStatus, TraceError, TraceReader, WorkerId,
};

/// Everything known about one task group.
#[derive(Debug, Clone)]
pub struct GroupStats {
    pub name: String,
    /// Successful attempts.
    pub tasks: u64,
    /// Compute time of each successful attempt (sparse: a group of one task costs bytes, not
    /// the 16+ KiB of a dense histogram; issue 11).
    pub compute: SparseHistogram,
    /// The slowest tasks by compute time, slowest first (at most [`SLOWEST_KEPT`]).
    pub slowest: Vec<TaskBrief>,
    pub output: SparseHistogram,
    pub output_total: u64,
    pub output_max: u64,
    /// Key of the largest output.
    pub largest_key: String,
    /// Time, bytes and count per phase action.
    pub phases: ActionTotals,
    /// Inline arguments: tasks carrying any, total bytes, largest, and how often each size
    /// repeats (a few distinct sizes at most are kept).
    pub inline_tasks: u64,
    pub inline_total: u64,
    pub inline_max: u64,
    pub inline_sizes: BTreeMap<u64, u64>,
    /// First start and last stop of the group's tasks.
    pub first_start: Nanos,
    pub last_stop: Nanos,
}

/// One task, kept as an example (a group's slowest).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskBrief {
    pub key: String,
    pub compute: Nanos,
    /// When it started occupying its thread.
    pub start: Nanos,
    pub worker: WorkerId,
    pub nbytes: u64,
}

/// Slowest tasks kept per group: enough to look past each worker's warm-up task.
pub const SLOWEST_KEPT: usize = 8;

/// Keeps `task` among the slowest, slowest first; of equals, the first seen stays first (and
/// is kept), as when `merge` adds a later part of the trace.
fn keep_slowest(slowest: &mut Vec<TaskBrief>, task: TaskBrief) {
    if slowest.len() == SLOWEST_KEPT && slowest.last().is_some_and(|l| l.compute >= task.compute) {
        return;
    }
    let at = slowest.partition_point(|t| t.compute >= task.compute);
    slowest.insert(at, task);
    slowest.truncate(SLOWEST_KEPT);
}

impl GroupStats {
    /// Adds the same group's statistics from another part of the trace.
    fn merge(&mut self, other: GroupStats) {
        self.tasks += other.tasks;
        self.compute.add(&other.compute);
        self.output.add(&other.output);
        for task in other.slowest {
            keep_slowest(&mut self.slowest, task);
        }
        self.output_total = self.output_total.saturating_add(other.output_total);
        if other.output_max > self.output_max || self.largest_key.is_empty() {
            self.output_max = other.output_max;
            self.largest_key = other.largest_key;
        }
        self.phases.merge(&other.phases);
        self.inline_tasks += other.inline_tasks;
        self.inline_total = self.inline_total.saturating_add(other.inline_total);
        self.inline_max = self.inline_max.max(other.inline_max);
        for (size, count) in other.inline_sizes {
            if self.inline_sizes.len() < INLINE_SIZES || self.inline_sizes.contains_key(&size) {
                *self.inline_sizes.entry(size).or_default() += count;
            }
        }
        self.first_start = self.first_start.min(other.first_start);
        self.last_stop = self.last_stop.max(other.last_stop);
    }

    fn new(name: &str) -> GroupStats {
        GroupStats {
            name: name.to_string(),
            tasks: 0,
            compute: SparseHistogram::new(),
            slowest: Vec::new(),
            output: SparseHistogram::new(),
            output_total: 0,
            output_max: 0,
            largest_key: String::new(),
            phases: ActionTotals::default(),
            inline_tasks: 0,
            inline_total: 0,
            inline_max: 0,
            inline_sizes: BTreeMap::new(),
            first_start: Nanos::MAX,
            last_stop: 0,
        }
    }

    pub fn compute_total(&self) -> Nanos {
        self.phases.ns(Action::Compute)
    }

    pub fn compute_max(&self) -> Nanos {
        self.slowest.first().map_or(0, |t| t.compute)
    }

    /// The histogram answers with its bucket's upper end: never above the true maximum.
    pub fn median_compute(&self) -> Nanos {
        self.compute.value_at_quantile(0.5).min(self.compute_max())
    }

    pub fn median_output(&self) -> u64 {
        self.output.value_at_quantile(0.5).min(self.output_max)
    }

    /// Time its tasks spent occupying threads or moving their inputs.
    pub fn task_time(&self) -> Nanos {
        self.phases.task_ns()
    }
}

/// Distinct inline-argument sizes kept per group.
const INLINE_SIZES: usize = 8;

#[derive(Debug, Default, Clone)]
pub struct WorkerStats {
    pub name: String,
    pub threads: u32,
    pub tasks: u64,
    /// Thread-occupying time (compute, deserialize, disk).
    pub busy_ns: Nanos,
    pub memory_limit: Option<u64>,
    /// Memory (and CPU) samples in time order.
    pub samples: Vec<MemorySample>,
    pub max_process: u64,
    pub max_managed: u64,
    pub max_unmanaged: u64,
    pub max_spilled: u64,
    /// Time paused: between pause and resume events (or, without them, between samples over
    /// the pause fraction).
    pub paused_ns: Nanos,
    pub killed: Vec<(Nanos, String)>,
    pub paused: u64,
    /// When its first and last task stopped occupying a thread.
    pub first_busy: Nanos,
    pub last_busy: Nanos,
}

impl WorkerStats {
    /// Process memory (managed + unmanaged) of the last sample at or before `time`.
    pub fn process_before(&self, time: Nanos) -> Option<u64> {
        let at = self.samples.partition_point(|s| s.time <= time);
        at.checked_sub(1).map(|i| {
            self.samples[i]
                .managed
                .saturating_add(self.samples[i].unmanaged)
        })
    }
}

/// A task that was running on a worker when it died.
#[derive(Debug, Clone, PartialEq)]
pub struct LostTask {
    pub time: Nanos,
    pub worker: WorkerId,
    pub key: String,
    pub group: String,
    /// Bytes of its inputs (when the trace has dependencies) or inline arguments.
    pub inline_bytes: u64,
    /// Memory the attempt allocated while it ran (0: not recorded).
    pub working_bytes: u64,
}

/// Failed attempts of one group with one error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureStats {
    pub group: String,
    /// First line of the first such error; empty when the trace does not say (Dask task
    /// streams).
    pub error: String,
    /// What the errors have in common: the first line with its numbers blanked (`part #`), so
    /// one failure reading different inputs is one failure.
    pub kind: String,
    pub attempts: u64,
    /// Thread time the failed attempts took.
    pub compute_ns: Nanos,
    pub example_key: String,
    /// Distinct keys that failed, and of those the ones that never succeeded.
    pub keys: u64,
    pub keys_never_succeeded: u64,
    /// First failed attempt's start, last one's stop.
    pub first: Nanos,
    pub last: Nanos,
}

/// Failures kept apart by group and error; more distinct pairs are folded into the last.
const FAILURE_KINDS: usize = 64;
/// Dask log warnings kept.
const WARNINGS_KEPT: usize = 1_000;
/// Tasks lost with a dead worker, kept with their keys.
const LOST_KEPT: usize = 1_000;

/// One successful attempt: enough to find recomputed keys and to walk the critical path.
/// Appended in file order (cheap), sorted by key once at the end.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub hash: u64,
    pub start: Nanos,
    pub stop: Nanos,
    /// When it occupied its thread (its first to last thread-occupying phase).
    pub busy_start: Nanos,
    pub busy_stop: Nanos,
    pub thread: u32,
    /// Size of its result.
    pub nbytes: u64,
    pub compute: Nanos,
    pub transfer: Nanos,
    /// Its dependencies: `dep_hashes[deps_from..deps_from + deps_len]`.
    pub deps_from: u32,
    pub deps_len: u32,
    /// Index in [`TraceIndex::groups`].
    pub group: u32,
    pub worker: WorkerId,
}

/// A key computed more than once.
#[derive(Debug, Clone, Copy)]
pub struct Repeat {
    pub runs: u32,
    /// Compute time of the runs after the first.
    pub repeated_ns: Nanos,
    /// The re-runs followed a worker death (recovery of lost results), not a missing persist.
    pub after_death: bool,
}

/// Cloneable so a live view can analyze what arrived so far and keep adding.
#[derive(Clone)]
pub struct TraceIndex {
    pub header: Header,
    pub format: String,
    pub first: Nanos,
    pub last: Nanos,
    /// In order of first appearance; [`PathNode::group`] indexes it.
    pub groups: Vec<GroupStats>,
    group_ids: FxHashMap<String, u32>,
    pub workers: BTreeMap<WorkerId, WorkerStats>,
    /// Transfer phases of successful tasks: (worker, group, start, stop).
    pub transfers: Vec<(WorkerId, u32, Nanos, Nanos)>,
    /// Busy intervals per (worker, thread) lane, in file order.
    pub lanes: FxHashMap<(WorkerId, u32), Vec<(Nanos, Nanos)>>,
    /// Each attempt's whole life, queued phase included: when the cluster had work at all.
    pub alive: Vec<(Nanos, Nanos)>,
    /// Stretches of at least [`MIN_GAP_NS`] with no task queued or running anywhere.
    pub gaps: Vec<Gap>,
    /// Time with at least one task queued or running somewhere.
    pub alive_ns: Nanos,
    /// Median time a thread sat between two tasks (under [`MAX_LANE_GAP_NS`], and not while the
    /// whole cluster waited on the client): what each task costs around its compute on this
    /// cluster, the same in every format of one run.
    pub lane_gap_ns: Nanos,
    pub submissions: Vec<Nanos>,
    pub task_records: u64,
    /// Attempts that erred or were cancelled.
    pub failed: u64,
    pub cancelled: u64,
    pub lost: u64,
    pub lost_compute_ns: Nanos,
    pub retried: u64,
    /// Erred attempts by group and error, largest time first (after [`TraceIndex::finish`]).
    pub failures: Vec<FailureStats>,
    /// `(key hash, index in failures)` per erred attempt, to count keys that recovered.
    failed_keys: Vec<(u64, u32)>,
    /// When each erred attempt stopped: a whole-cluster gap right after one is a retry's
    /// wait, not the client's.
    pub error_stops: Vec<Nanos>,
    /// Tasks running on workers when they died.
    pub lost_tasks: Vec<LostTask>,
    /// Earliest thread start of each group on each worker: its warm-up task (imports, first
    /// allocations) is the one that started then.
    /// (its start, its compute time).
    pub first_on_worker: FxHashMap<(u32, WorkerId), (Nanos, Nanos)>,
    /// Dask's fine performance metrics per group, the latest record of each.
    pub group_metrics: BTreeMap<String, GroupMetrics>,
    /// Warnings the producer recorded (Dask's own log warnings, with the plugin).
    pub dask_warnings: Vec<(Nanos, Option<WorkerId>, String)>,
    /// Pause (`true`) and resume events per worker.
    pauses: Vec<(Nanos, WorkerId, bool)>,
    pub runs: Vec<Run>,
    /// `(key hash, run index)` sorted by hash: a key's runs are adjacent.
    pub by_key: Vec<(u64, u32)>,
    pub repeats: Vec<Repeat>,
    /// Text of some keys computed more than once, for findings to name.
    pub repeated_keys: Vec<String>,
    /// One bit per hash bucket: a key whose bit is already set may be a repeat, and its text
    /// is kept as a candidate (confirmed against `repeats` at the end).
    seen: Vec<u64>,
    candidates: Vec<(u64, String)>,
    pub dep_hashes: Vec<u64>,
    pub has_dependencies: bool,
    /// Collected while reading, folded into `workers` at the end (in time order).
    memory: Vec<MemorySample>,
    kills: Vec<(Nanos, WorkerId)>,
    pub warnings: Vec<String>,
}

/// Threads parsing and indexing the trace (with one more splitting its lines).
const PARSE_THREADS: usize = 2;

/// Gaps shorter than this are scheduling jitter, not idleness.
pub const MIN_GAP_NS: Nanos = 1_000_000;
/// A submission this close after a gap ends still explains it (the client submits, then the
/// scheduler queues the first task).
pub const SUBMIT_SLACK_NS: Nanos = 5_000_000;
/// Without recorded submissions (Dask task streams), a whole-cluster gap this long is the
/// client's: Dask's scheduler hands out the next task in 1–2 ms (measured on a LocalCluster,
/// `bridges/dask/README.md`).
pub const CLIENT_GAP_NS: Nanos = 10_000_000;

/// A stretch when the whole cluster had nothing to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub start: Nanos,
    pub stop: Nanos,
    pub cause: GapCause,
}

/// What the cluster waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// The client: a new graph submission ends the gap.
    Client,
    /// A failed attempt just before it: the retry's turnaround.
    Failure,
    /// A worker died in it, or a replacement started work at its end: the nanny's restart.
    WorkerLost,
    /// The scheduler or the network.
    Scheduler,
}

/// A failed attempt this close before a gap explains it (the scheduler reschedules it).
pub const FAILURE_SLACK_NS: Nanos = 5_000_000;

impl Gap {
    pub fn len(&self) -> Nanos {
        self.stop - self.start
    }
}

/// Intervals merged where they overlap (input sorted by start).
fn merged(sorted: &[(Nanos, Nanos)]) -> Vec<(Nanos, Nanos)> {
    let mut out: Vec<(Nanos, Nanos)> = Vec::new();
    for &(a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Longer pauses between a thread's tasks are waits for work, not per-task cost.
pub const MAX_LANE_GAP_NS: Nanos = 100_000_000;

/// The median pause between two tasks of a thread. A pause in which the whole cluster
/// waited on the client (`compute()` in a loop) is the client's time, counted by `idle-gaps`:
/// it says nothing of what a task costs, and with as many threads as a round has tasks, it is
/// every pause a thread has.
fn median_lane_gap<'a>(
    lanes: impl Iterator<Item = &'a Vec<(Nanos, Nanos)>>,
    cluster_gaps: &[Gap],
) -> Nanos {
    let client: Vec<(Nanos, Nanos)> = cluster_gaps
        .iter()
        .filter(|g| g.cause == GapCause::Client)
        .map(|g| (g.start, g.stop))
        .collect();
    // `client` is sorted and disjoint: the first gap ending after `a` is the only candidate.
    let waits_on_client = |a: Nanos, b: Nanos| {
        let i = client.partition_point(|&(_, stop)| stop <= a);
        client.get(i).is_some_and(|&(start, _)| start < b)
    };
    let mut gaps: Vec<Nanos> = lanes
        .flat_map(|lane| lane.windows(2).map(|w| (w[0].1, w[1].0)))
        .filter(|&(a, b)| b.saturating_sub(a) < MAX_LANE_GAP_NS && !waits_on_client(a, b))
        .map(|(a, b)| b.saturating_sub(a))
        .collect();
    if gaps.is_empty() {
        return 0;
    }
    let mid = gaps.len() / 2;
    *gaps.select_nth_unstable(mid).1
}

/// A worker that starts work this soon after a gap is its replacement (ours: the first task
/// reaches a new worker within a heartbeat or two).
pub const REPLACEMENT_SLACK_NS: Nanos = 1_000_000_000;

/// A worker whose first task starts after this share of the run (1 / divisor) joined late,
/// and may be a replacement (ours: the nanny's restart takes a second or more, and the
/// corpus' runs take 1–10 s).
pub const REPLACEMENT_LATE_DIVISOR: u64 = 10;

/// A worker restarted by its nanny starts work at least this long after its predecessor's last
/// finished task: the death is noticed, a new Python process imports Dask and registers (ours,
/// half the fastest measured: on the corpus and its variants, 0.44–0.47 s for `memory-spill` on
/// 1×2 and 2×2, 2.0–2.9 s for `memory-killed-worker`, on 2 cores). A worker that starts
/// sooner after another's last task is a peer the scheduler had no work for until then
/// (`large-arg-delayed-4x1`: a client feeding four workers one task at a time, 25 ms apart).
pub const MIN_RESTART_NS: Nanos = 200_000_000;

/// What the cluster is known to have waited on, besides the client and the scheduler: failed
/// attempts (their stops), worker deaths, and workers that replaced a departed one (their
/// first task).
struct GapEvidence<'a> {
    submissions: &'a [Nanos],
    error_stops: &'a [Nanos],
    /// When a death or a late worker's start explains a gap: spans that gaps overlap.
    worker_changes: Vec<(Nanos, Nanos)>,
}

/// Gaps between merged `alive` intervals.
fn find_gaps(alive: &[(Nanos, Nanos)], evidence: &GapEvidence) -> Vec<Gap> {
    let (submissions, error_stops) = (evidence.submissions, evidence.error_stops);
    alive
        .windows(2)
        .map(|w| (w[0].1, w[1].0))
        .filter(|(a, b)| b - a >= MIN_GAP_NS)
        .map(|(start, stop)| {
            let after_error =
                error_stops.partition_point(|&e| e < start.saturating_sub(FAILURE_SLACK_NS));
            let failure = error_stops.get(after_error).is_some_and(|&e| e <= start);
            let client = if submissions.is_empty() {
                stop - start >= CLIENT_GAP_NS
            } else {
                let first = submissions.partition_point(|&s| s < start);
                submissions
                    .get(first)
                    .is_some_and(|&s| s <= stop.saturating_add(SUBMIT_SLACK_NS))
            };
            let worker_lost = evidence
                .worker_changes
                .iter()
                .any(|&(from, to)| from <= stop && to >= start);
            let cause = if failure {
                GapCause::Failure
            } else if worker_lost {
                GapCause::WorkerLost
            } else if client {
                GapCause::Client
            } else {
                GapCause::Scheduler
            };
            Gap { start, stop, cause }
        })
        .collect()
}

/// Keys of repeated runs kept as examples.
const EXAMPLE_KEYS: usize = 5;
/// Size of the seen-keys bitset: 8 MiB, about 1.5 % false candidates at a million keys.
const SEEN_BITS: usize = 1 << 26;
/// Candidate repeated keys kept with their text.
const MAX_CANDIDATES: usize = 5_000;

/// The line of an error text that names it: Python tracebacks end with the exception, Dask's
/// `exception_text` is its one-line repr. At most 200 characters.
pub fn first_error_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = if lines.first().is_some_and(|l| l.starts_with("Traceback")) {
        lines.last().copied().unwrap_or_default()
    } else {
        lines.first().copied().unwrap_or_default()
    };
    line.chars().take(200).collect()
}

/// An error line with its numbers blanked: `part 9` and `part 36` are one kind of failure.
pub fn error_kind(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn key_hash(key: &Key) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

impl TraceIndex {
    /// Reads `trace` to the end.
    pub fn build(trace: TraceReader) -> Result<TraceIndex, TraceError> {
        let header = trace.header().clone();
        let format = trace.format().describe().to_string();
        let (partials, warnings) = trace.par_fold(
            PARSE_THREADS,
            || TraceIndex::empty(header.clone(), format.clone()),
            |index, record| index.add(record),
        )?;
        let mut partials = partials.into_iter();
        let mut index = partials
            .next()
            .expect("par_fold returns one accumulator at least");
        for partial in partials {
            index.merge(partial);
        }
        index.warnings = warnings;
        index.finish();
        Ok(index)
    }

    /// An index with no records yet, to [`TraceIndex::add`] records to (a live run).
    pub fn empty(header: Header, format: String) -> TraceIndex {
        TraceIndex {
            workers: header
                .cluster
                .workers
                .iter()
                .map(|w| {
                    let stats = WorkerStats {
                        name: w.name.clone(),
                        threads: w.threads,
                        memory_limit: w.memory_limit,
                        ..WorkerStats::default()
                    };
                    (w.id, stats)
                })
                .collect(),
            header,
            format,
            first: Nanos::MAX,
            last: 0,
            groups: Vec::new(),
            group_ids: FxHashMap::default(),
            transfers: Vec::new(),
            lanes: FxHashMap::default(),
            alive: Vec::new(),
            gaps: Vec::new(),
            alive_ns: 0,
            lane_gap_ns: 0,
            submissions: Vec::new(),
            task_records: 0,
            failed: 0,
            cancelled: 0,
            lost: 0,
            lost_compute_ns: 0,
            retried: 0,
            failures: Vec::new(),
            failed_keys: Vec::new(),
            error_stops: Vec::new(),
            lost_tasks: Vec::new(),
            first_on_worker: FxHashMap::default(),
            group_metrics: BTreeMap::new(),
            dask_warnings: Vec::new(),
            pauses: Vec::new(),
            runs: Vec::new(),
            by_key: Vec::new(),
            repeats: Vec::new(),
            repeated_keys: Vec::new(),
            seen: vec![0; SEEN_BITS / 64],
            candidates: Vec::new(),
            dep_hashes: Vec::new(),
            has_dependencies: false,
            memory: Vec::new(),
            kills: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn add(&mut self, record: Record) {
        match record {
            Record::Task(task) => self.add_task(&task),
            Record::Memory(sample) => self.memory.push(sample),
            Record::GroupMetrics(metrics) => self.add_group_metrics(metrics),
            Record::Event(event) => match event.kind {
                EventKind::GraphSubmitted { .. } => self.submissions.push(event.time),
                EventKind::WorkerKilled { worker, reason } => {
                    self.kills.push((event.time, worker));
                    self.workers
                        .entry(worker)
                        .or_default()
                        .killed
                        .push((event.time, reason));
                }
                EventKind::WorkerPaused { worker } => {
                    self.workers.entry(worker).or_default().paused += 1;
                    self.pauses.push((event.time, worker, true));
                }
                EventKind::WorkerResumed { worker } => {
                    self.pauses.push((event.time, worker, false));
                }
                EventKind::Warning {
                    message, worker, ..
                } if self.dask_warnings.len() < WARNINGS_KEPT => {
                    self.dask_warnings.push((event.time, worker, message));
                }
                EventKind::WorkerAdded { worker } => {
                    let stats = self.workers.entry(worker.id).or_default();
                    stats.name = worker.name;
                    stats.threads = stats.threads.max(worker.threads);
                    stats.memory_limit = worker.memory_limit;
                }
                EventKind::TaskRetried { .. } => self.retried += 1,
                _ => {}
            },
        }
    }

    fn add_group_metrics(&mut self, metrics: GroupMetrics) {
        match self.group_metrics.get(&metrics.group) {
            Some(known) if known.time > metrics.time => {}
            _ => {
                self.group_metrics.insert(metrics.group.clone(), metrics);
            }
        }
    }

    /// Adds what was indexed from other lines of the same trace (another thread's batches).
    pub fn merge(&mut self, other: TraceIndex) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        let remap: Vec<u32> = other
            .groups
            .into_iter()
            .map(|group| match self.group_ids.get(group.name.as_str()) {
                Some(&id) => {
                    self.groups[id as usize].merge(group);
                    id
                }
                None => {
                    let id = self.groups.len() as u32;
                    self.group_ids.insert(group.name.clone(), id);
                    self.groups.push(group);
                    id
                }
            })
            .collect();
        for (id, w) in other.workers {
            let mine = self.workers.entry(id).or_default();
            if mine.name.is_empty() {
                mine.name = w.name;
            }
            mine.threads = mine.threads.max(w.threads);
            mine.memory_limit = mine.memory_limit.or(w.memory_limit);
            if w.tasks > 0 {
                mine.first_busy = if mine.tasks == 0 {
                    w.first_busy
                } else {
                    mine.first_busy.min(w.first_busy)
                };
                mine.last_busy = mine.last_busy.max(w.last_busy);
            }
            mine.tasks += w.tasks;
            mine.busy_ns = mine.busy_ns.saturating_add(w.busy_ns);
            mine.killed.extend(w.killed);
            mine.paused += w.paused;
        }
        for ((group, worker), first) in other.first_on_worker {
            let mine = self
                .first_on_worker
                .entry((remap[group as usize], worker))
                .or_insert(first);
            *mine = (*mine).min(first);
        }
        let failure_remap: Vec<u32> = other
            .failures
            .into_iter()
            .map(|f| self.failure_id(f))
            .collect();
        self.failed_keys.extend(
            other
                .failed_keys
                .into_iter()
                .map(|(hash, id)| (hash, failure_remap[id as usize])),
        );
        self.error_stops.extend(other.error_stops);
        let room = LOST_KEPT.saturating_sub(self.lost_tasks.len());
        self.lost_tasks
            .extend(other.lost_tasks.into_iter().take(room));
        for (_, metrics) in other.group_metrics {
            self.add_group_metrics(metrics);
        }
        let room = WARNINGS_KEPT.saturating_sub(self.dask_warnings.len());
        self.dask_warnings
            .extend(other.dask_warnings.into_iter().take(room));
        self.pauses.extend(other.pauses);
        self.cancelled += other.cancelled;
        self.transfers.extend(
            other
                .transfers
                .into_iter()
                .map(|(w, g, a, b)| (w, remap[g as usize], a, b)),
        );
        for (lane, intervals) in other.lanes {
            self.lanes.entry(lane).or_default().extend(intervals);
        }
        self.alive.extend(other.alive);
        self.submissions.extend(other.submissions);
        self.task_records += other.task_records;
        self.failed += other.failed;
        self.lost += other.lost;
        self.lost_compute_ns = self.lost_compute_ns.saturating_add(other.lost_compute_ns);
        self.retried += other.retried;
        let offset = self.dep_hashes.len() as u32;
        self.dep_hashes.extend(other.dep_hashes);
        self.runs.extend(other.runs.into_iter().map(|run| Run {
            deps_from: run.deps_from + offset,
            group: remap[run.group as usize],
            ..run
        }));
        for (mine, theirs) in self.seen.iter_mut().zip(&other.seen) {
            // A key seen by both threads is a candidate repeat; its text is on their side
            // only when they saw it twice themselves, so cross-thread repeats may go unnamed.
            *mine |= theirs;
        }
        let room = MAX_CANDIDATES.saturating_sub(self.candidates.len());
        self.candidates
            .extend(other.candidates.into_iter().take(room));
        self.has_dependencies |= other.has_dependencies;
        self.memory.extend(other.memory);
        self.kills.extend(other.kills);
    }

    /// The slot for failures of `f.group` with `f.error`, with `f`'s counts added.
    fn failure_id(&mut self, f: FailureStats) -> u32 {
        let found = self
            .failures
            .iter()
            .position(|known| known.group == f.group && known.kind == f.kind);
        let id = match found {
            Some(id) => id,
            None if self.failures.len() < FAILURE_KINDS => {
                self.failures.push(FailureStats {
                    group: f.group.clone(),
                    error: f.error.clone(),
                    kind: f.kind.clone(),
                    example_key: f.example_key.clone(),
                    first: f.first,
                    ..FailureStats::default()
                });
                self.failures.len() - 1
            }
            None => self.failures.len() - 1,
        };
        let known = &mut self.failures[id];
        known.attempts += f.attempts;
        known.compute_ns = known.compute_ns.saturating_add(f.compute_ns);
        known.first = known.first.min(f.first);
        known.last = known.last.max(f.last);
        id as u32
    }

    /// The index ready for rules, when no more records will come.
    pub fn into_finished(mut self) -> TraceIndex {
        self.finish();
        self
    }

    /// The index of what was added so far, ready for rules; `self` goes on accepting records.
    pub fn finished(&self) -> TraceIndex {
        let mut index = self.clone();
        index.finish();
        index
    }

    fn finish(&mut self) {
        // Samples arrive in time order per worker, but interleaved with task records in batches.
        let mut memory = std::mem::take(&mut self.memory);
        memory.sort_by_key(|m| (m.worker, m.time));
        let pause = self.header.cluster.memory.pause;
        let from_events = !self.pauses.is_empty();
        for sample in memory {
            let w = self.workers.entry(sample.worker).or_default();
            let process = sample.managed.saturating_add(sample.unmanaged);
            w.max_process = w.max_process.max(process);
            w.max_managed = w.max_managed.max(sample.managed);
            w.max_unmanaged = w.max_unmanaged.max(sample.unmanaged);
            w.max_spilled = w.max_spilled.max(sample.spilled);
            if let Some(last) = w.samples.last()
                && !from_events
                && w.memory_limit.is_some_and(|limit| {
                    last.managed.saturating_add(last.unmanaged) as f64 > limit as f64 * pause
                })
            {
                w.paused_ns = w
                    .paused_ns
                    .saturating_add(sample.time.saturating_sub(last.time));
            }
            w.samples.push(sample);
        }
        self.finish_pauses();
        let kills = std::mem::take(&mut self.kills);
        self.finish_runs(&kills);
        self.finish_failures();
        for lane in self.lanes.values_mut() {
            lane.sort_unstable();
        }
        self.alive.sort_unstable();
        self.submissions.sort_unstable();
        self.error_stops.sort_unstable();
        self.dask_warnings
            .sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
        self.lost_tasks
            .sort_by(|a, b| (a.time, a.worker, &a.key).cmp(&(b.time, b.worker, &b.key)));
        let alive = merged(&self.alive);
        self.alive_ns = alive.iter().map(|(a, b)| b - a).sum();
        // A death explains the gaps of the second after it; a replacement's first task, the
        // gap just before it.
        let late = self.first + self.wall_ns() / REPLACEMENT_LATE_DIVISOR;
        let mut worker_changes: Vec<(Nanos, Nanos)> = kills
            .iter()
            .map(|&(t, _)| (t, t.saturating_add(REPLACEMENT_SLACK_NS)))
            .chain(self.replacements(late).into_iter().map(|(_, new)| {
                let first = self.workers[&new].first_busy;
                (first.saturating_sub(REPLACEMENT_SLACK_NS), first)
            }))
            .collect();
        worker_changes.sort_unstable();
        let evidence = GapEvidence {
            submissions: &self.submissions,
            error_stops: &self.error_stops,
            worker_changes,
        };
        self.gaps = find_gaps(&alive, &evidence);
        // After the gaps: the client's are not per-task cost.
        self.lane_gap_ns = median_lane_gap(self.lanes.values(), &self.gaps);
    }

    /// Paused time from pause and resume events; a worker's death ends its pause, and one
    /// still paused at the end counts to the last task stop.
    fn finish_pauses(&mut self) {
        let mut pauses = std::mem::take(&mut self.pauses);
        if pauses.is_empty() {
            return;
        }
        pauses.extend(
            self.kills
                .iter()
                .map(|&(time, worker)| (time, worker, false)),
        );
        pauses.sort_unstable();
        let mut since: BTreeMap<WorkerId, Nanos> = BTreeMap::new();
        for (time, worker, paused) in pauses {
            if paused {
                since.entry(worker).or_insert(time);
            } else if let Some(start) = since.remove(&worker) {
                let w = self.workers.entry(worker).or_default();
                w.paused_ns = w.paused_ns.saturating_add(time.saturating_sub(start));
            }
        }
        for (worker, start) in since {
            let w = self.workers.entry(worker).or_default();
            w.paused_ns = w.paused_ns.saturating_add(self.last.saturating_sub(start));
        }
    }

    /// Counts the distinct keys of each failure, and those that never succeeded; orders
    /// failures by the time they took.
    fn finish_failures(&mut self) {
        let mut failed = std::mem::take(&mut self.failed_keys);
        failed.sort_unstable();
        failed.dedup();
        for &(hash, id) in &failed {
            let recovered = self.latest_run(hash).is_some();
            let f = &mut self.failures[id as usize];
            f.keys += 1;
            if !recovered {
                f.keys_never_succeeded += 1;
            }
        }
        self.failures.sort_by(|a, b| {
            (b.compute_ns, b.attempts, &a.group, &a.error).cmp(&(
                a.compute_ns,
                a.attempts,
                &b.group,
                &b.error,
            ))
        });
    }

    fn add_task(&mut self, task: &TaskRecord) {
        self.task_records += 1;
        let (Some(start), Some(stop)) = (task.start(), task.stop()) else {
            return;
        };
        self.first = self.first.min(start);
        self.last = self.last.max(stop);
        self.alive.push((start, stop));
        match task.status {
            TaskStatus::Ok => {}
            TaskStatus::Lost => {
                self.lost += 1;
                self.lost_compute_ns = self
                    .lost_compute_ns
                    .saturating_add(task.time_in(Action::Compute));
                if self.lost_tasks.len() < LOST_KEPT {
                    self.lost_tasks.push(LostTask {
                        time: stop,
                        worker: task.worker,
                        key: task.key.to_string(),
                        group: task.group.clone(),
                        inline_bytes: task.inline_bytes,
                        working_bytes: task.working_bytes,
                    });
                }
                return;
            }
            TaskStatus::Cancelled => {
                self.failed += 1;
                self.cancelled += 1;
                return;
            }
            TaskStatus::Error => {
                self.failed += 1;
                self.add_failure(task, start, stop);
                return;
            }
        }
        let group_id = match self.group_ids.get(task.group.as_str()) {
            Some(&id) => id,
            None => {
                let id = self.groups.len() as u32;
                self.groups.push(GroupStats::new(&task.group));
                self.group_ids.insert(task.group.clone(), id);
                id
            }
        };
        let group = &mut self.groups[group_id as usize];
        group.tasks += 1;
        group.first_start = group.first_start.min(start);
        group.last_stop = group.last_stop.max(stop);
        let (mut busy, mut busy_start, mut busy_stop) = (0, Nanos::MAX, 0);
        for phase in &task.phases {
            group.phases.add(phase);
            if phase.action == Action::Transfer {
                self.transfers
                    .push((task.worker, group_id, phase.start, phase.stop));
            }
            if phase.action.occupies_thread() {
                busy = Nanos::saturating_add(busy, phase.duration());
                busy_start = busy_start.min(phase.start);
                busy_stop = busy_stop.max(phase.stop);
            }
        }
        let compute = task.time_in(Action::Compute);
        let transfer = task.time_in(Action::Transfer);
        group.compute.record(compute.max(1));
        if busy_stop == 0 {
            busy_start = start;
        }
        // The key's text only for tasks that make the list (most never do).
        if group.slowest.len() < SLOWEST_KEPT
            || group
                .slowest
                .last()
                .is_some_and(|last| compute > last.compute)
        {
            keep_slowest(
                &mut group.slowest,
                TaskBrief {
                    key: task.key.to_string(),
                    compute,
                    start: busy_start,
                    worker: task.worker,
                    nbytes: task.nbytes,
                },
            );
        }
        group.output.record(task.nbytes.max(1));
        group.output_total = group.output_total.saturating_add(task.nbytes);
        // The first of equals wins, as in `merge` (whose other half comes later).
        if task.nbytes > group.output_max || group.largest_key.is_empty() {
            group.output_max = task.nbytes;
            group.largest_key = task.key.to_string();
        }
        if task.inline_bytes > 0 {
            group.inline_tasks += 1;
            group.inline_total = group.inline_total.saturating_add(task.inline_bytes);
            group.inline_max = group.inline_max.max(task.inline_bytes);
            if group.inline_sizes.len() < INLINE_SIZES
                || group.inline_sizes.contains_key(&task.inline_bytes)
            {
                *group.inline_sizes.entry(task.inline_bytes).or_default() += 1;
            }
        }
        let first = self
            .first_on_worker
            .entry((group_id, task.worker))
            .or_insert((busy_start, compute));
        *first = (*first).min((busy_start, compute));

        let worker = self.workers.entry(task.worker).or_default();
        worker.first_busy = if worker.tasks == 0 {
            busy_start
        } else {
            worker.first_busy.min(busy_start)
        };
        worker.last_busy = worker.last_busy.max(busy_stop);
        worker.tasks += 1;
        worker.busy_ns = worker.busy_ns.saturating_add(busy);
        worker.threads = worker.threads.max(task.thread.saturating_add(1));
        if busy_stop > 0 {
            self.lanes
                .entry((task.worker, task.thread))
                .or_default()
                .push((busy_start, busy_stop));
        }

        if !task.deps.is_empty() {
            self.has_dependencies = true;
        }
        let deps_from = self.dep_hashes.len() as u32;
        self.dep_hashes.extend(task.deps.iter().map(key_hash));
        let hash = key_hash(&task.key);
        let bit = (hash as usize) % SEEN_BITS;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.seen[word] & mask != 0 && self.candidates.len() < MAX_CANDIDATES {
            self.candidates.push((hash, task.key.to_string()));
        }
        self.seen[word] |= mask;
        self.runs.push(Run {
            hash,
            start,
            stop,
            busy_start,
            busy_stop: busy_stop.max(busy_start),
            thread: task.thread,
            nbytes: task.nbytes,
            compute,
            transfer,
            deps_from,
            deps_len: task.deps.len() as u32,
            group: group_id,
            worker: task.worker,
        });
    }

    fn add_failure(&mut self, task: &TaskRecord, start: Nanos, stop: Nanos) {
        self.error_stops.push(stop);
        let error = task
            .error
            .as_deref()
            .map(first_error_line)
            .unwrap_or_default();
        let id = self.failure_id(FailureStats {
            group: task.group.clone(),
            kind: error_kind(&error),
            error,
            attempts: 1,
            compute_ns: task.time_in(Action::Compute),
            example_key: task.key.to_string(),
            first: start,
            last: stop,
            ..FailureStats::default()
        });
        self.failed_keys.push((key_hash(&task.key), id));
    }

    /// Sorts runs by key and finds the keys computed more than once. A key run again after a
    /// worker died is recovery, not recomputation: the death lost either its result or a
    /// result downstream that needs it again.
    fn finish_runs(&mut self, kills: &[(Nanos, WorkerId)]) {
        let mut by_key: Vec<(u64, u32)> = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.hash, i as u32))
            .collect();
        // Sorting plain pairs keeps the sort in cache; the rare keys with several runs are
        // ordered by their runs' times below.
        by_key.sort_unstable();
        let mut i = 0;
        while i < by_key.len() {
            let hash = by_key[i].0;
            let mut j = i + 1;
            while j < by_key.len() && by_key[j].0 == hash {
                j += 1;
            }
            if j - i > 1 {
                if self.repeated_keys.len() < EXAMPLE_KEYS
                    && let Some((_, text)) = self.candidates.iter().find(|(h, _)| *h == hash)
                {
                    self.repeated_keys.push(text.clone());
                }
                let runs: Vec<&Run> = by_key[i..j]
                    .iter()
                    .map(|&(_, r)| &self.runs[r as usize])
                    .collect();
                let first = runs
                    .iter()
                    .min_by_key(|r| r.stop)
                    .expect("at least two runs");
                let last_start = runs.iter().map(|r| r.start).max().unwrap_or(0);
                let total = runs
                    .iter()
                    .map(|r| r.compute)
                    .fold(0, Nanos::saturating_add);
                let after_death = kills
                    .iter()
                    .any(|&(time, _)| time >= first.stop && time <= last_start);
                self.repeats.push(Repeat {
                    runs: runs.len() as u32,
                    repeated_ns: total.saturating_sub(first.compute),
                    after_death,
                });
            }
            i = j;
        }
        self.by_key = by_key;
        self.candidates = Vec::new();
        self.seen = Vec::new();
    }

    /// The latest successful run of the key with this hash.
    pub fn latest_run(&self, hash: u64) -> Option<&Run> {
        self.latest_run_index(hash).map(|i| &self.runs[i as usize])
    }

    /// [`TraceIndex::latest_run`]'s index in [`TraceIndex::runs`].
    pub fn latest_run_index(&self, hash: u64) -> Option<u32> {
        let from = self.by_key.partition_point(|&(h, _)| h < hash);
        self.by_key[from..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, run)| run)
            .max_by_key(|&run| self.runs[run as usize].start)
    }

    /// From the first task start to the last task stop.
    pub fn wall_ns(&self) -> Nanos {
        self.last.saturating_sub(self.first.min(self.last))
    }

    pub fn threads(&self) -> u32 {
        // Killed workers are replaced: count the threads of the workers alive at the start.
        let initial = self
            .header
            .cluster
            .workers
            .iter()
            .map(|w| w.threads)
            .fold(0, u32::saturating_add);
        if initial > 0 {
            initial
        } else {
            self.workers
                .values()
                .map(|w| w.threads.max(1))
                .fold(0, u32::saturating_add)
                .max(1)
        }
    }

    /// Workers that left and the workers that replaced them: `(left, replacement)`. A worker
    /// whose first task starts after `late` replaces one that had stopped working for good
    /// before it started (the nanny restarting a dead worker, in any format: task streams
    /// record no deaths) at least [`MIN_RESTART_NS`] earlier. A late worker with no such
    /// predecessor is one the scheduler had no work for until then (a small first stage on a
    /// larger cluster, a client submitting tasks one by one), not a replacement. Each departed
    /// worker is paired once, the latest to stop first.
    pub fn replacements(&self, late: Nanos) -> Vec<(WorkerId, WorkerId)> {
        let mut newcomers: Vec<(Nanos, WorkerId)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.tasks > 0 && w.first_busy > late)
            .map(|(id, w)| (w.first_busy, *id))
            .collect();
        newcomers.sort_unstable();
        let mut taken: Vec<WorkerId> = Vec::new();
        let mut out = Vec::new();
        for (first, new) in newcomers {
            let left = self
                .workers
                .iter()
                .filter(|(id, w)| {
                    **id != new
                        && w.tasks > 0
                        && w.last_busy.saturating_add(MIN_RESTART_NS) <= first
                        && !taken.contains(id)
                })
                .max_by_key(|(id, w)| (w.last_busy, **id))
                .map(|(id, _)| *id);
            if let Some(left) = left {
                taken.push(left);
                taken.push(new);
                out.push((left, new));
            }
        }
        out
    }

    /// Thread-occupying time of every successful task.
    pub fn busy_ns(&self) -> Nanos {
        self.workers
            .values()
            .map(|w| w.busy_ns)
            .fold(0, Nanos::saturating_add)
    }

    pub fn seconds(&self, t: Nanos) -> f64 {
        t.saturating_sub(self.first.min(t)) as f64 / 1e9
    }

    /// Worker names by id, for scopes.
    pub fn worker_name(&self, id: WorkerId) -> String {
        self.workers
            .get(&id)
            .map(|w| w.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("worker-{id}"))
    }

    /// Whole-cluster idle time waiting on `cause`.
    pub fn gap_ns(&self, cause: GapCause) -> Nanos {
        self.gaps
            .iter()
            .filter(|g| g.cause == cause)
            .map(Gap::len)
            .sum()
    }

    /// Whole-cluster idle time waiting on the scheduler (not on the client or a retry).
    pub fn scheduler_gap_ns(&self) -> Nanos {
        self.gap_ns(GapCause::Scheduler)
    }

    /// Some keys computed more than once, to name in a finding.
    pub fn repeated(&self) -> impl Iterator<Item = &str> {
        self.repeated_keys.iter().map(String::as_str)
    }
}
