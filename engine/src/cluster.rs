//! The cluster: scheduler state behind one lock, worker threads, the memory sampler.
//!
//! Worker threads run the scheduler's transitions themselves when they finish a task (there is
//! no scheduler thread to hop through), so a task costs one lock round-trip to claim and one to
//! finish. Heavy work — transfers, spill writes, disk reads, compute — happens outside the lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use traces::{
    Cluster as ClusterSpec, Event, EventKind, Header, Key, MemorySample, WorkerId, WorkerSpec,
};

use crate::config::ClusterConfig;
use crate::error::EngineError;
use crate::graph::Graph;
use crate::recorder::{Message, Recorder};
use crate::store::{Located, Store, TaskId};
use crate::worker;

/// Workers are tracked in a 64-bit mask of slots.
pub const MAX_WORKERS: u32 = 64;

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
    pub holders: u64,
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

pub(crate) struct WorkerState {
    pub id: WorkerId,
    pub name: String,
    pub alive: bool,
    pub generation: u32,
    pub threads: u32,
    pub running: u32,
    pub queue: VecDeque<TaskId>,
    pub store: Store,
    /// Working memory of running tasks (Dask's unmanaged memory).
    pub unmanaged: u64,
    pub paused: bool,
    pub resources: BTreeMap<String, f64>,
    pub resources_used: BTreeMap<String, f64>,
    pub processing: Vec<TaskId>,
    /// Per thread, the task it last claimed and when (stale once that task left processing).
    pub on_thread: Vec<Option<(TaskId, u64)>>,
}

impl WorkerState {
    pub fn process_memory(&self) -> u64 {
        self.store.managed + self.unmanaged
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

pub(crate) struct State {
    pub graphs: Vec<Option<GraphState>>,
    pub workers: Vec<WorkerState>,
    /// Persisted and scattered keys, for graphs that read them.
    pub live: HashMap<Key, TaskId>,
    pub next_worker_id: WorkerId,
    pub tick: u64,
    pub idle_threads: u32,
    pub shutdown: bool,
    pub progress: Progress,
    /// The user paused the cluster (`Client::pause`): no task starts.
    pub held: bool,
    /// Worker slots whose threads must be started (after a death) once the lock is released.
    pub to_spawn: Vec<usize>,
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub work_cv: Condvar,
    pub client_cv: Condvar,
    pub origin: Instant,
    pub config: ClusterConfig,
    /// Taken at shutdown so the writer sees the end of its channel, whoever still holds a client.
    pub recorder: Mutex<Option<SyncSender<Message>>>,
    pub spill_root: PathBuf,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a worker thread is a bug; the state is still consistent enough to shut down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, message: Message) {
        if let Some(tx) = &*self.recorder.lock().unwrap_or_else(|e| e.into_inner()) {
            // The writer only goes away after shutdown.
            let _ = tx.send(message);
        }
    }

    pub fn recording(&self) -> bool {
        self.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub fn event(&self, kind: EventKind) {
        self.record(Message::Event(Event {
            time: self.now(),
            kind,
        }));
    }

    pub fn sample(&self, st: &State, slot: usize) {
        let w = &st.workers[slot];
        self.record(Message::Memory(MemorySample {
            time: self.now(),
            worker: w.id,
            managed: w.store.managed,
            unmanaged: w.unmanaged,
            spilled: w.store.spilled,
            cpu: None,
        }));
    }

    fn limit(&self, fraction: f64) -> Option<u64> {
        self.config
            .memory_limit
            .map(|limit| (limit as f64 * fraction) as u64)
    }
}

/// A running cluster. Dropping it shuts the workers down and finishes the trace.
pub struct Cluster {
    pub(crate) shared: Arc<Shared>,
    sampler: Option<JoinHandle<()>>,
    recorder: Option<Recorder>,
    _spill_temp: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn start(config: ClusterConfig) -> Result<Cluster, EngineError> {
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return Err(EngineError::Spawn(format!(
                "workers must be between 1 and {MAX_WORKERS}, not {}",
                config.workers
            )));
        }
        if config.threads == 0 {
            return Err(EngineError::Spawn("threads must be at least 1".into()));
        }
        let (spill_temp, spill_root) = match &config.spill_root {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("taskscope-spill-")
                    .tempdir()
                    .map_err(|e| EngineError::SpillDir(e.to_string()))?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let workers: Vec<WorkerState> = (0..config.workers as usize)
            .map(|slot| new_worker(&config, &spill_root, slot, slot as WorkerId))
            .collect::<Result<_, _>>()?;
        let origin = Instant::now();
        let recorder = match &config.record_to {
            Some(path) => {
                let header = Header::new(
                    format!("taskscope-engine {}", env!("CARGO_PKG_VERSION")),
                    unix_now_ns(),
                    ClusterSpec {
                        workers: workers.iter().map(|w| worker_spec(&config, w)).collect(),
                        memory: config.memory,
                    },
                );
                Some(
                    Recorder::start(path.clone(), header, config.tap.clone())
                        .map_err(|e| EngineError::Trace(e.to_string()))?,
                )
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                graphs: Vec::new(),
                next_worker_id: workers.len() as WorkerId,
                workers,
                live: HashMap::new(),
                tick: 0,
                idle_threads: 0,
                shutdown: false,
                progress: Progress::default(),
                held: false,
                to_spawn: Vec::new(),
            }),
            work_cv: Condvar::new(),
            client_cv: Condvar::new(),
            origin,
            recorder: Mutex::new(recorder.as_ref().map(Recorder::sender)),
            spill_root,
            threads: Mutex::new(Vec::new()),
            config,
        });
        for slot in 0..shared.config.workers as usize {
            spawn_worker_threads(&shared, slot)?;
        }
        let sampler = if shared.recording() {
            Some(spawn_sampler(&shared)?)
        } else {
            None
        };
        Ok(Cluster {
            shared,
            sampler,
            recorder,
            _spill_temp: spill_temp,
        })
    }

