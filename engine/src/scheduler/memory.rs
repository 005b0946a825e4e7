//! Dask's memory lines, per worker: spill least-recently-used results past *target* (or
//! process memory past *spill*), pause past *pause*, kill past *terminate*.

use std::path::PathBuf;

use traces::EventKind;

use super::{Payload, Scheduler};
use crate::store::TaskId;

impl<P: Payload> Scheduler<P> {
    fn limit(&self, fraction: f64) -> Option<u64> {
        self.config
            .memory_limit
            .map(|limit| (limit as f64 * fraction) as u64)
    }

    /// Checks `slot`'s memory against the thresholds after it changed. Returns values to spill.
    ///
    /// Spilling comes first: results on disk leave the process, so only memory that cannot be
    /// spilled (running tasks' working memory) can push a worker over pause or terminate.
    pub(super) fn check_memory(&mut self, slot: usize) -> Vec<(TaskId, P, PathBuf)> {
        let Some(limit) = self.config.memory_limit else {
            return Vec::new();
        };
        let fractions = self.config.memory;
        let target = self.limit(fractions.target).unwrap_or(u64::MAX);
        let spill_line = self.limit(fractions.spill).unwrap_or(u64::MAX);
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
            let bytes = victims
                .iter()
                .fold(0u64, |sum, v| sum.saturating_add(v.1.size()));
            self.progress.spilled_bytes = self.progress.spilled_bytes.saturating_add(bytes);
            self.sample(slot);
        }
        let process = self.workers[slot].process_memory();
        if process as f64 > limit as f64 * fractions.terminate {
            let reason = format!(
                "memory {} over the terminate threshold ({:.0}% of {})",
                traces::units::format_bytes(process),
                fractions.terminate * 100.0,
                traces::units::format_bytes(limit)
            );
            self.kill_worker(slot, reason);
            return Vec::new();
        }
        self.update_pause(slot);
        victims
    }

    /// Pause above the pause fraction; resume below it.
    fn update_pause(&mut self, slot: usize) {
        let Some(pause) = self.limit(self.config.memory.pause) else {
            return;
        };
        let w = &mut self.workers[slot];
        let over = w.process_memory() > pause;
        if over != w.paused {
            w.paused = over;
            let worker = w.id;
            if over {
                self.progress.pauses += 1;
                self.event(EventKind::WorkerPaused { worker });
            } else {
                self.event(EventKind::WorkerResumed { worker });
                self.wake_workers = true;
            }
            self.sample(slot);
        }
    }

    /// Spill files written by the driver: those values now live only on disk (the ones
    /// released meanwhile go to the trash). `failed` could not be written (a full disk): they
    /// stay in memory, and no longer count as spilled.
    pub fn spilled(
        &mut self,
        slot: usize,
        written: Vec<(TaskId, PathBuf)>,
        failed: &[(TaskId, u64)],
    ) {
        for (task, path) in written {
            self.workers[slot].store.spilled_to(task, path);
        }
        for &(task, bytes) in failed {
            self.tick += 1;
            self.workers[slot].store.spill_failed(task, self.tick);
            self.progress.spills = self.progress.spills.saturating_sub(1);
            self.progress.spilled_bytes = self.progress.spilled_bytes.saturating_sub(bytes);
        }
    }
}
