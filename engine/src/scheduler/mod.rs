//! The scheduler as a state machine: it takes what happened (a graph submitted, a thread asking
//! for work, a task finished, memory crossed a line) and decides what happens next (run X on W,
//! fetch Y from V, spill Z, pause or kill W). It owns no thread and reads no clock: every entry
//! point is given the time, and what the outside world must do besides (record an event, wake
//! threads, start a replacement worker, delete spill files) is left in its outbox.
//!
//! Two drivers run it: the engine's worker threads on the wall clock (`cluster.rs`,
//! `worker.rs`) with real bytes, and the simulator on a virtual clock with sizes only
//! (`simulate/`). One policy, so a prediction is what the engine would have done.
//!
//! By concern: [`submission`] (graphs in and out), [`placement`] (choosing workers, work
//! stealing, claiming a task and its inputs), [`transitions`] (a task finished or failed),
//! [`recovery`] (lost results and dead workers), [`memory`] (spill, pause, terminate).

mod holders;
mod live;
mod memory;
mod placement;
mod recovery;
mod submission;
mod transitions;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use traces::{Event, EventKind, Key, MemorySample, WorkerId, WorkerSpec};

use crate::config::ClusterConfig;
use crate::error::EngineError;
use crate::graph::Graph;
use crate::store::{Payload, Store, TaskId};

pub(crate) use holders::Holders;
pub(crate) use placement::{Assignment, Claim, Input};
pub(crate) use transitions::Finished;

/// The host every engine worker names in its [`WorkerSpec`]: they all run in this process.
pub const ENGINE_HOST: &str = "localhost";

/// The most workers the engine runs in its process (threads of one process on one machine).
pub const MAX_WORKERS: u32 = 64;

/// The most workers a replay models: Dask clusters run to thousands. Slots are `u16` in
/// [`Status`], and placement looks at every worker for each task, so a replay's time grows with
/// the shape.
pub const MAX_SIMULATED_WORKERS: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Waiting,
    Queued(u16),
    Processing(u16),
    Memory,
    Erred,
    Released,
    Cancelled,
}

pub(crate) struct TaskState {
    pub status: Status,
    /// Dependencies not in memory yet.
    pub waiting_on: u32,
    /// Dependents that still need this result; released at 0 unless wanted.
    pub dependents_left: u32,
    /// Worker slots holding the result.
    pub holders: Holders,
    pub nbytes: u64,
    pub ready_at: u64,
    pub attempt: u32,
    pub retries_left: u32,
    /// Workers that died while running it.
    pub suspicious: u32,
    /// The client wants the result (a graph output, a persisted or scattered key).
    pub wanted: bool,
}

pub(crate) struct GraphState {
    pub graph: Graph,
    pub tasks: Vec<TaskState>,
    /// Wanted tasks not finished (in memory, erred or cancelled).
    pub remaining: usize,
    pub errors: Vec<EngineError>,
    /// Results stay on workers until the client releases them; lost ones are recomputed.
    pub persist: bool,
    /// Data put on workers by the client: no recipe to recompute it.
    pub scattered: bool,
    /// Tasks of later graphs reading this graph's keys.
    pub external_dependents: HashMap<u32, Vec<TaskId>>,
    /// External dependencies of this graph's tasks, resolved at submission.
    pub external_deps: HashMap<u32, Vec<TaskId>>,
}

pub(crate) struct WorkerState<P> {
    pub id: WorkerId,
    pub name: String,
    pub alive: bool,
    /// Counts replacements of the worker in this slot: a thread of an older generation exits.
    pub generation: u32,
    pub threads: u32,
    pub running: u32,
    pub queue: VecDeque<TaskId>,
    pub store: Store<P>,
    /// Working memory of running tasks (Dask's unmanaged memory).
    pub unmanaged: u64,
    pub paused: bool,
    pub resources: BTreeMap<String, f64>,
    pub resources_used: BTreeMap<String, f64>,
    pub processing: Vec<TaskId>,
    /// Per thread, the task it last claimed and when (stale once that task left processing).
    pub on_thread: Vec<Option<(TaskId, u64)>>,
}

impl<P: Payload> WorkerState<P> {
    pub fn process_memory(&self) -> u64 {
        self.store.managed.saturating_add(self.unmanaged)
    }

    fn load(&self) -> usize {
        self.queue.len() + self.running as usize
    }

    fn has_resources(&self, needs: &BTreeMap<String, f64>) -> bool {
        needs
            .iter()
            .all(|(name, amount)| self.resources.get(name).copied().unwrap_or(0.0) >= *amount)
    }

    fn resources_free(&self, needs: &BTreeMap<String, f64>) -> bool {
        needs.iter().all(|(name, amount)| {
            let total = self.resources.get(name).copied().unwrap_or(0.0);
            let used = self.resources_used.get(name).copied().unwrap_or(0.0);
            total - used >= *amount
        })
    }
}

/// Counters for progress displays.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub tasks_submitted: u64,
    pub tasks_done: u64,
    pub tasks_erred: u64,
    pub spills: u64,
    pub spilled_bytes: u64,
    pub kills: u64,
    pub pauses: u64,
    pub transfers: u64,
    pub transferred_bytes: u64,
}

/// What the driver must do besides running tasks.
pub(crate) enum Effect {
    Event(Event),
    Memory(MemorySample),
    /// A graph was registered under this number (the recorder names its tasks from it).
    Graph(u32, Graph),
    /// The worker in this slot was replaced: make its spill directory and start its threads.
    Spawn(usize),
}

