//! The client API, in Dask's vocabulary: `compute`, `persist`, `submit`, `gather`, `scatter`,
//! `cancel`, `restart`.

use std::sync::Arc;

use bytes::Bytes;
use traces::{Key, WorkerId};

use crate::cluster::Shared;
use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};
use crate::scheduler::Status;
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
        self.shared.lock().sched.live(self.shared.now())
    }

    /// Stops starting tasks (running ones finish) until [`Client::resume`]. Returns whether
    /// the cluster is paused.
    pub fn pause(&self) -> bool {
        self.shared.lock().sched.held = true;
        true
    }

    pub fn resume(&self) -> bool {
        self.shared.lock().sched.held = false;
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
            st.sched.release_graph(g);
        }
        self.shared.apply(&mut st);
        drop(st);
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
        Ok(self.shared.lock().sched.wanted_keys(g))
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
        let mut result = Ok(());
        for graph in graphs {
            match st.sched.submit(graph.clone(), persist, self.shared.now()) {
                Ok(g) => ids.push(g),
                Err(e) => {
                    for &g in &ids {
                        st.sched.release_graph(g);
                    }
                    result = Err(e);
                    break;
                }
            }
        }
        self.shared.apply(&mut st);
        result.map(|()| ids)
    }

    /// Waits until every wanted task of graph `g` finished; the first error if any erred.
    fn wait_graph(&self, g: u32) -> Result<(), EngineError> {
        let mut st = self.shared.lock();
        loop {
            let Some(gs) = st.sched.graphs.get(g as usize).and_then(Option::as_ref) else {
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
        let located: Vec<(Key, Option<Located<Bytes>>)> = {
            let mut st = self.shared.lock();
            let wanted: Vec<u32> = st
                .sched
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
                    let key = st.sched.graph(g).graph.task(index).key.clone();
                    (key, st.sched.locate(t))
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
                    let Some(&t) = st.sched.live.get(key) else {
                        return Err(EngineError::MissingDependencies(vec![key.to_string()]));
                    };
                    match st.sched.task(t).status {
                        Status::Memory => break st.sched.locate(t),
                        Status::Erred => {
                            let error = st.sched.graph(t.graph).errors.first().cloned();
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
        // Each worker holds its own copy, as it would after a network send.
        let copy = |value: &Bytes| Bytes::copy_from_slice(value);
        st.sched
            .scatter(graph, values, broadcast, copy, self.shared.now());
        self.shared.apply(&mut st);
        Ok(keys)
    }

    /// Forgets keys: their values are freed, later graphs can no longer read them.
    pub fn release(&self, keys: &[Key]) {
        let mut st = self.shared.lock();
        st.sched.release_keys(keys);
        self.shared.apply(&mut st);
    }

    /// Graphs whose state the scheduler still holds (for tests of `release`).
    #[doc(hidden)]
    pub fn graphs_held(&self) -> usize {
        self.shared.lock().sched.graphs.iter().flatten().count()
    }

    /// Cancels keys that have not finished (and what depends on them).
    pub fn cancel(&self, keys: &[Key]) {
        let mut st = self.shared.lock();
        st.sched.cancel(keys);
        self.shared.apply(&mut st);
    }

    /// Restarts every worker: all data and pending work is dropped (pending `compute`s fail).
    pub fn restart(&self) {
        let mut st = self.shared.lock();
        st.sched.restart(self.shared.now());
        self.shared.apply(&mut st);
    }

    /// Workers holding a key's value (live keys only).
    pub fn who_has(&self, key: &Key) -> Vec<WorkerId> {
        let st = self.shared.lock();
        let Some(&t) = st.sched.live.get(key) else {
            return Vec::new();
        };
        st.sched
            .task(t)
            .holders
            .iter()
            .map(|slot| st.sched.workers[slot].id)
            .collect()
    }

    /// The ids of the workers now alive.
    pub fn workers(&self) -> Vec<WorkerId> {
        let st = self.shared.lock();
        st.sched
            .workers
            .iter()
            .filter(|w| w.alive)
            .map(|w| w.id)
            .collect()
    }
}

fn read_located(key: &Key, found: Option<Located<Bytes>>) -> Result<Bytes, EngineError> {
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
