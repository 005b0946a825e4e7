//! What a finding's advice does to the recorded run, applied to the replay so the simulator can
//! predict the fixed run: the same tasks, minus what the fix removes.

use rustc_hash::{FxHashMap, FxHashSet};
use traces::Key;

use super::replay::{Replay, SMALL_BYTES, Submission};
use crate::graph::{Graph, GraphBuilder, Work};

/// A fix the simulator can apply, named by the analyzer rule whose advice it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// `idle-gaps` (client-bound): build the graphs first and compute them together, so the
    /// cluster never waits for the client between them.
    IdleGaps,
    /// `oversized-argument`: `scatter` the argument once per worker (broadcast) instead of
    /// shipping and unpickling it with every task.
    OversizedArgument,
    /// `recomputation`: `persist` what later computations reuse, so it is computed once.
    Recomputation,
    /// `skew`: `repartition` (or salt the hot key) so no task of a group runs much longer
    /// than its siblings: each such task split into pieces of the group's median.
    Skew,
    /// `tiny-partitions`: fewer, bigger partitions: groups of many short tasks merged into
    /// tasks of about 100 ms.
    TinyPartitions,
}

/// Tasks at least this many times their group's median compute are split (the skew rule's
/// lowest duration ratio, `analyzer/src/rules/skew.rs`).
const SKEW_RATIO: u64 = 2;
/// Groups need this many tasks for a median to mean something (the skew rule's minimum).
const SKEW_MIN_TASKS: usize = 4;
/// At most this many pieces per split task.
const MAX_PIECES: u64 = 64;
/// Dask's best practices: tasks of at least ~100 ms (the tiny-partitions rule's target).
const TARGET_TASK_NS: u64 = 100_000_000;
/// Groups with fewer tasks are left alone (the tiny-partitions rule's minimum).
const TINY_MIN_TASKS: usize = 100;
/// Too little work for ~100 ms tasks is still cut this many per thread (the tiny-partitions
/// rule's `MIN_PARTITIONS_PER_THREAD`, from Dask's best practices).
const MIN_PARTITIONS_PER_THREAD: u64 = 2;

impl Fix {
    pub const ALL: [Fix; 5] = [
        Fix::IdleGaps,
        Fix::OversizedArgument,
        Fix::Recomputation,
        Fix::Skew,
        Fix::TinyPartitions,
    ];

    /// The analyzer rule's id.
    pub fn rule(self) -> &'static str {
        match self {
            Fix::IdleGaps => "idle-gaps",
            Fix::OversizedArgument => "oversized-argument",
            Fix::Recomputation => "recomputation",
            Fix::Skew => "skew",
            Fix::TinyPartitions => "tiny-partitions",
        }
    }

    pub fn from_rule(rule: &str) -> Option<Fix> {
        Fix::ALL.into_iter().find(|f| f.rule() == rule)
    }

    /// What the replay changes, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Fix::IdleGaps => "every graph submitted at once, no client time between them",
            Fix::OversizedArgument => {
                "inline arguments shipped and unpickled once per worker (scatter with broadcast)"
            }
            Fix::Recomputation => "results computed by an earlier graph are read, not recomputed",
            Fix::Skew => "tasks over twice their group's median split into pieces of the median",
            Fix::TinyPartitions => {
                "groups of 100 or more tasks under 100 ms merged into tasks of about 100 ms"
            }
        }
    }
}

impl Replay {
    /// The replay of the run as it would be with `fix` applied; `None` when the fix changes
    /// nothing in this trace (one submission for `idle-gaps`, no big inline argument, no key
    /// computed twice, no task to split or merge), so no saving can be told from it.
    pub fn fixed(&self, fix: Fix) -> Option<Replay> {
        self.fixed_in(fix, None, &[])
    }

