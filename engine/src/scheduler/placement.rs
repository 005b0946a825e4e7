//! Where a ready task goes (most input bytes already there, then the least loaded worker), the
//! order a worker runs its queue in (depth first), work stealing, and claiming a task with its
//! inputs located.

use std::collections::BTreeMap;
use std::path::PathBuf;

use traces::WorkerId;

use super::{Payload, Scheduler, Status};
use crate::error::EngineError;
use crate::graph::Graph;
use crate::store::{Located, TaskId};

/// One input of a task about to run.
pub(crate) struct Input<P> {
    pub task: TaskId,
    /// The worker it comes from (slot, id) when it is not local.
    pub from: Option<(usize, WorkerId)>,
    pub found: Located<P>,
}

/// A task given to a thread, with what it needs to run it outside the scheduler.
pub(crate) struct Assignment<P> {
    pub task: TaskId,
    pub graph: Graph,
    pub inputs: Vec<Input<P>>,
    pub attempt: u32,
    pub ready_at: u64,
    pub worker: WorkerId,
    /// Working memory the attempt holds while it runs (Dask's unmanaged memory).
    pub working: u64,
    /// Results to spill first, to make room for that working memory.
    pub spill: Vec<(TaskId, P, PathBuf)>,
}

impl<P> Assignment<P> {
    /// The distinct workers its inputs are fetched from (the rounds of a gather count them).
    pub fn peers(&self) -> u32 {
        let mut peers = super::Holders::default();
        for (slot, _) in self.inputs.iter().filter_map(|input| input.from) {
            peers.insert(slot);
        }
        peers.iter().count() as u32
    }
}

/// The answer to a thread asking for work.
pub(crate) enum Claim<P> {
    /// Its worker was replaced: the thread exits.
    Gone,
    /// Nothing it may run now.
    Idle,
    Run(Assignment<P>),
    /// Allocating the task's working memory killed the worker: the attempt is lost and the
    /// thread exits.
    Killed(Assignment<P>),
}

impl<P: Payload> Scheduler<P> {
    /// The next task for `thread` of the worker in `slot` (of `generation`), marked processing
    /// there, with its inputs located. Inputs lost with a dead worker send the task back to
    /// waiting (they are recomputed) and the next one is tried.
    pub fn claim(&mut self, slot: usize, generation: u32, thread: u32, now: u64) -> Claim<P> {
        self.now = now;
        loop {
            if self.workers[slot].generation != generation {
                return Claim::Gone;
            }
            let Some(t) = self.next_task(slot) else {
                return Claim::Idle;
            };
            if let Some(on) = self.workers[slot].on_thread.get_mut(thread as usize) {
                *on = Some((t, now));
            }
            let inputs = match self.locate_inputs(t, slot) {
                Ok(inputs) => inputs,
                Err(missing) => {
                    self.release_slot(slot, t);
                    let ts = self.task_mut(t);
                    ts.status = Status::Waiting;
                    ts.waiting_on = missing.len() as u32;
                    for dep in missing {
                        self.ensure_computing(dep);
                    }
                    continue;
                }
            };
            let graph = self.graph(t.graph).graph.clone();
            let ts = self.task(t);
            let working = graph.task(t.index).work.working_bytes_at(ts.attempt);
            let mut assignment = Assignment {
                task: t,
                attempt: ts.attempt,
                ready_at: ts.ready_at,
                worker: self.workers[slot].id,
                graph,
                inputs,
                working,
                spill: Vec::new(),
            };
            if working > 0 {
                let w = &mut self.workers[slot];
                w.unmanaged = w.unmanaged.saturating_add(working);
                // Over terminate, this kills the worker before the task runs.
                assignment.spill = self.check_memory(slot);
                if self.workers[slot].generation != generation {
                    return Claim::Killed(assignment);
                }
            }
            return Claim::Run(assignment);
        }
    }

    /// A task's inputs are all in memory: queue it on the best worker.
    pub fn make_ready(&mut self, t: TaskId) {
        self.enqueue(t, false);
    }

