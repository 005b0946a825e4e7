use traces::Nanos;
use traces::units::format_bytes;

use crate::finding::{Finding, Severity};
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, seconds};

/// Worker memory Dask does not manage (not task results: the interpreter, leaks, fragmentation,
/// objects tasks keep alive) taking a large share of the limit, or growing while managed memory
/// does not. Dask cannot spill it, so it pushes workers toward pausing and death.
pub struct UnmanagedMemory;

impl UnmanagedMemory {
    /// Unmanaged memory as a share of the limit, held for a quarter of the samples at least:
    /// 40 % (ours) / Dask's `target` 0.6 (where Dask logs "Unmanaged memory use is high"
    /// when there is nothing left to spill, `distributed/worker_memory.py`) / `spill` 0.7 /
    /// `pause` 0.8. The header's fractions replace the last three when they differ.
    pub const LOW_SHARE: f64 = 0.40;
    /// The quantile of the samples graded: a task's working set that comes and goes is not a
    /// leak (ours).
    pub const QUANTILE: f64 = 0.75;
    /// Growth from the first samples to the last, as a share of the limit, that counts as a
    /// leak while managed memory stays lower (ours).
    pub const GROWTH_SHARE: f64 = 0.25;
    /// Managed memory above this share of process memory means the memory is the data:
    /// `memory-pressure`'s matter (ours).
    pub const MANAGED_SHARE: f64 = 0.5;
}

struct WorkerMemory {
    name: String,
    limit: u64,
    level: f64,
    growth: f64,
    peak: u64,
    managed: u64,
    /// Time over the low line.
    high_ns: Nanos,
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

impl Rule for UnmanagedMemory {
    fn id(&self) -> &'static str {
        "unmanaged-memory"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let fractions = index.header.cluster.memory;
        let limits = [
            UnmanagedMemory::LOW_SHARE,
            fractions.target,
            fractions.spill,
            fractions.pause,
        ];
        let mut seen: Vec<WorkerMemory> = Vec::new();
        for (id, w) in &index.workers {
            let Some(limit) = w.memory_limit.filter(|l| *l > 0) else {
                continue;
            };
            if w.samples.len() < 4 {
                continue;
            }
            let share = |u: u64| u as f64 / limit as f64;
            let mut levels: Vec<f64> = w.samples.iter().map(|s| share(s.unmanaged)).collect();
            let quarter = (w.samples.len() / 4).max(1);
            let mean = |s: &[traces::MemorySample]| {
                s.iter().map(|m| share(m.unmanaged)).sum::<f64>() / s.len() as f64
            };
            let growth =
                mean(&w.samples[w.samples.len() - quarter..]) - mean(&w.samples[..quarter]);
            let managed = w.samples.iter().map(|s| s.managed).max().unwrap_or(0);
            let peak = w.samples.iter().map(|s| s.unmanaged).max().unwrap_or(0);
            let high_ns = w
                .samples
                .windows(2)
                .filter(|p| share(p[0].unmanaged) >= UnmanagedMemory::LOW_SHARE)
                .map(|p| p[1].time - p[0].time)
                .sum();
            seen.push(WorkerMemory {
                name: index.worker_name(*id),
                limit,
                level: quantile(&mut levels, UnmanagedMemory::QUANTILE),
                growth,
                peak,
                managed,
                high_ns,
            });
        }
        let Some(worst) = seen
            .iter()
            .filter(|w| (w.managed as f64) < UnmanagedMemory::MANAGED_SHARE * w.peak as f64)
            .max_by(|a, b| a.level.total_cmp(&b.level))
        else {
            return Vec::new();
        };
        let leaking = worst.growth >= UnmanagedMemory::GROWTH_SHARE;
        let mut graded = Severity::grade(worst.level, limits);
        if leaking {
            graded = graded.max(Severity::Moderate);
        }
        let warned = index
            .dask_warnings
            .iter()
            .filter(|(_, _, m)| m.contains("Unmanaged memory use is high"))
            .count();
        if warned > 0 {
            graded = graded.max(Severity::Moderate);
        }
        // What it costs: time the workers spent over the line, where Dask spills and pauses
        // to make room it cannot make.
        let workers = seen.len().max(1) as u64;
        let high: Nanos = seen.iter().map(|w| w.high_ns).sum::<Nanos>() / workers;
        let impact = seconds(high);
        let severity = Severity::both(graded, impact);
        if severity == Severity::None {
            return Vec::new();
        }
        vec![
            Finding::new(
                self.id(),
                severity,
                impact,
                format!(
                    "worker {} held {} of unmanaged memory ({:.0}% of its {} limit{}) while \
                     its task results took at most {}{}",
                    worst.name,
                    format_bytes((worst.level * worst.limit as f64) as u64),
                    worst.level * 100.0,
                    format_bytes(worst.limit),
                    if leaking {
                        format!(", growing by {:.0}% of it", worst.growth * 100.0)
                    } else {
                        String::new()
                    },
                    format_bytes(worst.managed),
                    if warned > 0 {
                        format!("; Dask warned {warned} times")
                    } else {
                        String::new()
                    }
                ),
            )
            .worker(worst.name.clone())
            .with_evidence(
                Evidence::new()
                    .ratio("unmanaged_share", worst.level)
                    .ratio("growth_share", worst.growth)
                    .bytes("unmanaged_peak", worst.peak)
                    .bytes("managed_peak", worst.managed)
                    .bytes("memory_limit", worst.limit)
                    .seconds("over_low_line", high)
                    .count("dask_warnings", warned as u64),
            )
            .advice(format!(
                "Memory Dask does not manage cannot be spilled: {} of {} is held outside task \
                 results. Free what tasks keep alive (module-level caches, globals, closures \
                 holding large objects), run `client.run(gc.collect)`, and return freed memory \
                 to the OS (`client.run(lambda: ctypes.CDLL(\"libc.so.6\").malloc_trim(0))`, or \
                 `MALLOC_TRIM_THRESHOLD_=65536` in the workers' environment). If it keeps \
                 growing, it is a leak: restart workers between jobs (`client.restart()`) \
                 until it is found.",
                format_bytes((worst.level * worst.limit as f64) as u64),
                format_bytes(worst.limit),
            )),
        ]
    }
}
