//! Recording every task's timeline at near-zero cost to the workers.
//!
//! A worker thread appends one fixed-size [`TaskEvent`] per finished task attempt to its own
//! buffer (no lock, no allocation: the buffer's capacity is reserved up front) and hands the
//! full buffer to the writer thread every [`BATCH`] tasks. The writer thread, at low priority,
//! turns events into [`traces::TaskRecord`]s (keys, groups, dependencies come from the shared
//! immutable graph) and writes the native trace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use traces::{
    Action, Event, GroupMetrics, Header, MemorySample, Phase, Record, Tap, TaskRecordRef,
    TaskStatus, TraceError, TraceWriter, WorkerId,
};

use crate::compute::thread_cpu_ns;
use crate::graph::Graph;
use crate::store::TaskId;

/// Task events per hand-over to the writer thread.
pub(crate) const BATCH: usize = 1024;

/// Messages waiting for the writer (~256 K task attempts, ~35 MB). Past that, recording
/// threads wait for the writer: memory stays bounded however long the writer lags.
const QUEUE: usize = 256;

/// A worker thread measures the CPU time of its next task at most once per this much trace
/// time. Reading a thread's CPU clock is a system call (0.37 µs on this machine's VM), too dear
/// for every 20 µs task; at this rate it costs a thread under 0.1 %, and every task of 1 ms or
/// more, where CPU time weighs in a replay, is measured.
pub(crate) const CPU_SAMPLE_EVERY_NS: u64 = 1_000_000;

/// Dask's names for time on and off the CPU while executing a group's tasks
/// (`distributed.metrics`), which the engine writes as Dask's plugin does.
pub const CPU_METRIC: &str = "execute/thread-cpu/seconds";
pub const NONCPU_METRIC: &str = "execute/thread-noncpu/seconds";

/// Phases one attempt can carry: queued, deserialize, compute, up to two disk-writes, and up to
/// [`MAX_INPUT_PHASES`] transfers / disk-reads.
pub(crate) const MAX_PHASES: usize = 10;

/// Transfers and disk reads beyond this many merge into the last one of their action.
const MAX_INPUT_PHASES: usize = MAX_PHASES - 5;

#[derive(Clone, Copy, Debug)]
pub(crate) struct RawPhase {
    pub action: Action,
    pub start: u64,
    pub stop: u64,
    pub bytes: Option<u64>,
    pub peer: Option<WorkerId>,
}

impl RawPhase {
    pub const EMPTY: RawPhase = RawPhase {
        action: Action::Compute,
        start: 0,
        stop: 0,
        bytes: None,
        peer: None,
    };
}

/// One finished task attempt, as the worker thread saw it.
#[derive(Clone, Debug)]
pub(crate) struct TaskEvent {
    pub task: TaskId,
    pub worker: WorkerId,
    pub thread: u32,
    pub status: TaskStatus,
    pub attempt: u32,
    pub nbytes: u64,
    pub error: Option<std::sync::Arc<str>>,
    /// CPU time of the compute phase, when this attempt was sampled
    /// ([`ThreadRecorder::cpu_clock`]).
    pub cpu_ns: Option<u64>,
    pub n_phases: u8,
    pub phases: [RawPhase; MAX_PHASES],
}

impl TaskEvent {
    /// Adds a phase. Like Dask, inputs fetched from one worker make one transfer phase, and
    /// disk reads make one phase; past [`MAX_INPUT_PHASES`] inputs merge into the last one.
    pub fn push(&mut self, phase: RawPhase) {
        let n = self.n_phases as usize;
        if matches!(phase.action, Action::Transfer | Action::DiskRead) {
            let inputs = self.phases[..n]
                .iter()
                .filter(|p| matches!(p.action, Action::Transfer | Action::DiskRead))
                .count();
            let merge_into = self.phases[..n].iter_mut().rev().find(|p| {
                p.action == phase.action && (p.peer == phase.peer || inputs >= MAX_INPUT_PHASES)
            });
            if let Some(last) = merge_into {
                last.stop = last.stop.max(phase.stop);
                last.bytes = Some(last.bytes.unwrap_or(0) + phase.bytes.unwrap_or(0));
                return;
            }
        }
        if n < MAX_PHASES {
            self.phases[n] = phase;
            self.n_phases += 1;
        }
    }
}

