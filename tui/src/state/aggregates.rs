//! Totals that need a pass over every task (duration histograms, transfers per worker):
//! recomputed when the cursor or the data changed, at most a few times a second, so a frame
//! never pays for them.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use traces::{Action, Nanos, WorkerId};

use super::store::Store;

/// How often the totals may be recomputed while things change.
const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// The longest compute time the histograms tell apart: a day, in microseconds.
const MAX_MICROS: u64 = 86_400_000_000;

/// Compute-phase durations of one group's finished tasks, in microseconds.
pub struct GroupHistogram {
    pub group: u32,
    pub micros: Histogram<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    pub tasks: u64,
    pub transfers: u64,
    pub transfer_bytes: u64,
    pub disk_bytes: u64,
}

#[derive(Default)]
pub struct Aggregates {
    pub histograms: Vec<GroupHistogram>,
    pub workers: FxHashMap<WorkerId, WorkerTotals>,
    /// What they were computed for: (cursor, tasks known).
    computed_for: Option<(Nanos, usize)>,
    computed_at: Option<Instant>,
}

impl Aggregates {
    pub fn refresh(&mut self, store: &Store, cursor: Nanos, now: Instant) {
        let key = (cursor, store.tasks.len());
        if self.computed_for == Some(key)
            || self
                .computed_at
                .is_some_and(|at| now.duration_since(at) < REFRESH_EVERY)
        {
            return;
        }
        *self = Aggregates::compute(store, cursor);
        self.computed_for = Some(key);
        self.computed_at = Some(now);
    }

    /// One pass over the tasks finished by `cursor`.
    pub fn compute(store: &Store, cursor: Nanos) -> Aggregates {
        let mut histograms: Vec<Option<Histogram<u64>>> = Vec::new();
        histograms.resize_with(store.groups.len(), || None);
        let mut workers: FxHashMap<WorkerId, WorkerTotals> = FxHashMap::default();
        for row in &store.tasks {
            if row.stop > cursor {
                continue;
            }
            let mut compute = 0;
            let worker = store.lanes[row.lane as usize].worker;
            let totals = workers.entry(worker).or_default();
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
            let h = histograms[row.group as usize].get_or_insert_with(|| {
                Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid bounds")
            });
            h.saturating_record((compute / 1_000).max(1));
        }
        Aggregates {
            histograms: histograms
                .into_iter()
                .enumerate()
                .filter_map(|(g, h)| {
                    h.map(|micros| GroupHistogram {
                        group: g as u32,
                        micros,
                    })
                })
                .collect(),
            workers,
            computed_for: None,
            computed_at: None,
        }
    }
}
