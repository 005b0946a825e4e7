//! Import of Dask task streams: the JSON list users save from `client.get_task_stream()`
//! (the record format of `distributed/diagnostics/task_stream.py`).
//!
//! Workers are not listed in a task stream, so they come from the records: one worker per
//! address seen (executing or serving a transfer), with as many threads as distinct thread ids
//! ran tasks on it. The whole list is read before the first record is returned, because the
//! header (the workers) depends on every record; task streams are bounded (the dashboard keeps
//! 100,000 records), and the input is refused past the import limit ([`crate::limit`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufReader, Read};

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::error::{TraceError, describe_json_error};
use crate::key::Key;
use crate::limit::Limited;
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
    /// Borrowed for the report importer's rows (no string per phase).
    pub action: Cow<'static, str>,
    #[serde(deserialize_with = "instant")]
    pub start: f64,
    #[serde(deserialize_with = "instant")]
    pub stop: f64,
    #[serde(default)]
    pub source: Option<String>,
}

/// The latest instant a trace holds, in seconds since the Unix epoch: its origin is `i64`
/// nanoseconds since the epoch ([`Header::origin_unix_ns`]), which end in April 2262. Every
/// instant in `0..=LATEST_INSTANT_S` is also within `u64` nanoseconds of every other.
pub(crate) const LATEST_INSTANT_S: f64 = i64::MAX as f64 / 1e9;

/// Checks that `value`, in units of which `per_second` make a second (1 for seconds, 1e3 for
/// milliseconds; `unit` names them), since the Unix epoch, is an instant a trace can hold.
pub(crate) fn check_instant(value: f64, per_second: f64, unit: &str) -> Result<(), String> {
    if (0.0..=LATEST_INSTANT_S).contains(&(value / per_second)) {
        return Ok(());
    }
    Err(format!(
        "{} {unit} is not an instant a trace can hold (0 to {} {unit} since 1970: the year 2262)",
        number_text(value),
        (LATEST_INSTANT_S * per_second).floor()
    ))
}

/// Checks that a phase (checked instants, in seconds) does not stop long before it starts
/// ([`Phase::MAX_CLOCK_STEP`]).
pub(crate) fn check_order(start: f64, stop: f64) -> Result<(), String> {
    if (start - stop) * 1e9 <= Phase::MAX_CLOCK_STEP as f64 {
        return Ok(());
    }
    Err(crate::model::stopped_before_start(start - stop))
}

/// A number as a reader would write it: `1e308` rather than 309 digits, `-5` rather than `-5.0`.
pub(crate) fn number_text(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e16).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A phase's `start` or `stop`, refused when no trace can hold it.
fn instant<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    let seconds = f64::deserialize(de)?;
    check_instant(seconds, 1.0, "s").map_err(serde::de::Error::custom)?;
    Ok(seconds)
}

/// The imported trace: header and records sorted by start time.
pub struct Imported {
    pub header: Header,
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// Parses a task-stream list from `input`, record by record: memory holds the records, never
/// the file's text or a tree of it. More than the import limit of input is refused.
pub fn import(input: impl Read, path: &str) -> Result<Imported, TraceError> {
    let limit = crate::limit::import_limit(path)?;
    let mut limited = Limited::new(input, limit);
    let mut failed: Option<(usize, String)> = None;
    let result = {
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(
            READ_BUFFER,
            &mut limited,
        ));
        de.deserialize_seq(RecordList {
            failed: &mut failed,
        })
        .and_then(|raw| de.end().map(|()| raw))
    };
    if limited.exceeded {
        return Err(crate::limit::too_large(path, "Dask task stream", limit));
    }
    let raw = result.map_err(|e| {
        let line = e.line() as u64;
        // Inside a record, a syntax error (`NaN`, which Python's json writes for a float NaN,
        // or a number past f64) is named by its field too; a file cut short is not a record's.
        let in_record = e.is_data() || (e.is_syntax() && !e.is_eof());
        let message = match failed.filter(|_| in_record) {
            // "startstops[0].start" of record 16 → "record 16: field "startstops[0].start""
            Some((index, field)) => format!(
                "task-stream record {index}: {}",
                describe_json_error(&e, &field)
            ),
            None => describe_json_error(&e, "."),
        };
        TraceError::invalid(path, line, message)
    })?;
    Ok(convert(raw, importer_name()))
}