/// A finished attempt as buffered for the writer (its phases follow in the batch's arena).
struct StoredEvent {
    task: TaskId,
    worker: WorkerId,
    thread: u32,
    attempt: u32,
    nbytes: u64,
    status: TaskStatus,
    /// `NONE`: not sampled.
    cpu_ns: u64,
    n_phases: u8,
}

/// A phase as buffered for the writer: 32 bytes, `NONE` for absent values.
#[derive(Clone, Copy)]
struct StoredPhase {
    start: u64,
    stop: u64,
    bytes: u64,
    peer: u32,
    action: Action,
}

/// The resources of a task that needs none.
static NO_RESOURCES: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();

const NONE: u64 = u64::MAX;
const NO_PEER: u32 = u32::MAX;

/// [`BATCH`] attempts from one worker thread: events, their phases back to back, and the rare
/// error messages by event index.
pub(crate) struct TaskBatch {
    events: Vec<StoredEvent>,
    phases: Vec<StoredPhase>,
    errors: Vec<(usize, std::sync::Arc<str>)>,
}

impl TaskBatch {
    fn with_capacity(events: usize) -> TaskBatch {
        TaskBatch {
            events: Vec::with_capacity(events),
            // Most attempts have 2-3 phases; growing past this is rare and amortized.
            phases: Vec::with_capacity(events * 3),
            errors: Vec::new(),
        }
    }
}

pub(crate) enum Message {
    /// Sent before any task of the graph can finish.
    Graph(u32, Graph),
    Tasks(TaskBatch),
    Memory(MemorySample),
    Event(Event),
}

/// The writer thread and the channel to it.
pub(crate) struct Recorder {
    tx: SyncSender<Message>,
    thread: JoinHandle<Result<u64, TraceError>>,
}

impl Recorder {
    pub fn start(path: PathBuf, header: Header, tap: Option<Tap>) -> Result<Recorder, TraceError> {
        let writer = TraceWriter::create(&path, &header)?;
        if let Some(tap) = &tap {
            tap.0.header(&header);
        }
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || {
                // Someone is watching live: the writer must keep up, not wait for idle CPU.
                if tap.is_none() {
                    lower_priority();
                }
                write_loop(writer, rx, tap)
            })
            .map_err(|cause| TraceError::Write {
                path: path.display().to_string(),
                cause,
            })?;
        Ok(Recorder { tx, thread })
    }

    pub fn sender(&self) -> SyncSender<Message> {
        self.tx.clone()
    }

    /// Waits for every record to be written; returns the number of task records.
    pub fn finish(self) -> Result<u64, TraceError> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|_| panic!("the trace writer thread panicked"))
    }
}

/// The writer runs only on CPU time the workers leave idle (`SCHED_IDLE`): it may lag during
/// a busy run and catches up at the end, so recording never slows the workers down.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on the calling thread (pid 0) with a valid parameter.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

