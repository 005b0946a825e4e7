//! The event model: what a trace says about a run.
//!
//! Times are integer nanoseconds since the trace's origin ([`Header::origin_unix_ns`]); sizes are
//! bytes. Workers are referred to by their numeric [`WorkerId`], declared in the header or by a
//! later [`EventKind::WorkerAdded`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::Key;

/// The name every native trace header carries in its `format` field.
pub const FORMAT_NAME: &str = "taskscope-trace";

/// The format version this build writes. Readers accept any minor version of the same major.
///
/// 1.1 added the memory sample's `cpu`, the `group-metrics` record, and the warning event's
/// `worker` and `source`; 1.2 the task's `working_bytes`, `resources` and `restricted_to`, and
/// the `data-added` event; 1.3 the worker's `host` and `host_cores`. A 1.x reader skips record kinds, event types and enum values it does not know (with a
/// warning), so newer minor versions stay readable.
pub const FORMAT_VERSION: FormatVersion = FormatVersion { major: 1, minor: 3 };

/// Index of a worker in the trace (not its address: that is [`WorkerSpec::name`]).
pub type WorkerId = u32;

/// Nanoseconds since the trace origin.
pub type Nanos = u64;

/// `MAJOR.MINOR`, written as a string (`"1.0"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FormatVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for FormatVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.split_once('.').unwrap_or((s, "0"));
        let parse = |part: &str| {
            part.parse::<u32>()
                .map_err(|_| format!("invalid format version {s:?}: expected MAJOR.MINOR"))
        };
        Ok(FormatVersion {
            major: parse(major)?,
            minor: parse(minor)?,
        })
    }
}

impl Serialize for FormatVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Line 1 of every native trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: FormatVersion,
    /// What wrote the trace: `taskscope-engine 0.1.0`, `dask 2026.8.0`, an importer…
    pub producer: String,
    /// Wall-clock time of t = 0, in nanoseconds since the Unix epoch.
    pub origin_unix_ns: i64,
    pub cluster: Cluster,
}

impl Header {
    /// A header for the current format version.
    pub fn new(producer: impl Into<String>, origin_unix_ns: i64, cluster: Cluster) -> Header {
        Header {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            producer: producer.into(),
            origin_unix_ns,
            cluster,
        }
    }
}

/// The cluster as it was when the trace started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    #[serde(default)]
    pub workers: Vec<WorkerSpec>,
    #[serde(default)]
    pub memory: MemoryFractions,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub id: WorkerId,
    /// Address or name, e.g. `tcp://127.0.0.1:39245`.
    pub name: String,
    pub threads: u32,
    /// Bytes; absent when the worker has no limit or it is unknown (Dask task streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// Abstract resources the worker declares, e.g. `{"GPU": 1}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, f64>,
    /// The machine it runs on (Dask: the address's host); workers naming the same host share
    /// its cores. Since format 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// CPU cores of that host, when known (the engine's own; Dask: the scheduler's, for workers
    /// on its host). Since format 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cores: Option<u32>,
}

/// Dask's `distributed.worker.memory.*` fractions of the memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryFractions {
    pub target: f64,
    pub spill: f64,
    pub pause: f64,
    pub terminate: f64,
}

impl Default for MemoryFractions {
    /// Dask's defaults (`distributed/distributed.yaml`, `distributed.worker.memory.*`).
    fn default() -> Self {
        MemoryFractions {
            target: 0.60,
            spill: 0.70,
            pause: 0.80,
            terminate: 0.95,
        }
    }
}

/// Everything after the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Task(TaskRecord),
    Memory(MemorySample),
    Event(Event),
    GroupMetrics(GroupMetrics),
}

