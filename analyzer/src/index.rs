//! [`TraceIndex`]: everything the rules need, built in one streaming pass over a trace.
//!
//! Per task it keeps a few fixed-size numbers (its interval on its thread, its key's hash, its
//! dependencies' hashes for the critical path) — never the records themselves.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use traces::{
    Action, EventKind, Header, Key, Nanos, Record, TaskRecord, TaskStatus, TraceError, TraceReader,
    WorkerId,
};

/// Everything known about one task group.
#[derive(Debug)]
pub struct GroupStats {
    pub name: String,
    /// Successful attempts.
    pub tasks: u64,
    pub compute: Histogram<u64>,
    pub compute_total: Nanos,
    pub compute_max: Nanos,
    /// Key of the longest task.
    pub slowest_key: String,
    pub output: Histogram<u64>,
    pub output_total: u64,
    pub output_max: u64,
    /// Key of the largest output.
    pub largest_key: String,
    pub transfer_ns: Nanos,
    pub transfer_bytes: u64,
    pub transfers: u64,
    pub deserialize_ns: Nanos,
    pub deserialize_bytes: u64,
    pub disk_write_ns: Nanos,
    pub disk_write_bytes: u64,
    pub disk_read_ns: Nanos,
    pub disk_read_bytes: u64,
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

impl GroupStats {
    fn new(name: &str) -> GroupStats {
        GroupStats {
            name: name.to_string(),
            tasks: 0,
            compute: histogram(),
            compute_total: 0,
            compute_max: 0,
            slowest_key: String::new(),
            output: histogram(),
            output_total: 0,
            output_max: 0,
            largest_key: String::new(),
            transfer_ns: 0,
            transfer_bytes: 0,
            transfers: 0,
            deserialize_ns: 0,
            deserialize_bytes: 0,
            disk_write_ns: 0,
            disk_write_bytes: 0,
            disk_read_ns: 0,
            disk_read_bytes: 0,
            inline_tasks: 0,
            inline_total: 0,
            inline_max: 0,
            inline_sizes: BTreeMap::new(),
            first_start: Nanos::MAX,
            last_stop: 0,
        }
    }

    pub fn median_compute(&self) -> Nanos {
        self.compute.value_at_quantile(0.5)
    }

    pub fn median_output(&self) -> u64 {
        self.output.value_at_quantile(0.5)
    }

    /// Time its tasks spent occupying threads or moving their inputs.
    pub fn task_time(&self) -> Nanos {
        self.compute_total
            + self.transfer_ns
            + self.deserialize_ns
            + self.disk_read_ns
            + self.disk_write_ns
    }
}

/// Distinct inline-argument sizes kept per group.
const INLINE_SIZES: usize = 8;

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid histogram precision")
}

#[derive(Debug, Default)]
pub struct WorkerStats {
    pub name: String,
    pub threads: u32,
    pub tasks: u64,
    /// Thread-occupying time (compute, deserialize, disk).
    pub busy_ns: Nanos,
    pub memory_limit: Option<u64>,
    pub samples: u64,
    pub max_process: u64,
    pub max_managed: u64,
    pub max_unmanaged: u64,
    pub max_spilled: u64,
    /// Time with process memory over the pause fraction (between consecutive samples).
    pub over_pause_ns: Nanos,
    last_sample: Option<(Nanos, bool)>,
    pub killed: Vec<(Nanos, String)>,
    pub paused: u64,
}

/// One task's place in the graph, for the critical path.
#[derive(Debug, Clone, Copy)]
pub struct PathNode {
    pub start: Nanos,
    pub stop: Nanos,
    pub compute: Nanos,
    pub transfer: Nanos,
    /// Index range of its dependencies in [`TraceIndex::dep_hashes`].
    pub deps: (u32, u32),
    /// Index of its group in [`TraceIndex::group_names`].
    pub group: u32,
}

/// Where a key was computed successfully, for recomputation.
#[derive(Debug, Clone, Copy)]
pub struct KeyRuns {
    pub count: u32,
    /// Worker and end of the earliest run.
    pub worker: WorkerId,
    pub stop: Nanos,
    pub first_compute: Nanos,
    pub total_compute: Nanos,
    /// Start of the latest run.
    pub last_start: Nanos,
    /// Runs that followed the death of a worker (recovery of lost results), not counted as
    /// recomputation.
    pub after_death: u32,
}

impl KeyRuns {
    /// Compute time of the runs after the first.
    pub fn repeated_ns(&self) -> Nanos {
        self.total_compute.saturating_sub(self.first_compute)
    }
}