pub(crate) struct Scheduler<P> {
    pub graphs: Vec<Option<GraphState>>,
    pub workers: Vec<WorkerState<P>>,
    /// Persisted and scattered keys, for graphs that read them.
    pub live: HashMap<Key, TaskId>,
    pub next_worker_id: WorkerId,
    /// Orders uses of stored values (least recently used spills first).
    pub tick: u64,
    pub progress: Progress,
    /// The user paused the cluster (`Client::pause`): no task starts.
    pub held: bool,
    pub config: ClusterConfig,
    spill_root: PathBuf,
    /// The time of the call being handled, given by the driver.
    now: u64,
    /// Queued tasks changed: idle threads should look for work.
    pub wake_workers: bool,
    /// A graph finished or failed: waiting clients should look.
    pub wake_clients: bool,
    pub effects: Vec<Effect>,
}

/// Where a worker's spill files go.
pub(crate) fn spill_dir(root: &Path, id: WorkerId) -> PathBuf {
    root.join(format!("worker-{id}"))
}

impl<P: Payload> Scheduler<P> {
    /// Workers `0..config.workers`, with no graph yet. `spill_root` only names directories;
    /// the driver makes them.
    pub fn new(config: ClusterConfig, spill_root: PathBuf) -> Scheduler<P> {
        let workers = (0..config.workers)
            .map(|id| WorkerState {
                id,
                name: format!("inproc://worker-{id}"),
                alive: true,
                generation: 0,
                threads: config.threads,
                running: 0,
                queue: VecDeque::new(),
                store: Store::new(spill_dir(&spill_root, id)),
                unmanaged: 0,
                paused: false,
                resources: config
                    .worker_resources
                    .get(id as usize)
                    .cloned()
                    .unwrap_or_default(),
                resources_used: BTreeMap::new(),
                processing: Vec::new(),
                on_thread: vec![None; config.threads as usize],
            })
            .collect();
        Scheduler {
            graphs: Vec::new(),
            workers,
            live: HashMap::new(),
            next_worker_id: config.workers,
            tick: 0,
            progress: Progress::default(),
            held: false,
            config,
            spill_root,
            now: 0,
            wake_workers: false,
            wake_clients: false,
            effects: Vec::new(),
        }
    }

    pub fn worker_spec(&self, slot: usize) -> WorkerSpec {
        let w = &self.workers[slot];
        WorkerSpec {
            id: w.id,
            name: w.name.clone(),
            threads: w.threads,
            memory_limit: self.config.memory_limit,
            resources: w.resources.clone(),
            // One process: every worker shares the machine's cores.
            host: Some(ENGINE_HOST.to_string()),
            host_cores: self.config.host_cores,
        }
    }

    pub fn task(&self, t: TaskId) -> &TaskState {
        &self.graphs[t.graph as usize]
            .as_ref()
            .expect("live task of a released graph")
            .tasks[t.index as usize]
    }

    pub fn task_mut(&mut self, t: TaskId) -> &mut TaskState {
        &mut self.graphs[t.graph as usize]
            .as_mut()
            .expect("live task of a released graph")
            .tasks[t.index as usize]
    }

    pub fn graph(&self, g: u32) -> &GraphState {
        self.graphs[g as usize]
            .as_ref()
            .expect("graph is still registered")
    }

    pub fn graph_mut(&mut self, g: u32) -> &mut GraphState {
        self.graphs[g as usize]
            .as_mut()
            .expect("graph is still registered")
    }

    pub fn graph_alive(&self, g: u32) -> bool {
        self.graphs.get(g as usize).is_some_and(Option::is_some)
    }

    fn key(&self, t: TaskId) -> String {
        self.graph(t.graph).graph.task(t.index).key.to_string()
    }

    /// All dependencies of a task: in its graph, and external (scattered, persisted).
    pub fn dependencies(&self, t: TaskId) -> Vec<TaskId> {
        let gs = self.graph(t.graph);
        let mut deps: Vec<TaskId> = gs
            .graph
            .dependencies(t.index)
            .map(|index| TaskId {
                graph: t.graph,
                index,
            })
            .collect();
        if let Some(external) = gs.external_deps.get(&t.index) {
            deps.extend(external.iter().copied());
        }
        deps
    }

    pub fn dependents(&self, t: TaskId) -> Vec<TaskId> {
        let gs = self.graph(t.graph);
        let mut out: Vec<TaskId> = gs
            .graph
            .dependents(t.index)
            .map(|index| TaskId {
                graph: t.graph,
                index,
            })
            .collect();
        if let Some(external) = gs.external_dependents.get(&t.index) {
            out.extend(
                external
                    .iter()
                    .copied()
                    .filter(|d| self.graph_alive(d.graph)),
            );
        }
        out
    }

    fn alive_workers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.workers.len()).filter(|&s| self.workers[s].alive)
    }

    fn event(&mut self, kind: EventKind) {
        self.effects.push(Effect::Event(Event {
            time: self.now,
            kind,
        }));
    }

    /// Records `slot`'s memory as it is now.
    fn sample(&mut self, slot: usize) {
        let w = &self.workers[slot];
        self.effects.push(Effect::Memory(MemorySample {
            time: self.now,
            worker: w.id,
            managed: w.store.managed,
            unmanaged: w.unmanaged,
            spilled: w.store.spilled,
            cpu: None,
        }));
    }

    /// Samples every live worker (the driver's periodic sampler, and shutdown).
    pub fn sample_all(&mut self, now: u64) {
        self.now = now;
        for slot in 0..self.workers.len() {
            if self.workers[slot].alive {
                self.sample(slot);
            }
        }
    }

    /// Spill files of values that are gone, from every worker, for the driver to delete.
    pub fn take_trash(&mut self) -> Vec<PathBuf> {
        let mut trash = Vec::new();
        for w in &mut self.workers {
            trash.append(&mut w.store.trash);
        }
        trash
    }
}
