use traces::units::{format_bytes, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// Spilling to disk, time near or over the pause line, workers killed for memory.
pub struct MemoryPressure;

/// Dr. Elephant Spark execution-memory spill, spilled / processed: 0.01 / 0.1 / 0.25 / 0.5.
pub const SPILL_RATIO: [f64; 4] = [0.01, 0.10, 0.25, 0.50];
/// Disk time as a share of all task time: 5 / 10 / 25 / 50 % (ours). Dask task streams record
/// reading spilled data back (`disk-read`) but neither spill writes nor sizes.
pub const DISK_SHARE: [f64; 4] = [0.05, 0.10, 0.25, 0.50];

impl Rule for MemoryPressure {
    fn id(&self) -> &'static str {
        "memory-pressure"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let (mut written, mut read, mut disk_ns, mut produced, mut task_ns) = (0, 0, 0, 0, 0);
        for g in index.groups.iter() {
            written += g.disk_write_bytes;
            read += g.disk_read_bytes;
            disk_ns += g.disk_write_ns + g.disk_read_ns;
            produced += g.output_total;
            task_ns += g.task_time();
        }
        let kills: usize = index.workers.values().map(|w| w.killed.len()).sum();
        let pauses: u64 = index.workers.values().map(|w| w.paused).sum();
        let over_pause: u64 = index.workers.values().map(|w| w.over_pause_ns).sum();
        if disk_ns == 0 && written == 0 && kills == 0 && pauses == 0 && over_pause == 0 {
            return Vec::new();
        }
        let ratio = written as f64 / produced.max(1) as f64;
        let disk_share = disk_ns as f64 / task_ns.max(1) as f64;
        let mut graded =
            Severity::grade(ratio, SPILL_RATIO).max(Severity::grade(disk_share, DISK_SHARE));
        if pauses > 0 {
            graded = graded.max(Severity::Moderate);
        }
        // A dead worker loses every result it held: at least severe.
        if kills > 0 {
            graded = graded.max(Severity::Severe);
        }
        let recovery: u64 = index
            .repeats
            .iter()
            .filter(|r| r.after_death)
            .map(|r| r.repeated_ns)
            .sum();
        let workers = index.workers.len().max(1) as u32;
        let impact = per_thread_seconds(disk_ns + index.lost_compute_ns + recovery, threads)
            + per_thread_seconds(over_pause, workers);
        let severity = Severity::both(graded, impact);
        if severity == Severity::None {
            return Vec::new();
        }
        let limit = index.workers.values().filter_map(|w| w.memory_limit).max();
        let peak = index
            .workers
            .values()
            .map(|w| w.max_process)
            .max()
            .unwrap_or(0);
        let median_output = {
            let mut sizes: Vec<u64> = index
                .groups
                .iter()
                .filter(|g| g.tasks > 0)
                .map(|g| g.median_output())
                .collect();
            sizes.sort_unstable();
            sizes.get(sizes.len() / 2).copied().unwrap_or(0)
        };
        let mut title = if written > 0 {
            format!(
                "workers spilled {} to disk ({:.0}% of the {} produced) and read back {}",
                format_bytes(written),
                ratio * 100.0,
                format_bytes(produced),
                format_bytes(read)
            )
        } else {
            format!(
                "tasks spent {} ({:.0}% of task time) reading spilled data back from disk",
                format_duration(disk_ns),
                disk_share * 100.0
            )
        };
        if pauses > 0 {
            title.push_str(&format!(
                ", paused {pauses} times ({} over the pause line)",
                format_duration(over_pause)
            ));
        }
        if kills > 0 {
            title.push_str(&format!(
                ", and {kills} worker{} died past the terminate line",
                if kills == 1 { "" } else { "s" }
            ));
        }
        let killed = index
            .workers
            .iter()
            .find(|(_, w)| !w.killed.is_empty())
            .map(|(id, _)| index.worker_name(*id));
        vec![Finding {
            rule: self.id(),
            severity,
            impact_seconds: impact,
            title,
            scope: Scope {
                worker: killed,
                ..Scope::default()
            },
            evidence: vec![
                ("spilled_bytes".into(), written as f64),
                ("read_back_bytes".into(), read as f64),
                ("spill_ratio".into(), ratio),
                ("disk_seconds".into(), disk_ns as f64 / 1e9),
                ("disk_share".into(), disk_share),
                ("pauses".into(), pauses as f64),
                ("seconds_over_pause".into(), over_pause as f64 / 1e9),
                ("workers_killed".into(), kills as f64),
                (
                    "lost_compute_seconds".into(),
                    index.lost_compute_ns as f64 / 1e9,
                ),
                (
                    "recomputed_after_death_seconds".into(),
                    recovery as f64 / 1e9,
                ),
                ("peak_process_bytes".into(), peak as f64),
                ("memory_limit_bytes".into(), limit.unwrap_or(0) as f64),
            ],
            advice: format!(
                "Give each task less data or each worker more memory: smaller partitions \
                 (now a median {}; try ~{}), a larger `memory_limit` per worker (or fewer \
                 threads per worker), `persist()` only what is reused and `del` / release \
                 futures as soon as they are consumed. Large working sets inside a task \
                 (sorts, joins) count as unmanaged memory: split them too.",
                format_bytes(median_output),
                format_bytes(median_output / 4)
            ),
        }]
    }
}