pub struct TraceIndex {
    pub header: Header,
    pub format: String,
    pub first: Nanos,
    pub last: Nanos,
    pub groups: BTreeMap<String, GroupStats>,
    pub workers: BTreeMap<WorkerId, WorkerStats>,
    /// Busy intervals per (worker, thread) lane, in file order.
    pub lanes: FxHashMap<(WorkerId, u32), Vec<(Nanos, Nanos)>>,
    /// Each attempt's whole life, queued phase included: when the cluster had work at all.
    pub alive: Vec<(Nanos, Nanos)>,
    pub submissions: Vec<Nanos>,
    pub task_records: u64,
    pub failed: u64,
    pub lost: u64,
    pub lost_compute_ns: Nanos,
    pub retried: u64,
    /// Keyed by hash of the key; `example_keys` has the text of keys computed more than once.
    pub runs: FxHashMap<u64, KeyRuns>,
    pub repeated_keys: Vec<String>,
    pub nodes: FxHashMap<u64, PathNode>,
    pub dep_hashes: Vec<u64>,
    pub group_names: Vec<String>,
    group_ids: HashMap<String, u32>,
    pub has_dependencies: bool,
    pub warnings: Vec<String>,
}

/// Keys of repeated runs kept as examples.
const EXAMPLE_KEYS: usize = 5;

pub fn key_hash(key: &Key) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