    pub fn client(&self) -> crate::Client {
        crate::Client::new(self.shared.clone())
    }

    pub fn progress(&self) -> Progress {
        self.shared.lock().progress
    }

    /// Nanoseconds since the cluster started (the trace's time origin).
    pub fn now(&self) -> u64 {
        self.shared.now()
    }

    /// Stops the workers, finishes the trace; returns the number of task records written.
    pub fn shutdown(mut self) -> Result<u64, EngineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<u64, EngineError> {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            for slot in 0..st.workers.len() {
                if st.workers[slot].alive {
                    self.shared.sample(&st, slot);
                }
            }
        }
        self.shared.work_cv.notify_all();
        self.shared.client_cv.notify_all();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        loop {
            let handles: Vec<_> = std::mem::take(&mut *self.shared.threads.lock().unwrap());
            if handles.is_empty() {
                break;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
        // The worker threads flushed their buffers on exit; the shared sender is the last one.
        self.shared
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let recorded = match self.recorder.take() {
            Some(recorder) => recorder
                .finish()
                .map_err(|e| EngineError::Trace(e.to_string()))?,
            None => 0,
        };
        Ok(recorded)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.recorder.is_some() || self.sampler.is_some() || !self.shared.lock().shutdown {
            let _ = self.stop();
        }
    }
}

fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn new_worker(
    config: &ClusterConfig,
    spill_root: &std::path::Path,
    slot: usize,
    id: WorkerId,
) -> Result<WorkerState, EngineError> {
    let dir = spill_root.join(format!("worker-{id}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::SpillDir(format!("{}: {e}", dir.display())))?;
    Ok(WorkerState {
        id,
        name: format!("inproc://worker-{id}"),
        alive: true,
        generation: 0,
        threads: config.threads,
        running: 0,
        queue: VecDeque::new(),
        store: Store::new(dir),
        unmanaged: 0,
        paused: false,
        resources: config
            .worker_resources
            .get(slot)
            .cloned()
            .unwrap_or_default(),
        resources_used: BTreeMap::new(),
        processing: Vec::new(),
        on_thread: vec![None; config.threads as usize],
    })
}

fn worker_spec(config: &ClusterConfig, w: &WorkerState) -> WorkerSpec {
    WorkerSpec {
        id: w.id,
        name: w.name.clone(),
        threads: w.threads,
        memory_limit: config.memory_limit,
        resources: w.resources.clone(),
    }
}

pub(crate) fn spawn_worker_threads(shared: &Arc<Shared>, slot: usize) -> Result<(), EngineError> {
    let (generation, id) = {
        let st = shared.lock();
        (st.workers[slot].generation, st.workers[slot].id)
    };
    let mut handles = shared.threads.lock().unwrap();
    for thread in 0..shared.config.threads {
        let shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{id}-{thread}"))
            .spawn(move || worker::run(shared, slot, generation, thread))
            .map_err(|e| EngineError::Spawn(e.to_string()))?;
        handles.push(handle);
    }
    Ok(())
}

fn spawn_sampler(shared: &Arc<Shared>) -> Result<JoinHandle<()>, EngineError> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("memory-sampler".into())
        .spawn(move || {
            let period = Duration::from_nanos(shared.config.sample_every_ns.max(1_000_000));
            let mut st = shared.lock();
            while !st.shutdown {
                for slot in 0..st.workers.len() {
                    if st.workers[slot].alive {
                        shared.sample(&st, slot);
                    }
                }
                st = shared
                    .client_cv
                    .wait_timeout(st, period)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        })
        .map_err(|e| EngineError::Spawn(e.to_string()))
}

impl State {
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

    fn graph_alive(&self, g: u32) -> bool {
        self.graphs.get(g as usize).is_some_and(Option::is_some)
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

    /// Registers a graph: resolves external keys, counts dependencies, queues what is ready.
    pub fn submit(
        &mut self,
        shared: &Shared,
        graph: Graph,
        persist: bool,
    ) -> Result<u32, EngineError> {
        let g = self.graphs.len() as u32;
        // External keys must already be live (scattered or persisted).
        let mut external_deps: HashMap<u32, Vec<TaskId>> = HashMap::new();
        let mut missing = Vec::new();
        for (index, spec) in graph.tasks().enumerate() {
            let Some(extra) = spec.work.extra() else {
                continue;
            };
            for key in &extra.external_deps {
                match self.live.get(key) {
                    Some(&t) if self.graph_alive(t.graph) => {
                        external_deps.entry(index as u32).or_default().push(t)
                    }
                    _ => missing.push(key.to_string()),
                }
            }
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(EngineError::MissingDependencies(missing));
        }
        let now = shared.now();
        let mut tasks = Vec::with_capacity(graph.len());
        for (index, spec) in graph.tasks().enumerate() {
            let index = index as u32;
            let deps =
                graph.dependencies(index).count() + external_deps.get(&index).map_or(0, Vec::len);
            let dependents = graph.dependents(index).count();
            tasks.push(TaskState {
                status: Status::Waiting,
                waiting_on: deps as u32,
                dependents_left: dependents as u32,
                holders: 0,
                nbytes: 0,
                ready_at: now,
                attempt: 1,
                retries_left: spec.work.extra().map_or(0, |e| e.retries),
                suspicious: 0,
                // The client wants the outputs: the tasks nothing in the graph depends on.
                wanted: dependents == 0,
            });
        }
        let remaining = tasks.iter().filter(|t| t.wanted).count();
        shared.record(Message::Graph(g, graph.clone()));
        shared.event(EventKind::GraphSubmitted {
            tasks: graph.len() as u64,
            client: None,
        });
        // Later graphs reading external keys: tell the producers, and count them as waiting.
        for (&index, deps) in &external_deps {
            for dep in deps {
                let producer = self.graph_mut(dep.graph);
                producer
                    .external_dependents
                    .entry(dep.index)
                    .or_default()
                    .push(TaskId { graph: g, index });
            }
        }
        self.progress.tasks_submitted += graph.len() as u64;
        if persist {
            for (index, spec) in graph.tasks().enumerate() {
                if tasks[index].wanted {
                    let t = TaskId {
                        graph: g,
                        index: index as u32,
                    };
                    self.live.insert(spec.key.clone(), t);
                }
            }
        }
        self.graphs.push(Some(GraphState {
            graph,
            tasks,
            remaining,
            errors: Vec::new(),
            persist,
            scattered: false,
            external_dependents: HashMap::new(),
            external_deps,
        }));
        // External dependencies already in memory count as done.
        let n = self.graph(g).tasks.len() as u32;
        let mut ready = Vec::new();
        for index in 0..n {
            let t = TaskId { graph: g, index };
            let in_memory = self.graph(g).external_deps.get(&index).map_or(0, |deps| {
                deps.iter()
                    .filter(|d| self.task(**d).status == Status::Memory)
                    .count()
            });
            let ts = self.task_mut(t);
            ts.waiting_on -= in_memory as u32;
            if ts.waiting_on == 0 {
                ready.push(t);
            }
        }
        // Lost external inputs are recomputed like any lost input.
        for index in 0..n {
            let lost: Vec<TaskId> = self
                .graph(g)
                .external_deps
                .get(&index)
                .map(|deps| {
                    deps.iter()
                        .copied()
                        .filter(|d| self.task(*d).status != Status::Memory)
                        .collect()
                })
                .unwrap_or_default();
            for dep in lost {
                self.ensure_computing(shared, dep);
            }
        }
        for t in ready {
            self.make_ready(shared, t);
        }
        if remaining == 0 {
            shared.client_cv.notify_all();
        }
        Ok(g)
    }

    /// Puts data on workers (Dask's `scatter`): one copy per worker with `broadcast`, else
    /// round-robin over the least-loaded workers.
    pub fn scatter(
        &mut self,
        shared: &Shared,
        graph: Graph,
        values: Vec<Bytes>,
        broadcast: bool,
    ) -> u32 {
        let g = self.graphs.len() as u32;
        shared.record(Message::Graph(g, graph.clone()));
        let tasks = values
            .iter()
            .map(|v| TaskState {
                status: Status::Memory,
                waiting_on: 0,
                dependents_left: 0,
                holders: 0,
                nbytes: v.len() as u64,
                ready_at: 0,
                attempt: 1,
                retries_left: 0,
                suspicious: 0,
                wanted: true,
            })
            .collect();
        self.graphs.push(Some(GraphState {
            graph: graph.clone(),
            tasks,
            remaining: 0,
            errors: Vec::new(),
            persist: true,
            scattered: true,
            external_dependents: HashMap::new(),
            external_deps: HashMap::new(),
        }));
        let alive: Vec<usize> = self.alive_workers().collect();
        for (index, value) in values.into_iter().enumerate() {
            let t = TaskId {
                graph: g,
                index: index as u32,
            };
            let targets: Vec<usize> = if broadcast {
                alive.clone()
            } else {
                vec![alive[index % alive.len()]]
            };
            self.tick += 1;
            let tick = self.tick;
            for slot in targets {
                // Each worker holds its own copy, as it would after a network send.
                let copy = Bytes::copy_from_slice(&value);
                self.workers[slot].store.insert(t, copy, tick);
                self.task_mut(t).holders |= 1 << slot;
            }
            self.live.insert(graph.task(index as u32).key.clone(), t);
        }
        g
    }

    /// A task's inputs are all in memory: queue it on the best worker.
    pub fn make_ready(&mut self, shared: &Shared, t: TaskId) {
        self.enqueue(shared, t, false);
    }

    /// Queues `t`; with `first`, ahead of the worker's queue. Tasks freed by a finishing input
    /// go first (depth first, like Dask's graph ordering): their inputs are consumed and
    /// released soon, instead of every partition's result waiting for the last leaf.
    fn enqueue(&mut self, shared: &Shared, t: TaskId, first: bool) {
        let needs = self
            .graph(t.graph)
            .graph
            .task(t.index)
            .work
            .extra()
            .map(|e| e.resources.clone())
            .unwrap_or_default();
        let Some(slot) = self.choose_worker(t, &needs) else {
            let key = self.graph(t.graph).graph.task(t.index).key.to_string();
            let needs = needs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            self.fail(shared, t, EngineError::NoWorkerHasResources { key, needs });
            return;
        };
        let now = shared.now();
        let ts = self.task_mut(t);
        ts.status = Status::Queued(slot as u16);
        ts.ready_at = now;
        if first {
            self.workers[slot].queue.push_front(t);
        } else {
            self.workers[slot].queue.push_back(t);
        }
        if self.idle_threads > 0 {
            shared.work_cv.notify_all();
        }
    }

    /// Most input bytes already there; ties go to the least loaded. Paused workers only when
    /// every capable worker is paused.
    fn choose_worker(&self, t: TaskId, needs: &BTreeMap<String, f64>) -> Option<usize> {
        let deps = self.dependencies(t);
        let mut best: Option<(bool, u64, std::cmp::Reverse<usize>, usize)> = None;
        for slot in self.alive_workers() {
            let w = &self.workers[slot];
            if !w.has_resources(needs) {
                continue;
            }
            let local: u64 = deps
                .iter()
                .map(|&d| self.task(d))
                .filter(|d| d.holders & (1 << slot) != 0)
                .map(|d| d.nbytes)
                .sum();
            let candidate = (!w.paused, local, std::cmp::Reverse(w.load()), slot);
            if best.is_none_or(|b| (candidate.0, candidate.1, candidate.2) > (b.0, b.1, b.2)) {
                best = Some(candidate);
            }
        }
        best.map(|b| b.3)
    }

    /// The next task for a thread of `slot`: its own queue first, then stolen from the most
    /// loaded worker. Marks it processing.
    pub fn next_task(&mut self, slot: usize) -> Option<TaskId> {
        if self.workers[slot].paused || self.held {
            return None;
        }
        if let Some(t) = self.pop_runnable(slot, slot, false) {
            return Some(t);
        }
        // Steal from the back (the most recently queued, least likely to have local inputs).
        let mut victims: Vec<usize> = self
            .alive_workers()
            .filter(|&s| s != slot && !self.workers[s].queue.is_empty())
            .collect();
        victims.sort_by_key(|&s| std::cmp::Reverse(self.workers[s].queue.len()));
        for victim in victims {
            // Leave a worker the tasks its own idle threads are about to take.
            if !self.workers[victim].paused
                && self.workers[victim].queue.len() <= self.idle_of(victim)
            {
                continue;
            }
            if let Some(t) = self.pop_runnable(victim, slot, true) {
                return Some(t);
            }
        }
        None
    }

    fn idle_of(&self, slot: usize) -> usize {
        let w = &self.workers[slot];
        (w.threads - w.running.min(w.threads)) as usize
    }

    fn pop_runnable(&mut self, from: usize, to: usize, steal: bool) -> Option<TaskId> {
        let mut i = 0;
        loop {
            let len = self.workers[from].queue.len();
            if i >= len {
                return None;
            }
            let pos = if steal { len - 1 - i } else { i };
            let t = self.workers[from].queue[pos];
            if !self.graph_alive(t.graph) || self.task(t).status != Status::Queued(from as u16) {
                // Stale: cancelled, recomputed elsewhere, or its graph was released.
                self.workers[from].queue.remove(pos);
                continue;
            }
            let needs = self
                .graph(t.graph)
                .graph
                .task(t.index)
                .work
                .extra()
                .map(|e| &e.resources)
                .filter(|needs| !needs.is_empty());
            if let Some(needs) = needs
                && !(self.workers[to].has_resources(needs)
                    && self.workers[to].resources_free(needs))
            {
                i += 1;
                continue;
            }
            let needs = needs.cloned();
            self.workers[from].queue.remove(pos);
            for (name, amount) in needs.unwrap_or_default() {
                *self.workers[to].resources_used.entry(name).or_default() += amount;
            }
            self.task_mut(t).status = Status::Processing(to as u16);
            let w = &mut self.workers[to];
            w.running += 1;
            w.processing.push(t);
            return Some(t);
        }
    }

    /// Returns a finished (or failed) task's thread and resources to its worker.
    pub fn release_slot(&mut self, slot: usize, t: TaskId) {
        let needs = if self.graph_alive(t.graph) {
            self.graph(t.graph)
                .graph
                .task(t.index)
                .work
                .extra()
                .map(|e| e.resources.clone())
        } else {
            None
        };
        let w = &mut self.workers[slot];
        w.running = w.running.saturating_sub(1);
        if let Some(pos) = w.processing.iter().position(|&p| p == t) {
            w.processing.swap_remove(pos);
        }
        for (name, amount) in needs.unwrap_or_default() {
            if let Some(used) = w.resources_used.get_mut(&name) {
                *used -= amount;
            }
        }
    }

    /// A task's result is in memory on `slot`.
    pub fn task_done(&mut self, shared: &Shared, t: TaskId, slot: usize, value: Bytes) {
        self.tick += 1;
        let tick = self.tick;
        let nbytes = value.len() as u64;
        self.workers[slot].store.insert(t, value, tick);
        let ts = self.task_mut(t);
        ts.status = Status::Memory;
        ts.holders |= 1 << slot;
        ts.nbytes = nbytes;
        let wanted = ts.wanted;
        self.progress.tasks_done += 1;
        for dependent in self.dependents(t) {
            let d = self.task_mut(dependent);
            if d.status == Status::Waiting {
                d.waiting_on -= 1;
                if d.waiting_on == 0 {
                    self.enqueue(shared, dependent, true);
                }
            }
        }
        for dep in self.dependencies(t) {
            self.dependent_finished(dep);
        }
        if wanted {
            self.wanted_finished(shared, t.graph);
        }
    }

    /// One dependent of `dep` no longer needs it: release it when none does.
    fn dependent_finished(&mut self, dep: TaskId) {
        if !self.graph_alive(dep.graph) {
            return;
        }
        let d = self.task_mut(dep);
        d.dependents_left = d.dependents_left.saturating_sub(1);
        if d.dependents_left == 0 && !d.wanted && d.status == Status::Memory {
            self.release_value(dep);
        }
    }

    fn wanted_finished(&mut self, shared: &Shared, g: u32) {
        let gs = self.graph_mut(g);
        gs.remaining -= 1;
        if gs.remaining == 0 {
            shared.client_cv.notify_all();
        }
    }

    /// Frees a result on every worker holding it.
    pub fn release_value(&mut self, t: TaskId) {
        let holders = self.task(t).holders;
        for slot in 0..self.workers.len() {
            if holders & (1 << slot) != 0 {
                self.workers[slot].store.remove(t);
            }
        }
        let ts = self.task_mut(t);
        ts.holders = 0;
        ts.status = Status::Released;
    }

    /// An attempt failed: retry if allowed, else the task and everything downstream errs.
    pub fn task_failed(&mut self, shared: &Shared, t: TaskId, message: String) {
        let ts = self.task_mut(t);
        if ts.retries_left > 0 {
            ts.retries_left -= 1;
            ts.attempt += 1;
            let attempt = ts.attempt;
            let key = self.graph(t.graph).graph.task(t.index).key.clone();
            shared.event(EventKind::TaskRetried { key, attempt });
            self.make_ready(shared, t);
            return;
        }
        let key = self.graph(t.graph).graph.task(t.index).key.to_string();
        self.fail(shared, t, EngineError::Task { key, message });
    }

    /// Marks `t` and its waiting dependents erred with `error`.
    pub fn fail(&mut self, shared: &Shared, t: TaskId, error: EngineError) {
        let mut stack = vec![t];
        let mut first = true;
        while let Some(t) = stack.pop() {
            let ts = self.task_mut(t);
            if matches!(
                ts.status,
                Status::Erred | Status::Memory | Status::Cancelled
            ) && !first
            {
                continue;
            }
            first = false;
            ts.status = Status::Erred;
            let wanted = ts.wanted;
            self.progress.tasks_erred += 1;
            let gs = self.graph_mut(t.graph);
            if gs.errors.len() < 10 && !gs.errors.contains(&error) {
                gs.errors.push(error.clone());
            }
            if wanted {
                self.wanted_finished(shared, t.graph);
            }
            stack.extend(self.dependents(t));
        }
        shared.client_cv.notify_all();
    }

    /// Makes sure a result that is not in memory (lost, released) gets computed again, with
    /// whatever of its own inputs is missing (walked with a stack: a long chain of released
    /// results must not overflow a worker thread's stack).
    pub fn ensure_computing(&mut self, shared: &Shared, root: TaskId) {
        let mut stack = vec![root];
        let mut ready = Vec::new();
        while let Some(t) = stack.pop() {
            // Anything but a released result is already in hand, on its way, or final.
            if self.task(t).status != Status::Released {
                continue;
            }
            if self.graph(t.graph).scattered {
                let key = self.graph(t.graph).graph.task(t.index).key.to_string();
                self.fail(shared, t, EngineError::LostData { key });
                continue;
            }
            let deps = self.dependencies(t);
            let missing: Vec<TaskId> = deps
                .iter()
                .copied()
                .filter(|&d| self.task(d).status != Status::Memory)
                .collect();
            let ts = self.task_mut(t);
            ts.status = Status::Waiting;
            ts.waiting_on = missing.len() as u32;
            if ts.wanted {
                self.graph_mut(t.graph).remaining += 1;
            }
            // Its inputs are needed again until it has run.
            for &d in &deps {
                self.task_mut(d).dependents_left += 1;
            }
            if missing.is_empty() {
                ready.push(t);
            }
            stack.extend(missing);
        }
        for t in ready {
            if self.task(t).status == Status::Waiting && self.task(t).waiting_on == 0 {
                self.make_ready(shared, t);
            }
        }
    }

    /// The worker in `slot` dies: its results are lost, its tasks go elsewhere, and a fresh
    /// worker takes its place (as Dask's nanny restarts one).
    pub fn kill_worker(&mut self, shared: &Shared, slot: usize, reason: String) {
        let allowed = shared.config.allowed_failures;
        shared.sample(self, slot);
        self.progress.kills += 1;
        let bit = 1u64 << slot;
        let lost: Vec<TaskId> = self.workers[slot].store.tasks().collect();
        let queued: Vec<TaskId> = self.workers[slot].queue.iter().copied().collect();
        let running: Vec<TaskId> = self.workers[slot].processing.clone();
        self.replace_worker(shared, slot, reason);

        // Results that only lived there: recompute the ones still needed.
        let mut needed = Vec::new();
        for t in lost {
            if !self.graph_alive(t.graph) {
                continue;
            }
            let ts = self.task_mut(t);
            ts.holders &= !bit;
            if ts.holders == 0 && ts.status == Status::Memory {
                ts.status = Status::Released;
                if ts.wanted || ts.dependents_left > 0 {
                    needed.push(t);
                }
                // Dependents counted it as done; they must wait for it again.
                for dependent in self.dependents(t) {
                    let d = self.task_mut(dependent);
                    match d.status {
                        Status::Waiting => d.waiting_on += 1,
                        Status::Queued(_) => {
                            d.status = Status::Waiting;
                            d.waiting_on = 1;
                        }
                        _ => {}
                    }
                }
            }
        }
        for t in running {
            if !self.graph_alive(t.graph) {
                continue;
            }
            let ts = self.task_mut(t);
            ts.suspicious += 1;
            let deaths = ts.suspicious;
            if deaths >= allowed {
                let key = self.graph(t.graph).graph.task(t.index).key.to_string();
                self.fail(shared, t, EngineError::KilledWorker { key, deaths });
            } else {
                ts.status = Status::Released;
                ts.attempt += 1;
                // `ensure_computing` re-counts its inputs; undo the count it had.
                for d in self.dependencies(t) {
                    let dep = self.task_mut(d);
                    dep.dependents_left = dep.dependents_left.saturating_sub(1);
                }
                if self.task(t).wanted {
                    self.graph_mut(t.graph).remaining -= 1;
                }
                needed.push(t);
            }
        }
        for t in needed {
            if self.task(t).status == Status::Released {
                self.ensure_computing(shared, t);
            }
        }
        for t in queued {
            if self.graph_alive(t.graph) && self.task(t).status == Status::Queued(slot as u16) {
                self.make_ready(shared, t);
            }
        }
        shared.work_cv.notify_all();
        shared.client_cv.notify_all();
    }

    /// The worker in `slot` is gone (killed, restarted): its data is dropped, its threads exit
    /// (their generation no longer matches), and a fresh worker with a new id takes the slot,
    /// its threads started once the lock is released.
    pub fn replace_worker(&mut self, shared: &Shared, slot: usize, reason: String) {
        shared.event(EventKind::WorkerKilled {
            worker: self.workers[slot].id,
            reason,
        });
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let dir = shared.spill_root.join(format!("worker-{id}"));
        // A failure here surfaces as spill write errors; the worker still runs tasks.
        let _ = std::fs::create_dir_all(&dir);
        let w = &mut self.workers[slot];
        w.store.clear();
        w.store = Store::new(dir);
        w.queue.clear();
        w.processing.clear();
        w.generation += 1;
        w.id = id;
        w.name = format!("inproc://worker-{id}");
        w.running = 0;
        w.unmanaged = 0;
        w.paused = false;
        w.resources_used.clear();
        w.alive = true;
        let spec = worker_spec(&shared.config, &self.workers[slot]);
        shared.event(EventKind::WorkerAdded { worker: spec });
        self.to_spawn.push(slot);
    }

    /// Checks `slot`'s memory against the thresholds after it changed. Returns values to spill.
    ///
    /// Spilling comes first: results on disk leave the process, so only memory that cannot be
    /// spilled (running tasks' working memory) can push a worker over pause or terminate.
    pub fn check_memory(&mut self, shared: &Shared, slot: usize) -> Vec<(TaskId, Bytes, PathBuf)> {
        let Some(limit) = shared.config.memory_limit else {
            return Vec::new();
        };
        let fractions = shared.config.memory;
        let target = shared.limit(fractions.target).unwrap_or(u64::MAX);
        let spill_line = shared.limit(fractions.spill).unwrap_or(u64::MAX);
        let w = &self.workers[slot];
        // Spill by managed memory over target, or by process memory over the spill line.
        let excess = w.store.managed.saturating_sub(target).max(
            w.process_memory()
                .saturating_sub(spill_line)
                .min(w.store.managed),
        );
        let victims = if excess > 0 {
            self.workers[slot].store.pick_victims(excess)
        } else {
            Vec::new()
        };
        if !victims.is_empty() {
            self.progress.spills += victims.len() as u64;
            self.progress.spilled_bytes += victims.iter().map(|v| v.1.len() as u64).sum::<u64>();
            shared.sample(self, slot);
        }
        let process = self.workers[slot].process_memory();
        if process as f64 > limit as f64 * fractions.terminate {
            let reason = format!(
                "memory {} over the terminate threshold ({:.0}% of {})",
                traces::units::format_bytes(process),
                fractions.terminate * 100.0,
                traces::units::format_bytes(limit)
            );
            self.kill_worker(shared, slot, reason);
            return Vec::new();
        }
        self.update_pause(shared, slot);
        victims
    }

    /// Pause above the pause fraction; resume below it.
    pub fn update_pause(&mut self, shared: &Shared, slot: usize) {
        let Some(pause) = shared.limit(shared.config.memory.pause) else {
            return;
        };
        let w = &mut self.workers[slot];
        let over = w.process_memory() > pause;
        if over != w.paused {
            w.paused = over;
            let worker = w.id;
            if over {
                self.progress.pauses += 1;
                shared.event(EventKind::WorkerPaused { worker });
            } else {
                shared.event(EventKind::WorkerResumed { worker });
                shared.work_cv.notify_all();
            }
            shared.sample(self, slot);
        }
    }

    /// Where each input of `t` can be read, for a thread on `slot`.
    pub fn locate_inputs(&mut self, t: TaskId, slot: usize) -> Result<Vec<Input>, Vec<TaskId>> {
        let deps = self.dependencies(t);
        let mut inputs = Vec::with_capacity(deps.len());
        let mut missing = Vec::new();
        for dep in deps {
            self.tick += 1;
            let tick = self.tick;
            let holders = self.task(dep).holders;
            if holders & (1 << slot) != 0
                && let Some(found) = self.workers[slot].store.get(dep, tick)
            {
                inputs.push(Input {
                    task: dep,
                    from: None,
                    found,
                });
                continue;
            }
            // Prefer a holder with the value in memory.
            let mut remote = None;
            for peer in 0..self.workers.len() {
                if holders & (1 << peer) == 0 || peer == slot {
                    continue;
                }
                if let Some(found) = self.workers[peer].store.get(dep, tick) {
                    let in_memory = matches!(found, Located::Memory(_));
                    remote = Some((peer, found));
                    if in_memory {
                        break;
                    }
                }
            }
            match remote {
                Some((peer, found)) => inputs.push(Input {
                    task: dep,
                    from: Some((peer, self.workers[peer].id)),
                    found,
                }),
                None => missing.push(dep),
            }
        }
        if missing.is_empty() {
            Ok(inputs)
        } else {
            Err(missing)
        }
    }
}

/// One input of a task about to run.
pub(crate) struct Input {
    pub task: TaskId,
    /// The worker it comes from (slot, id) when it is not local.
    pub from: Option<(usize, WorkerId)>,
    pub found: Located,
}
