//! What the scheduler knows right now ([`traces::LiveState`]), for live displays. Sampled on
//! demand; nothing is kept up to date for it.

use std::collections::HashMap;
use std::sync::Arc;

use traces::{GroupState, LiveState, RunningTask};

use super::{Payload, Scheduler, Status};

impl<P: Payload> Scheduler<P> {
    /// One pass over the tasks of every graph held: a few milliseconds at a million tasks.
    pub(crate) fn live(&self, time: u64) -> LiveState {
        let mut groups: Vec<GroupState> = Vec::new();
        let mut numbers: HashMap<Arc<str>, usize> = HashMap::new();
        for gs in self.graphs.iter().flatten() {
            let table = &gs.graph.groups;
            let local: Vec<usize> = table
                .names
                .iter()
                .map(|name| {
                    *numbers.entry(name.clone()).or_insert_with(|| {
                        groups.push(GroupState {
                            name: name.clone(),
                            ..GroupState::default()
                        });
                        groups.len() - 1
                    })
                })
                .collect();
            for (g, deps) in table.dependencies.iter().enumerate() {
                let group = &mut groups[local[g]];
                for &d in deps {
                    let name = &table.names[d as usize];
                    if !group.dependencies.contains(name) {
                        group.dependencies.push(name.clone());
                    }
                }
            }
            for (ts, &g) in gs.tasks.iter().zip(&table.of_task) {
                let group = &mut groups[local[g as usize]];
                match ts.status {
                    Status::Waiting | Status::Queued(_) => group.waiting += 1,
                    Status::Processing(_) => group.running += 1,
                    Status::Memory | Status::Released => group.done += 1,
                    Status::Erred => group.erred += 1,
                    Status::Cancelled => {}
                }
            }
        }
        let mut running = Vec::new();
        for (slot, w) in self.workers.iter().enumerate() {
            if !w.alive {
                continue;
            }
            for (thread, on) in w.on_thread.iter().enumerate() {
                let Some((t, start)) = *on else { continue };
                let Some(Some(gs)) = self.graphs.get(t.graph as usize) else {
                    continue;
                };
                if gs.tasks[t.index as usize].status != Status::Processing(slot as u16) {
                    continue;
                }
                let spec = gs.graph.task(t.index);
                running.push(RunningTask {
                    key: spec.key.clone(),
                    group: spec.group.clone(),
                    worker: w.id,
                    thread: thread as u32,
                    start,
                });
            }
        }
        LiveState {
            time,
            paused: self.held,
            groups,
            running,
        }
    }
}
