//! The task stream as compact columns for the page: one row per phase, sorted by lane and
//! start, varint-encoded (starts as deltas within a lane), gzipped and base64-encoded. The page
//! decodes them into typed arrays.

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine;
use rustc_hash::FxHashMap;
use traces::{Nanos, TaskRecord, TaskStatus, WorkerId};

/// Task keys are kept for tooltips up to this many tasks; past it, a tooltip names the group
/// (ours: 50,000 keys of ~50 bytes is 2.5 MB of page).
pub const MAX_KEYS: usize = 50_000;

/// Time unit of the columns: microseconds (Dask's task stream has no finer resolution).
pub const TICK_NS: Nanos = 1_000;

/// One phase of one attempt.
#[derive(Clone, Copy, Debug)]
struct Row {
    worker: WorkerId,
    thread: u32,
    /// Index in [`Columns::groups`].
    group: u32,
    action: u8,
    failed: bool,
    start: Nanos,
    stop: Nanos,
    /// Index in [`Columns::keys`] (when kept).
    task: u32,
}

/// Phases gathered from a trace, a task at a time.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    rows: Vec<Row>,
    groups: GroupIds,
    keys: Vec<String>,
    /// More tasks than [`MAX_KEYS`]: keys dropped.
    too_many_keys: bool,
    tasks: usize,
}

/// Group names to dense ids, in order of first appearance.
#[derive(Clone, Debug, Default)]
struct GroupIds {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl GroupIds {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// What [`Columns::encode`] gives the page.
pub struct Encoded {
    /// `(worker, thread)` of each lane, in lane order.
    pub lanes: Vec<(WorkerId, u32)>,
    /// Phases per lane, in lane order.
    pub counts: Vec<usize>,
    pub groups: Vec<String>,
    /// Empty when the trace had more than [`MAX_KEYS`] tasks.
    pub keys: Vec<String>,
    /// base64 of the gzipped varints: per phase, the start's delta from the previous phase of
    /// its lane (ticks), the duration (ticks), `group << 4 | failed << 3 | action`, and the
    /// task's key index when keys are kept.
    pub data: String,
    pub origin: Nanos,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Columns {
    pub fn add(&mut self, task: &TaskRecord) {
        let group = self.groups.id(&task.group);
        let task_id = if self.too_many_keys {
            0
        } else if self.keys.len() < MAX_KEYS {
            self.keys.push(task.key.to_string());
            (self.keys.len() - 1) as u32
        } else {
            self.too_many_keys = true;
            self.keys = Vec::new();
            0
        };
        self.tasks += 1;
        let failed = !matches!(task.status, TaskStatus::Ok);
        for phase in &task.phases {
            self.rows.push(Row {
                worker: task.worker,
                thread: task.thread,
                group,
                action: phase.action.index() as u8,
                failed,
                start: phase.start,
                stop: phase.stop.max(phase.start),
                task: task_id,
            });
        }
    }

    pub fn merge(&mut self, other: Columns) {
        let remap: Vec<u32> = other
            .groups
            .names
            .iter()
            .map(|n| self.groups.id(n))
            .collect();
        let offset = self.keys.len() as u32;
        self.tasks += other.tasks;
        if self.too_many_keys || other.too_many_keys || self.tasks > MAX_KEYS {
            self.too_many_keys = true;
            self.keys = Vec::new();
        } else {
            self.keys.extend(other.keys);
        }
        self.rows.extend(other.rows.into_iter().map(|r| Row {
            group: remap[r.group as usize],
            task: r.task + offset,
            ..r
        }));
    }

    /// The columns for the page, times relative to `origin` (the run's first phase).
    pub fn encode(mut self) -> Encoded {
        self.rows
            .sort_unstable_by_key(|r| (r.worker, r.thread, r.start, r.stop, r.action));
        let origin = self.rows.iter().map(|r| r.start).min().unwrap_or(0);
        let keep_keys = !self.too_many_keys;
        let mut lanes: BTreeMap<(WorkerId, u32), usize> = BTreeMap::new();
        let mut bytes = Vec::with_capacity(self.rows.len() * 6);
        let mut previous: Option<((WorkerId, u32), Nanos)> = None;
        for r in &self.rows {
            let lane = (r.worker, r.thread);
            *lanes.entry(lane).or_default() += 1;
            let start = (r.start - origin) / TICK_NS;
            let base = match previous {
                Some((l, s)) if l == lane => s,
                _ => 0,
            };
            varint(&mut bytes, start - base);
            varint(&mut bytes, (r.stop - r.start).div_ceil(TICK_NS));
            let code = (u64::from(r.group) << 4) | (u64::from(r.failed) << 3) | u64::from(r.action);
            varint(&mut bytes, code);
            if keep_keys {
                varint(&mut bytes, u64::from(r.task));
            }
            previous = Some((lane, start));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).expect("writing to a Vec");
        let gzipped = gz.finish().expect("writing to a Vec");
        Encoded {
            counts: lanes.values().copied().collect(),
            lanes: lanes.into_keys().collect(),
            groups: self.groups.names,
            keys: if keep_keys { self.keys } else { Vec::new() },
            data: base64::engine::general_purpose::STANDARD.encode(gzipped),
            origin,
        }
    }
}
