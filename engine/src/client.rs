//! The client API, in Dask's vocabulary: `compute`, `persist`, `submit`, `gather`, `scatter`,
//! `cancel`, `restart`.

use std::sync::Arc;

use bytes::Bytes;
use traces::{Key, WorkerId};

use crate::cluster::{Shared, State, Status, spawn_worker_threads};
use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};
use crate::store::{Located, TaskId, read_spilled};

/// A handle to a cluster, for submitting work and getting results.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>) -> Client {
        Client { shared }
    }

    /// What the scheduler knows right now: task groups by state, tasks running.
    pub fn live_state(&self) -> traces::LiveState {
        self.shared.lock().live(self.shared.now())
    }

    /// Stops starting tasks (running ones finish) until [`Client::resume`]. Returns whether
    /// the cluster is paused.
    pub fn pause(&self) -> bool {
        self.shared.lock().held = true;
        true
    }

    pub fn resume(&self) -> bool {
        self.shared.lock().held = false;
        self.shared.work_cv.notify_all();
        false
    }

    /// Runs a graph and returns its outputs (the tasks nothing depends on) with their keys.
    pub fn compute(&self, graph: &Graph) -> Result<Vec<(Key, Bytes)>, EngineError> {
        let mut all = self.compute_many(std::slice::from_ref(graph))?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Runs several graphs at once (`dask.compute(*graphs)`): one submission, shared workers.
    pub fn compute_many(&self, graphs: &[Graph]) -> Result<Vec<Vec<(Key, Bytes)>>, EngineError> {
        let ids = self.submit_graphs(graphs, false)?;
        let mut outputs = Vec::with_capacity(ids.len());
        let mut first_error = None;
        for &g in &ids {
            match self.wait_graph(g).and_then(|()| self.gather_graph(g)) {
                Ok(values) => outputs.push(values),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut st = self.shared.lock();
        for g in ids {
            release_graph(&mut st, g);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outputs),
        }
    }

    /// Computes a graph and keeps its outputs on the workers; later graphs (and `gather`) read
    /// them by key without recomputing them. Returns the persisted keys.
    pub fn persist(&self, graph: &Graph) -> Result<Vec<Key>, EngineError> {
        let g = self.submit_graphs(std::slice::from_ref(graph), true)?[0];
        self.wait_graph(g)?;
        let st = self.shared.lock();
        let gs = st.graph(g);
        Ok(gs
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.wanted)
            .map(|(i, _)| gs.graph.task(i as u32).key.clone())
            .collect())
    }

    /// Submits one task reading `deps` (keys of earlier submits, persisted or scattered data)
    /// and returns at once; its key is the future to `gather`.
    pub fn submit(&self, key: Key, mut work: Work, deps: &[Key]) -> Result<Key, EngineError> {
        for dep in deps {
            work = work.external(dep.clone());
        }
        let mut builder = GraphBuilder::new();
        builder.add(key.clone(), work);
        self.submit_graphs(&[builder.build()?], true)?;
        Ok(key)
    }

    fn submit_graphs(&self, graphs: &[Graph], persist: bool) -> Result<Vec<u32>, EngineError> {
        let mut st = self.shared.lock();
        let mut ids = Vec::with_capacity(graphs.len());
        for graph in graphs {
            match st.submit(&self.shared, graph.clone(), persist) {
                Ok(g) => ids.push(g),
                Err(e) => {
                    for g in ids {
                        release_graph(&mut st, g);
                    }
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    /// Waits until every wanted task of graph `g` finished; the first error if any erred.
    fn wait_graph(&self, g: u32) -> Result<(), EngineError> {
        let mut st = self.shared.lock();
        loop {
            let Some(gs) = st.graphs.get(g as usize).and_then(Option::as_ref) else {
                return Err(EngineError::Restarted);
            };
            if let Some(error) = gs.errors.first() {
                return Err(error.clone());
            }
            if gs.remaining == 0 {
                return Ok(());
            }
            if st.shutdown {
                return Err(EngineError::Restarted);
            }
            st = self
                .shared
                .client_cv
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn gather_graph(&self, g: u32) -> Result<Vec<(Key, Bytes)>, EngineError> {
        let located: Vec<(Key, Option<Located>)> = {
            let mut st = self.shared.lock();
            let wanted: Vec<u32> = st
                .graph(g)
                .tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.wanted)
                .map(|(i, _)| i as u32)
                .collect();
            wanted
                .into_iter()
                .map(|index| {
                    let t = TaskId { graph: g, index };
                    let key = st.graph(g).graph.task(index).key.clone();
                    (key, locate(&mut st, t))
                })
                .collect()
        };
        located
            .into_iter()
            .map(|(key, found)| Ok((key.clone(), read_located(&key, found)?)))
            .collect()
    }

    /// Waits for keys (submitted, persisted or scattered) and returns their values.
    pub fn gather(&self, keys: &[Key]) -> Result<Vec<Bytes>, EngineError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let found = {
                let mut st = self.shared.lock();
                loop {
                    let Some(&t) = st.live.get(key) else {
                        return Err(EngineError::MissingDependencies(vec![key.to_string()]));
                    };
                    match st.task(t).status {
                        Status::Memory => break locate(&mut st, t),
                        Status::Erred => {
                            let error = st.graph(t.graph).errors.first().cloned();
                            return Err(error.unwrap_or(EngineError::Task {
                                key: key.to_string(),
                                message: "erred".into(),
                            }));
                        }
                        Status::Cancelled => {
                            return Err(EngineError::Cancelled {
                                key: key.to_string(),
                            });
                        }
                        _ => {
                            st = self
                                .shared
                                .client_cv
                                .wait(st)
                                .unwrap_or_else(|e| e.into_inner());
                        }
                    }
                }
            };
            out.push(read_located(key, found)?);
        }
        Ok(out)
    }

    /// Puts data on the workers and returns its keys for later graphs. With `broadcast`, every
    /// worker gets one copy; otherwise values are spread round-robin.
    pub fn scatter(
        &self,
        data: Vec<(Key, Bytes)>,
        broadcast: bool,
    ) -> Result<Vec<Key>, EngineError> {
        let mut builder = GraphBuilder::with_capacity(data.len(), 0);
        let mut values = Vec::with_capacity(data.len());
        let mut keys = Vec::with_capacity(data.len());
        for (key, value) in data {
            builder.add(key.clone(), Work::new(0, value.len() as u64));
            keys.push(key);
            values.push(value);
        }
        let graph = builder.build()?;
        let mut st = self.shared.lock();
        st.scatter(&self.shared, graph, values, broadcast);
        Ok(keys)
    }

    /// Forgets keys: their values are freed, later graphs can no longer read them.
    pub fn release(&self, keys: &[Key]) {
        let mut st = self.shared.lock();
        for key in keys {
            if let Some(t) = st.live.remove(key)
                && st.graphs.get(t.graph as usize).is_some_and(Option::is_some)
            {
                st.task_mut(t).wanted = false;
                if st.task(t).status == Status::Memory && st.task(t).dependents_left == 0 {
                    st.release_value(t);
                }
                forget_if_unused(&mut st, t.graph);
            }
        }
    }

    /// Graphs whose state the scheduler still holds (for tests of `release`).
    #[doc(hidden)]
    pub fn graphs_held(&self) -> usize {
        self.shared.lock().graphs.iter().flatten().count()
    }

    /// Cancels keys that have not finished (and what depends on them).
    pub fn cancel(&self, keys: &[Key]) {
        let mut st = self.shared.lock();
        for key in keys {
            let Some(t) = st.live.remove(key) else {
                continue;
            };
            let mut stack = vec![t];
            while let Some(t) = stack.pop() {
                let ts = st.task_mut(t);
                if matches!(
                    ts.status,
                    Status::Memory | Status::Erred | Status::Cancelled
                ) {
                    continue;
                }
                ts.status = Status::Cancelled;
                if ts.wanted {
                    st.graph_mut(t.graph).remaining -= 1;
                }
                stack.extend(st.dependents(t));
            }
        }
        self.shared.client_cv.notify_all();
    }

    /// Restarts every worker: all data and pending work is dropped (pending `compute`s fail).
    pub fn restart(&self) {
        let mut st = self.shared.lock();
        st.graphs.iter_mut().for_each(|g| *g = None);
        st.live.clear();
        for slot in 0..st.workers.len() {
            st.replace_worker(&self.shared, slot, "client restart".into());
        }
        let spawn = std::mem::take(&mut st.to_spawn);
        drop(st);
        self.shared.work_cv.notify_all();
        self.shared.client_cv.notify_all();
        for slot in spawn {
            // Without threads the slot takes no work; `compute` would wait for it.
            let _ = spawn_worker_threads(&self.shared, slot);
        }
    }

    /// Workers holding a key's value (live keys only).
    pub fn who_has(&self, key: &Key) -> Vec<WorkerId> {
        let st = self.shared.lock();
        let Some(&t) = st.live.get(key) else {
            return Vec::new();
        };
        let holders = st.task(t).holders;
        (0..st.workers.len())
            .filter(|&slot| holders & (1 << slot) != 0)
            .map(|slot| st.workers[slot].id)
            .collect()
    }

    /// The ids of the workers now alive.
    pub fn workers(&self) -> Vec<WorkerId> {
        let st = self.shared.lock();
        st.workers
            .iter()
            .filter(|w| w.alive)
            .map(|w| w.id)
            .collect()
    }
}

fn locate(st: &mut State, t: TaskId) -> Option<Located> {
    let holders = st.task(t).holders;
    st.tick += 1;
    let tick = st.tick;
    (0..st.workers.len())
        .filter(|&slot| holders & (1 << slot) != 0)
        .find_map(|slot| st.workers[slot].store.get(t, tick))
}

fn read_located(key: &Key, found: Option<Located>) -> Result<Bytes, EngineError> {
    match found {
        Some(Located::Memory(bytes)) => Ok(bytes),
        Some(Located::Disk(path)) => read_spilled(&path).map_err(|e| EngineError::Task {
            key: key.to_string(),
            message: format!("cannot read spilled result {}: {e}", path.display()),
        }),
        None => Err(EngineError::LostData {
            key: key.to_string(),
        }),
    }
}

/// Drops a persisted / submitted / scattered graph's state once nothing needs it: no key of it
/// wanted, none of its tasks pending, no live graph reading its keys. Graphs it read from are
/// checked again, since it no longer holds them.
fn forget_if_unused(st: &mut State, g: u32) {
    let mut stack = vec![g];
    while let Some(g) = stack.pop() {
        let Some(gs) = st.graphs.get(g as usize).and_then(Option::as_ref) else {
            continue;
        };
        let pending = gs.tasks.iter().any(|t| {
            t.wanted
                || matches!(
                    t.status,
                    Status::Waiting | Status::Queued(_) | Status::Processing(_)
                )
        });
        let read_by_live_graph =
            gs.external_dependents.values().flatten().any(|d| {
                d.graph != g && st.graphs.get(d.graph as usize).is_some_and(Option::is_some)
            });
        if !pending && !read_by_live_graph {
            stack.extend(drop_graph(st, g));
        }
    }
}

/// Frees a computed graph's results and state (persisted graphs stay until released).
fn release_graph(st: &mut State, g: u32) {
    let Some(gs) = st.graphs.get(g as usize).and_then(Option::as_ref) else {
        return;
    };
    if gs.persist {
        return;
    }
    for producer in drop_graph(st, g) {
        forget_if_unused(st, producer);
    }
}

/// Frees a graph's values and state; returns the graphs whose keys it read.
fn drop_graph(st: &mut State, g: u32) -> Vec<u32> {
    let gs = st.graph(g);
    let producers = gs
        .external_deps
        .values()
        .flatten()
        .map(|d| d.graph)
        .collect();
    let holding: Vec<TaskId> = (0..gs.tasks.len() as u32)
        .map(|index| TaskId { graph: g, index })
        .filter(|&t| st.task(t).holders != 0)
        .collect();
    for t in holding {
        st.release_value(t);
    }
    st.graphs[g as usize] = None;
    producers
}
