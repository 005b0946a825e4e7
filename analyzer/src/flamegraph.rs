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

/// Folded stacks (`frame;frame;frame weight`), sorted, weights in microseconds.
pub fn folded(trace: TraceReader, by: StackBy) -> Result<Vec<String>, TraceError> {
    let mut names: BTreeMap<u32, String> = trace
        .header()
        .cluster
        .workers
        .iter()
        .map(|w| (w.id, frame(&w.name)))
        .collect();
    // Nanoseconds per (worker or none, group index) and action: no string built per phase.
    let mut groups: FxHashMap<String, u32> = FxHashMap::default();
    let mut weights: FxHashMap<(Option<u32>, u32), [u64; Action::ALL.len()]> = FxHashMap::default();
    for record in trace {
        let task = match record? {
            Record::Task(task) => task,
            Record::Event(event) => {
                if let traces::EventKind::WorkerAdded { worker } = event.kind {
                    names.insert(worker.id, frame(&worker.name));
                }
                continue;
            }
            Record::Memory(_) | Record::GroupMetrics(_) => continue,
        };
        let next = groups.len() as u32;
        let group = match groups.get(task.group.as_str()) {
            Some(&g) => g,
            None => *groups.entry(task.group.clone()).or_insert(next),
        };
        let worker = (by == StackBy::Worker).then_some(task.worker);
        let slot = weights.entry((worker, group)).or_default();
        for phase in &task.phases {
            // Saturating: durations from the trace can sum past u64 (two of 2^63 ns).
            let total = &mut slot[phase.action as usize];
            *total = total.saturating_add(phase.duration());
        }
    }
    let group_names: BTreeMap<u32, String> =
        groups.into_iter().map(|(n, g)| (g, frame(&n))).collect();
    let mut lines = Vec::new();
    for ((worker, group), by_action) in weights {
        let group = &group_names[&group];
        let root = match worker {
            Some(w) => format!(
                "{};{group}",
                names
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
    Ok(lines)
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
