//! Graphs in and out: submission, scatter, and what the client releases, cancels or restarts.

use std::collections::HashMap;

use traces::{EventKind, Key};

use super::{Effect, GraphState, Holders, Payload, Scheduler, Status, TaskState};
use crate::error::EngineError;
use crate::graph::Graph;
use crate::store::{Located, TaskId};

impl<P: Payload> Scheduler<P> {
    /// Registers a graph: resolves external keys, counts dependencies, queues what is ready.
    pub fn submit(&mut self, graph: Graph, persist: bool, now: u64) -> Result<u32, EngineError> {
        self.now = now;
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
                holders: Holders::default(),
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
        self.effects.push(Effect::Graph(g, graph.clone()));
        self.event(EventKind::GraphSubmitted {
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
                self.ensure_computing(dep);
            }
        }
        for t in ready {
            self.make_ready(t);
        }
        if remaining == 0 {
            self.wake_clients = true;
        }
        Ok(g)
    }

    /// Puts data on workers (Dask's `scatter`): one copy per worker with `broadcast`, else
    /// round-robin over the live workers. `copy` makes each worker's own copy, as a network
    /// send would.
    pub fn scatter(
        &mut self,
        graph: Graph,
        values: Vec<P>,
        broadcast: bool,
        copy: impl Fn(&P) -> P,
        now: u64,
    ) -> u32 {
        let alive: Vec<usize> = self.alive_workers().collect();
        let targets: Vec<Vec<usize>> = (0..values.len())
            .map(|index| {
                if broadcast {
                    alive.clone()
                } else {
                    vec![alive[index % alive.len()]]
                }
            })
            .collect();
        self.scatter_to(graph, values, &targets, copy, now)
    }

    /// [`Scheduler::scatter`] to the given workers: value `i` to the slots `targets[i]` (Dask's
    /// `scatter(..., workers=)`).
    pub fn scatter_to(
        &mut self,
        graph: Graph,
        values: Vec<P>,
        targets: &[Vec<usize>],
        copy: impl Fn(&P) -> P,
        now: u64,
    ) -> u32 {
        self.now = now;
        let g = self.graphs.len() as u32;
        self.effects.push(Effect::Graph(g, graph.clone()));
        let tasks = values
            .iter()
            .map(|v| TaskState {
                status: Status::Memory,
                waiting_on: 0,
                dependents_left: 0,
                holders: Holders::default(),
                nbytes: v.size(),
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
        for (index, value) in values.into_iter().enumerate() {
            let t = TaskId {
                graph: g,
                index: index as u32,
            };
            self.tick += 1;
            let tick = self.tick;
            for &slot in &targets[index] {
                self.workers[slot].store.insert(t, copy(&value), tick);
                self.task_mut(t).holders.insert(slot);
            }
            self.live.insert(graph.task(index as u32).key.clone(), t);
        }
        g
    }

    /// The keys a persisted graph keeps.
    pub fn wanted_keys(&self, g: u32) -> Vec<Key> {
        let gs = self.graph(g);
        gs.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.wanted)
            .map(|(i, _)| gs.graph.task(i as u32).key.clone())
            .collect()
    }

    /// Where a result can be read, marking it used.
    pub fn locate(&mut self, t: TaskId) -> Option<Located<P>> {
        self.tick += 1;
        let tick = self.tick;
        let holders = self.task(t).holders.clone();
        holders
            .iter()
            .find_map(|slot| self.workers[slot].store.get(t, tick))
    }

    /// Forgets keys: their values are freed, later graphs can no longer read them.
    pub fn release_keys(&mut self, keys: &[Key]) {
        for key in keys {
            if let Some(t) = self.live.remove(key)
                && self.graph_alive(t.graph)
            {
                self.task_mut(t).wanted = false;
                if self.task(t).status == Status::Memory && self.task(t).dependents_left == 0 {
                    self.release_value(t);
                }
                self.forget_if_unused(t.graph);
            }
        }
    }

    /// Cancels keys that have not finished (and what depends on them).
    pub fn cancel(&mut self, keys: &[Key]) {
        for key in keys {
            let Some(t) = self.live.remove(key) else {
                continue;
            };
            let mut stack = vec![t];
            while let Some(t) = stack.pop() {
                let ts = self.task_mut(t);
                if matches!(
                    ts.status,
                    Status::Memory | Status::Erred | Status::Cancelled
                ) {
                    continue;
                }
                ts.status = Status::Cancelled;
                if ts.wanted {
                    self.graph_mut(t.graph).remaining -= 1;
                }
                stack.extend(self.dependents(t));
            }
        }
        self.wake_clients = true;
    }

    /// Restarts every worker: all data and pending work is dropped (pending `compute`s fail).
    pub fn restart(&mut self, now: u64) {
        self.now = now;
        self.graphs.iter_mut().for_each(|g| *g = None);
        self.live.clear();
        for slot in 0..self.workers.len() {
            self.replace_worker(slot, "client restart".into());
        }
        self.wake_workers = true;
        self.wake_clients = true;
    }

    /// Frees a computed graph's results and state (persisted graphs stay until released).
    pub fn release_graph(&mut self, g: u32) {
        let Some(gs) = self.graphs.get(g as usize).and_then(Option::as_ref) else {
            return;
        };
        if gs.persist {
            return;
        }
        for producer in self.drop_graph(g) {
            self.forget_if_unused(producer);
        }
    }

    /// Drops a persisted / submitted / scattered graph's state once nothing needs it: no key
    /// of it wanted, none of its tasks pending, no live graph reading its keys. Graphs it read
    /// from are checked again, since it no longer holds them.
    fn forget_if_unused(&mut self, g: u32) {
        let mut stack = vec![g];
        while let Some(g) = stack.pop() {
            let Some(gs) = self.graphs.get(g as usize).and_then(Option::as_ref) else {
                continue;
            };
            let pending = gs.tasks.iter().any(|t| {
                t.wanted
                    || matches!(
                        t.status,
                        Status::Waiting | Status::Queued(_) | Status::Processing(_)
                    )
            });
            let read_by_live_graph = gs
                .external_dependents
                .values()
                .flatten()
                .any(|d| d.graph != g && self.graph_alive(d.graph));
            if !pending && !read_by_live_graph {
                stack.extend(self.drop_graph(g));
            }
        }
    }

    /// Frees a graph's values and state; returns the graphs whose keys it read.
    fn drop_graph(&mut self, g: u32) -> Vec<u32> {
        let gs = self.graph(g);
        let producers = gs
            .external_deps
            .values()
            .flatten()
            .map(|d| d.graph)
            .collect();
        let holding: Vec<TaskId> = (0..gs.tasks.len() as u32)
            .map(|index| TaskId { graph: g, index })
            .filter(|&t| !self.task(t).holders.is_empty())
            .collect();
        for t in holding {
            self.release_value(t);
        }
        self.graphs[g as usize] = None;
        producers
    }
}
