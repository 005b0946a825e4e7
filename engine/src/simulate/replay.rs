//! What a replay replays: the recorded tasks as engine graphs, one per submission, with their
//! recorded compute and deserialize times and result sizes, and the recorded run's shape, wall
//! time and network and disk speeds.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use traces::{Action, EventKind, Header, Key, Record, TaskRecord, TaskStatus, WorkerId};

use super::{Model, Shape};
use crate::config::{CONCURRENT_GATHERS, Network};
use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};

/// Tasks without dependencies whose recorded start is this close after a submission's event
/// belong to it: the engine and Dask stamp the event a little after queueing the graph's roots.
const SUBMISSION_SLACK_NS: u64 = 500_000;

/// Spill speeds when the recorded run wrote or read nothing (a laptop SSD's order of magnitude;
/// they only matter when the replay spills and the recording did not).
pub const DEFAULT_DISK_WRITE_BPS: u64 = 500_000_000;
pub const DEFAULT_DISK_READ_BPS: u64 = 1_000_000_000;

/// The wait of a round of peers a task gathers from at once; index k−1: k peers.
pub type RoundLatency = [u64; CONCURRENT_GATHERS as usize];

/// Fewer small transfers than this say little of their spread (ours: the 10/11 quantile of 8 is
/// their slowest): every round then waits the median.
const MIN_ROUND_SAMPLES: usize = 8;

/// Transfers at most this big estimate the per-transfer latency; bigger ones the bandwidth.
/// Tasks with inline arguments at most this big estimate the per-task dispatch overhead.
pub(crate) const SMALL_BYTES: u64 = 64 * 1024;

/// The bandwidth assumed when no transfer big enough to measure one was recorded: Dask's own
/// estimate before it measures (`distributed.scheduler.bandwidth` in
/// `distributed/distributed.yaml`, 100 MB/s).
pub const DEFAULT_BANDWIDTH_BPS: u64 = 100_000_000;

/// One graph the client submitted.
#[derive(Clone, Debug)]
pub struct Submission {
    /// Recorded submission time, from the first submission.
    pub offset_ns: u64,
    /// `Some(gap)`: the client waited for every earlier submission to finish, then thought for
    /// `gap` (kept in the replay: the next graph follows the simulated finish). `None`: it was
    /// submitted while earlier ones ran (kept at its recorded offset from the previous one).
    pub client_gap_ns: Option<u64>,
    pub graph: Graph,
    /// Kept after it finishes: a later submission reads its results.
    pub persist: bool,
    /// Per task index, recorded deserialize time (empty: none).
    pub deserialize: Vec<u64>,
    /// Per task index, bytes of inline arguments (empty: none).
    pub inline: Vec<u64>,
    /// Per task index, into how many pieces its task was split (`--fix skew`): a piece reads
    /// that share of each input (empty: whole inputs).
    pub pieces: Vec<u32>,
    /// Per task index, the recorded workers (slots) that held it: this submission is data put
    /// on workers (scattered), not tasks to run. Empty: a graph to compute.
    pub held: Vec<Vec<usize>>,
    /// Per task index, the share of a core its compute wants (its group's recorded CPU time
    /// over compute time; empty: not recorded, the task does not crowd its host).
    pub cpu: Vec<f32>,
}

impl Submission {
    pub fn deserialize_ns(&self, index: u32) -> u64 {
        self.deserialize.get(index as usize).copied().unwrap_or(0)
    }

    pub fn inline_bytes(&self, index: u32) -> u64 {
        self.inline.get(index as usize).copied().unwrap_or(0)
    }

    pub fn cpu_share(&self, index: u32) -> f64 {
        self.cpu.get(index as usize).map_or(0.0, |&f| f64::from(f))
    }

    /// The bytes of an input of `bytes` that task `index` reads.
    pub fn input_bytes(&self, index: u32, bytes: u64) -> u64 {
        bytes / u64::from(self.pieces.get(index as usize).copied().unwrap_or(1).max(1))
    }
}