/// One attempt at running one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub key: Key,
    /// Dask's task prefix (`key_split` of the key). Derived from the key when absent in the file.
    #[serde(default)]
    pub group: String,
    pub worker: WorkerId,
    /// Index of the thread within its worker (0-based).
    #[serde(default)]
    pub thread: u32,
    #[serde(default)]
    pub status: TaskStatus,
    /// Size of the result.
    #[serde(default)]
    pub nbytes: u64,
    /// Size of the task's inline arguments: what `scatter` would have avoided sending.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inline_bytes: u64,
    /// Memory the attempt allocated while it ran, beyond its inputs and result (Dask's
    /// unmanaged memory): what can pause or kill a worker. 0 when the producer cannot tell
    /// (Dask does not measure it per task).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub working_bytes: u64,
    /// Abstract resources the task required of its worker (Dask's `resources={"GPU": 1}`):
    /// only workers that have them may run it, as many at once as they have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, f64>,
    /// The workers it was restricted to (Dask's `workers=` without `allow_other_workers`);
    /// empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restricted_to: Vec<WorkerId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<Key>,
    /// 1 for the first attempt; a retry or a recomputation after a worker death counts up.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    /// The error message when `status` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub phases: Vec<Phase>,
}

/// A [`TaskRecord`] borrowed from a producer's own structures, so a recorder can write one
/// without building (allocating) the owned record. Serializes exactly like `TaskRecord`.
#[derive(Clone, Debug, Serialize)]
pub struct TaskRecordRef<'a> {
    pub key: &'a Key,
    pub group: &'a str,
    pub worker: WorkerId,
    pub thread: u32,
    pub status: TaskStatus,
    pub nbytes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub inline_bytes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub working_bytes: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: &'a BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "<[WorkerId]>::is_empty")]
    pub restricted_to: &'a [WorkerId],
    #[serde(skip_serializing_if = "<[&Key]>::is_empty")]
    pub deps: &'a [&'a Key],
    #[serde(skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub phases: &'a [Phase],
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(v: &u32) -> bool {
    *v == 1
}

impl TaskRecord {
    /// The record borrowed, for code that takes [`TaskRecordRef`]s; `deps` is
    /// `self.deps.iter().collect()` (the borrowed form lists references).
    pub fn borrowed<'a>(&'a self, deps: &'a [&'a Key]) -> TaskRecordRef<'a> {
        TaskRecordRef {
            key: &self.key,
            group: &self.group,
            worker: self.worker,
            thread: self.thread,
            status: self.status,
            nbytes: self.nbytes,
            inline_bytes: self.inline_bytes,
            working_bytes: self.working_bytes,
            resources: &self.resources,
            restricted_to: &self.restricted_to,
            deps,
            attempt: self.attempt,
            error: self.error.as_deref(),
            phases: &self.phases,
        }
    }

    /// Earliest phase start, if the task has phases.
    pub fn start(&self) -> Option<Nanos> {
        self.phases.iter().map(|p| p.start).min()
    }

    /// Latest phase stop, if the task has phases.
    pub fn stop(&self) -> Option<Nanos> {
        self.phases.iter().map(|p| p.stop).max()
    }

    /// Total time spent in phases of `action`.
    pub fn time_in(&self, action: Action) -> Nanos {
        self.phases
            .iter()
            .filter(|p| p.action == action)
            .map(Phase::duration)
            .fold(0, Nanos::saturating_add)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    #[default]
    Ok,
    Error,
    Cancelled,
    /// The worker holding or running it died.
    Lost,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Ok,
        TaskStatus::Error,
        TaskStatus::Cancelled,
        TaskStatus::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Ok => "ok",
            TaskStatus::Error => "error",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Lost => "lost",
        }
    }
}

/// One stretch of a task's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub action: Action,
    pub start: Nanos,
    pub stop: Nanos,
    /// Bytes moved: transferred, (de)serialized, written to or read from disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// For `transfer`: the worker the data came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<WorkerId>,
}

impl Phase {
    /// How far a phase's stop may precede its start and still be read, as a phase of no
    /// length: a worker's wall clock stepped back mid-phase (NTP steps a clock that is more
    /// than 128 ms off rather than slewing it). Further back, the phase is refused as corrupt:
    /// every reader of a trace counts on `start <= stop`.
    pub const MAX_CLOCK_STEP: Nanos = 60_000_000_000;

