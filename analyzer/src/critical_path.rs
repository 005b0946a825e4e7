//! The chain of tasks the job's end waited on: from the last task to finish, back through the
//! input that arrived last, with its time split into compute, transfer and waiting.

use serde::Serialize;

use traces::Nanos;

use crate::index::TraceIndex;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CriticalPath {
    /// Tasks on the path.
    pub tasks: u64,
    pub length_seconds: f64,
    pub compute_seconds: f64,
    pub transfer_seconds: f64,
    /// Time between an input being ready and its dependent starting to work on it.
    pub wait_seconds: f64,
    /// Tasks on the path per group, from the first to the last.
    pub groups: Vec<(String, u64)>,
    /// The runs on the path, last first (indexes in [`TraceIndex::runs`]), to draw it.
    #[serde(skip)]
    pub runs: Vec<u32>,
}

/// `None` when the trace has no dependencies (Dask task streams do not record them).
pub fn critical_path(index: &TraceIndex) -> Option<CriticalPath> {
    if !index.has_dependencies {
        return None;
    }
    let last = (0..index.runs.len() as u32)
        .max_by_key(|&i| (index.runs[i as usize].stop, index.runs[i as usize].start))?;
    let mut node = &index.runs[last as usize];
    let end = node.stop;
    let (mut compute, mut transfer, mut tasks) = (0, 0, 0u64);
    let mut chain: Vec<u32> = Vec::new();
    let mut runs: Vec<u32> = vec![last];
    // Each step goes to an input that finished earlier, so the walk ends; the guard bounds it
    // on a malformed trace all the same.
    let mut guard = index.runs.len();
    loop {
        tasks += 1;
        compute = Nanos::saturating_add(compute, node.compute);
        transfer = Nanos::saturating_add(transfer, node.transfer);
        chain.push(node.group);
        let from = node.deps_from as usize;
        let deps = &index.dep_hashes[from..from + node.deps_len as usize];
        let previous = deps
            .iter()
            .filter_map(|&h| index.latest_run_index(h))
            .filter(|&d| {
                let d = &index.runs[d as usize];
                d.stop <= node.stop && d.start < node.start.max(1)
            })
            .max_by_key(|&d| index.runs[d as usize].stop);
        guard -= 1;
        match previous {
            Some(p) if guard > 0 => {
                node = &index.runs[p as usize];
                runs.push(p);
            }
            _ => break,
        }
    }
    let start = node.start;
    let length = end.saturating_sub(start);
    let wait = length.saturating_sub(compute.saturating_add(transfer));
    let mut groups: Vec<(String, u64)> = Vec::new();
    for &g in chain.iter().rev() {
        let name = &index.groups[g as usize].name;
        match groups.last_mut() {
            Some((last, n)) if last == name => *n += 1,
            _ => groups.push((name.clone(), 1)),
        }
    }
    Some(CriticalPath {
        tasks,
        length_seconds: length as f64 / 1e9,
        compute_seconds: compute as f64 / 1e9,
        transfer_seconds: transfer as f64 / 1e9,
        wait_seconds: wait as f64 / 1e9,
        groups,
        runs,
    })
}