/// The recorded run, as the replay's calibration and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub shape: Shape,
    /// From the first submission (or task) to the last task's end.
    pub wall_ns: u64,
    pub busy_ns: u64,
    pub utilisation: f64,
    pub memory_limit: Option<u64>,
    /// Latency and bandwidth fitted to the recorded transfers.
    pub network: Network,
    /// The wait of a round of peers gathered at once, by how many; `None`: too few transfers
    /// recorded to tell, `network.latency_ns` for any.
    pub round_latency_ns: Option<RoundLatency>,
    /// What a thread spends between tasks although one is ready: the scheduler's and the
    /// worker's overhead per task (median over the recorded attempts that waited for it).
    pub dispatch_ns: u64,
    /// From a task's last input ending to the task reaching its worker: the round trip through
    /// the scheduler (the worker reports the result, the scheduler sends the dependent), median
    /// over the recorded tasks whose inputs were made on their own worker; 0 without queued
    /// phases (a task stream).
    pub ready_latency_ns: u64,
    /// How fast a task's inline arguments reach its worker (shipped with the task and
    /// unpickled before it runs), fitted to the wait of tasks that carried big ones; `None`
    /// when none did or they cost nothing measurable.
    pub inline_bps: Option<u64>,
    /// Per recorded worker, the abstract resources it declared (`{"GPU": 1}`), and one for
    /// each worker restriction it is part of (see `restriction`).
    pub worker_resources: Vec<BTreeMap<String, f64>>,
    pub disk_write_bps: u64,
    pub disk_read_bps: u64,
    /// Per recorded worker, its host (an index into `host_cores`); empty: none recorded.
    pub worker_host: Vec<usize>,
    /// Per host, its cores (0: unknown, its tasks do not crowd it).
    pub host_cores: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Replay {
    pub submissions: Vec<Submission>,
    pub recorded: Recorded,
    /// Whether the trace recorded dependencies (task streams do not: tasks replay independent).
    pub has_dependencies: bool,
    /// Whether the trace recorded its graph submissions (task streams do not: one is assumed).
    pub has_submissions: bool,
    /// Dependencies on results the trace has no task for (scattered data, results computed
    /// before recording started), left out of the replay.
    pub unknown_dependencies: u64,
    /// Big inline arguments reach each worker once (scattered), not with every task.
    pub inline_once_per_worker: bool,
}

/// A trace file read for a replay.
pub struct ReplayFile {
    pub header: Header,
    /// The replay, or why the trace has none.
    pub replay: Result<Replay, ReplayError>,
    /// The reader's warnings (a truncated last line…).
    pub warnings: Vec<String>,
}

/// The most threads per worker a replay models (as `taskscope run --threads`).
pub const MAX_THREADS: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the trace has no finished task to replay")]
    Empty,
    #[error(
        "the recorded cluster has {workers} workers of up to {threads} threads; the simulator \
         models at most {max_workers} workers of {MAX_THREADS} threads",
        max_workers = crate::MAX_SIMULATED_WORKERS
    )]
    Shape { workers: u32, threads: u32 },
    #[error("cannot rebuild the recorded graph: {0}")]
    Graph(#[from] EngineError),
}

/// One recorded attempt, reduced to what a replay needs.
struct Attempt {
    key: Key,
    /// Its group, as numbered by [`GroupShares`].
    group: u32,
    worker: WorkerId,
    deps: Vec<Key>,
    status: TaskStatus,
    error: Option<String>,
    /// When it reached its worker (its queued phase), if recorded.
    ready: Option<u64>,
    start: u64,
    stop: u64,
    compute: u64,
    deserialize: u64,
    nbytes: u64,
    inline: u64,
    /// Memory it allocated while it ran (0: not recorded).
    working: u64,
    /// Resources it required of its worker.
    resources: BTreeMap<String, f64>,
}

impl Replay {
    /// Graphs run one after the other with no client time between them (for tests and for
    /// comparing the simulator with the engine on the same graphs).
    pub fn from_graphs(graphs: Vec<Graph>, recorded: Recorded) -> Replay {
        Replay {
            submissions: graphs
                .into_iter()
                .map(|graph| Submission {
                    offset_ns: 0,
                    client_gap_ns: Some(0),
                    graph,
                    persist: false,
                    deserialize: Vec::new(),
                    inline: Vec::new(),
                    pieces: Vec::new(),
                    held: Vec::new(),
                    cpu: Vec::new(),
                })
                .collect(),
            recorded,
            has_dependencies: true,
            has_submissions: true,
            unknown_dependencies: 0,
            inline_once_per_worker: false,
        }
    }

    /// Reads the trace at `path` (any format) and rebuilds its run; the error is the reader's.
    pub fn open(path: &std::path::Path) -> Result<ReplayFile, traces::TraceError> {
        let mut reader = traces::TraceReader::open(path)?;
        let header = reader.header().clone();
        let mut failed = None;
        let records = reader
            .by_ref()
            .map_while(|record| record.map_err(|e| failed = Some(e)).ok());
        let replay = Replay::from_trace(&header, records);
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(ReplayFile {
            header,
            replay,
            warnings: reader.warnings().to_vec(),
        })
    }