    /// Queues `t`; with `first`, ahead of the worker's queue. Tasks freed by a finishing input
    /// go first (depth first, like Dask's graph ordering): their inputs are consumed and
    /// released soon, instead of every partition's result waiting for the last leaf.
    pub(super) fn enqueue(&mut self, t: TaskId, first: bool) {
        let needs = self.needs(t);
        let Some(slot) = self.choose_worker(t, &needs) else {
            let key = self.key(t);
            let needs = needs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            self.fail(t, EngineError::NoWorkerHasResources { key, needs });
            return;
        };
        let now = self.now;
        let ts = self.task_mut(t);
        ts.status = Status::Queued(slot as u16);
        ts.ready_at = now;
        if first {
            self.workers[slot].queue.push_front(t);
        } else {
            self.workers[slot].queue.push_back(t);
        }
        self.wake_workers = true;
    }

    /// The resources `t` needs on its worker.
    fn needs(&self, t: TaskId) -> BTreeMap<String, f64> {
        self.graph(t.graph)
            .graph
            .task(t.index)
            .work
            .extra()
            .map(|e| e.resources.clone())
            .unwrap_or_default()
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
                .filter(|d| d.holders.contains(slot))
                .fold(0u64, |sum, d| sum.saturating_add(d.nbytes));
            let candidate = (!w.paused, local, std::cmp::Reverse(w.load()), slot);
            if best.is_none_or(|b| (candidate.0, candidate.1, candidate.2) > (b.0, b.1, b.2)) {
                best = Some(candidate);
            }
        }
        best.map(|b| b.3)
    }

    /// The next task for a thread of `slot`: its own queue first, then stolen from the most
    /// loaded worker. Marks it processing.
    fn next_task(&mut self, slot: usize) -> Option<TaskId> {
        if self.workers[slot].paused || self.held {
            return None;
        }
        if let Some(t) = self.pop_runnable(slot, slot, false) {
            return Some(t);
        }
        // Steal from the back (the most recently queued, least likely to have local inputs).
        let mut victims: Vec<usize> = self
            .alive_workers()
            .filter(|&s| s != slot && self.can_be_stolen_from(s))
            .collect();
        victims.sort_by_key(|&s| std::cmp::Reverse(self.workers[s].queue.len()));
        for victim in victims {
            if let Some(t) = self.pop_runnable(victim, slot, true) {
                return Some(t);
            }
        }
        None
    }

    /// Whether `slot` has queued tasks beyond those its own idle threads are about to take (all
    /// of them when it is paused).
    fn can_be_stolen_from(&self, slot: usize) -> bool {
        let w = &self.workers[slot];
        !w.queue.is_empty() && (w.paused || w.queue.len() > self.idle_of(slot))
    }

    /// Whether a thread of a worker with nothing queued could steal anything now: when not,
    /// offering it work is bound to come back idle.
    pub(crate) fn anything_to_steal(&self) -> bool {
        self.alive_workers().any(|s| self.can_be_stolen_from(s))
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
    pub(super) fn release_slot(&mut self, slot: usize, t: TaskId) {
        let needs = if self.graph_alive(t.graph) {
            self.needs(t)
        } else {
            BTreeMap::new()
        };
        let w = &mut self.workers[slot];
        w.running = w.running.saturating_sub(1);
        if let Some(pos) = w.processing.iter().position(|&p| p == t) {
            w.processing.swap_remove(pos);
        }
        for (name, amount) in needs {
            if let Some(used) = w.resources_used.get_mut(&name) {
                *used -= amount;
            }
        }
    }

    /// Where each input of `t` can be read, for a thread on `slot`.
    fn locate_inputs(&mut self, t: TaskId, slot: usize) -> Result<Vec<Input<P>>, Vec<TaskId>> {
        let deps = self.dependencies(t);
        let mut inputs = Vec::with_capacity(deps.len());
        let mut missing = Vec::new();
        for dep in deps {
            self.tick += 1;
            let tick = self.tick;
            let holders = self.task(dep).holders.clone();
            if holders.contains(slot)
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
            for peer in holders.iter() {
                if peer == slot {
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
