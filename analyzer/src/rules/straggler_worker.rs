use traces::WorkerId;
use traces::units::{format_bytes, format_duration};

use crate::finding::Finding;
use crate::index::{REPLACEMENT_LATE_DIVISOR, TraceIndex, WorkerStats};
use crate::rules::{Evidence, Rule, graded, seconds};

/// One worker much busier than the others: the job waits on it (data pinned to it by
/// `scatter(workers=…)`, restrictions, a hot partition living there).
pub struct StragglerWorker;

impl StragglerWorker {
    /// Dr. Elephant Spark executor load balance, max / median busy time:
    /// 1.334 / 1.778 / 3.162 / 10.
    pub const LOAD_RATIO: [f64; 4] = [1.334, 1.778, 3.162, 10.0];
    /// A worker that joined after this share of the run is a replacement, not a peer (ours).
    pub const LATE_JOIN_SHARE: f64 = 0.25;
}

impl Rule for StragglerWorker {
    fn id(&self) -> &'static str {
        "straggler-worker"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let wall = index.wall_ns();
        let late = index.first + (wall as f64 * StragglerWorker::LATE_JOIN_SHARE) as u64;
        // Workers that lived through the run: a replacement started late is not idle, and a
        // worker that died is another rule's matter. Task streams record no deaths, and
        // declare every worker they saw: there, a worker that stopped for good before a late
        // one started is the dead one, and the late one its replacement.
        let replaced: Vec<WorkerId> = index
            .replacements(index.first + wall / REPLACEMENT_LATE_DIVISOR)
            .into_iter()
            .flat_map(|(left, new)| [left, new])
            .collect();
        let mut workers: Vec<(&u32, &WorkerStats)> = index
            .workers
            .iter()
            .filter(|(id, w)| {
                let declared = index.header.cluster.workers.iter().any(|s| s.id == **id);
                w.killed.is_empty()
                    && !replaced.contains(id)
                    && (declared || (w.tasks > 0 && w.first_busy <= late))
            })
            .collect();
        if workers.len() < 2 {
            return Vec::new();
        }
        // Per thread: a worker with more threads is expected to do more.
        let per_thread = |w: &WorkerStats| w.busy_ns / u64::from(w.threads.max(1));
        workers.sort_by_key(|(_, w)| per_thread(w));
        // The lower median: with two workers, the other one.
        let median_ns = per_thread(workers[(workers.len() - 1) / 2].1);
        let median = median_ns.max(1);
        let (id, busiest) = workers[workers.len() - 1];
        let ratio = per_thread(busiest) as f64 / median as f64;
        let mean = workers.iter().map(|(_, w)| per_thread(w)).sum::<u64>() / workers.len() as u64;
        // Balanced, the busiest worker's excess would be shared by all.
        let impact = seconds(per_thread(busiest).saturating_sub(mean));
        let Some(severity) = graded(ratio, StragglerWorker::LOAD_RATIO, impact) else {
            return Vec::new();
        };
        let name = index.worker_name(*id);
        let held = if busiest.max_managed > 0 {
            format!(
                ", holding up to {} of results",
                format_bytes(busiest.max_managed)
            )
        } else {
            String::new()
        };
        let wall_share = per_thread(busiest) as f64 / wall.max(1) as f64;
        vec![
            Finding::new(
                self.id(),
                severity,
                impact,
                format!(
                    "worker {name} was busy {} ({:.0}% of the run) {}{held}",
                    format_duration(per_thread(busiest)),
                    wall_share * 100.0,
                    if median_ns == 0 {
                        // A ratio to nothing is no number ("321127182.00x").
                        "while the median worker ran nothing".to_string()
                    } else {
                        format!("against a median {} ({ratio:.2}x)", format_duration(median))
                    }
                ),
            )
            .worker(name.clone())
            .with_evidence(
                Evidence::new()
                    .seconds("busiest", per_thread(busiest))
                    .seconds("median", median_ns)
                    .ratio("load_ratio", ratio)
                    .count("busiest_tasks", busiest.tasks)
                    .bytes("busiest_max_managed", busiest.max_managed),
            )
            .advice(format!(
                "Spread the work: data pinned on {name} (`client.scatter(..., workers=...)` \
                 without `broadcast=True`, `workers=` or resource restrictions, a large \
                 persisted input living there) makes its tasks run there. Scatter without \
                 pinning or `client.rebalance()`, drop the restriction, or split the data so \
                 every worker holds a share."
            )),
        ]
    }
}