    /// Rebuilds a recorded run's graphs from its trace.
    pub fn from_trace(
        header: &Header,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Replay, ReplayError> {
        let mut submitted: Vec<u64> = Vec::new();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut fit = Fit::default();
        let mut threads_seen = 0u32;
        let mut workers_seen = std::collections::BTreeSet::new();
        let mut has_dependencies = false;
        let mut lanes = Lanes::default();
        // Results the trace has no task for (scattered data): key, holders, size.
        let mut data: Vec<(Key, Vec<WorkerId>, u64)> = Vec::new();
        let mut shares = GroupShares::default();
        let mut worker_resources: Vec<BTreeMap<String, f64>> = header
            .cluster
            .workers
            .iter()
            .map(|w| usable(&w.resources))
            .collect();
        for record in records {
            match record {
                Record::Event(event) => match event.kind {
                    EventKind::GraphSubmitted { .. } => submitted.push(event.time),
                    EventKind::DataAdded {
                        key,
                        workers,
                        nbytes,
                    } => data.push((key, workers, nbytes)),
                    _ => {}
                },
                Record::Task(task) => {
                    let Some(start) = task.start() else { continue };
                    fit.add(&task);
                    threads_seen = threads_seen.max(task.thread.saturating_add(1));
                    workers_seen.insert(task.worker);
                    has_dependencies |= !task.deps.is_empty();
                    lanes.add(&task);
                    let mut resources = usable(&task.resources);
                    if let Some(name) = restriction(
                        &header.cluster.workers,
                        &task.restricted_to,
                        &mut worker_resources,
                    ) {
                        resources.insert(name, 1.0);
                    }
                    attempts.push(Attempt {
                        ready: task
                            .phases
                            .iter()
                            .find(|p| p.action == Action::Queued)
                            .map(|p| p.start),
                        start,
                        stop: task.stop().unwrap_or(start),
                        compute: task.time_in(Action::Compute),
                        deserialize: task.time_in(Action::Deserialize),
                        nbytes: task.nbytes,
                        inline: task.inline_bytes,
                        working: task.working_bytes,
                        resources,
                        group: shares.number(&task.group),
                        status: task.status,
                        error: task.error,
                        deps: task.deps,
                        key: task.key,
                        worker: task.worker,
                    });
                }
                Record::GroupMetrics(metrics) => shares.measured(&metrics),
                Record::Memory(_) => {}
            }
        }
        if !attempts
            .iter()
            .any(|a| matches!(a.status, TaskStatus::Ok | TaskStatus::Error))
        {
            return Err(ReplayError::Empty);
        }
        // In start order (a task's first phase: queued, when recorded), so a dependency comes
        // before its dependent; the replay's graphs list tasks in this order and its
        // scheduler places ready roots in it. Tasks queued at the same instant go in key
        // order, the graph's own: by their ends, neighbours swap, and round-robin placement
        // then pairs different partitions than the recorded run did.
        attempts.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.stop.cmp(&b.stop))
        });
        submitted.sort_unstable();
        let has_submissions = !submitted.is_empty();
        let first_task = attempts.iter().map(|a| a.start).min().unwrap_or(0);
        let run_start = submitted.first().map_or(first_task, |&s| s.min(first_task));
        let run_stop = attempts.iter().map(|a| a.stop).max().unwrap_or(run_start);

        let spec = &header.cluster.workers;
        let shape = if spec.is_empty() {
            Shape {
                workers: workers_seen.len().max(1) as u32,
                threads: threads_seen.max(1),
            }
        } else {
            Shape {
                workers: spec.len() as u32,
                threads: spec.iter().map(|w| w.threads).max().unwrap_or(1).max(1),
            }
        };
        if shape.workers > crate::MAX_SIMULATED_WORKERS || shape.threads > MAX_THREADS {
            return Err(ReplayError::Shape {
                workers: shape.workers,
                threads: shape.threads,
            });
        }
        let data = held_data(data, &attempts, &header.cluster.workers)?;
        let (worker_host, host_cores) = hosts(spec);
        let made = made(&attempts);
        let measures_working = attempts.iter().any(|a| a.working > 0);
        let wall_ns = run_stop - run_start;
        let busy_ns = lanes.fit();
        let slot_time = wall_ns as f64 * shape.slots() as f64;
        let recorded = Recorded {
            shape,
            wall_ns,
            busy_ns,
            utilisation: if slot_time > 0.0 {
                busy_ns as f64 / slot_time
            } else {
                0.0
            },
            memory_limit: spec.iter().filter_map(|w| w.memory_limit).max(),
            network: fit.network(moved_bytes(&attempts, &made)),
            round_latency_ns: fit.round_latency(),
            dispatch_ns: lanes.dispatch.0,
            ready_latency_ns: ready_latency(&attempts, &made, &submitted),
            inline_bps: lanes.dispatch.1,
            worker_resources,
            disk_write_bps: fit.disk_write.rate().unwrap_or(DEFAULT_DISK_WRITE_BPS),
            disk_read_bps: fit.disk_read.rate().unwrap_or(DEFAULT_DISK_READ_BPS),
            worker_host,
            host_cores,
        };
        // Before the graphs are built: a million tasks' map is a peak of its own.
        drop(made);

        // Each attempt goes to the last submission made before it started.
        let mut per_submission: Vec<Vec<Attempt>> =
            (0..submitted.len().max(1)).map(|_| Vec::new()).collect();
        for attempt in attempts {
            let slack = if attempt.deps.is_empty() {
                SUBMISSION_SLACK_NS
            } else {
                0
            };
            let made = submitted.partition_point(|&s| s <= attempt.start.saturating_add(slack));
            per_submission[made.saturating_sub(1)].push(attempt);
        }
        let times: Vec<u64> = if submitted.is_empty() {
            vec![run_start]
        } else {
            submitted
        };
        let mut built = Builder {
            measures_working,
            shares: shares.by_number(),
            ..Builder::default()
        };
        let holds_data = data.is_some();
        if let Some(data) = data {
            // Made first: the recorded graphs read it as an earlier graph's results.
            for key in data.graph.tasks().map(|t| &t.key) {
                built.outputs.insert(key.clone(), 0);
            }
            built.submissions.push(data);
        }
        let mut earlier_stop = run_start;
        let mut previous_offset = 0;
        for (time, attempts) in times.into_iter().zip(per_submission) {
            if attempts.is_empty() {
                continue;
            }
            let stop = attempts.iter().map(|a| a.stop).max().unwrap_or(time);
            let offset = time.saturating_sub(run_start);
            let client_gap = if built.submissions.is_empty() {
                Some(0)
            } else if holds_data && built.submissions.len() == 1 {
                // The first graph after the held data: at its recorded time, not after the
                // data's placement.
                None
            } else if time >= earlier_stop {
                Some(time - earlier_stop)
            } else {
                None
            };
            built.add(offset.max(previous_offset), client_gap, attempts)?;
            previous_offset = offset.max(previous_offset);
            earlier_stop = earlier_stop.max(stop);
        }
        Ok(Replay {
            submissions: built.submissions,
            recorded,
            has_dependencies,
            has_submissions,
            unknown_dependencies: built.unknown_dependencies,
            inline_once_per_worker: false,
        })
    }

    /// The wall time with unlimited workers and free transfers: every task starts as soon as
    /// its submission is made and its inputs exist (and the scheduler's round trip has brought
    /// a task with inputs to a worker). No shape can beat it.
    pub fn critical_path_ns(&self, model: &Model) -> u64 {
        let mut by_key: HashMap<&Key, u64> = HashMap::new();
        let (mut made, mut end) = (0u64, 0u64);
        let mut previous_offset = 0;
        for (i, s) in self.submissions.iter().enumerate() {
            made = match s.client_gap_ns {
                Some(gap) if i > 0 => end.saturating_add(gap),
                Some(_) => 0,
                None => made.saturating_add(s.offset_ns.saturating_sub(previous_offset)),
            };
            previous_offset = s.offset_ns;
            let mut done = vec![0u64; s.graph.len()];
            // Task indices are in recorded start order, so dependencies come first.
            for index in 0..s.graph.len() as u32 {
                let spec = s.graph.task(index);
                let mut ready = made;
                let mut inputs = false;
                for dep in s.graph.dependencies(index) {
                    ready = ready.max(done[dep as usize]);
                    inputs = true;
                }
                if let Some(extra) = spec.work.extra() {
                    for key in &extra.external_deps {
                        ready = ready.max(by_key.get(key).copied().unwrap_or(0));
                        inputs = true;
                    }
                }
                let round_trip = if inputs { model.ready_latency_ns } else { 0 };
                done[index as usize] = ready
                    .saturating_add(round_trip)
                    .saturating_add(model.dispatch_cost(s.inline_bytes(index)))
                    .saturating_add(s.deserialize_ns(index))
                    .saturating_add(spec.work.compute_ns);
            }
            end = end.max(done.iter().copied().max().unwrap_or(made));
            if s.persist {
                for (index, &t) in done.iter().enumerate() {
                    by_key.insert(&s.graph.task(index as u32).key, t);
                }
            }
        }
        end
    }
}

