//! Where the time went, as a flamegraph: stacks `group;action` (or `worker;group;action`)
//! weighted by microseconds, drawn by inferno; two traces side by side as a differential
//! flamegraph.

use std::collections::BTreeMap;
use std::io;

use rustc_hash::FxHashMap;
use traces::{Action, Record, TraceError, TraceReader};

/// How stacks are rooted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackBy {
    /// `group;action`
    Group,
    /// `worker;group;action`
    Worker,
}

/// Folded stacks (`frame;frame;frame weight`), sorted, weights in microseconds. The reader's
/// warnings (a truncated last line…) are complete afterwards, for the caller to print.
pub fn folded(trace: &mut TraceReader, by: StackBy) -> Result<Vec<String>, TraceError> {
    let mut stacks = Stacks::new(trace.header());
    for record in trace {
        stacks.add(&record?);
    }
    Ok(stacks.lines(by))
}

/// Time per (worker, group, action), gathered a record at a time: both stack roots come from
/// one pass.
#[derive(Clone, Debug, Default)]
pub struct Stacks {
    names: BTreeMap<u32, String>,
    groups: FxHashMap<String, u32>,
    /// Nanoseconds per (worker, group index) and action: no string built per phase.
    weights: FxHashMap<(u32, u32), [u64; Action::ALL.len()]>,
}

impl Stacks {
    pub fn new(header: &traces::Header) -> Stacks {
        Stacks {
            names: header
                .cluster
                .workers
                .iter()
                .map(|w| (w.id, frame(&w.name)))
                .collect(),
            ..Stacks::default()
        }
    }

    pub fn add(&mut self, record: &Record) {
        let task = match record {
            Record::Task(task) => task,
            Record::Event(event) => {
                if let traces::EventKind::WorkerAdded { worker } = &event.kind {
                    self.names.insert(worker.id, frame(&worker.name));
                }
                return;
            }
            Record::Memory(_) | Record::GroupMetrics(_) => return,
        };
        let next = self.groups.len() as u32;
        let group = match self.groups.get(task.group.as_str()) {
            Some(&g) => g,
            None => *self.groups.entry(task.group.clone()).or_insert(next),
        };
        let slot = self.weights.entry((task.worker, group)).or_default();
        for phase in &task.phases {
            // Saturating: durations from the trace can sum past u64 (two of 2^63 ns).
            let total = &mut slot[phase.action as usize];
            *total = total.saturating_add(phase.duration());
        }
    }

    /// Adds stacks gathered from other records of the same trace.
    pub fn merge(&mut self, other: Stacks) {
        for (id, name) in other.names {
            self.names.entry(id).or_insert(name);
        }
        let remap: FxHashMap<u32, u32> = other
            .groups
            .into_iter()
            .map(|(name, theirs)| {
                let next = self.groups.len() as u32;
                (theirs, *self.groups.entry(name).or_insert(next))
            })
            .collect();
        for ((worker, group), by_action) in other.weights {
            let slot = self.weights.entry((worker, remap[&group])).or_default();
            for (total, add) in slot.iter_mut().zip(by_action) {
                *total = total.saturating_add(add);
            }
        }
    }

    /// The folded lines, rooted as `by` says, sorted.
    pub fn lines(&self, by: StackBy) -> Vec<String> {
        let group_names: FxHashMap<u32, String> =
            self.groups.iter().map(|(n, g)| (*g, frame(n))).collect();
        let mut weights: BTreeMap<(Option<u32>, u32), [u64; Action::ALL.len()]> = BTreeMap::new();
        for (&(worker, group), by_action) in &self.weights {
            let worker = (by == StackBy::Worker).then_some(worker);
            let slot = weights.entry((worker, group)).or_default();
            for (total, add) in slot.iter_mut().zip(by_action) {
                *total = total.saturating_add(*add);
            }
        }
        let mut lines = Vec::new();
        for ((worker, group), by_action) in weights {
            let group = &group_names[&group];
            let root = match worker {
                Some(w) => format!(
                    "{};{group}",
                    self.names
                        .get(&w)
                        .cloned()
                        .unwrap_or_else(|| format!("worker-{w}"))
                ),
                None => group.clone(),
            };
            for action in Action::ALL {
                let micros = by_action[action as usize] / 1_000;
                if micros > 0 {
                    lines.push(format!("{root};{} {micros}", action.as_str()));
                }
            }
        }
        lines.sort();
        lines
    }
}

/// A frame name without the folded format's separators: `;` between frames, whitespace
/// before the count, a newline between stacks (and no terminal controls), so a name can never
/// add a frame, a count or a line.
fn frame(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == ';' || c.is_whitespace() || traces::units::is_unprintable(c) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Draws folded stacks as an SVG flamegraph.
pub fn svg(lines: &[String], title: &str) -> io::Result<Vec<u8>> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "µs".to_string();
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut out)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(out)
}

/// A differential flamegraph: `after`'s shape, coloured by the change from `before` (red
/// grew, blue shrank).
pub fn diff_svg(before: &[String], after: &[String], title: &str) -> io::Result<Vec<u8>> {
    let mut folded = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        before.join("\n").as_bytes(),
        after.join("\n").as_bytes(),
        &mut folded,
    )?;
    let text = String::from_utf8(folded).map_err(io::Error::other)?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    svg(&lines, title)
}