    pub fn duration(&self) -> Nanos {
        self.stop.saturating_sub(self.start)
    }

    /// Makes a phase that stops a little before it starts one of no length; refuses one that
    /// stops more than [`Phase::MAX_CLOCK_STEP`] before it starts, saying why.
    pub fn order(&mut self) -> Result<(), String> {
        if self.stop >= self.start {
            return Ok(());
        }
        let back = self.start - self.stop;
        if back > Phase::MAX_CLOCK_STEP {
            return Err(stopped_before_start(back as f64 / 1e9));
        }
        self.stop = self.start;
        Ok(())
    }
}

/// Why a phase that stops `seconds` before it starts is refused.
pub(crate) fn stopped_before_start(seconds: f64) -> String {
    format!(
        "the phase stops {} s before it starts (at most {} s is read, as a clock stepped back)",
        crate::dask_stream::number_text(seconds),
        Phase::MAX_CLOCK_STEP / 1_000_000_000
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Ready, waiting for a thread.
    Queued,
    /// Fetching an input from another worker.
    Transfer,
    /// Unpickling large inline arguments or received data.
    Deserialize,
    Compute,
    /// Spilling to disk.
    DiskWrite,
    /// Reading a spilled value back.
    DiskRead,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Queued,
        Action::Transfer,
        Action::Deserialize,
        Action::Compute,
        Action::DiskWrite,
        Action::DiskRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Queued => "queued",
            Action::Transfer => "transfer",
            Action::Deserialize => "deserialize",
            Action::Compute => "compute",
            Action::DiskWrite => "disk-write",
            Action::DiskRead => "disk-read",
        }
    }

    /// Position in [`Action::ALL`], for per-action arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the phase occupies one of the worker's threads (Dask runs transfers on the event
    /// loop, and a queued task has no thread yet).
    pub fn occupies_thread(self) -> bool {
        !matches!(self, Action::Queued | Action::Transfer)
    }
}

/// Time, bytes and count of phases per [`Action`]: the one per-phase accumulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActionTotals {
    pub ns: [Nanos; 6],
    /// Bytes of the phases that recorded theirs.
    pub bytes: [u64; 6],
    pub count: [u64; 6],
}

impl ActionTotals {
    pub fn add(&mut self, phase: &Phase) {
        let i = phase.action.index();
        self.ns[i] = self.ns[i].saturating_add(phase.duration());
        self.bytes[i] = self.bytes[i].saturating_add(phase.bytes.unwrap_or(0));
        self.count[i] += 1;
    }

    pub fn merge(&mut self, other: &ActionTotals) {
        for i in 0..Action::ALL.len() {
            self.ns[i] = self.ns[i].saturating_add(other.ns[i]);
            self.bytes[i] = self.bytes[i].saturating_add(other.bytes[i]);
            self.count[i] += other.count[i];
        }
    }

    pub fn ns(&self, action: Action) -> Nanos {
        self.ns[action.index()]
    }

    pub fn bytes(&self, action: Action) -> u64 {
        self.bytes[action.index()]
    }

    pub fn count(&self, action: Action) -> u64 {
        self.count[action.index()]
    }

    /// Time in phases that occupy a thread or move inputs: everything but `queued`.
    pub fn task_ns(&self) -> Nanos {
        Action::ALL
            .iter()
            .filter(|a| **a != Action::Queued)
            .map(|a| self.ns(*a))
            .fold(0, Nanos::saturating_add)
    }
}

/// Worker memory (and CPU use) at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    pub time: Nanos,
    pub worker: WorkerId,
    /// Results whose size is known (Dask's "managed").
    pub managed: u64,
    /// Process memory minus managed.
    #[serde(default)]
    pub unmanaged: u64,
    /// On disk.
    #[serde(default)]
    pub spilled: u64,
    /// CPU use of the worker process in cores (1.0 = one core busy), as its latest heartbeat
    /// reported it (Dask: `WorkerState.metrics["cpu"] / 100`). Since format 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
}