#[derive(Default)]
struct Rate {
    bytes: u64,
    ns: u64,
}

impl Rate {
    fn add(&mut self, bytes: u64, ns: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.ns = self.ns.saturating_add(ns);
    }

    /// Bytes per second, when enough was measured to say.
    fn rate(&self) -> Option<u64> {
        (self.ns > 0 && self.bytes > 0)
            .then(|| (u128::from(self.bytes) * 1_000_000_000 / u128::from(self.ns)) as u64)
            .filter(|&r| r > 0)
    }
}

/// The recorded network and disk speeds.
#[derive(Default)]
struct Fit {
    /// Durations of small transfers (their latency).
    small: Vec<u64>,
    big: Rate,
    /// Every transfer, latency included: a floor for the bandwidth.
    all: Rate,
    disk_write: Rate,
    disk_read: Rate,
}

impl Fit {
    fn add(&mut self, task: &TaskRecord) {
        for phase in &task.phases {
            let Some(bytes) = phase.bytes else { continue };
            let ns = phase.duration();
            match phase.action {
                Action::Transfer => {
                    self.all.add(bytes, ns);
                    if bytes <= SMALL_BYTES {
                        self.small.push(ns);
                    } else {
                        self.big.add(bytes, ns);
                    }
                }
                Action::DiskWrite => self.disk_write.add(bytes, ns),
                Action::DiskRead => self.disk_read.add(bytes, ns),
                _ => {}
            }
        }
    }

