//! How many threads of a worker were busy, over time: what GIL contention and the cost of
//! waiting for transfers are measured against.

use rustc_hash::FxHashMap;
use traces::{Nanos, WorkerId};

use crate::index::{Run, TraceIndex};

/// Busy threads over time on one worker, with its running integral.
pub(crate) struct BusyLevel {
    /// Event times, the level from each on, and the busy-thread time before each.
    times: Vec<Nanos>,
    levels: Vec<i64>,
    areas: Vec<f64>,
}

impl BusyLevel {
    pub fn new<'a>(runs: impl Iterator<Item = &'a Run>) -> BusyLevel {
        let mut events: Vec<(Nanos, i64)> = runs
            .flat_map(|r| [(r.busy_start, 1), (r.busy_stop, -1)])
            .collect();
        events.sort_unstable();
        let (mut times, mut levels, mut areas) = (Vec::new(), Vec::new(), Vec::new());
        let (mut level, mut area, mut last) = (0i64, 0f64, 0);
        for (t, delta) in events {
            area += level as f64 * t.saturating_sub(last) as f64;
            level += delta;
            last = t;
            times.push(t);
            levels.push(level);
            areas.push(area);
        }
        BusyLevel {
            times,
            levels,
            areas,
        }
    }

    /// Busy-thread time from the first event to `t`.
    pub fn area(&self, t: Nanos) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        if i == 0 {
            return 0.0;
        }
        let j = i - 1;
        self.areas[j] + self.levels[j] as f64 * t.saturating_sub(self.times[j]) as f64
    }

    /// Average busy threads over `[a, b]`.
    pub fn mean(&self, a: Nanos, b: Nanos) -> f64 {
        (self.area(b) - self.area(a)) / b.saturating_sub(a).max(1) as f64
    }
}

/// Each worker's busy level, from its successful runs.
pub(crate) fn busy_levels(index: &TraceIndex) -> FxHashMap<WorkerId, BusyLevel> {
    let mut by_worker: FxHashMap<WorkerId, Vec<&Run>> = FxHashMap::default();
    for run in &index.runs {
        by_worker.entry(run.worker).or_default().push(run);
    }
    by_worker
        .into_iter()
        .map(|(w, runs)| (w, BusyLevel::new(runs.into_iter())))
        .collect()
}

/// Average number of busy threads on the run's worker over the run, for each run on a worker
/// with several threads (run index, concurrency).
pub(crate) fn concurrency(index: &TraceIndex) -> Vec<(usize, f64)> {
    let levels = busy_levels(index);
    index
        .runs
        .iter()
        .enumerate()
        .filter(|(_, run)| {
            index.workers.get(&run.worker).map_or(1, |w| w.threads) >= 2
                && run.busy_stop > run.busy_start
        })
        .map(|(i, run)| (i, levels[&run.worker].mean(run.busy_start, run.busy_stop)))
        .collect()
}