    /// [`Replay::fixed`] for one finding: a fix that acts on groups (`skew`, `tiny-partitions`)
    /// applied to `group` alone when given, and `skew`'s split to the tasks named in `keys`
    /// alone when any is (a finding's example keys are its slow tasks).
    pub fn fixed_in(&self, fix: Fix, group: Option<&str>, keys: &[String]) -> Option<Replay> {
        let mut fixed = self.clone();
        let tasks = |r: &Replay| r.submissions.iter().map(|s| s.graph.len()).sum::<usize>();
        let changed;
        match fix {
            Fix::IdleGaps => {
                // All made at the first one's time, none waiting for another.
                for (i, s) in fixed.submissions.iter_mut().enumerate() {
                    s.client_gap_ns = (i == 0).then_some(0);
                    s.offset_ns = 0;
                }
                changed = fixed
                    .submissions
                    .iter()
                    .filter(|s| s.held.is_empty())
                    .count()
                    > 1;
            }
            Fix::OversizedArgument => {
                fixed.inline_once_per_worker = true;
                changed = fixed
                    .submissions
                    .iter()
                    .any(|s| s.inline.iter().any(|&b| b > SMALL_BYTES));
            }
            Fix::Recomputation => {
                let mut any = false;
                let mut computed: FxHashSet<traces::Key> = FxHashSet::default();
                for s in &mut fixed.submissions {
                    let repeated: Vec<bool> =
                        s.graph.tasks().map(|t| computed.contains(&t.key)).collect();
                    if repeated.contains(&true) {
                        any = true;
                        // Their results already exist: computing them costs nothing.
                        s.graph = s.graph.map_work(|index, work| Work {
                            compute_ns: if repeated[index as usize] {
                                0
                            } else {
                                work.compute_ns
                            },
                            ..work.clone()
                        });
                    }
                    computed.extend(s.graph.tasks().map(|t| t.key.clone()));
                }
                changed = any;
            }
            Fix::Skew => {
                // Scattered data is not computed: nothing to split or merge.
                for s in fixed.submissions.iter_mut().filter(|s| s.held.is_empty()) {
                    *s = split_skewed(s, group, keys);
                }
                changed = tasks(&fixed) > tasks(self);
            }
            Fix::TinyPartitions => {
                // Keys later graphs read must stay keys of their own.
                let read_later: FxHashSet<Key> = fixed
                    .submissions
                    .iter()
                    .flat_map(|s| s.graph.tasks())
                    .filter_map(|t| t.work.extra())
                    .flat_map(|e| e.external_deps.iter().cloned())
                    .collect();
                let slots = self.recorded.shape.slots();
                for s in fixed.submissions.iter_mut().filter(|s| s.held.is_empty()) {
                    *s = merge_tiny(s, &read_later, group, slots);
                }
                changed = tasks(&fixed) < tasks(self);
            }
        }
        changed.then_some(fixed)
    }
}

/// A task of a rewritten graph.
struct NewTask {
    key: Key,
    work: Work,
    deserialize: u64,
    inline: u64,
    /// Reads this share of each input (a piece of a split task).
    pieces: u32,
    /// Share of a core its compute wants.
    cpu: f32,
}

/// The tasks of each group (of `only`, when given), as the graph names them.
fn groups<'a>(graph: &'a Graph, only: Option<&str>) -> FxHashMap<&'a str, Vec<u32>> {
    let mut by_group: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    for (index, spec) in graph.tasks().enumerate() {
        if only.is_none_or(|g| g == &*spec.group) {
            by_group.entry(&spec.group).or_default().push(index as u32);
        }
    }
    by_group
}

fn median_compute(graph: &Graph, members: &[u32]) -> u64 {
    let mut computes: Vec<u64> = members
        .iter()
        .map(|&i| graph.task(i).work.compute_ns)
        .collect();
    computes.sort_unstable();
    computes[computes.len() / 2]
}

fn split_skewed(s: &Submission, only: Option<&str>, keys: &[String]) -> Submission {
    let graph = &s.graph;
    let mut pieces = vec![1u64; graph.len()];
    for members in groups(graph, only).values() {
        if members.len() < SKEW_MIN_TASKS {
            continue;
        }
        let median = median_compute(graph, members).max(1);
        for &i in members {
            let compute = graph.task(i).work.compute_ns;
            let named = keys.is_empty() || keys.contains(&graph.task(i).key.to_string());
            if named && compute >= SKEW_RATIO * median {
                pieces[i as usize] = compute.div_ceil(median).min(MAX_PIECES);
            }
        }
    }
    if pieces.iter().all(|&k| k == 1) {
        return s.clone();
    }
    let mut tasks = Vec::new();
    let mut of_old = Vec::with_capacity(graph.len());
    for (index, spec) in graph.tasks().enumerate() {
        let k = pieces[index];
        let mut mine = Vec::new();
        for piece in 0..k {
            let key = if piece == 0 {
                spec.key.clone()
            } else {
                Key::from(format!("{}-split-{piece}", spec.key).as_str())
            };
            mine.push(tasks.len());
            tasks.push(NewTask {
                key,
                work: Work {
                    compute_ns: spec.work.compute_ns / k,
                    output_bytes: spec.work.output_bytes / k,
                    ..spec.work.clone()
                },
                deserialize: s.deserialize_ns(index as u32) / k,
                inline: s.inline_bytes(index as u32),
                pieces: k as u32,
                cpu: s.cpu_share(index as u32) as f32,
            });
        }
        of_old.push(mine);
    }
    rewrite(s, tasks, &of_old)
}