fn write_loop(
    mut writer: TraceWriter<std::fs::File>,
    rx: Receiver<Message>,
    tap: Option<Tap>,
) -> Result<u64, TraceError> {
    let tap = tap.as_ref().map(|t| &*t.0);
    let mut graphs: HashMap<u32, Graph> = HashMap::new();
    let mut tasks = 0u64;
    // Reused for every record: the writer allocates nothing per task but the dependency list.
    let mut phases: Vec<Phase> = Vec::with_capacity(MAX_PHASES);
    let mut since_flush = 0usize;
    let mut cpu = GroupCpu::default();
    // The channel closes when the cluster and every worker thread are gone.
    for message in rx {
        match message {
            Message::Graph(id, graph) => {
                graphs.insert(id, graph);
            }
            Message::Tasks(batch) => {
                let mut errors = batch.errors.into_iter().peekable();
                let mut stored = batch.phases.iter();
                for (i, event) in batch.events.iter().enumerate() {
                    phases.clear();
                    phases.extend(
                        stored
                            .by_ref()
                            .take(event.n_phases as usize)
                            .map(|p| Phase {
                                action: p.action,
                                start: p.start,
                                stop: p.stop,
                                bytes: (p.bytes != NONE).then_some(p.bytes),
                                peer: (p.peer != NO_PEER).then_some(p.peer),
                            }),
                    );
                    let error = errors.next_if(|(at, _)| *at == i).map(|(_, e)| e);
                    let Some(graph) = graphs.get(&event.task.graph) else {
                        continue;
                    };
                    let spec = graph.task(event.task.index);
                    cpu.add(&spec.group, event.cpu_ns, &phases);
                    let deps: Vec<&traces::Key> = graph
                        .dependencies(event.task.index)
                        .map(|d| &graph.task(d).key)
                        .chain(spec.work.extra().into_iter().flat_map(|e| &e.external_deps))
                        .collect();
                    let record = TaskRecordRef {
                        key: &spec.key,
                        group: &spec.group,
                        worker: event.worker,
                        thread: event.thread,
                        status: event.status,
                        nbytes: event.nbytes,
                        inline_bytes: spec.work.inline_bytes(),
                        working_bytes: spec.work.working_bytes_at(event.attempt),
                        resources: spec.work.extra().map_or(&NO_RESOURCES, |e| &e.resources),
                        // The engine has no worker restrictions.
                        restricted_to: &[],
                        deps: &deps,
                        attempt: event.attempt,
                        error: error.as_deref(),
                        phases: &phases,
                    };
                    writer.write_task_ref(&record)?;
                    if let Some(tap) = tap {
                        tap.task(&record);
                    }
                    tasks += 1;
                }
                since_flush += batch.events.len();
            }
            Message::Memory(sample) => {
                if let Some(tap) = tap {
                    tap.memory(&sample);
                }
                writer.write(&Record::Memory(sample))?
            }
            Message::Event(event) => {
                if let Some(tap) = tap {
                    tap.event(&event);
                }
                writer.write(&Record::Event(event))?
            }
        }
        if let Some(tap) = tap {
            tap.flush();
        }
        // Keep the file readable while the run goes on (a crash loses little).
        if since_flush >= 16 * BATCH {
            writer.flush()?;
            since_flush = 0;
        }
    }
    for metrics in cpu.metrics() {
        if let Some(tap) = tap {
            tap.group_metrics(&metrics);
        }
        writer.write(&Record::GroupMetrics(metrics))?;
    }
    if let Some(tap) = tap {
        tap.flush();
    }
    writer.finish()?;
    Ok(tasks)
}

/// Per task group, the compute time of all its attempts and the CPU share of the sampled ones.
#[derive(Default)]
struct GroupCpu {
    groups: HashMap<String, CpuTotals>,
    /// The latest phase end seen: when the totals were complete.
    until: u64,
}

#[derive(Default)]
struct CpuTotals {
    compute_ns: u64,
    sampled_ns: u64,
    sampled_cpu_ns: u64,
}

impl GroupCpu {
    fn add(&mut self, group: &str, cpu_ns: u64, phases: &[Phase]) {
        let compute_ns: u64 = phases
            .iter()
            .filter(|p| p.action == Action::Compute)
            .map(|p| p.stop.saturating_sub(p.start))
            .sum();
        self.until = phases.iter().map(|p| p.stop).fold(self.until, u64::max);
        let totals = match self.groups.get_mut(group) {
            Some(totals) => totals,
            None => self.groups.entry(group.to_string()).or_default(),
        };
        totals.compute_ns = totals.compute_ns.saturating_add(compute_ns);
        if cpu_ns != NONE {
            totals.sampled_ns = totals.sampled_ns.saturating_add(compute_ns);
            totals.sampled_cpu_ns = totals.sampled_cpu_ns.saturating_add(cpu_ns);
        }
    }

