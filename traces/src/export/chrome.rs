//! Chrome trace / Perfetto JSON (the Trace Event Format): one process per worker, one thread
//! per worker thread (named with `M` events), an `X` event per phase, `C` counters for memory,
//! flow events (`s` → `f`) from a transfer's source worker to the task that needed it, and
//! instant events for cluster events. Written as the trace is read: memory stays flat.

use std::collections::HashSet;
use std::io::{self, Write};

use serde_json::json;

use crate::error::TraceError;
use crate::model::{Action, EventKind, Record, WorkerId};
use crate::open::TraceReader;

/// Writes `trace` to `out`; returns the number of trace events written. The reader's warnings
/// (a truncated last line…) are complete afterwards, for the caller to print.
pub fn write_chrome_trace(
    trace: &mut TraceReader,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut writer = EventWriter {
        out,
        count: 0,
        named: HashSet::new(),
    };
    writer.raw(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
    for w in &trace.header().cluster.workers {
        writer.process(w.id, &w.name)?;
    }
    let mut flows = 0u64;
    for record in &mut *trace {
        match record? {
            Record::Task(task) => {
                writer.thread(task.worker, task.thread)?;
                let key = task.key.to_string();
                for phase in &task.phases {
                    let mut args =
                        json!({"key": key, "group": task.group, "status": task.status.as_str()});
                    if let Some(bytes) = phase.bytes {
                        args["bytes"] = json!(bytes);
                    }
                    if let Some(peer) = phase.peer {
                        args["from_worker"] = json!(peer);
                    }
                    let name = match phase.action {
                        Action::Compute => task.group.clone(),
                        other => format!("{} {}", other.as_str(), task.group),
                    };
                    writer.event(json!({
                        "name": name,
                        "cat": phase.action.as_str(),
                        "ph": "X",
                        "ts": micros(phase.start),
                        "dur": micros(phase.duration()),
                        "pid": task.worker,
                        "tid": task.thread,
                        "args": args,
                    }))?;
                    if let (Action::Transfer, Some(peer)) = (phase.action, phase.peer) {
                        flows += 1;
                        writer.thread(peer, 0)?;
                        writer.event(json!({
                            "name": "transfer", "cat": "transfer", "ph": "s", "id": flows,
                            "ts": micros(phase.start), "pid": peer, "tid": 0,
                        }))?;
                        writer.event(json!({
                            "name": "transfer", "cat": "transfer", "ph": "f", "bp": "e",
                            "id": flows, "ts": micros(phase.start), "pid": task.worker,
                            "tid": task.thread,
                        }))?;
                    }
                }
            }
            Record::Memory(sample) => {
                writer.event(json!({
                    "name": "memory",
                    "ph": "C",
                    "ts": micros(sample.time),
                    "pid": sample.worker,
                    "args": {
                        "managed": sample.managed,
                        "unmanaged": sample.unmanaged,
                        "spilled": sample.spilled,
                    },
                }))?;
                if let Some(cpu) = sample.cpu {
                    writer.event(json!({
                        "name": "cpu (cores)", "ph": "C", "ts": micros(sample.time),
                        "pid": sample.worker, "args": { "cpu": cpu },
                    }))?;
                }
            }
            // Cumulative per-group totals: no place on a timeline.
            Record::GroupMetrics(_) => {}
            Record::Event(event) => {
                if let EventKind::WorkerAdded { worker } = &event.kind {
                    writer.process(worker.id, &worker.name)?;
                }
                writer.event(json!({
                    "name": event.kind.name(),
                    "ph": "i",
                    "s": "g",
                    "ts": micros(event.time),
                    "pid": 0,
                    "tid": 0,
                    "args": serde_json::to_value(&event.kind).unwrap_or_default(),
                }))?;
            }
        }
    }
    writer.raw(b"\n]}\n")?;
    Ok(writer.count)
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

struct EventWriter<'a> {
    out: &'a mut dyn Write,
    count: u64,
    /// Threads already named.
    named: HashSet<(WorkerId, u32)>,
}

impl EventWriter<'_> {
    fn raw(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.out.write_all(bytes).map_err(ExportError::Write)
    }

    fn event(&mut self, event: serde_json::Value) -> Result<(), ExportError> {
        if self.count > 0 {
            self.raw(b",\n")?;
        }
        serde_json::to_writer(&mut *self.out, &event)
            .map_err(|e| ExportError::Write(io::Error::from(e)))?;
        self.count += 1;
        Ok(())
    }

    fn process(&mut self, worker: WorkerId, name: &str) -> Result<(), ExportError> {
        self.event(json!({
            "name": "process_name", "ph": "M", "pid": worker,
            "args": {"name": format!("worker {worker} ({name})")},
        }))?;
        self.event(json!({
            "name": "process_sort_index", "ph": "M", "pid": worker,
            "args": {"sort_index": worker},
        }))
    }

    fn thread(&mut self, worker: WorkerId, thread: u32) -> Result<(), ExportError> {
        if !self.named.insert((worker, thread)) {
            return Ok(());
        }
        self.event(json!({
            "name": "thread_name", "ph": "M", "pid": worker, "tid": thread,
            "args": {"name": format!("thread {thread}")},
        }))
    }
}

/// Reading the trace or writing the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("cannot write: {0}")]
    Write(io::Error),
}
