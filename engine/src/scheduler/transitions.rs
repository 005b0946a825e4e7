//! A task attempt ended: its result goes into memory and frees its dependents, or it failed and
//! is retried or errs with everything downstream; results nobody needs any more are released.

use std::path::PathBuf;

use traces::{EventKind, TaskStatus};

use super::{Payload, Scheduler, Status};
use crate::error::EngineError;
use crate::store::TaskId;

/// What became of an attempt a thread finished.
pub(crate) struct Finished<P> {
    /// `Ok` or `Error` when it counted; `Lost` when its worker died meanwhile, `Cancelled` when
    /// the client no longer wanted it.
    pub status: TaskStatus,
    /// Results the thread spills now that its worker holds this one.
    pub spill: Vec<(TaskId, P, PathBuf)>,
}

impl<P: Payload> Scheduler<P> {
    /// A thread of `slot` (of `generation`) finished running `t`, which held `working` bytes
    /// of working memory. `fetched` are inputs it copied from peers (now replicas here),
    /// `unspilled` inputs it read back from this worker's disk.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        slot: usize,
        generation: u32,
        t: TaskId,
        working: u64,
        result: Result<P, String>,
        fetched: Vec<(TaskId, P)>,
        unspilled: Vec<(TaskId, P)>,
        now: u64,
    ) -> Finished<P> {
        self.now = now;
        let ended = |status| Finished {
            status,
            spill: Vec::new(),
        };
        if self.workers[slot].generation != generation {
            // The worker died while this ran: the result went down with it.
            return ended(TaskStatus::Lost);
        }
        let w = &mut self.workers[slot];
        w.unmanaged = w.unmanaged.saturating_sub(working);
        self.release_slot(slot, t);
        let current = self
            .graphs
            .get(t.graph as usize)
            .and_then(Option::as_ref)
            .map(|g| g.tasks[t.index as usize].status);
        if current != Some(Status::Processing(slot as u16)) {
            // Cancelled, or released by the client, while it ran.
            return ended(TaskStatus::Cancelled);
        }
        self.keep_inputs(slot, fetched, unspilled);
        let status = match result {
            Ok(value) => {
                self.task_done(t, slot, value);
                TaskStatus::Ok
            }
            Err(message) => {
                self.task_failed(t, message);
                TaskStatus::Error
            }
        };
        Finished {
            status,
            spill: self.check_memory(slot),
        }
    }

    /// Fetched inputs stay on this worker (a replica, as in Dask); read-back ones are in
    /// memory again.
    fn keep_inputs(&mut self, slot: usize, fetched: Vec<(TaskId, P)>, unspilled: Vec<(TaskId, P)>) {
        for (dep, value) in fetched {
            if self.graph_alive(dep.graph)
                && self.task(dep).status == Status::Memory
                && !self.workers[slot].store.contains(dep)
            {
                self.tick += 1;
                self.progress.transfers += 1;
                self.progress.transferred_bytes =
                    self.progress.transferred_bytes.saturating_add(value.size());
                self.workers[slot].store.insert(dep, value, self.tick);
                self.task_mut(dep).holders.insert(slot);
            }
        }
        for (dep, value) in unspilled {
            self.tick += 1;
            self.workers[slot].store.unspill(dep, value, self.tick);
        }
    }

    /// A task's result is in memory on `slot`.
    fn task_done(&mut self, t: TaskId, slot: usize, value: P) {
        self.tick += 1;
        let tick = self.tick;
        let nbytes = value.size();
        self.workers[slot].store.insert(t, value, tick);
        let ts = self.task_mut(t);
        ts.status = Status::Memory;
        ts.holders.insert(slot);
        ts.nbytes = nbytes;
        let wanted = ts.wanted;
        self.progress.tasks_done += 1;
        for dependent in self.dependents(t) {
            let d = self.task_mut(dependent);
            if d.status == Status::Waiting {
                d.waiting_on -= 1;
                if d.waiting_on == 0 {
                    self.enqueue(dependent, true);
                }
            }
        }
        for dep in self.dependencies(t) {
            self.dependent_finished(dep);
        }
        if wanted {
            self.wanted_finished(t.graph);
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

    fn wanted_finished(&mut self, g: u32) {
        let gs = self.graph_mut(g);
        gs.remaining -= 1;
        if gs.remaining == 0 {
            self.wake_clients = true;
        }
    }

    /// Frees a result on every worker holding it.
    pub(super) fn release_value(&mut self, t: TaskId) {
        let holders = std::mem::take(&mut self.task_mut(t).holders);
        for slot in holders.iter() {
            self.workers[slot].store.remove(t);
        }
        let ts = self.task_mut(t);
        ts.status = Status::Released;
    }

    /// An attempt failed: retry if allowed, else the task and everything downstream errs.
    fn task_failed(&mut self, t: TaskId, message: String) {
        let ts = self.task_mut(t);
        if ts.retries_left > 0 {
            ts.retries_left -= 1;
            ts.attempt += 1;
            let attempt = ts.attempt;
            let key = self.graph(t.graph).graph.task(t.index).key.clone();
            self.event(EventKind::TaskRetried { key, attempt });
            self.make_ready(t);
            return;
        }
        let key = self.key(t);
        self.fail(t, EngineError::Task { key, message });
    }

    /// Marks `t` and its waiting dependents erred with `error`.
    pub(super) fn fail(&mut self, t: TaskId, error: EngineError) {
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
            // Only a task its graph still waits for counts toward `remaining`: a released one
            // (lost with a killed worker, about to run again) was taken off it already.
            let counted = matches!(
                ts.status,
                Status::Waiting | Status::Queued(_) | Status::Processing(_)
            );
            ts.status = Status::Erred;
            let wanted = ts.wanted;
            self.progress.tasks_erred += 1;
            let gs = self.graph_mut(t.graph);
            if gs.errors.len() < 10 && !gs.errors.contains(&error) {
                gs.errors.push(error.clone());
            }
            if wanted && counted {
                self.wanted_finished(t.graph);
            }
            stack.extend(self.dependents(t));
        }
        self.wake_clients = true;
    }
}
