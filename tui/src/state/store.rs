//! Everything received about a run, indexed for drawing any time window quickly: tasks by lane
//! (worker thread) sorted by start, groups with sorted start / stop times, memory samples per
//! worker. Appending is O(1); sorting happens lazily, once per batch, before the next query.

use rustc_hash::FxHashMap;
use traces::{
    Action, Event, EventKind, Header, Key, MemorySample, Nanos, Phase, Record, TaskRecord,
    TaskStatus, WorkerId, WorkerSpec,
};

/// One task attempt, compact (the key and phases live in side tables).
#[derive(Clone, Copy, Debug)]
pub struct TaskRow {
    /// When it took its lane: the first phase that is not `queued`.
    pub start: Nanos,
    pub stop: Nanos,
    /// When it became ready (its queued phase), or `start`.
    pub ready: Nanos,
    pub key: u32,
    pub group: u32,
    pub lane: u32,
    pub phases: u32,
    pub n_phases: u16,
    pub status: TaskStatus,
    pub attempt: u32,
    pub nbytes: u64,
}

/// One worker thread's tasks.
#[derive(Debug, Default)]
pub struct Lane {
    pub worker: WorkerId,
    pub thread: u32,
    /// Task indices, sorted by start once settled. A thread finishes its tasks in the order it
    /// started them, so appends keep the order and sorting is rare.
    pub tasks: Vec<u32>,
    sorted: bool,
    /// The longest task: how far back from a window's start a task can still overlap it.
    pub max_span: Nanos,
    /// Running total of busy time along `tasks`, for busy % at any instant; may lag `tasks`
    /// until settled.
    busy_prefix: Vec<Nanos>,
    last_start: Nanos,
}

#[derive(Debug, Default)]
pub struct Group {
    pub name: String,
    pub tasks: u32,
    pub erred: u32,
    /// Groups this one's tasks read from.
    pub deps: Vec<u32>,
    starts: Vec<Nanos>,
    stops: Vec<Nanos>,
    sorted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerStatus {
    Running,
    Paused,
    Killed,
    Removed,
}

#[derive(Debug)]
pub struct Worker {
    pub spec: WorkerSpec,
    pub status: WorkerStatus,
    /// Time-ordered.
    pub memory: Vec<MemorySample>,
    /// When it died or left.
    pub gone_at: Option<Nanos>,
}

#[derive(Default)]
pub struct Store {
    pub header: Option<Header>,
    pub tasks: Vec<TaskRow>,
    pub keys: Vec<Key>,
    pub phases: Vec<Phase>,
    /// Dependencies per task, kept only for small runs (the task graph view).
    pub deps: Vec<Vec<u32>>,
    pub lanes: Vec<Lane>,
    lane_ids: FxHashMap<(WorkerId, u32), u32>,
    /// Lane indices ordered by (worker, thread): the rows of the task stream.
    pub lane_order: Vec<u32>,
    pub groups: Vec<Group>,
    group_ids: FxHashMap<String, u32>,
    /// Group of a dependency key, by the key's first name (tasks of one collection share it).
    dep_groups: FxHashMap<std::sync::Arc<str>, u32>,
    key_index: FxHashMap<Key, u32>,
    pub workers: Vec<Worker>,
    worker_ids: FxHashMap<WorkerId, usize>,
    pub events: Vec<Event>,
    /// Latest time seen in any record.
    pub end: Nanos,
    pub first: Nanos,
    dirty: bool,
    memory_unsorted: bool,
}

/// Runs up to this many tasks keep per-task dependencies (for the task-level graph).
pub const TASK_GRAPH_LIMIT: usize = 60;

impl Store {
    pub fn new(header: Header) -> Store {
        let mut store = Store {
            first: Nanos::MAX,
            ..Store::default()
        };
        for spec in &header.cluster.workers {
            store.add_worker(spec.clone());
        }
        store.header = Some(header);
        store
    }

    pub fn memory_fractions(&self) -> traces::MemoryFractions {
        self.header
            .as_ref()
            .map(|h| h.cluster.memory)
            .unwrap_or_default()
    }

    fn add_worker(&mut self, spec: WorkerSpec) -> usize {
        if let Some(&i) = self.worker_ids.get(&spec.id) {
            self.workers[i].spec = spec;
            self.workers[i].status = WorkerStatus::Running;
            return i;
        }
        self.worker_ids.insert(spec.id, self.workers.len());
        self.workers.push(Worker {
            spec,
            status: WorkerStatus::Running,
            memory: Vec::new(),
            gone_at: None,
        });
        self.workers.len() - 1
    }

    /// The worker's row, created on first mention (Dask task streams declare none).
    fn worker_mut(&mut self, id: WorkerId) -> &mut Worker {
        let i = match self.worker_ids.get(&id) {
            Some(&i) => i,
            None => self.add_worker(WorkerSpec {
                id,
                name: format!("worker-{id}"),
                threads: 1,
                memory_limit: None,
                resources: Default::default(),
                host: None,
                host_cores: None,
            }),
        };
        &mut self.workers[i]
    }

