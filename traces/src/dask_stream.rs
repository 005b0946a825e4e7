//! Import of Dask task streams: the JSON list users save from `client.get_task_stream()`
//! (record format in `shared/reference/dask.md`).
//!
//! Workers are not listed in a task stream, so they come from the records: one worker per
//! address seen (executing or serving a transfer), with as many threads as distinct thread ids
//! ran tasks on it. The whole list is read before the first record is returned, because the
//! header (the workers) depends on every record; task streams are bounded (the dashboard keeps
//! 100,000 records), so this stays small.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

use crate::error::{TraceError, describe_json_error};
use crate::key::Key;
use crate::model::{
    Action, Cluster, Header, MemoryFractions, Nanos, Phase, Record, TaskRecord, TaskStatus,
    WorkerId, WorkerSpec,
};

/// One task-stream record, as `get_task_stream()` gives it (also rebuilt from the rows of a
/// performance report).
#[derive(Deserialize)]
pub(crate) struct DaskRecord {
    pub key: Key,
    pub worker: String,
    #[serde(default)]
    pub thread: Option<u64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub nbytes: Option<u64>,
    #[serde(default)]
    pub startstops: Vec<DaskPhase>,
    /// Present on erred tasks (`exception_text` in recent distributed).
    #[serde(default)]
    pub exception_text: Option<String>,
}

/// Times in epoch seconds.
#[derive(Deserialize)]
pub(crate) struct DaskPhase {
    pub action: String,
    pub start: f64,
    pub stop: f64,
    #[serde(default)]
    pub source: Option<String>,
}

/// The imported trace: header and records sorted by start time.
pub struct Imported {
    pub header: Header,
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// Parses a whole task-stream file held in `bytes`.
pub fn import(bytes: &[u8], path: &str) -> Result<Imported, TraceError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: Vec<DaskRecord> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let line = e.inner().line() as u64;
        let path_text = e.path().to_string();
        // "[16].startstops[0].start" → "record 16: field "startstops[0].start""
        let (record, field) = split_index(&path_text);
        let detail = describe_json_error(e.inner(), field.unwrap_or("."));
        let message = match record {
            Some(i) if e.inner().is_data() => format!("task-stream record {i}: {detail}"),
            _ => detail,
        };
        TraceError::invalid(path, line, message)
    })?;
    de.end()
        .map_err(|e| TraceError::invalid(path, e.line() as u64, describe_json_error(&e, ".")))?;
    Ok(convert(raw, importer_name()))
}

/// Splits a leading `[N]` (the record's index) off a serde path.
fn split_index(path: &str) -> (Option<&str>, Option<&str>) {
    let Some(rest) = path.strip_prefix('[') else {
        return (None, None);
    };
    let Some((index, field)) = rest.split_once(']') else {
        return (None, None);
    };
    let field = field.strip_prefix('.').filter(|f| !f.is_empty());
    (Some(index), field)
}

pub(crate) fn convert(raw: Vec<DaskRecord>, producer: String) -> Imported {
    let mut warnings = Vec::new();
    let mut skipped_actions: BTreeMap<String, usize> = BTreeMap::new();

    // Workers and their threads, in address order so an import is deterministic.
    let mut threads: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for rec in &raw {
        let seen = threads.entry(rec.worker.as_str()).or_default();
        if let Some(thread) = rec.thread {
            seen.insert(thread);
        }
        for phase in &rec.startstops {
            if let Some(source) = &phase.source {
                threads.entry(source.as_str()).or_default();
            }
        }
    }
    let worker_ids: HashMap<&str, WorkerId> = threads
        .keys()
        .enumerate()
        .map(|(i, addr)| (*addr, i as WorkerId))
        .collect();
    let thread_index = |worker: &str, thread: Option<u64>| -> u32 {
        match thread {
            Some(t) => threads[worker].iter().position(|&x| x == t).unwrap_or(0) as u32,
            None => 0,
        }
    };

    let origin_s = raw
        .iter()
        .flat_map(|r| r.startstops.iter().map(|p| p.start))
        .fold(f64::INFINITY, f64::min);
    let origin_s = if origin_s.is_finite() { origin_s } else { 0.0 };
    let to_nanos = |t: f64| -> Nanos { ((t - origin_s) * 1e9).round().max(0.0) as Nanos };

    let mut tasks: Vec<TaskRecord> = Vec::with_capacity(raw.len());
    for rec in &raw {
        let mut phases = Vec::with_capacity(rec.startstops.len());
        for p in &rec.startstops {
            let Some(action) = parse_action(&p.action) else {
                *skipped_actions.entry(p.action.clone()).or_default() += 1;
                continue;
            };
            let start = to_nanos(p.start);
            // Dask shifts transfer times by the scheduler's clock delay; never let that invert.
            let stop = to_nanos(p.stop).max(start);
            phases.push(Phase {
                action,
                start,
                stop,
                bytes: None,
                peer: p.source.as_deref().map(|s| worker_ids[s]),
            });
        }
        let status = match rec.status.as_deref() {
            None | Some("OK") | Some("ok") | Some("memory") => TaskStatus::Ok,
            Some("cancelled") => TaskStatus::Cancelled,
            Some(_) => TaskStatus::Error,
        };
        tasks.push(TaskRecord {
            group: rec.key.group(),
            key: rec.key.clone(),
            worker: worker_ids[rec.worker.as_str()],
            thread: thread_index(&rec.worker, rec.thread),
            status,
            nbytes: rec.nbytes.unwrap_or(0),
            inline_bytes: 0,
            deps: Vec::new(),
            attempt: 1,
            error: rec.exception_text.clone(),
            phases,
        });
    }
    tasks.sort_by_key(|t| t.start().unwrap_or(0));

    for (action, count) in skipped_actions {
        warnings.push(format!(
            "skipped {count} phase(s) with unknown action \"{action}\""
        ));
    }
    let workers = threads
        .iter()
        .map(|(addr, seen)| WorkerSpec {
            id: worker_ids[addr],
            name: (*addr).to_string(),
            threads: seen.len().max(1) as u32,
            memory_limit: None,
            resources: BTreeMap::new(),
        })
        .collect();
    let header = Header::new(
        producer,
        (origin_s * 1e9) as i64,
        Cluster {
            workers,
            memory: MemoryFractions::default(),
        },
    );
    Imported {
        header,
        records: tasks.into_iter().map(Record::Task).collect(),
        warnings,
    }
}

fn parse_action(action: &str) -> Option<Action> {
    Some(match action {
        "compute" => Action::Compute,
        "transfer" => Action::Transfer,
        "deserialize" => Action::Deserialize,
        "disk-read" => Action::DiskRead,
        "disk-write" => Action::DiskWrite,
        "queued" => Action::Queued,
        _ => return None,
    })
}

/// The header's producer for imported traces.
pub(crate) fn importer_name() -> String {
    format!("imported by taskscope {}", env!("CARGO_PKG_VERSION"))
}