/// Read buffer of the importer (serde_json reads byte by byte from it).
const READ_BUFFER: usize = 64 * 1024;

/// The top-level list, deserialized one record at a time.
struct RecordList<'a> {
    /// The failing record's index and the field path inside it (`.` for the record itself).
    failed: &'a mut Option<(usize, String)>,
}

impl<'de> Visitor<'de> for RecordList<'_> {
    type Value = Vec<DaskRecord>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of task-stream records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<DaskRecord>, A::Error> {
        let mut records = Vec::new();
        while let Some(record) = seq.next_element_seed(TrackedRecord {
            index: records.len(),
            failed: &mut *self.failed,
        })? {
            records.push(record);
        }
        Ok(records)
    }
}

/// One record, remembering where in it deserialization failed.
struct TrackedRecord<'a> {
    index: usize,
    failed: &'a mut Option<(usize, String)>,
}

impl<'de> DeserializeSeed<'de> for TrackedRecord<'_> {
    type Value = DaskRecord;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<DaskRecord, D::Error> {
        let record: DaskRecord = serde_path_to_error::deserialize(de).map_err(|e| {
            *self.failed = Some((self.index, e.path().to_string()));
            e.into_inner()
        })?;
        for (i, phase) in record.startstops.iter().enumerate() {
            if let Err(message) = check_order(phase.start, phase.stop) {
                *self.failed = Some((self.index, format!("startstops[{i}].stop")));
                return Err(serde::de::Error::custom(message));
            }
        }
        Ok(record)
    }
}

pub(crate) fn convert(raw: Vec<DaskRecord>, producer: String) -> Imported {
    let mut warnings = Vec::new();
    let mut skipped_actions: BTreeMap<String, usize> = BTreeMap::new();

    // Workers and their threads, in address order so an import is deterministic.
    // Owned addresses (there are few): the records are consumed below.
    let mut threads: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for rec in &raw {
        if !threads.contains_key(&rec.worker) {
            threads.insert(rec.worker.clone(), BTreeSet::new());
        }
        if let Some(thread) = rec.thread {
            threads
                .get_mut(&rec.worker)
                .expect("inserted above")
                .insert(thread);
        }
        for phase in &rec.startstops {
            if let Some(source) = &phase.source
                && !threads.contains_key(source)
            {
                threads.insert(source.clone(), BTreeSet::new());
            }
        }
    }
    let worker_ids: HashMap<&str, WorkerId> = threads
        .keys()
        .enumerate()
        .map(|(i, addr)| (addr.as_str(), i as WorkerId))
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
    // Instants are checked on the way in (`check_instant`): any two are within u64 nanoseconds.
    let to_nanos = |t: f64| -> Nanos { ((t - origin_s) * 1e9).round().max(0.0) as Nanos };

    // Records straight away (not tasks then records): one vector of them at a time.
    let mut tasks: Vec<Record> = Vec::with_capacity(raw.len());
    // By value: each record's strings are freed as its task is built.
    for rec in raw {
        let mut phases = Vec::with_capacity(rec.startstops.len());
        for p in &rec.startstops {
            let Some(action) = parse_action(&p.action) else {
                *skipped_actions.entry(p.action.to_string()).or_default() += 1;
                continue;
            };
            let start = to_nanos(p.start);
            // A clock stepped back a little (`check_order`): a phase of no length.
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
        tasks.push(Record::Task(TaskRecord {
            group: rec.key.group(),
            key: rec.key,
            worker: worker_ids[rec.worker.as_str()],
            thread: thread_index(&rec.worker, rec.thread),
            status,
            nbytes: rec.nbytes.unwrap_or(0),
            inline_bytes: 0,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            deps: Vec::new(),
            attempt: 1,
            error: rec.exception_text,
            phases,
        }));
    }
    tasks.sort_by_key(|record| match record {
        Record::Task(task) => task.start().unwrap_or(0),
        _ => 0,
    });

    for (action, count) in skipped_actions {
        warnings.push(format!(
            "skipped {count} phase(s) with unknown action \"{action}\""
        ));
    }
    let workers = threads
        .iter()
        .map(|(addr, seen)| WorkerSpec {
            id: worker_ids[addr.as_str()],
            name: addr.clone(),
            threads: seen.len().max(1) as u32,
            memory_limit: None,
            resources: BTreeMap::new(),
            host: None,
            host_cores: None,
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
        records: tasks,
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
