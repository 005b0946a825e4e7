//! Conversions between the trace model and the wire messages. Model → wire is infallible;
//! wire → model checks what protobuf cannot (a key must be set, enums must be known).

use std::sync::Arc;

use traces::{
    Action, Cluster, Event, EventKind, FloatBits, GroupMetrics, GroupState, Header, Key, KeyPart,
    LiveState, MemoryFractions, MemorySample, Phase, RunningTask, TaskRecord, TaskRecordRef,
    TaskStatus, WorkerSpec,
};

use crate::v1;

/// Error messages longer than this are cut (at a character boundary) on the wire.
pub const MAX_ERROR_BYTES: usize = 64 * 1024;

/// A wire message that does not map to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} in an Observe message: {detail}")]
pub struct InvalidMessage {
    pub what: &'static str,
    pub detail: String,
}

fn invalid(what: &'static str, detail: impl Into<String>) -> InvalidMessage {
    InvalidMessage {
        what,
        detail: detail.into(),
    }
}

impl From<&Key> for v1::Key {
    fn from(key: &Key) -> v1::Key {
        let kind = match key {
            Key::Str(s) => v1::key::Kind::Str(s.to_string()),
            Key::Tuple(parts) => v1::key::Kind::Tuple(tuple_to_wire(parts)),
        };
        v1::Key { kind: Some(kind) }
    }
}

fn tuple_to_wire(parts: &[KeyPart]) -> v1::KeyTuple {
    v1::KeyTuple {
        parts: parts
            .iter()
            .map(|part| v1::KeyPart {
                kind: Some(match part {
                    KeyPart::Str(s) => v1::key_part::Kind::Str(s.to_string()),
                    KeyPart::Int(v) => v1::key_part::Kind::Int(*v),
                    KeyPart::Float(v) => v1::key_part::Kind::Float(v.get()),
                    KeyPart::Tuple(inner) => v1::key_part::Kind::Tuple(tuple_to_wire(inner)),
                }),
            })
            .collect(),
    }
}

impl TryFrom<&v1::Key> for Key {
    type Error = InvalidMessage;

    fn try_from(key: &v1::Key) -> Result<Key, InvalidMessage> {
        match &key.kind {
            Some(v1::key::Kind::Str(s)) => Ok(Key::Str(Arc::from(s.as_str()))),
            Some(v1::key::Kind::Tuple(t)) => Ok(Key::Tuple(tuple_from_wire(t)?)),
            None => Err(invalid("key", "neither a string nor a tuple")),
        }
    }
}

fn tuple_from_wire(tuple: &v1::KeyTuple) -> Result<Vec<KeyPart>, InvalidMessage> {
    tuple
        .parts
        .iter()
        .map(|part| match &part.kind {
            Some(v1::key_part::Kind::Str(s)) => Ok(KeyPart::Str(Arc::from(s.as_str()))),
            Some(v1::key_part::Kind::Int(v)) => Ok(KeyPart::Int(*v)),
            Some(v1::key_part::Kind::Float(v)) => Ok(KeyPart::Float(FloatBits::new(*v))),
            Some(v1::key_part::Kind::Tuple(t)) => Ok(KeyPart::Tuple(tuple_from_wire(t)?)),
            None => Err(invalid("key", "an empty tuple element")),
        })
        .collect()
}

fn key_from_wire(key: Option<&v1::Key>) -> Result<Key, InvalidMessage> {
    key.ok_or_else(|| invalid("key", "missing"))?.try_into()
}

impl From<Action> for v1::Action {
    fn from(action: Action) -> v1::Action {
        match action {
            Action::Queued => v1::Action::Queued,
            Action::Transfer => v1::Action::Transfer,
            Action::Deserialize => v1::Action::Deserialize,
            Action::Compute => v1::Action::Compute,
            Action::DiskWrite => v1::Action::DiskWrite,
            Action::DiskRead => v1::Action::DiskRead,
        }
    }
}

impl From<v1::Action> for Action {
    fn from(action: v1::Action) -> Action {
        match action {
            v1::Action::Queued => Action::Queued,
            v1::Action::Transfer => Action::Transfer,
            v1::Action::Deserialize => Action::Deserialize,
            v1::Action::Compute => Action::Compute,
            v1::Action::DiskWrite => Action::DiskWrite,
            v1::Action::DiskRead => Action::DiskRead,
        }
    }
}