/// Dask's fine performance metrics for one task group, cumulative since recording started and
/// summed over workers (`Scheduler.cumulative_worker_metrics`): `"execute/thread-cpu/seconds"`,
/// `"execute/thread-noncpu/seconds"`, … A later record for the same group supersedes an
/// earlier one. Since format 1.1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMetrics {
    pub time: Nanos,
    /// The task group (Dask's prefix); empty for metrics tied to no group.
    pub group: String,
    pub metrics: BTreeMap<String, f64>,
}

impl GroupMetrics {
    /// A metric by name, `0.0` when absent.
    pub fn get(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(0.0)
    }
}

/// Something that happened to the cluster rather than to one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time: Nanos,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Declares [`EventKind`] and, from the same list, `EventFields`: the same variants tagged
/// externally (`{"worker-paused": {"worker": 0}}`), which the native reader deserializes so that
/// an error names its field. `serde_path_to_error` cannot see inside an internally tagged enum:
/// serde buffers its fields before it knows the variant (dtolnay/path-to-error#1).
macro_rules! event_kinds {
    (
        $(#[$meta:meta])*
        pub enum EventKind {
            $(
                $(#[$vmeta:meta])*
                $variant:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? }
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum EventKind {
            $( $(#[$vmeta])* $variant { $( $(#[$fmeta])* $field: $ty ),* } ),*
        }

        /// [`EventKind`] tagged externally, for deserializing with paths.
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub(crate) enum EventFields {
            $( $variant { $( $(#[$fmeta])* $field: $ty ),* } ),*
        }

        impl From<EventFields> for EventKind {
            fn from(fields: EventFields) -> EventKind {
                match fields {
                    $(
                        EventFields::$variant { $($field),* } => EventKind::$variant { $($field),* }
                    ),*
                }
            }
        }
    };
}

event_kinds! {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    pub enum EventKind {
        WorkerAdded {
            worker: WorkerSpec,
        },
        WorkerRemoved {
            worker: WorkerId,
        },
        /// The worker died (memory over the terminate fraction, a crash…); its results are lost.
        WorkerKilled {
            worker: WorkerId,
            reason: String,
        },
        WorkerPaused {
            worker: WorkerId,
        },
        WorkerResumed {
            worker: WorkerId,
        },
        TaskRetried {
            key: Key,
            attempt: u32,
        },
        /// The client submitted a graph: gaps between these tell client-bound idle time apart
        /// from scheduler-bound idle time.
        GraphSubmitted {
            tasks: u64,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            client: Option<String>,
        },
        /// Workers held a result the trace has no task for (`client.scatter`, or computed
        /// before recording began), first seen as a recorded task's input. Since format 1.2.
        DataAdded {
            key: Key,
            /// Where it was held (trace worker ids).
            workers: Vec<WorkerId>,
            nbytes: u64,
        },
        /// A warning from the producer or, since format 1.1, one of Dask's own log warnings.
        Warning {
            message: String,
            /// The worker it came from, if any.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            worker: Option<WorkerId>,
            /// The logger that wrote it, e.g. `distributed.worker.memory`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            source: Option<String>,
        },
    }
}

impl EventKind {
    /// Every `type` tag this build knows.
    pub const NAMES: [&'static str; 9] = [
        "worker-added",
        "worker-removed",
        "worker-killed",
        "worker-paused",
        "worker-resumed",
        "task-retried",
        "graph-submitted",
        "data-added",
        "warning",
    ];

    /// The `type` tag as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorkerAdded { .. } => "worker-added",
            EventKind::WorkerRemoved { .. } => "worker-removed",
            EventKind::WorkerKilled { .. } => "worker-killed",
            EventKind::WorkerPaused { .. } => "worker-paused",
            EventKind::WorkerResumed { .. } => "worker-resumed",
            EventKind::TaskRetried { .. } => "task-retried",
            EventKind::GraphSubmitted { .. } => "graph-submitted",
            EventKind::DataAdded { .. } => "data-added",
            EventKind::Warning { .. } => "warning",
        }
    }
}