    /// A round of k peers gathered at once (Dask fetches from up to
    /// [`CONCURRENT_GATHERS`] at once) waits for the slowest of their k transfers, whose expected
    /// value is the k/(k+1) quantile of the small ones (k = 1: the median, the latency). On a
    /// loaded cluster they spread widely: `memory-spill-4x1`'s small transfers took 0.7–184 ms
    /// around a median of 20, and its tasks that fetched from three peers at once waited
    /// 20–184 ms for the slowest.
    fn round_latency(&mut self) -> Option<RoundLatency> {
        if self.small.len() < MIN_ROUND_SAMPLES {
            return None;
        }
        self.small.sort_unstable();
        let n = self.small.len();
        Some(std::array::from_fn(|i| {
            let k = i + 1;
            self.small[(n * k / (k + 1)).min(n - 1)]
        }))
    }

    /// Latency: the median small transfer. Bandwidth: big transfers' bytes over their time;
    /// without big ones, Dask's default estimate, or what the small ones moved if faster
    /// (their time includes latency, so that rate is a floor). When the run's dependencies
    /// moved more bytes between workers than its transfers say (`moved`), the big transfers
    /// carried the rest: Dask fetches a worker's inputs from one peer in one batch and records
    /// the batch's time on one of the tasks that wait for it, with that task's own bytes only
    /// (the plugin sees no more): a shuffle's recorded transfers hold 42 of the 99 MB its
    /// workers served each other.
    fn network(&mut self, moved: u64) -> Network {
        let latency_ns = if self.small.is_empty() {
            0
        } else {
            let mid = self.small.len() / 2;
            *self.small.select_nth_unstable(mid).1
        };
        let floor = self.all.rate().unwrap_or(0).max(DEFAULT_BANDWIDTH_BPS);
        let unrecorded = moved.saturating_sub(self.all.bytes);
        if unrecorded > 0 && self.big.ns > 0 {
            self.big.bytes = self.big.bytes.saturating_add(unrecorded);
        }
        Network {
            bandwidth: Some(self.big.rate().unwrap_or(floor)),
            latency_ns,
        }
    }
}

/// Where and when each key's last successful attempt made its result, and its size.
type Made<'a> = FxHashMap<&'a Key, (WorkerId, u64, u64)>;

fn made(attempts: &[Attempt]) -> Made<'_> {
    let mut made = Made::default();
    for a in attempts.iter().filter(|a| a.status == TaskStatus::Ok) {
        made.insert(&a.key, (a.worker, a.nbytes, a.stop));
    }
    made
}

/// Bytes the recorded dependencies moved between workers: each dependency's result (where its
/// last successful attempt ran) counted once per other worker that ran a task needing it, as a
/// worker fetches an input once for all its tasks.
fn moved_bytes<'a>(attempts: &'a [Attempt], made: &Made<'a>) -> u64 {
    let mut fetched: rustc_hash::FxHashSet<(&Key, WorkerId)> = Default::default();
    let mut bytes = 0u64;
    for a in attempts {
        for dep in &a.deps {
            if let Some(&(at, nbytes, _)) = made.get(dep)
                && at != a.worker
                && fetched.insert((dep, a.worker))
            {
                bytes = bytes.saturating_add(nbytes);
            }
        }
    }
    bytes
}

/// The median time from a task's last input ending, or from its graph's submission when that
/// came later (an input persisted by an earlier graph), to the task reaching its worker, over
/// successful attempts with a queued phase whose inputs were all made on their own worker (one
/// clock, no fetch in the span).
fn ready_latency(attempts: &[Attempt], made: &Made<'_>, submitted: &[u64]) -> u64 {
    let mut spans: Vec<u64> = attempts
        .iter()
        .filter(|a| a.status == TaskStatus::Ok && !a.deps.is_empty())
        .filter_map(|a| {
            let ready = a.ready?;
            // Inputs made on the task's own worker: one clock, and no fetch in the span.
            let mut last = 0;
            for dep in &a.deps {
                let &(worker, _, stop) = made.get(dep)?;
                if worker != a.worker {
                    return None;
                }
                last = last.max(stop);
            }
            let made_at = submitted.partition_point(|&s| s <= ready);
            let submission = made_at.checked_sub(1).map_or(0, |i| submitted[i]);
            ready.checked_sub(last.max(submission))
        })
        .collect();
    if spans.is_empty() {
        return 0;
    }
    let mid = spans.len() / 2;
    *spans.select_nth_unstable(mid).1
}