impl From<TaskStatus> for v1::TaskStatus {
    fn from(status: TaskStatus) -> v1::TaskStatus {
        match status {
            TaskStatus::Ok => v1::TaskStatus::Ok,
            TaskStatus::Error => v1::TaskStatus::Error,
            TaskStatus::Cancelled => v1::TaskStatus::Cancelled,
            TaskStatus::Lost => v1::TaskStatus::Lost,
        }
    }
}

impl From<v1::TaskStatus> for TaskStatus {
    fn from(status: v1::TaskStatus) -> TaskStatus {
        match status {
            v1::TaskStatus::Ok => TaskStatus::Ok,
            v1::TaskStatus::Error => TaskStatus::Error,
            v1::TaskStatus::Cancelled => TaskStatus::Cancelled,
            v1::TaskStatus::Lost => TaskStatus::Lost,
        }
    }
}

impl From<&Phase> for v1::Phase {
    fn from(p: &Phase) -> v1::Phase {
        v1::Phase {
            action: v1::Action::from(p.action) as i32,
            start: p.start,
            stop: p.stop,
            bytes: p.bytes,
            peer: p.peer,
        }
    }
}

impl TryFrom<&v1::Phase> for Phase {
    type Error = InvalidMessage;

    fn try_from(p: &v1::Phase) -> Result<Phase, InvalidMessage> {
        let action = v1::Action::try_from(p.action)
            .map_err(|_| invalid("phase", format!("unknown action {}", p.action)))?;
        let mut phase = Phase {
            action: action.into(),
            start: p.start,
            stop: p.stop,
            bytes: p.bytes,
            peer: p.peer,
        };
        // As a trace file's phases are read: every view counts on `start <= stop`.
        phase.order().map_err(|why| invalid("phase", why))?;
        Ok(phase)
    }
}

/// Cuts `s` to at most `max` bytes without splitting a character.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl From<&TaskRecordRef<'_>> for v1::Task {
    fn from(t: &TaskRecordRef<'_>) -> v1::Task {
        v1::Task {
            key: Some(t.key.into()),
            group: t.group.to_string(),
            worker: t.worker,
            thread: t.thread,
            status: v1::TaskStatus::from(t.status) as i32,
            nbytes: t.nbytes,
            inline_bytes: t.inline_bytes,
            working_bytes: t.working_bytes,
            resources: t.resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            restricted_to: t.restricted_to.to_vec(),
            deps: t.deps.iter().map(|&d| d.into()).collect(),
            attempt: t.attempt,
            error: t.error.map(|e| truncate(e, MAX_ERROR_BYTES).to_string()),
            phases: t.phases.iter().map(v1::Phase::from).collect(),
            more_deps_follow: false,
        }
    }
}

impl From<&TaskRecord> for v1::Task {
    fn from(t: &TaskRecord) -> v1::Task {
        let deps: Vec<&Key> = t.deps.iter().collect();
        v1::Task::from(&t.borrowed(&deps))
    }
}

impl TryFrom<&v1::Task> for TaskRecord {
    type Error = InvalidMessage;