    pub fn add(&mut self, record: &Record) {
        match record {
            Record::Task(task) => self.add_task(task),
            Record::Memory(sample) => {
                self.end = self.end.max(sample.time);
                let memory = &mut self.worker_mut(sample.worker).memory;
                // Samples from several threads can reach the writer slightly out of order.
                let late = memory.last().is_some_and(|m| m.time > sample.time);
                memory.push(sample.clone());
                if late {
                    self.memory_unsorted = true;
                    self.dirty = true;
                }
            }
            Record::Event(event) => self.add_event(event.clone()),
            // The findings thread reads them from the trace itself.
            Record::GroupMetrics(_) => {}
        }
    }

    fn add_event(&mut self, event: Event) {
        self.end = self.end.max(event.time);
        match &event.kind {
            EventKind::WorkerAdded { worker } => {
                self.add_worker(worker.clone());
            }
            EventKind::WorkerRemoved { worker } => {
                let w = self.worker_mut(*worker);
                w.status = WorkerStatus::Removed;
                w.gone_at = Some(event.time);
            }
            EventKind::WorkerKilled { worker, .. } => {
                let w = self.worker_mut(*worker);
                w.status = WorkerStatus::Killed;
                w.gone_at = Some(event.time);
            }
            EventKind::WorkerPaused { worker } => {
                self.worker_mut(*worker).status = WorkerStatus::Paused
            }
            EventKind::WorkerResumed { worker } => {
                self.worker_mut(*worker).status = WorkerStatus::Running
            }
            _ => {}
        }
        self.events.push(event);
    }

    fn group_id(&mut self, name: &str) -> u32 {
        if let Some(&g) = self.group_ids.get(name) {
            return g;
        }
        let g = self.groups.len() as u32;
        self.groups.push(Group {
            name: name.to_string(),
            ..Group::default()
        });
        self.group_ids.insert(name.to_string(), g);
        g
    }

    pub fn group_named(&self, name: &str) -> Option<u32> {
        self.group_ids.get(name).copied()
    }

    fn lane_id(&mut self, worker: WorkerId, thread: u32) -> u32 {
        if let Some(&l) = self.lane_ids.get(&(worker, thread)) {
            return l;
        }
        let l = self.lanes.len() as u32;
        self.lanes.push(Lane {
            worker,
            thread,
            sorted: true,
            ..Lane::default()
        });
        self.lane_ids.insert((worker, thread), l);
        self.lane_order.push(l);
        let lanes = &self.lanes;
        self.lane_order
            .sort_by_key(|&l| (lanes[l as usize].worker, lanes[l as usize].thread));
        self.worker_mut(worker);
        l
    }

    fn add_task(&mut self, task: &TaskRecord) {
        let Some(stop) = task.stop() else { return };
        let ready = task.start().unwrap_or(stop);
        let start = task
            .phases
            .iter()
            .filter(|p| p.action != Action::Queued)
            .map(|p| p.start)
            .min()
            .unwrap_or(stop);
        let group = if task.group.is_empty() {
            // Producers may leave it out: it is the key's prefix, as the readers derive it.
            self.group_id(&task.key.group())
        } else {
            self.group_id(&task.group)
        };
        let lane = self.lane_id(task.worker, task.thread);
        let index = self.tasks.len() as u32;
        let g = &mut self.groups[group as usize];
        g.tasks += 1;
        if task.status == TaskStatus::Error {
            g.erred += 1;
        }
        if g.starts.last().is_some_and(|&last| last > start)
            || g.stops.last().is_some_and(|&last| last > stop)
        {
            g.sorted = false;
        }
        g.starts.push(start);
        g.stops.push(stop);
        for dep in &task.deps {
            let dep_group = self.dep_group(dep);
            let g = &mut self.groups[group as usize];
            if dep_group != group && !g.deps.contains(&dep_group) {
                g.deps.push(dep_group);
            }
        }
        let l = &mut self.lanes[lane as usize];
        l.tasks.push(index);
        if start < l.last_start {
            l.sorted = false;
        }
        l.last_start = l.last_start.max(start);
        l.max_span = l.max_span.max(stop - start);
        self.first = self.first.min(ready);
        self.end = self.end.max(stop);
        if self.tasks.len() < TASK_GRAPH_LIMIT {
            self.key_index.insert(task.key.clone(), index);
            let deps = task
                .deps
                .iter()
                .filter_map(|d| self.key_index.get(d).copied())
                .collect();
            self.deps.push(deps);
        }
        self.tasks.push(TaskRow {
            start,
            stop,
            ready,
            key: self.keys.len() as u32,
            group,
            lane,
            phases: self.phases.len() as u32,
            n_phases: task.phases.len().min(u16::MAX as usize) as u16,
            status: task.status,
            attempt: task.attempt,
            nbytes: task.nbytes,
        });
        self.keys.push(task.key.clone());
        self.phases
            .extend(task.phases.iter().take(u16::MAX as usize).cloned());
        self.dirty = true;
    }