    /// Dask's metrics for each group with a sample: its compute time split on and off the CPU
    /// by the sampled attempts' share. In group order.
    fn metrics(self) -> Vec<GroupMetrics> {
        let mut out: Vec<GroupMetrics> = self
            .groups
            .into_iter()
            .filter(|(_, t)| t.sampled_ns > 0)
            .map(|(group, t)| {
                let share = (t.sampled_cpu_ns as f64 / t.sampled_ns as f64).min(1.0);
                let seconds = t.compute_ns as f64 / 1e9;
                GroupMetrics {
                    time: self.until,
                    group,
                    metrics: [
                        (CPU_METRIC.to_string(), seconds * share),
                        (NONCPU_METRIC.to_string(), seconds * (1.0 - share)),
                    ]
                    .into(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }
}

/// A worker thread's buffer of finished attempts. Recording one copies it into vectors whose
/// capacity was reserved: no lock, no allocation.
pub(crate) struct ThreadRecorder {
    tx: Option<SyncSender<Message>>,
    batch: TaskBatch,
    /// Someone watches live: hand batches over at least every [`LIVE_FLUSH_NS`], not only
    /// when full.
    live: bool,
    /// Trace time of the last hand-over.
    flushed_at: u64,
    /// Trace time from which the next task's CPU time is measured.
    next_cpu_sample: u64,
}

/// How stale a live view may get: a tenth of a second is what a person sees as "now".
const LIVE_FLUSH_NS: u64 = 100_000_000;

impl ThreadRecorder {
    pub fn new(tx: Option<SyncSender<Message>>, live: bool) -> ThreadRecorder {
        let capacity = if tx.is_some() { BATCH } else { 0 };
        ThreadRecorder {
            tx,
            batch: TaskBatch::with_capacity(capacity),
            live,
            flushed_at: 0,
            next_cpu_sample: 0,
        }
    }

    /// The thread's CPU clock, when the task computing from `now` is to be measured (every
    /// [`CPU_SAMPLE_EVERY_NS`] of a thread's time, and only while recording).
    pub fn cpu_clock(&mut self, now: u64) -> Option<u64> {
        if self.tx.is_none() || now < self.next_cpu_sample {
            return None;
        }
        self.next_cpu_sample = now.saturating_add(CPU_SAMPLE_EVERY_NS);
        thread_cpu_ns()
    }

    /// Whether a live view waits for events this thread holds.
    pub fn holds_live_events(&self) -> bool {
        self.live && !self.batch.events.is_empty()
    }

    pub fn record(&mut self, event: TaskEvent) {
        if self.tx.is_none() {
            return;
        }
        let batch = &mut self.batch;
        if let Some(error) = event.error {
            batch.errors.push((batch.events.len(), error));
        }
        batch.events.push(StoredEvent {
            task: event.task,
            worker: event.worker,
            thread: event.thread,
            attempt: event.attempt,
            nbytes: event.nbytes,
            status: event.status,
            cpu_ns: event.cpu_ns.unwrap_or(NONE),
            n_phases: event.n_phases,
        });
        batch.phases.extend(
            event.phases[..event.n_phases as usize]
                .iter()
                .map(|p| StoredPhase {
                    start: p.start,
                    stop: p.stop,
                    bytes: p.bytes.unwrap_or(NONE),
                    peer: p.peer.unwrap_or(NO_PEER),
                    action: p.action,
                }),
        );
        let now = event.phases[..event.n_phases as usize]
            .iter()
            .map(|p| p.stop)
            .max()
            .unwrap_or(0);
        if batch.events.len() == BATCH || (self.live && now >= self.flushed_at + LIVE_FLUSH_NS) {
            self.flushed_at = now;
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if let Some(tx) = &self.tx
            && !self.batch.events.is_empty()
        {
            let full = std::mem::replace(&mut self.batch, TaskBatch::with_capacity(BATCH));
            // The writer is gone only after the cluster shut down: nothing to record then.
            let _ = tx.send(Message::Tasks(full));
        }
    }
}

impl Drop for ThreadRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The hot-path cost of recording, in nanoseconds per task attempt: a worker thread building
/// a typical event (queued + compute) and recording it, with a writer thread draining batches.
#[doc(hidden)]
pub fn recording_cost_ns(events: u64) -> f64 {
    let (tx, rx) = sync_channel::<Message>(QUEUE);
    let drain = std::thread::spawn(move || rx.into_iter().count());
    let mut recorder = ThreadRecorder::new(Some(tx), false);
    let origin = std::time::Instant::now();
    for i in 0..events {
        let now = origin.elapsed().as_nanos() as u64;
        let mut event = TaskEvent {
            task: TaskId {
                graph: 0,
                index: i as u32,
            },
            worker: 0,
            thread: 0,
            status: TaskStatus::Ok,
            attempt: 1,
            nbytes: 8,
            error: None,
            cpu_ns: recorder.cpu_clock(now),
            n_phases: 0,
            phases: [RawPhase::EMPTY; MAX_PHASES],
        };
        for action in [Action::Queued, Action::Compute] {
            event.push(RawPhase {
                action,
                start: now,
                stop: now,
                bytes: None,
                peer: None,
            });
        }
        recorder.record(event);
    }
    let elapsed = origin.elapsed().as_nanos() as f64;
    drop(recorder);
    let _ = drain.join();
    elapsed / events as f64
}