impl TraceIndex {
    /// Reads `trace` to the end.
    pub fn build(mut trace: TraceReader) -> Result<TraceIndex, TraceError> {
        let header = trace.header().clone();
        let format = trace.format().describe().to_string();
        let mut index = TraceIndex {
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
            groups: BTreeMap::new(),
            lanes: FxHashMap::default(),
            alive: Vec::new(),
            submissions: Vec::new(),
            task_records: 0,
            failed: 0,
            lost: 0,
            lost_compute_ns: 0,
            retried: 0,
            runs: FxHashMap::default(),
            repeated_keys: Vec::new(),
            nodes: FxHashMap::default(),
            dep_hashes: Vec::new(),
            group_names: Vec::new(),
            group_ids: HashMap::new(),
            has_dependencies: false,
            warnings: Vec::new(),
        };
        let mut memory = Vec::new();
        let mut kills: Vec<(Nanos, WorkerId)> = Vec::new();
        for record in &mut trace {
            match record? {
                Record::Task(task) => index.add_task(&task),
                Record::Memory(sample) => memory.push(sample),
                Record::Event(event) => match event.kind {
                    EventKind::GraphSubmitted { .. } => index.submissions.push(event.time),
                    EventKind::WorkerKilled { worker, reason } => {
                        kills.push((event.time, worker));
                        index
                            .workers
                            .entry(worker)
                            .or_default()
                            .killed
                            .push((event.time, reason));
                    }
                    EventKind::WorkerPaused { worker } => {
                        index.workers.entry(worker).or_default().paused += 1;
                    }
                    EventKind::WorkerAdded { worker } => {
                        let stats = index.workers.entry(worker.id).or_default();
                        stats.name = worker.name;
                        stats.threads = stats.threads.max(worker.threads);
                        stats.memory_limit = worker.memory_limit;
                    }
                    EventKind::TaskRetried { .. } => index.retried += 1,
                    _ => {}
                },
            }
        }
        index.warnings = trace.warnings().to_vec();
        // Samples arrive in time order per worker, but interleaved with task records in batches.
        memory.sort_by_key(|m| (m.worker, m.time));
        let pause = index.header.cluster.memory.pause;
        for sample in memory {
            let w = index.workers.entry(sample.worker).or_default();
            w.samples += 1;
            let process = sample.managed + sample.unmanaged;
            w.max_process = w.max_process.max(process);
            w.max_managed = w.max_managed.max(sample.managed);
            w.max_unmanaged = w.max_unmanaged.max(sample.unmanaged);
            w.max_spilled = w.max_spilled.max(sample.spilled);
            let over = w
                .memory_limit
                .is_some_and(|limit| process as f64 > limit as f64 * pause);
            if let Some((time, was_over)) = w.last_sample
                && was_over
            {
                w.over_pause_ns += sample.time.saturating_sub(time);
            }
            w.last_sample = Some((sample.time, over));
        }
        index.finish_runs(&kills);
        for lane in index.lanes.values_mut() {
            lane.sort_unstable();
        }
        index.alive.sort_unstable();
        index.submissions.sort_unstable();
        Ok(index)
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
                self.lost_compute_ns += task.time_in(Action::Compute);
                return;
            }
            TaskStatus::Error | TaskStatus::Cancelled => {
                self.failed += 1;
                return;
            }
        }
        let mut busy = 0;
        let mut busy_start = Nanos::MAX;
        let mut busy_stop = 0;
        let group = match self.groups.get_mut(task.group.as_str()) {
            Some(g) => g,
            None => self
                .groups
                .entry(task.group.clone())
                .or_insert_with(|| GroupStats::new(&task.group)),
        };
        group.tasks += 1;
        group.first_start = group.first_start.min(start);
        group.last_stop = group.last_stop.max(stop);
        let mut compute = 0;
        let mut transfer = 0;
        for phase in &task.phases {
            let d = phase.duration();
            if phase.action.occupies_thread() {
                busy += d;
                busy_start = busy_start.min(phase.start);
                busy_stop = busy_stop.max(phase.stop);
            }
            match phase.action {
                Action::Compute => compute += d,
                Action::Transfer => {
                    transfer += d;
                    group.transfers += 1;
                    group.transfer_bytes += phase.bytes.unwrap_or(0);
                }
                Action::Deserialize => {
                    group.deserialize_ns += d;
                    group.deserialize_bytes += phase.bytes.unwrap_or(0);
                }
                Action::DiskWrite => {
                    group.disk_write_ns += d;
                    group.disk_write_bytes += phase.bytes.unwrap_or(0);
                }
                Action::DiskRead => {
                    group.disk_read_ns += d;
                    group.disk_read_bytes += phase.bytes.unwrap_or(0);
                }
                Action::Queued => {}
            }
        }
        group.transfer_ns += transfer;
        group.compute_total += compute;
        let _ = group.compute.record(compute.max(1));
        if compute > group.compute_max || group.slowest_key.is_empty() {
            group.compute_max = compute.max(group.compute_max);
            group.slowest_key = task.key.to_string();
        }
        let _ = group.output.record(task.nbytes.max(1));
        group.output_total += task.nbytes;
        if task.nbytes > group.output_max || group.largest_key.is_empty() {
            group.output_max = task.nbytes.max(group.output_max);
            group.largest_key = task.key.to_string();
        }
        if task.inline_bytes > 0 {
            group.inline_tasks += 1;
            group.inline_total += task.inline_bytes;
            group.inline_max = group.inline_max.max(task.inline_bytes);
            if group.inline_sizes.len() < INLINE_SIZES
                || group.inline_sizes.contains_key(&task.inline_bytes)
            {
                *group.inline_sizes.entry(task.inline_bytes).or_default() += 1;
            }
        }

        let worker = self.workers.entry(task.worker).or_default();
        worker.tasks += 1;
        worker.busy_ns += busy;
        worker.threads = worker.threads.max(task.thread + 1);
        if busy_stop > 0 {
            self.lanes
                .entry((task.worker, task.thread))
                .or_default()
                .push((busy_start, busy_stop));
        }

        let hash = key_hash(&task.key);
        let runs = self.runs.entry(hash).or_insert(KeyRuns {
            count: 0,
            worker: task.worker,
            stop,
            first_compute: compute,
            total_compute: 0,
            last_start: start,
            after_death: 0,
        });
        runs.count += 1;
        runs.total_compute += compute;
        runs.last_start = runs.last_start.max(start);
        // Records come in worker batches, not in time order: keep the earliest run.
        if stop < runs.stop {
            runs.worker = task.worker;
            runs.stop = stop;
            runs.first_compute = compute;
        }
        if runs.count == 2 && self.repeated_keys.len() < 1_000 {
            self.repeated_keys.push(task.key.to_string());
        }

        if !task.deps.is_empty() {
            self.has_dependencies = true;
        }
        let from = self.dep_hashes.len() as u32;
        self.dep_hashes.extend(task.deps.iter().map(key_hash));
        let group = match self.group_ids.get(task.group.as_str()) {
            Some(&id) => id,
            None => {
                let id = self.group_names.len() as u32;
                self.group_names.push(task.group.clone());
                self.group_ids.insert(task.group.clone(), id);
                id
            }
        };
        // The latest successful run of a key is the one its dependents waited for.
        self.nodes.insert(
            hash,
            PathNode {
                start,
                stop,
                compute,
                transfer,
                deps: (from, self.dep_hashes.len() as u32),
                group,
            },
        );
    }

    /// A key run again after a worker died is recovery, not recomputation: the death lost
    /// either its result or a result downstream that needs it again. Records are not in time
    /// order (worker batches), so this is decided at the end against the kill times.
    fn finish_runs(&mut self, kills: &[(Nanos, WorkerId)]) {
        if kills.is_empty() {
            return;
        }
        for runs in self.runs.values_mut() {
            if runs.count > 1
                && kills
                    .iter()
                    .any(|&(time, _)| time >= runs.stop && time <= runs.last_start)
            {
                runs.after_death = runs.count - 1;
            }
        }
    }

    /// From the first task start to the last task stop.
    pub fn wall_ns(&self) -> Nanos {
        self.last.saturating_sub(self.first.min(self.last))
    }

    pub fn threads(&self) -> u32 {
        // Killed workers are replaced: count the threads of the workers alive at the start.
        let initial: u32 = self.header.cluster.workers.iter().map(|w| w.threads).sum();
        if initial > 0 {
            initial
        } else {
            self.workers
                .values()
                .map(|w| w.threads.max(1))
                .sum::<u32>()
                .max(1)
        }
    }

    /// Thread-occupying time of every successful task.
    pub fn busy_ns(&self) -> Nanos {
        self.workers.values().map(|w| w.busy_ns).sum()
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

    /// Keys to name in a finding, from a map of key hashes to runs.
    pub fn repeated(&self) -> impl Iterator<Item = &str> {
        self.repeated_keys
            .iter()
            .map(String::as_str)
            .take(EXAMPLE_KEYS)
    }
}