/// The data workers held without a task in the trace, as a first submission the replay
/// scatters to the workers that held it: tasks that read it are placed by it and fetch it as
/// the recorded ones did. `None` when there is none, or every such key also has a recorded
/// task.
fn held_data(
    mut data: Vec<(Key, Vec<WorkerId>, u64)>,
    attempts: &[Attempt],
    spec: &[traces::WorkerSpec],
) -> Result<Option<Submission>, ReplayError> {
    if data.is_empty() || spec.is_empty() {
        return Ok(None);
    }
    let mut seen: rustc_hash::FxHashSet<Key> = Default::default();
    data.retain(|(key, _, _)| seen.insert(key.clone()));
    let computed: rustc_hash::FxHashSet<&Key> = attempts
        .iter()
        .filter(|a| seen.contains(&a.key))
        .map(|a| &a.key)
        .collect();
    data.retain(|(key, _, _)| !computed.contains(key));
    if data.is_empty() {
        return Ok(None);
    }
    let mut builder = GraphBuilder::with_capacity(data.len(), 0);
    let mut held = Vec::with_capacity(data.len());
    for (key, workers, nbytes) in data {
        builder.add(key, Work::new(0, nbytes));
        let mut slots = slots_of(spec, &workers);
        if slots.is_empty() {
            // Held nowhere the trace names: by the first worker.
            slots.push(0);
        }
        held.push(slots);
    }
    Ok(Some(Submission {
        offset_ns: 0,
        client_gap_ns: Some(0),
        graph: builder.build()?,
        persist: true,
        deserialize: Vec::new(),
        inline: Vec::new(),
        pieces: Vec::new(),
        held,
        cpu: Vec::new(),
    }))
}

/// Groups by number, and the share of a core each one's tasks used while computing, from the
/// `thread-cpu` and `thread-noncpu` metrics (the latest record of a group supersedes).
#[derive(Default)]
struct GroupShares {
    numbers: FxHashMap<String, u32>,
    measured: FxHashMap<String, f64>,
}

impl GroupShares {
    fn number(&mut self, group: &str) -> u32 {
        if let Some(&n) = self.numbers.get(group) {
            return n;
        }
        let n = self.numbers.len() as u32;
        self.numbers.insert(group.to_string(), n);
        n
    }

    fn measured(&mut self, metrics: &traces::GroupMetrics) {
        let cpu = metrics.get(crate::recorder::CPU_METRIC);
        let off = metrics.get(crate::recorder::NONCPU_METRIC);
        if cpu.is_finite() && off.is_finite() && cpu >= 0.0 && off >= 0.0 && cpu + off > 0.0 {
            self.measured
                .insert(metrics.group.clone(), (cpu / (cpu + off)).min(1.0));
        }
    }

    fn by_number(&self) -> Vec<f32> {
        let mut shares = vec![0.0; self.numbers.len()];
        for (group, &n) in &self.numbers {
            if let Some(&share) = self.measured.get(group) {
                shares[n as usize] = share as f32;
            }
        }
        shares
    }
}

/// Each recorded worker's host (an index), and each host's cores (0: unknown). Workers naming
/// no host (traces before format 1.3) share one, as a `LocalCluster`'s do: `--cores` then
/// says how many cores that machine had.
fn hosts(spec: &[traces::WorkerSpec]) -> (Vec<usize>, Vec<u32>) {
    let mut names: FxHashMap<Option<&str>, usize> = FxHashMap::default();
    let mut cores: Vec<u32> = Vec::new();
    let worker_host = spec
        .iter()
        .map(|w| {
            let host = *names.entry(w.host.as_deref()).or_insert_with(|| {
                cores.push(0);
                cores.len() - 1
            });
            cores[host] = cores[host].max(w.host_cores.unwrap_or(0));
            host
        })
        .collect();
    (worker_host, cores)
}

