use traces::Action;
use traces::units::{counted, format_bytes, format_duration};

use crate::finding::{Finding, Severity};
use crate::index::{GapCause, LostTask, TraceIndex};
use crate::rules::task_failures::KILLED_WORKER;
use crate::rules::{Evidence, Rule, per_thread_seconds, seconds};

/// Spilling to disk, workers paused past the pause line, workers killed for memory.
pub struct MemoryPressure;

impl MemoryPressure {
    /// Results below this are not what fills a worker (ours; Dask advises partitions of
    /// ~100 MB): a smaller partition size is advised only for a group whose median result is
    /// at least this, not "try ~6 B" where working memory filled the worker.
    pub const MIN_PARTITION_BYTES: u64 = 1 << 20;
    /// Dr. Elephant Spark execution-memory spill, spilled / processed: 0.01 / 0.1 / 0.25 / 0.5.
    pub const SPILL_RATIO: [f64; 4] = [0.01, 0.10, 0.25, 0.50];
    /// Disk time as a share of all task time: 5 / 10 / 25 / 50 % (ours). Dask task streams
    /// record reading spilled data back (`disk-read`) but neither spill writes nor sizes.
    pub const DISK_SHARE: [f64; 4] = [0.05, 0.10, 0.25, 0.50];
}

impl Rule for MemoryPressure {
    fn id(&self) -> &'static str {
        "memory-pressure"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let (mut written, mut read, mut disk_ns, mut produced, mut task_ns) = (0, 0, 0, 0, 0);
        for g in index.groups.iter() {
            written += g.phases.bytes(Action::DiskWrite);
            read += g.phases.bytes(Action::DiskRead);
            disk_ns += g.phases.ns(Action::DiskWrite) + g.phases.ns(Action::DiskRead);
            produced += g.output_total;
            task_ns += g.task_time();
        }
        // Dask spills outside tasks: its memory samples say how much sat on disk.
        let spilled_peak: u64 = index.workers.values().map(|w| w.max_spilled).sum();
        let spilled = written.max(spilled_peak);
        let kills: usize = index.workers.values().map(|w| w.killed.len()).sum();
        let pauses: u64 = index.workers.values().map(|w| w.paused).sum();
        let paused: u64 = index.workers.values().map(|w| w.paused_ns).sum();
        // Without death events (Dask task streams), a worker replaced after the cluster sat
        // idle is the trace of one: the nanny restarts a worker that died, most often past the
        // memory terminate line.
        let restarts = index.gap_ns(GapCause::WorkerLost);
        let replaced = kills == 0 && restarts > 0;
        if disk_ns == 0 && spilled == 0 && kills == 0 && pauses == 0 && paused == 0 && !replaced {
            return Vec::new();
        }
        let ratio = spilled as f64 / produced.max(1) as f64;
        let disk_share = disk_ns as f64 / task_ns.max(1) as f64;
        let mut graded = Severity::grade(ratio, MemoryPressure::SPILL_RATIO)
            .max(Severity::grade(disk_share, MemoryPressure::DISK_SHARE));
        if pauses > 0 {
            graded = graded.max(Severity::Moderate);
        }
        // A dead worker loses every result it held: at least severe.
        if kills > 0 {
            graded = graded.max(Severity::Severe);
        }
        // Likely, not certain: moderate at most from this alone.
        if replaced {
            graded = graded.max(Severity::Moderate);
        }
        let recovery: u64 = index
            .repeats
            .iter()
            .filter(|r| r.after_death)
            .map(|r| r.repeated_ns)
            .sum();
        let workers = index.workers.len().max(1) as u32;
        let mut impact = per_thread_seconds(disk_ns + index.lost_compute_ns + recovery, threads)
            + per_thread_seconds(paused, workers)
            + seconds(restarts);
        // Dask gave up on a task that kept killing workers: the computation failed, and all of
        // it must run again.
        let gave_up: u64 = index
            .failures
            .iter()
            .filter(|f| f.error.starts_with(KILLED_WORKER))
            .map(|f| f.keys_never_succeeded)
            .sum();
        if gave_up > 0 {
            impact = impact.max(seconds(index.wall_ns()));
        }
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
        // The task running when each worker died, and the memory its worker last reported.
        let mut killers: Vec<(&LostTask, u64)> = index
            .workers
            .iter()
            .flat_map(|(id, w)| w.killed.iter().map(move |(time, _)| (*id, w, *time)))
            .filter_map(|(id, w, time)| {
                let task = index
                    .lost_tasks
                    .iter()
                    .filter(|t| t.worker == id && t.time <= time.saturating_add(1_000_000_000))
                    // The one that allocated most, where the trace says (the engine's do).
                    .max_by_key(|t| (t.working_bytes, t.time))?;
                Some((task, w.process_before(time).unwrap_or(0)))
            })
            .collect();
        // A task that killed several workers is named once.
        killers.dedup_by(|a, b| a.0.key == b.0.key);
        // The partitions that fill memory: the group whose results are the most bytes (not the
        // median group, which in a reduction is a tree of 8-byte sums: "try ~8 B").
        let heaviest = index
            .groups
            .iter()
            .filter(|g| g.tasks > 0)
            .max_by_key(|g| g.output_total);
        let mut title = if spilled > 0 {
            format!(
                "workers spilled {} to disk ({:.0}% of the {} produced) and read back {}",
                format_bytes(spilled),
                ratio * 100.0,
                format_bytes(produced),
                format_bytes(read)
            )
        } else if disk_ns > 0 {
            format!(
                "tasks spent {} ({:.0}% of task time) reading spilled data back from disk",
                format_duration(disk_ns),
                disk_share * 100.0
            )
        } else if replaced {
            format!(
                "the cluster sat idle {} until a new worker replaced one that stopped: a \
                 worker died (the nanny restarts a worker killed past the memory terminate \
                 line; this trace records no deaths to say why)",
                format_duration(restarts)
            )
        } else {
            "workers ran out of memory".to_string()
        };
        if pauses > 0 {
            title.push_str(&format!(
                ", paused {pauses} time{} ({} paused in all)",
                if pauses == 1 { "" } else { "s" },
                format_duration(paused)
            ));
        }
        if kills > 0 {
            title.push_str(&format!(
                ", and {kills} worker{} died",
                if kills == 1 { "" } else { "s" }
            ));
            if let Some((task, _)) = killers.first() {
                title.push_str(&format!(" while running {} ({})", task.key, task.group));
            }
            if gave_up > 0 {
                title.push_str(&format!(
                    "; Dask gave up on {} (KilledWorker): the computation failed",
                    counted(gave_up, "task")
                ));
            }
        }
        let killed = index
            .workers
            .iter()
            .find(|(_, w)| !w.killed.is_empty())
            .map(|(id, _)| index.worker_name(*id));
        let terminate = index.header.cluster.memory.terminate;
        let advice = match (killers.first(), limit) {
            (Some((task, _)), Some(limit)) => format!(
                "The {} task {} needs more memory than a worker has: {}its worker went past the \
                 terminate line ({:.0}% of its {} limit, {}) while running it. Split its input \
                 so each task holds a fraction of that (smaller `chunks=` / `partition_size=`, \
                 or `repartition` before this step), or give workers more memory \
                 (`memory_limit=`, fewer threads per worker so concurrent tasks share less). \
                 Dask gives up on a task after `distributed.scheduler.allowed-failures` deaths \
                 (`KilledWorker`).",
                task.group,
                task.key,
                if task.working_bytes > 0 && limit > 0 {
                    format!(
                        "it allocated {} while it ran ({:.0}% of the limit), and ",
                        format_bytes(task.working_bytes),
                        task.working_bytes as f64 / limit as f64 * 100.0
                    )
                } else {
                    String::new()
                },
                terminate * 100.0,
                format_bytes(limit),
                format_bytes((limit as f64 * terminate) as u64),
            ),
            _ => format!(
                "Give each task less data or each worker more memory: smaller partitions{}, a \
                 larger `memory_limit` per worker (or fewer threads per worker), `persist()` \
                 only what is reused and `del` / release futures as soon as they are consumed. \
                 Large working sets inside a task (sorts, joins) count as unmanaged memory: \
                 split them too.",
                heaviest
                    .map(|g| (g, g.median_output()))
                    .filter(|(_, median)| *median >= MemoryPressure::MIN_PARTITION_BYTES)
                    .map(|(g, median)| format!(
                        " (`{}`, whose results fill memory, are a median {}; try ~{})",
                        g.name,
                        format_bytes(median),
                        format_bytes(median / 4)
                    ))
                    .unwrap_or_default(),
            ),
        };
        let mut finding = Finding::new(self.id(), severity, impact, title)
            .with_evidence(
                Evidence::new()
                    .bytes("spilled", spilled)
                    .bytes("read_back", read)
                    .ratio("spill_ratio", ratio)
                    .seconds("disk", disk_ns)
                    .ratio("disk_share", disk_share)
                    .count("pauses", pauses)
                    .seconds("paused", paused)
                    .count("workers_killed", kills as u64)
                    .seconds("lost_compute", index.lost_compute_ns)
                    .seconds("recomputed_after_death", recovery)
                    .seconds("waiting_on_restarts", restarts)
                    .count("tasks_given_up", gave_up)
                    // What the first killer allocated (0: the trace does not say; Dask's).
                    .bytes(
                        "killer_allocated",
                        killers.first().map_or(0, |(t, _)| t.working_bytes),
                    )
                    .bytes("peak_process", peak)
                    .bytes("memory_limit", limit.unwrap_or(0)),
            )
            .keys(killers.iter().map(|(t, _)| t.key.clone()).take(5).collect())
            .advice(advice);
        if let Some(worker) = killed {
            finding = finding.worker(worker);
        }
        vec![finding]
    }
}
