//! Totals that need a pass over the tasks (duration histograms, transfers per worker). At the
//! newest instant (a live run) new tasks are added as they come; for a past instant the pass
//! is redone, at most a few times a second, so a frame never pays for it.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use traces::{Action, Nanos, SparseHistogram, WorkerId};

use super::store::{Store, TaskRow};

/// How often a full pass may run while the cursor moves through the past.
const REFRESH_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    pub tasks: u64,
    pub transfers: u64,
    pub transfer_bytes: u64,
    pub disk_bytes: u64,
}

#[derive(Default)]
pub struct Aggregates {
    /// By group id. Sparse: a dense HdrHistogram up to a day in microseconds is ~230 KiB from
    /// its first value, 23 GB for a trace of 100,000 groups (issue 11).
    histograms: Vec<Option<SparseHistogram>>,
    pub workers: FxHashMap<WorkerId, WorkerTotals>,
    /// `tasks[..counted]` are all in (the totals are for the newest instant).
    counted: Option<usize>,
    /// What a full pass was last computed for: (cursor, tasks known), and when.
    computed_for: Option<(Nanos, usize)>,
    computed_at: Option<Instant>,
    /// How long the last full pass took: passes are spaced at least 4 times that apart, so
    /// they never take more than a fifth of the UI's time.
    last_cost: Duration,
}

impl Aggregates {
    /// Histograms of the groups with finished tasks, in group order.
    pub fn histograms(&self) -> impl Iterator<Item = GroupHistogramRef<'_>> {
        self.histograms.iter().enumerate().filter_map(|(g, h)| {
            h.as_ref().map(|micros| GroupHistogramRef {
                group: g as u32,
                micros,
            })
        })
    }

    pub fn refresh(&mut self, store: &Store, cursor: Nanos, now: Instant) {
        if cursor >= store.end
            && let Some(counted) = self.counted.filter(|&c| c <= store.tasks.len())
        {
            for row in &store.tasks[counted..] {
                self.count(store, row);
            }
            self.counted = Some(store.tasks.len());
            return;
        }
        let key = (cursor, store.tasks.len());
        if self.computed_for == Some(key)
            || self
                .computed_at
                .is_some_and(|at| now.duration_since(at) < REFRESH_EVERY.max(self.last_cost * 4))
        {
            return;
        }
        let started = Instant::now();
        self.histograms.clear();
        self.workers.clear();
        for row in store.tasks.iter().filter(|row| row.stop <= cursor) {
            self.count(store, row);
        }
        self.counted = (cursor >= store.end).then_some(store.tasks.len());
        self.computed_for = Some(key);
        self.computed_at = Some(now);
        self.last_cost = started.elapsed();
    }

    fn count(&mut self, store: &Store, row: &TaskRow) {
        let mut compute = 0;
        let worker = store.lanes[row.lane as usize].worker;
        let totals = self.workers.entry(worker).or_default();
        totals.tasks += 1;
        for phase in store.task_phases(row) {
            match phase.action {
                Action::Compute => compute += phase.duration(),
                Action::Transfer => {
                    totals.transfers += 1;
                    totals.transfer_bytes += phase.bytes.unwrap_or(0);
                }
                Action::DiskRead | Action::DiskWrite => {
                    totals.disk_bytes += phase.bytes.unwrap_or(0)
                }
                _ => {}
            }
        }
        let g = row.group as usize;
        if self.histograms.len() <= g {
            self.histograms.resize_with(g + 1, || None);
        }
        self.histograms[g]
            .get_or_insert_with(SparseHistogram::new)
            .record((compute / 1_000).max(1));
    }
}

/// Compute-phase durations of one group's finished tasks, in microseconds.
pub struct GroupHistogramRef<'a> {
    pub group: u32,
    pub micros: &'a SparseHistogram,
}