fn merge_tiny(s: &Submission, keep: &FxHashSet<Key>, only: Option<&str>, slots: u64) -> Submission {
    let graph = &s.graph;
    // Longest path from a root: tasks of one level have no path between them, so merging them
    // cannot make a cycle. Index order is dependency order.
    let mut level = vec![0u32; graph.len()];
    for index in 0..graph.len() as u32 {
        level[index as usize] = graph
            .dependencies(index)
            .map(|d| level[d as usize] + 1)
            .max()
            .unwrap_or(0);
    }
    let tiny: FxHashSet<&str> = groups(graph, only)
        .into_iter()
        .filter(|(_, members)| {
            members.len() >= TINY_MIN_TASKS && median_compute(graph, members) < TARGET_TASK_NS
        })
        .map(|(group, _)| group)
        .collect();
    // Each (group, level) is cut into the partitions the tiny-partitions rule advises for it
    // (~100 ms each, at least two per thread), of an equal share of its work.
    let mut level_work: FxHashMap<(&str, u32), (u64, u64)> = FxHashMap::default();
    for i in 0..graph.len() as u32 {
        let spec = graph.task(i);
        if tiny.contains(&*spec.group) && !keep.contains(&spec.key) {
            let (ns, count) = level_work
                .entry((&*spec.group, level[i as usize]))
                .or_default();
            *ns = ns.saturating_add(spec.work.compute_ns);
            *count += 1;
        }
    }
    let piece_ns = |at: (&str, u32)| {
        let (ns, count) = level_work[&at];
        let pieces = (ns / TARGET_TASK_NS)
            .max(MIN_PARTITIONS_PER_THREAD.saturating_mul(slots))
            .min(count)
            .max(1);
        (ns / pieces).max(1)
    };
    let mut chunk_of: Vec<Option<usize>> = vec![None; graph.len()];
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    // The chunk being filled per group, level and chunk of the task's first merged input: a
    // task goes with the others made from the same merged partition, as a map over
    // repartitioned data does, and not beside partitions another worker holds.
    let mut open: FxHashMap<(&str, u32, Option<usize>), (usize, u64)> = FxHashMap::default();
    for i in 0..graph.len() as u32 {
        let spec = graph.task(i);
        if !tiny.contains(&*spec.group) || keep.contains(&spec.key) {
            continue;
        }
        let lineage = graph.dependencies(i).find_map(|d| chunk_of[d as usize]);
        let at = (&*spec.group, level[i as usize], lineage);
        let (chunk, total) = open.entry(at).or_insert_with(|| {
            chunks.push(Vec::new());
            (chunks.len() - 1, 0)
        });
        chunks[*chunk].push(i);
        chunk_of[i as usize] = Some(*chunk);
        *total = total.saturating_add(spec.work.compute_ns);
        if *total >= piece_ns((at.0, at.1)) {
            open.remove(&at);
        }
    }
    if chunks.is_empty() {
        return s.clone();
    }
    let mut tasks = Vec::new();
    let mut new_of_chunk = vec![usize::MAX; chunks.len()];
    let mut of_old = Vec::with_capacity(graph.len());
    for (index, spec) in graph.tasks().enumerate() {
        let new = match chunk_of[index] {
            None => {
                tasks.push(NewTask {
                    key: spec.key.clone(),
                    work: spec.work.clone(),
                    deserialize: s.deserialize_ns(index as u32),
                    inline: s.inline_bytes(index as u32),
                    pieces: 1,
                    cpu: s.cpu_share(index as u32) as f32,
                });
                tasks.len() - 1
            }
            Some(chunk) if new_of_chunk[chunk] != usize::MAX => new_of_chunk[chunk],
            Some(chunk) => {
                let members = &chunks[chunk];
                let mut work = Work::new(0, 0);
                let (mut deserialize, mut inline) = (0, 0);
                // The merged task's share: its members' CPU time over their compute time.
                let mut cpu_ns = 0.0;
                for &m in members {
                    let w = &graph.task(m).work;
                    work.compute_ns = work.compute_ns.saturating_add(w.compute_ns);
                    work.output_bytes = work.output_bytes.saturating_add(w.output_bytes);
                    if let Some(extra) = w.extra() {
                        for key in &extra.external_deps {
                            work = work.external(key.clone());
                        }
                        // A merged task needs what its members needed of their worker.
                        for (name, &amount) in &extra.resources {
                            let held = work.extra().and_then(|e| e.resources.get(name));
                            if held.is_none_or(|&h| h < amount) {
                                work = work.resource(name, amount);
                            }
                        }
                    }
                    deserialize = u64::saturating_add(deserialize, s.deserialize_ns(m));
                    inline = u64::saturating_add(inline, s.inline_bytes(m));
                    cpu_ns += s.cpu_share(m) * w.compute_ns as f64;
                }
                let cpu = if work.compute_ns > 0 {
                    (cpu_ns / work.compute_ns as f64) as f32
                } else {
                    0.0
                };
                tasks.push(NewTask {
                    key: spec.key.clone(),
                    work,
                    deserialize,
                    inline,
                    pieces: 1,
                    cpu,
                });
                new_of_chunk[chunk] = tasks.len() - 1;
                tasks.len() - 1
            }
        };
        of_old.push(vec![new]);
    }
    rewrite(s, tasks, &of_old)
}