/// The recorded workers' slots (positions in the header's list) of trace worker ids, sorted;
/// a worker that joined later (a replacement) stands in the slot its id falls on.
fn slots_of(spec: &[traces::WorkerSpec], ids: &[WorkerId]) -> Vec<usize> {
    let mut slots: Vec<usize> = ids
        .iter()
        .map(|&id| {
            spec.iter()
                .position(|w| w.id == id)
                .unwrap_or(id as usize % spec.len())
        })
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// Resources as the scheduler can count them: positive, finite amounts (a trace may say
/// anything).
fn usable(resources: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    resources
        .iter()
        .filter(|(_, amount)| amount.is_finite() && **amount > 0.0)
        .map(|(name, &amount)| (name.clone(), amount))
        .collect()
}

/// A task restricted to some recorded workers (`restricted_to`, trace worker ids) needs a
/// resource only those workers have, in unlimited amount: the replay's scheduler then places it
/// on them alone, and other shapes map it as they map resources. Returns that resource's name;
/// `None` for an unrestricted task, or when the trace lists no workers to map ids to.
fn restriction(
    spec: &[traces::WorkerSpec],
    restricted_to: &[WorkerId],
    worker_resources: &mut [BTreeMap<String, f64>],
) -> Option<String> {
    if restricted_to.is_empty() || spec.is_empty() {
        return None;
    }
    let slots = slots_of(spec, restricted_to);
    let listed: Vec<String> = slots.iter().map(usize::to_string).collect();
    let name = format!("restricted to workers {}", listed.join(","));
    for &slot in &slots {
        worker_resources[slot].insert(name.clone(), f64::from(u32::MAX));
    }
    Some(name)
}

/// The allocation of a key's lost attempts (working memory, compute time) beyond its kept
/// one's `working`, as the engine's [`Work::spike`]: (extra bytes, for the first n attempts),
/// n reaching the last lost attempt that allocated more. A spike that killed its worker kills
/// it again in the replay, and the replay's scheduler then loses and recomputes what that
/// worker held.
fn spike(lost: &[(u64, u64)], working: u64) -> Option<(u64, u32)> {
    let last = lost.iter().rposition(|&(w, _)| w > working)?;
    let extra = lost.iter().map(|&(w, _)| w.saturating_sub(working)).max()?;
    Some((extra, last as u32 + 1))
}

/// An attempt on its thread: occupied from, until, ready since, inline bytes.
type Run = (u64, u64, Option<u64>, u64);

/// Per thread, the attempts it ran, for the dispatch overhead.
#[derive(Default)]
struct Lanes {
    /// By (worker, thread).
    runs: FxHashMap<(traces::WorkerId, u32), Vec<Run>>,
    /// Fitted (overhead per task, inline bytes per second).
    dispatch: (u64, Option<u64>),
}

impl Lanes {
    fn add(&mut self, task: &TaskRecord) {
        let occupied = task.phases.iter().filter(|p| p.action != Action::Queued);
        let (Some(from), Some(until)) = (occupied.clone().map(|p| p.start).min(), task.stop())
        else {
            return;
        };
        let ready = task
            .phases
            .iter()
            .find(|p| p.action == Action::Queued)
            .map(|p| p.start);
        self.runs
            .entry((task.worker, task.thread))
            .or_default()
            .push((from, until, ready, task.inline_bytes));
    }

    /// The wait of an attempt that was ready while its thread was free is dispatch overhead:
    /// its median over tasks with small inline arguments is the overhead per task; what tasks
    /// with big ones waited beyond that is shipping their arguments. Without queued phases (a
    /// task stream) every gap between a thread's tasks counts, and the lower quartile is taken:
    /// most gaps of a busy thread are overhead, the rest is idleness.
    /// Also returns the threads' busy time (overlapping attempts on a thread, as a Dask worker
    /// fetching a task's inputs while computing another, count once).
    fn fit(&mut self) -> u64 {
        let mut small = Vec::new();
        let mut shipped = Rate::default();
        let mut big = Vec::new();
        let mut any_ready = false;
        let mut busy = 0u64;
        for runs in self.runs.values_mut() {
            runs.sort_unstable();
            let mut free_since: Option<u64> = None;
            for &(from, until, ready, inline) in runs.iter() {
                let counted_from = free_since.map_or(from, |free| from.max(free));
                busy = busy.saturating_add(until.saturating_sub(counted_from));
                any_ready |= ready.is_some();
                let since = match (ready, free_since) {
                    (Some(ready), Some(free)) => Some(ready.max(free)),
                    (Some(ready), None) => Some(ready),
                    (None, free) => free,
                };
                if let Some(since) = since {
                    let wait = from.saturating_sub(since);
                    if inline <= SMALL_BYTES {
                        small.push(wait);
                    } else {
                        big.push((inline, wait));
                    }
                }
                free_since = Some(free_since.map_or(until, |free| free.max(until)));
            }
        }
        small.sort_unstable();
        let overhead = match (small.is_empty(), any_ready) {
            (true, _) => 0,
            (false, true) => small[small.len() / 2],
            (false, false) => small[small.len() / 4],
        };
        for (inline, wait) in big {
            shipped.add(inline, wait.saturating_sub(overhead));
        }
        self.dispatch = (overhead, shipped.rate());
        busy
    }
}

/// Builds the submissions' graphs.
#[derive(Default)]
struct Builder {
    /// The producer recorded attempts' working memory (the engine does; Dask does not).
    measures_working: bool,
    /// Per group number, the share of a core its tasks want (0: unknown).
    shares: Vec<f32>,
    submissions: Vec<Submission>,
    /// Keys a graph returns (nothing in it depends on them), by submission.
    outputs: FxHashMap<Key, usize>,
    unknown_dependencies: u64,
}

impl Builder {
    fn add(
        &mut self,
        offset_ns: u64,
        client_gap_ns: Option<u64>,
        attempts: Vec<Attempt>,
    ) -> Result<(), ReplayError> {
        // Per key (attempts are in start order): the last successful attempt, and how many
        // attempts failed before the key's fate was settled.
        let mut tasks: Vec<(Attempt, u32)> = Vec::new();
        let mut index: FxHashMap<Key, usize> = FxHashMap::default();
        // Attempts lost with their worker, by key: (working memory, compute time).
        let mut lost: FxHashMap<Key, Vec<(u64, u64)>> = FxHashMap::default();
        for attempt in attempts {
            if attempt.status == TaskStatus::Lost {
                lost.entry(attempt.key.clone())
                    .or_default()
                    .push((attempt.working, attempt.compute));
            }
            if !matches!(attempt.status, TaskStatus::Ok | TaskStatus::Error) {
                continue;
            }
            match index.get(&attempt.key) {
                Some(&i) => {
                    let (kept, errors) = &mut tasks[i];
                    if kept.status == TaskStatus::Error {
                        *errors += 1;
                        *kept = attempt;
                    }
                }
                None => {
                    index.insert(attempt.key.clone(), tasks.len());
                    tasks.push((attempt, 0));
                }
            }
        }
        let this = self.submissions.len();
        let mut builder = GraphBuilder::with_capacity(tasks.len(), 0);
        let mut deserialize = Vec::new();
        let mut inline = Vec::new();
        let mut cpu = Vec::new();
        let mut has_dependents = vec![false; tasks.len()];
        let mut edges = Vec::new();
        for (i, (attempt, errors)) in tasks.iter().enumerate() {
            let mut work = Work::new(attempt.compute, attempt.nbytes);
            if attempt.working > 0 {
                work = work.working_bytes(attempt.working);
            }
            for (name, &amount) in &attempt.resources {
                work = work.resource(name, amount);
            }
            let lost = lost.get(&attempt.key).map_or(&[][..], Vec::as_slice);
            // With working memory recorded, a lost attempt's allocation is replayed and the
            // replay's scheduler kills (and loses) what the recorded one did. Without it, an
            // attempt that was computing when its worker died cost its thread a run: it
            // replays as a failed attempt.
            let mut failures = *errors;
            if self.measures_working {
                if let Some((bytes, attempts)) = spike(lost, attempt.working) {
                    work = work.spike(bytes, attempts);
                }
            } else {
                failures += lost.iter().filter(|&&(_, compute)| compute > 0).count() as u32;
            }
            let message = attempt.error.as_deref().unwrap_or("error");
            match attempt.status {
                TaskStatus::Error => work = work.fail(message, u32::MAX).retries(failures),
                _ if failures > 0 => work = work.fail(message, failures).retries(failures),
                _ => {}
            }
            for dep in &attempt.deps {
                match index.get(dep) {
                    // Start order makes a dependency's index smaller; anything else is a
                    // clock oddity, not a dependency to wait for.
                    Some(&d) if d < i => {
                        edges.push((i, d));
                        has_dependents[d] = true;
                    }
                    Some(_) => {}
                    None => match self.outputs.get(dep) {
                        Some(&s) => {
                            self.submissions[s].persist = true;
                            work = work.external(dep.clone());
                        }
                        None => self.unknown_dependencies += 1,
                    },
                }
            }
            builder.add(attempt.key.clone(), work);
            if attempt.deserialize > 0 {
                deserialize.resize(i, 0);
                deserialize.push(attempt.deserialize);
            }
            if attempt.inline > 0 {
                inline.resize(i, 0);
                inline.push(attempt.inline);
            }
            let share = self
                .shares
                .get(attempt.group as usize)
                .copied()
                .unwrap_or(0.0);
            if share > 0.0 {
                cpu.resize(i, 0.0);
                cpu.push(share);
            }
        }
        for (dependent, dependency) in edges {
            builder.depend(
                crate::TaskRef(dependent as u32),
                crate::TaskRef(dependency as u32),
            );
        }
        for (i, (attempt, _)) in tasks.iter().enumerate() {
            if !has_dependents[i] && attempt.status == TaskStatus::Ok {
                self.outputs.insert(attempt.key.clone(), this);
            }
        }
        self.submissions.push(Submission {
            offset_ns,
            client_gap_ns,
            graph: builder.build()?,
            persist: false,
            deserialize,
            inline,
            pieces: Vec::new(),
            held: Vec::new(),
            cpu,
        });
        Ok(())
    }
}
