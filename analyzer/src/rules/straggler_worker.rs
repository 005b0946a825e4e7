use traces::units::format_duration;

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::Rule;

/// One worker much busier than the others: the job waits on it.
pub struct StragglerWorker;

/// Dr. Elephant Spark executor load balance, max / median busy time: 1.334 / 1.778 / 3.162 / 10.
pub const LOAD_RATIO: [f64; 4] = [1.334, 1.778, 3.162, 10.0];

impl Rule for StragglerWorker {
    fn id(&self) -> &'static str {
        "straggler-worker"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        // Workers that lived through the whole run: a replacement started late is not idle.
        let mut workers: Vec<(&u32, &crate::index::WorkerStats)> = index
            .workers
            .iter()
            .filter(|(id, w)| {
                w.killed.is_empty() && index.header.cluster.workers.iter().any(|s| s.id == **id)
            })
            .collect();
        if workers.len() < 2 {
            return Vec::new();
        }
        workers.sort_by_key(|(_, w)| w.busy_ns);
        let median = workers[workers.len() / 2].1.busy_ns.max(1);
        let (id, busiest) = workers[workers.len() - 1];
        let ratio = busiest.busy_ns as f64 / median as f64;
        let mean = workers.iter().map(|(_, w)| w.busy_ns).sum::<u64>() / workers.len() as u64;
        // Balanced, the busiest worker's excess would be shared by all.
        let impact =
            busiest.busy_ns.saturating_sub(mean) as f64 / 1e9 / f64::from(busiest.threads.max(1));
        let severity = Severity::both(Severity::grade(ratio, LOAD_RATIO), impact);
        if severity == Severity::None {
            return Vec::new();
        }
        let name = index.worker_name(*id);
        vec![Finding {
            rule: self.id(),
            severity,
            impact_seconds: impact,
            title: format!(
                "worker {name} was busy {} against a median {} ({ratio:.2}x)",
                format_duration(busiest.busy_ns),
                format_duration(median)
            ),
            scope: Scope {
                worker: Some(name.clone()),
                ..Scope::default()
            },
            evidence: vec![
                ("busiest_seconds".into(), busiest.busy_ns as f64 / 1e9),
                ("median_seconds".into(), median as f64 / 1e9),
                ("load_ratio".into(), ratio),
                ("busiest_tasks".into(), busiest.tasks as f64),
            ],
            advice: format!(
                "Spread the work: `client.rebalance()` data pinned on {name}, check for \
                 resources or `workers=` restrictions sending tasks there, and for skewed \
                 partitions living on it."
            ),
        }]
    }
}
