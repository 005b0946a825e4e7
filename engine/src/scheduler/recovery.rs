//! Lost results are computed again; a dead worker's tasks go elsewhere and a fresh worker takes
//! its slot (as Dask's nanny restarts one); a task that keeps killing workers is `KilledWorker`.

use traces::EventKind;

use super::{Effect, Payload, Scheduler, Status, spill_dir};
use crate::error::EngineError;
use crate::store::TaskId;

impl<P: Payload> Scheduler<P> {
    /// Makes sure a result that is not in memory (lost, released) gets computed again, with
    /// whatever of its own inputs is missing (walked with a stack: a long chain of released
    /// results must not overflow a worker thread's stack).
    pub(super) fn ensure_computing(&mut self, root: TaskId) {
        let mut stack = vec![root];
        let mut ready = Vec::new();
        while let Some(t) = stack.pop() {
            // Anything but a released result is already in hand, on its way, or final.
            if self.task(t).status != Status::Released {
                continue;
            }
            if self.graph(t.graph).scattered {
                let key = self.key(t);
                self.fail(t, EngineError::LostData { key });
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
                self.make_ready(t);
            }
        }
    }

    /// The worker in `slot` dies: its results are lost, its tasks go elsewhere, and a fresh
    /// worker takes its place.
    pub(super) fn kill_worker(&mut self, slot: usize, reason: String) {
        let allowed = self.config.allowed_failures;
        self.sample(slot);
        self.progress.kills += 1;
        let lost: Vec<TaskId> = self.workers[slot].store.tasks().collect();
        let queued: Vec<TaskId> = self.workers[slot].queue.iter().copied().collect();
        let running: Vec<TaskId> = self.workers[slot].processing.clone();
        self.replace_worker(slot, reason);

        // Results that only lived there: recompute the ones still needed.
        let mut needed = Vec::new();
        for t in lost {
            if !self.graph_alive(t.graph) {
                continue;
            }
            let ts = self.task_mut(t);
            ts.holders.remove(slot);
            if ts.holders.is_empty() && ts.status == Status::Memory {
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
                let key = self.key(t);
                self.fail(t, EngineError::KilledWorker { key, deaths });
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
                self.ensure_computing(t);
            }
        }
        for t in queued {
            if self.graph_alive(t.graph) && self.task(t).status == Status::Queued(slot as u16) {
                self.make_ready(t);
            }
        }
        self.wake_workers = true;
        self.wake_clients = true;
    }

    /// The worker in `slot` is gone (killed, restarted): its data is dropped, its threads exit
    /// (their generation no longer matches), and a fresh worker with a new id takes the slot;
    /// the driver starts its threads.
    pub(super) fn replace_worker(&mut self, slot: usize, reason: String) {
        self.event(EventKind::WorkerKilled {
            worker: self.workers[slot].id,
            reason,
        });
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let dir = spill_dir(&self.spill_root, id);
        let w = &mut self.workers[slot];
        w.store.clear(dir);
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
        let spec = self.worker_spec(slot);
        self.event(EventKind::WorkerAdded { worker: spec });
        self.effects.push(Effect::Spawn(slot));
    }
}
