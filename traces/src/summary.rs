//! What `taskscope info` reports, built in one streaming pass. Memory grows with the number of
//! workers and task groups, never with the number of tasks: group medians come from a
//! sparse histogram, which grows with the distinct durations seen (at most ~1,000 per power of
//! two), not with the tasks.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::TraceError;
use crate::histogram::SparseHistogram;
use crate::model::{Action, EventKind, Header, Nanos, Record, TaskRecord, TaskStatus, WorkerId};
use crate::open::TraceReader;

#[derive(Debug, Serialize)]
pub struct TraceSummary {
    pub format: String,
    pub producer: String,
    pub version: String,
    pub origin_unix_ns: i64,
    /// From the first phase start to the last phase stop.
    pub wall_ns: Nanos,
    pub tasks: TaskCounts,
    pub phases: BTreeMap<&'static str, PhaseTotals>,
    pub transfers: ByteTotals,
    pub spilled: ByteTotals,
    pub read_back: ByteTotals,
    pub memory_samples: u64,
    pub events: BTreeMap<&'static str, u64>,
    pub workers: Vec<WorkerSummary>,
    /// Sorted by total compute time, largest first.
    pub groups: Vec<GroupSummary>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct TaskCounts {
    pub records: u64,
    pub ok: u64,
    pub error: u64,
    pub cancelled: u64,
    pub lost: u64,
    /// Records with `attempt > 1`.
    pub retried: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct PhaseTotals {
    pub count: u64,
    pub total_ns: Nanos,
}

#[derive(Debug, Default, Serialize)]
pub struct ByteTotals {
    pub count: u64,
    pub bytes: u64,
    /// Phases whose size the producer did not record (Dask task streams omit transfer sizes).
    pub unknown_size: u64,
}

#[derive(Debug, Serialize)]
pub struct WorkerSummary {
    pub id: WorkerId,
    pub name: String,
    pub threads: u32,
    pub tasks: u64,
    /// Time its threads were occupied (every phase but `queued` and `transfer`).
    pub busy_ns: Nanos,
    /// `busy_ns / (threads × wall)`.
    pub busy_fraction: f64,
    pub peak_managed: u64,
    pub peak_spilled: u64,
    pub killed: bool,
}

#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub tasks: u64,
    pub total_compute_ns: Nanos,
    pub median_compute_ns: Nanos,
    pub max_compute_ns: Nanos,
    pub output_bytes: u64,
}

struct GroupAcc {
    tasks: u64,
    total: Nanos,
    max: Nanos,
    output_bytes: u64,
    /// Compute times: medians within 0.1 %.
    durations: SparseHistogram,
}

#[derive(Default)]
struct WorkerAcc {
    name: Option<String>,
    threads: u32,
    tasks: u64,
    busy: Nanos,
    peak_managed: u64,
    peak_spilled: u64,
    killed: bool,
}

impl TraceSummary {
    /// Reads `trace` to the end.
    pub fn build(mut trace: TraceReader) -> Result<TraceSummary, TraceError> {
        let mut acc = Accumulator::new(trace.header());
        for record in &mut trace {
            acc.add(&record?);
        }
        Ok(acc.finish(trace.header(), trace.format().describe(), trace.warnings()))
    }
}

struct Accumulator {
    first: Nanos,
    last: Nanos,
    tasks: TaskCounts,
    phases: BTreeMap<Action, PhaseTotals>,
    transfers: ByteTotals,
    spilled: ByteTotals,
    read_back: ByteTotals,
    memory_samples: u64,
    events: BTreeMap<&'static str, u64>,
    workers: BTreeMap<WorkerId, WorkerAcc>,
    groups: HashMap<String, GroupAcc>,
}

impl Accumulator {
    fn new(header: &Header) -> Accumulator {
        let workers = header
            .cluster
            .workers
            .iter()
            .map(|w| {
                let acc = WorkerAcc {
                    name: Some(w.name.clone()),
                    threads: w.threads,
                    ..WorkerAcc::default()
                };
                (w.id, acc)
            })
            .collect();
        Accumulator {
            first: Nanos::MAX,
            last: 0,
            tasks: TaskCounts::default(),
            phases: BTreeMap::new(),
            transfers: ByteTotals::default(),
            spilled: ByteTotals::default(),
            read_back: ByteTotals::default(),
            memory_samples: 0,
            events: BTreeMap::new(),
            workers,
            groups: HashMap::new(),
        }
    }

    fn add(&mut self, record: &Record) {
        match record {
            Record::Task(task) => self.add_task(task),
            Record::Memory(sample) => {
                self.memory_samples += 1;
                let worker = self.workers.entry(sample.worker).or_default();
                worker.peak_managed = worker.peak_managed.max(sample.managed);
                worker.peak_spilled = worker.peak_spilled.max(sample.spilled);
            }
            Record::Event(event) => {
                *self.events.entry(event.kind.name()).or_default() += 1;
                match &event.kind {
                    EventKind::WorkerAdded { worker } => {
                        let acc = self.workers.entry(worker.id).or_default();
                        acc.name = Some(worker.name.clone());
                        acc.threads = acc.threads.max(worker.threads);
                    }
                    EventKind::WorkerKilled { worker, .. } => {
                        self.workers.entry(*worker).or_default().killed = true;
                    }
                    _ => {}
                }
            }
            Record::GroupMetrics(_) => {}
        }
    }