    fn dep_group(&mut self, dep: &Key) -> u32 {
        let name: std::sync::Arc<str> = match dep {
            Key::Str(s) => s.clone(),
            Key::Tuple(parts) => match parts.first() {
                Some(traces::KeyPart::Str(s)) => s.clone(),
                _ => return self.group_id(&dep.group()),
            },
        };
        if let Some(&g) = self.dep_groups.get(&*name) {
            return g;
        }
        let g = self.group_id(&dep.group());
        self.dep_groups.insert(name, g);
        g
    }

    /// Orders what arrived since the last call; the queries below assume it was called.
    /// Group start / stop times are sorted only when `cursor` is before the end (a past
    /// instant): following a live run never pays for it.
    pub fn settle(&mut self, cursor: Nanos) {
        if !self.dirty {
            return;
        }
        let tasks = &self.tasks;
        for lane in &mut self.lanes {
            if !lane.sorted {
                // Stable and adaptive: a few late tasks cost a merge, not a full sort.
                lane.tasks.sort_by_key(|&t| tasks[t as usize].start);
                lane.sorted = true;
                lane.busy_prefix.clear();
            }
            let mut total = lane.busy_prefix.last().copied().unwrap_or(0);
            let from = lane.busy_prefix.len();
            lane.busy_prefix.extend(lane.tasks[from..].iter().map(|&t| {
                let row = &tasks[t as usize];
                total += row.stop - row.start;
                total
            }));
        }
        if std::mem::take(&mut self.memory_unsorted) {
            for worker in &mut self.workers {
                worker.memory.sort_by_key(|m| m.time);
            }
        }
        if cursor < self.end {
            for group in &mut self.groups {
                if !group.sorted {
                    group.starts.sort();
                    group.stops.sort();
                    group.sorted = true;
                }
            }
        }
        self.dirty = self.groups.iter().any(|g| !g.sorted);
    }

    pub fn task_phases(&self, row: &TaskRow) -> &[Phase] {
        &self.phases[row.phases as usize..row.phases as usize + row.n_phases as usize]
    }

    /// The lane's task running at `t` (started at or before, stopping after), if any.
    pub fn lane_task_at(&self, lane: u32, t: Nanos) -> Option<u32> {
        let lane = &self.lanes[lane as usize];
        let n = lane
            .tasks
            .partition_point(|&i| self.tasks[i as usize].start <= t);
        // Tasks of one thread rarely overlap (a transfer before compute can): look back a few.
        lane.tasks[n.saturating_sub(4)..n]
            .iter()
            .rev()
            .copied()
            .find(|&i| self.tasks[i as usize].stop > t)
    }

    /// A task of the lane overlapping `[from, to)`: the one running at `from`, else the first
    /// that starts inside.
    pub fn lane_task_in(&self, lane: u32, from: Nanos, to: Nanos) -> Option<u32> {
        if let Some(t) = self.lane_task_at(lane, from) {
            return Some(t);
        }
        let lane = &self.lanes[lane as usize];
        let n = lane
            .tasks
            .partition_point(|&i| self.tasks[i as usize].start < from);
        lane.tasks
            .get(n)
            .copied()
            .filter(|&i| self.tasks[i as usize].start < to)
    }

    /// Busy time of the lane in `[0, t]`.
    pub fn lane_busy_until(&self, lane: u32, t: Nanos) -> Nanos {
        let lane = &self.lanes[lane as usize];
        let n = lane
            .tasks
            .partition_point(|&i| self.tasks[i as usize].start < t);
        // Settling extends the running totals; until then, count what they cover.
        let n = n.min(lane.busy_prefix.len());
        if n == 0 {
            return 0;
        }
        let last = &self.tasks[lane.tasks[n - 1] as usize];
        let overshoot = last.stop.saturating_sub(t).min(last.stop - last.start);
        lane.busy_prefix[n - 1] - overshoot
    }

    /// (started, done) tasks of the group by time `t`.
    pub fn group_counts_at(&self, group: u32, t: Nanos) -> (u64, u64) {
        let g = &self.groups[group as usize];
        if t >= self.end || !g.sorted {
            // At the end (or not sorted for a past instant yet): everything so far.
            return (u64::from(g.tasks), u64::from(g.tasks));
        }
        let started = g.starts.partition_point(|&s| s <= t) as u64;
        let done = g.stops.partition_point(|&s| s <= t) as u64;
        (started, done)
    }

    /// The worker's last memory sample at or before `t`.
    pub fn memory_at<'w>(&self, worker: &'w Worker, t: Nanos) -> Option<&'w MemorySample> {
        let n = worker.memory.partition_point(|m| m.time <= t);
        n.checked_sub(1).map(|i| &worker.memory[i])
    }

    /// Process memory (managed + unmanaged) summed over workers at `t`.
    pub fn cluster_memory_at(&self, t: Nanos) -> u64 {
        self.workers
            .iter()
            .filter(|w| w.gone_at.is_none_or(|g| g > t))
            .filter_map(|w| self.memory_at(w, t))
            .map(|m| m.managed + m.unmanaged)
            .sum()
    }

    pub fn total_memory_limit(&self) -> Option<u64> {
        self.workers
            .iter()
            .filter(|w| w.status != WorkerStatus::Killed && w.status != WorkerStatus::Removed)
            .map(|w| w.spec.memory_limit)
            .sum()
    }
}