    fn try_from(t: &v1::Task) -> Result<TaskRecord, InvalidMessage> {
        let key = key_from_wire(t.key.as_ref())?;
        let status = v1::TaskStatus::try_from(t.status)
            .map_err(|_| invalid("task", format!("unknown status {}", t.status)))?;
        let group = if t.group.is_empty() {
            key.group()
        } else {
            t.group.clone()
        };
        Ok(TaskRecord {
            key,
            group,
            worker: t.worker,
            thread: t.thread,
            status: status.into(),
            nbytes: t.nbytes,
            inline_bytes: t.inline_bytes,
            working_bytes: t.working_bytes,
            resources: t.resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            restricted_to: t.restricted_to.clone(),
            deps: t.deps.iter().map(Key::try_from).collect::<Result<_, _>>()?,
            // proto3 has no "absent": 0 means the producer did not say.
            attempt: t.attempt.max(1),
            error: t.error.clone(),
            phases: t
                .phases
                .iter()
                .map(Phase::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&MemorySample> for v1::MemorySample {
    fn from(m: &MemorySample) -> v1::MemorySample {
        v1::MemorySample {
            time: m.time,
            worker: m.worker,
            managed: m.managed,
            unmanaged: m.unmanaged,
            spilled: m.spilled,
            cpu: m.cpu,
        }
    }
}

impl From<&v1::MemorySample> for MemorySample {
    fn from(m: &v1::MemorySample) -> MemorySample {
        MemorySample {
            time: m.time,
            worker: m.worker,
            managed: m.managed,
            unmanaged: m.unmanaged,
            spilled: m.spilled,
            cpu: m.cpu,
        }
    }
}

impl From<&WorkerSpec> for v1::WorkerSpec {
    fn from(w: &WorkerSpec) -> v1::WorkerSpec {
        v1::WorkerSpec {
            id: w.id,
            name: w.name.clone(),
            threads: w.threads,
            memory_limit: w.memory_limit,
            resources: w.resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            host: w.host.clone(),
            host_cores: w.host_cores,
        }
    }
}

impl From<&v1::WorkerSpec> for WorkerSpec {
    fn from(w: &v1::WorkerSpec) -> WorkerSpec {
        WorkerSpec {
            id: w.id,
            name: w.name.clone(),
            threads: w.threads,
            memory_limit: w.memory_limit,
            resources: w.resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            host: w.host.clone(),
            host_cores: w.host_cores,
        }
    }
}

impl From<&Event> for v1::Event {
    fn from(e: &Event) -> v1::Event {
        use v1::event::Kind;
        let kind = match &e.kind {
            EventKind::WorkerAdded { worker } => Kind::WorkerAdded(worker.into()),
            EventKind::WorkerRemoved { worker } => Kind::WorkerRemoved(*worker),
            EventKind::WorkerKilled { worker, reason } => Kind::WorkerKilled(v1::WorkerKilled {
                worker: *worker,
                reason: reason.clone(),
            }),
            EventKind::WorkerPaused { worker } => Kind::WorkerPaused(*worker),
            EventKind::WorkerResumed { worker } => Kind::WorkerResumed(*worker),
            EventKind::TaskRetried { key, attempt } => Kind::TaskRetried(v1::TaskRetried {
                key: Some(key.into()),
                attempt: *attempt,
            }),
            EventKind::GraphSubmitted { tasks, client } => {
                Kind::GraphSubmitted(v1::GraphSubmitted {
                    tasks: *tasks,
                    client: client.clone(),
                })
            }
            EventKind::DataAdded {
                key,
                workers,
                nbytes,
            } => Kind::DataAdded(v1::DataAdded {
                key: Some(key.into()),
                workers: workers.clone(),
                nbytes: *nbytes,
            }),
            EventKind::Warning { message, .. } => Kind::Warning(message.clone()),
        };
        let (warning_worker, warning_source) = match &e.kind {
            EventKind::Warning { worker, source, .. } => (*worker, source.clone()),
            _ => (None, None),
        };
        v1::Event {
            time: e.time,
            kind: Some(kind),
            warning_worker,
            warning_source,
        }
    }
}

impl TryFrom<&v1::Event> for Event {
    type Error = InvalidMessage;

    fn try_from(e: &v1::Event) -> Result<Event, InvalidMessage> {
        use v1::event::Kind;
        let kind = match e.kind.as_ref().ok_or_else(|| invalid("event", "no kind"))? {
            Kind::WorkerAdded(w) => EventKind::WorkerAdded { worker: w.into() },
            Kind::WorkerRemoved(w) => EventKind::WorkerRemoved { worker: *w },
            Kind::WorkerKilled(k) => EventKind::WorkerKilled {
                worker: k.worker,
                reason: k.reason.clone(),
            },
            Kind::WorkerPaused(w) => EventKind::WorkerPaused { worker: *w },
            Kind::WorkerResumed(w) => EventKind::WorkerResumed { worker: *w },
            Kind::TaskRetried(r) => EventKind::TaskRetried {
                key: key_from_wire(r.key.as_ref())?,
                attempt: r.attempt,
            },
            Kind::GraphSubmitted(g) => EventKind::GraphSubmitted {
                tasks: g.tasks,
                client: g.client.clone(),
            },
            Kind::DataAdded(d) => EventKind::DataAdded {
                key: key_from_wire(d.key.as_ref())?,
                workers: d.workers.clone(),
                nbytes: d.nbytes,
            },
            Kind::Warning(message) => EventKind::Warning {
                message: message.clone(),
                worker: e.warning_worker,
                source: e.warning_source.clone(),
            },
        };
        Ok(Event { time: e.time, kind })
    }
}

impl From<&GroupMetrics> for v1::GroupMetrics {
    fn from(g: &GroupMetrics) -> v1::GroupMetrics {
        v1::GroupMetrics {
            time: g.time,
            group: g.group.clone(),
            metrics: g.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

impl From<&v1::GroupMetrics> for GroupMetrics {
    fn from(g: &v1::GroupMetrics) -> GroupMetrics {
        GroupMetrics {
            time: g.time,
            group: g.group.clone(),
            metrics: g.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

impl From<&Header> for v1::Header {
    fn from(h: &Header) -> v1::Header {
        let m = h.cluster.memory;
        v1::Header {
            producer: h.producer.clone(),
            origin_unix_ns: h.origin_unix_ns,
            cluster: Some(v1::Cluster {
                workers: h.cluster.workers.iter().map(v1::WorkerSpec::from).collect(),
                memory: Some(v1::MemoryFractions {
                    target: m.target,
                    spill: m.spill,
                    pause: m.pause,
                    terminate: m.terminate,
                }),
            }),
        }
    }
}

impl From<&v1::Header> for Header {
    fn from(h: &v1::Header) -> Header {
        let cluster = h.cluster.clone().unwrap_or_default();
        let memory = cluster
            .memory
            .map(|m| MemoryFractions {
                target: m.target,
                spill: m.spill,
                pause: m.pause,
                terminate: m.terminate,
            })
            .unwrap_or_default();
        Header::new(
            h.producer.clone(),
            h.origin_unix_ns,
            Cluster {
                workers: cluster.workers.iter().map(WorkerSpec::from).collect(),
                memory,
            },
        )
    }
}

/// Groups one [`v1::Progress`] lists; see the schema.
pub const MAX_PROGRESS_GROUPS: usize = 2_000;
/// Running tasks one [`v1::Progress`] lists.
pub const MAX_PROGRESS_RUNNING: usize = 10_000;
/// Dependency groups listed per group.
pub const MAX_GROUP_DEPENDENCIES: usize = 64;

impl From<&LiveState> for v1::Progress {
    /// Past the caps, keeps the groups with tasks in flight, then the most recent ones.
    fn from(s: &LiveState) -> v1::Progress {
        let mut groups: Vec<&GroupState> = s.groups.iter().collect();
        let mut groups_omitted = 0;
        if groups.len() > MAX_PROGRESS_GROUPS {
            let mut order: Vec<usize> = (0..groups.len()).collect();
            order.sort_by_key(|&i| {
                let g = groups[i];
                (
                    std::cmp::Reverse(g.running + g.waiting > 0),
                    std::cmp::Reverse(i),
                )
            });
            let mut keep: Vec<usize> = order[..MAX_PROGRESS_GROUPS].to_vec();
            keep.sort_unstable();
            groups_omitted = (groups.len() - keep.len()) as u32;
            groups = keep.into_iter().map(|i| groups[i]).collect();
        }
        v1::Progress {
            time: s.time,
            groups: groups
                .into_iter()
                .map(|g| v1::GroupProgress {
                    name: g.name.to_string(),
                    waiting: g.waiting,
                    running: g.running,
                    done: g.done,
                    erred: g.erred,
                    dependencies: g
                        .dependencies
                        .iter()
                        .take(MAX_GROUP_DEPENDENCIES)
                        .map(|d| d.to_string())
                        .collect(),
                })
                .collect(),
            groups_omitted,
            running: s
                .running
                .iter()
                .take(MAX_PROGRESS_RUNNING)
                .map(|r| v1::RunningTask {
                    key: Some((&r.key).into()),
                    group: r.group.to_string(),
                    worker: r.worker,
                    thread: r.thread,
                    start: r.start,
                })
                .collect(),
            running_omitted: s.running.len().saturating_sub(MAX_PROGRESS_RUNNING) as u32,
            paused: s.paused,
        }
    }
}

impl TryFrom<&v1::Progress> for LiveState {
    type Error = InvalidMessage;

    fn try_from(p: &v1::Progress) -> Result<LiveState, InvalidMessage> {
        Ok(LiveState {
            time: p.time,
            paused: p.paused,
            groups: p
                .groups
                .iter()
                .map(|g| GroupState {
                    name: Arc::from(g.name.as_str()),
                    waiting: g.waiting,
                    running: g.running,
                    done: g.done,
                    erred: g.erred,
                    dependencies: g
                        .dependencies
                        .iter()
                        .map(|d| Arc::from(d.as_str()))
                        .collect(),
                })
                .collect(),
            running: p
                .running
                .iter()
                .map(|r| {
                    let key = key_from_wire(r.key.as_ref())?;
                    Ok(RunningTask {
                        group: if r.group.is_empty() {
                            Arc::from(key.group())
                        } else {
                            Arc::from(r.group.as_str())
                        },
                        key,
                        worker: r.worker,
                        thread: r.thread,
                        start: r.start,
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }
}