    fn add_task(&mut self, task: &TaskRecord) {
        let counts = &mut self.tasks;
        counts.records += 1;
        match task.status {
            TaskStatus::Ok => counts.ok += 1,
            TaskStatus::Error => counts.error += 1,
            TaskStatus::Cancelled => counts.cancelled += 1,
            TaskStatus::Lost => counts.lost += 1,
        }
        if task.attempt > 1 {
            counts.retried += 1;
        }

        let mut busy: Nanos = 0;
        let mut compute: Nanos = 0;
        for phase in &task.phases {
            let duration = phase.duration();
            self.first = self.first.min(phase.start);
            self.last = self.last.max(phase.stop);
            let totals = self.phases.entry(phase.action).or_default();
            totals.count += 1;
            // Saturating: the input's numbers, summed, can exceed u64; wrapping would show a
            // small total (two tasks of 2^63 ns: "0 ns").
            totals.total_ns = totals.total_ns.saturating_add(duration);
            if phase.action.occupies_thread() {
                busy = busy.saturating_add(duration);
            }
            match phase.action {
                Action::Compute => compute = compute.saturating_add(duration),
                Action::Transfer => add_bytes(&mut self.transfers, phase.bytes),
                Action::DiskWrite => add_bytes(&mut self.spilled, phase.bytes),
                Action::DiskRead => add_bytes(&mut self.read_back, phase.bytes),
                Action::Queued | Action::Deserialize => {}
            }
        }

        let worker = self.workers.entry(task.worker).or_default();
        worker.tasks += 1;
        worker.busy = worker.busy.saturating_add(busy);
        worker.threads = worker.threads.max(task.thread.saturating_add(1));

        // Look up by &str first so the common case allocates nothing.
        let group = match self.groups.get_mut(task.group.as_str()) {
            Some(group) => group,
            None => self
                .groups
                .entry(task.group.clone())
                .or_insert_with(|| GroupAcc {
                    tasks: 0,
                    total: 0,
                    max: 0,
                    output_bytes: 0,
                    durations: SparseHistogram::new(),
                }),
        };
        group.tasks += 1;
        group.total = group.total.saturating_add(compute);
        group.max = group.max.max(compute);
        group.output_bytes = group.output_bytes.saturating_add(task.nbytes);
        group.durations.record(compute.max(1));
    }

    fn finish(self, header: &Header, format: &str, warnings: &[String]) -> TraceSummary {
        let wall_ns = self.last.saturating_sub(self.first.min(self.last));
        let workers = self
            .workers
            .into_iter()
            .map(|(id, w)| {
                let threads = w.threads.max(1);
                let capacity = wall_ns as f64 * threads as f64;
                WorkerSummary {
                    id,
                    name: w.name.unwrap_or_else(|| format!("worker-{id}")),
                    threads,
                    tasks: w.tasks,
                    busy_ns: w.busy,
                    busy_fraction: if capacity > 0.0 {
                        w.busy as f64 / capacity
                    } else {
                        0.0
                    },
                    peak_managed: w.peak_managed,
                    peak_spilled: w.peak_spilled,
                    killed: w.killed,
                }
            })
            .collect();
        let mut groups: Vec<GroupSummary> = self
            .groups
            .into_iter()
            .map(|(group, g)| GroupSummary {
                group,
                tasks: g.tasks,
                total_compute_ns: g.total,
                // The histogram answers with its bucket's upper end: never above the maximum.
                median_compute_ns: g.durations.value_at_quantile(0.5).min(g.max),
                max_compute_ns: g.max,
                output_bytes: g.output_bytes,
            })
            .collect();
        groups.sort_by(|a, b| {
            b.total_compute_ns
                .cmp(&a.total_compute_ns)
                .then_with(|| a.group.cmp(&b.group))
        });
        TraceSummary {
            format: format.to_string(),
            producer: header.producer.clone(),
            version: header.version.to_string(),
            origin_unix_ns: header.origin_unix_ns,
            wall_ns,
            tasks: self.tasks,
            phases: self
                .phases
                .into_iter()
                .map(|(action, totals)| (action.as_str(), totals))
                .collect(),
            transfers: self.transfers,
            spilled: self.spilled,
            read_back: self.read_back,
            memory_samples: self.memory_samples,
            events: self.events,
            workers,
            groups,
            warnings: warnings.to_vec(),
        }
    }
}

fn add_bytes(totals: &mut ByteTotals, bytes: Option<u64>) {
    totals.count += 1;
    match bytes {
        Some(b) => totals.bytes = totals.bytes.saturating_add(b),
        None => totals.unknown_size += 1,
    }
}