/// The submission with its tasks replaced by `tasks`: old task `i` is now the tasks
/// `of_old[i]`, and each new task depends on every new task standing for an old dependency.
/// Tasks are laid out in dependency order again (the replay relies on it).
fn rewrite(s: &Submission, tasks: Vec<NewTask>, of_old: &[Vec<usize>]) -> Submission {
    let graph = &s.graph;
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for old in 0..graph.len() as u32 {
        for dep in graph.dependencies(old) {
            for &n in &of_old[old as usize] {
                for &d in &of_old[dep as usize] {
                    if n != d && !deps[n].contains(&d) {
                        deps[n].push(d);
                    }
                }
            }
        }
    }
    // Kahn's algorithm, smallest index first: the recorded order where dependencies allow.
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (n, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(n);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == 0)
        .map(|(n, _)| std::cmp::Reverse(n))
        .collect();
    let mut order = Vec::with_capacity(tasks.len());
    while let Some(std::cmp::Reverse(n)) = ready.pop() {
        order.push(n);
        for &m in &dependents[n] {
            waiting[m] -= 1;
            if waiting[m] == 0 {
                ready.push(std::cmp::Reverse(m));
            }
        }
    }
    if order.len() < tasks.len() {
        // A cycle: the rewrite would not be a graph; keep the recorded one.
        return s.clone();
    }
    let mut position = vec![0u32; tasks.len()];
    for (p, &n) in order.iter().enumerate() {
        position[n] = p as u32;
    }
    let mut slots: Vec<Option<NewTask>> = tasks.into_iter().map(Some).collect();
    let mut builder = GraphBuilder::with_capacity(order.len(), 0);
    let (mut deserialize, mut inline, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu = Vec::new();
    for &n in &order {
        let task = slots[n].take().expect("each task is laid out once");
        builder.add(task.key, task.work);
        deserialize.push(task.deserialize);
        inline.push(task.inline);
        pieces.push(task.pieces);
        cpu.push(task.cpu);
    }
    for (n, ds) in deps.iter().enumerate() {
        for &d in ds {
            builder.depend(crate::TaskRef(position[n]), crate::TaskRef(position[d]));
        }
    }
    // A piece's key may be taken already (a trace may name anything): then no fix.
    let Ok(graph) = builder.build() else {
        return s.clone();
    };
    Submission {
        graph,
        deserialize,
        inline,
        pieces,
        cpu,
        ..s.clone()
    }
}
