use rustc_hash::FxHashMap;
use traces::Nanos;
use traces::units::format_duration;

use crate::concurrency::{BusyLevel, concurrency};
use crate::finding::{Finding, Severity};
use crate::index::{Run, TraceIndex};
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Threads of one worker that take turns instead of running together: pure-Python CPU work
/// holds the GIL, so a worker with T threads runs it about one thread at a time, each task up
/// to T times slower. Seen in any trace as a group's tasks slowing down in proportion to how
/// many threads of their worker are busy; with the plugin's CPU samples, as a worker using about
/// one core while several of its threads are busy.
pub struct GilContention;

impl GilContention {
    /// Slowdown of the crowded tasks over the ones that ran alone: 1.5 / 2 / 3 / 6 (ours: 2 is
    /// two threads fully serialized).
    pub const SLOWDOWN: [f64; 4] = [1.5, 2.0, 3.0, 6.0];
    /// The slowdown must be at least this share of the concurrency: GIL-bound work slows down
    /// in proportion (≈ 1), work sharing C cores only by concurrency / C (≤ 0.5 for C ≥ 2).
    /// Measured on the corpus (`analyzer/tests/corpus/`, pure Python): 0.80 on 1 worker × 4
    /// threads, 0.88 on 2 × 2.
    pub const PROPORTION: f64 = 0.7;
    /// ... and at most this many times it to grade above low: each of C threads taking turns
    /// on the GIL gets a C-th of the interpreter, so the same work runs at most C times slower
    /// (plus the switches: 30 % here). Tasks slowed beyond that did more work than the ones
    /// that ran alone (a hot partition among equal-sized outputs, spilled inputs read back) or
    /// were short of cores (more threads than the host has, across processes), which the GIL
    /// alone does not explain. Measured on the corpus and its variants (`record.py --shape`, 1×2, 2×2,
    /// 3×1): GIL-bound work at 0.76–1.07× its crowd in 14 recordings; NumPy/pandas groups at
    /// 1.45× (pandas on 2 × 2 threads of a 2-core host), 2.7× (`random` chunks spilling) and
    /// 15× (a hot key's groupby).
    pub const MAX_PROPORTION: f64 = 1.3;
    /// Up to this many times the crowd, the slowdown is still reported, but low at most: past
    /// [`Self::MAX_PROPORTION`] the GIL on a loaded host and a host short of cores look the
    /// same. Measured on the corpus' variants at load ~4: GIL-bound `py_work` on 2 × 2 threads
    /// at 1.63× and 1.96× its crowd, healthy pandas at 1.45×; slower than 2× is more work, not
    /// contention (a hot key's groupby at 15×).
    pub const AMBIGUOUS_PROPORTION: f64 = 2.0;
    /// Tasks running with at most this many busy threads on their worker (on average over
    /// their run) ran alone.
    pub const ALONE: f64 = 1.3;
    /// Crowded tasks for their median to mean anything; one task alone is enough to time
    /// the work by, if it is of the same shape.
    pub const MIN_CROWDED: usize = 3;
    /// Same shape: an output within this factor of the crowded tasks' median (ours: Dask's
    /// metadata tasks, which run alone and fast, return an empty frame).
    pub const SAME_SIZE: f64 = 2.0;
    /// A worker using at most this many cores while at least [`Self::BUSY_THREADS`] of its
    /// threads are busy is serialized (Dask's heartbeat `cpu` is psutil's process percent).
    pub const ONE_CORE: f64 = 1.3;
    /// Below this many cores the threads wait on I/O, not on each other (ours).
    pub const MIN_CORES: f64 = 0.5;
    pub const BUSY_THREADS: f64 = 1.8;
    /// From CPU samples alone, busy threads per core used must reach this: two busy threads
    /// on one core is also what a loaded host gives NumPy work (measured on the corpus:
    /// 1.98 for `healthy-numpy-threads` on a loaded 2-core machine).
    pub const CPU_SLOWDOWN: f64 = 2.5;
    /// The GIL runs one thread at a time at full speed: it holds a process to about one core,
    /// never under it. A busy process on less than this is short of cores (other processes
    /// on the host), and that part of its slowdown is not the GIL's: cores used count as at
    /// least this. Measured on corpus variants: NumPy sorts on 1 worker × 2 threads of a
    /// loaded 2-core host got 0.44–0.9 cores (2.8 busy threads per core used); GIL-bound
    /// tasks 0.6–1.0.
    pub const GIL_CORES: f64 = 1.0;
    /// The most the CPU samples alone may grade: a process held to about one core by the GIL
    /// looks the same as one given about one core by a host with fewer free cores than busy
    /// threads, which processes would not help. Measured on corpus variants (`record.py
    /// --shape 1x4`, 2 cores at load ~4): NumPy sorts, pandas and Parquet on 1 worker × 4
    /// threads ran 3.2–3.95 busy threads on 0.93–1.1 cores (graded moderate and severe
    /// before), GIL-bound `py_work` 3.5 threads on 0.85 cores; the tasks' own timings tell
    /// them apart when some ran alone.
    pub const CPU_ONLY_MAX: Severity = Severity::Low;
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the trace says about one group's threads.
struct Contention {
    group: u32,
    slowdown: f64,
    crowd: f64,
    crowded_tasks: usize,
    /// Thread time of the group's tasks that ran crowded.
    busy_ns: Nanos,
    how: &'static str,
    /// The most this evidence may grade.
    max_severity: Severity,
}

/// From the tasks' own timings: every format has them.
fn from_timings(index: &TraceIndex) -> Vec<Contention> {
    let mut per_group: FxHashMap<u32, Vec<(f64, &Run)>> = FxHashMap::default();
    for (i, level) in concurrency(index) {
        let run = &index.runs[i];
        per_group.entry(run.group).or_default().push((level, run));
    }
    let busy = |r: &Run| (r.busy_stop - r.busy_start) as f64;
    let mut out = Vec::new();
    for (group, tasks) in per_group {
        let max_level = tasks.iter().map(|(c, _)| *c).fold(0.0, f64::max);
        let crowded_from = (max_level * 0.75).max(GilContention::BUSY_THREADS);
        let crowded: Vec<(f64, &Run)> = tasks
            .iter()
            .filter(|(c, _)| *c >= crowded_from)
            .copied()
            .collect();
        if crowded.len() < GilContention::MIN_CROWDED {
            continue;
        }
        let mut sizes: Vec<f64> = crowded.iter().map(|(_, r)| r.nbytes as f64).collect();
        let size = median(&mut sizes);
        let same_shape = |r: &Run| {
            let n = r.nbytes as f64;
            n * GilContention::SAME_SIZE >= size && n <= size * GilContention::SAME_SIZE
        };
        let mut alone: Vec<f64> = tasks
            .iter()
            .filter(|(c, r)| *c <= GilContention::ALONE && same_shape(r))
            .map(|(_, r)| busy(r))
            .collect();
        if alone.is_empty() {
            continue;
        }
        let mut durations: Vec<f64> = crowded.iter().map(|(_, r)| busy(r)).collect();
        let mut levels: Vec<f64> = crowded.iter().map(|(c, _)| *c).collect();
        let slowdown = median(&mut durations) / median(&mut alone).max(1.0);
        let crowd = median(&mut levels);
        if slowdown < GilContention::PROPORTION * crowd
            || slowdown > GilContention::AMBIGUOUS_PROPORTION * crowd
        {
            continue;
        }
        out.push(Contention {
            group,
            slowdown,
            crowd,
            crowded_tasks: crowded.len(),
            busy_ns: durations.iter().sum::<f64>() as Nanos,
            how: "tasks ran slower in proportion to the busy threads of their worker",
            max_severity: if slowdown > GilContention::MAX_PROPORTION * crowd {
                Severity::Low
            } else {
                Severity::Critical
            },
        });
    }
    out
}

/// From the workers' CPU samples (the plugin's traces): cores used against busy threads.
fn from_cpu(index: &TraceIndex) -> Vec<Contention> {
    let levels = concurrency(index);
    // Per worker: busy-thread time and core time over the sampled intervals while busy.
    let mut out = Vec::new();
    for (&id, worker) in &index.workers {
        if worker.threads < 2 || worker.samples.iter().all(|s| s.cpu.is_none()) {
            continue;
        }
        let runs: Vec<&Run> = index.runs.iter().filter(|r| r.worker == id).collect();
        let level = BusyLevel::new(runs.iter().copied());
        let (mut busy, mut cores, mut span) = (0.0, 0.0, 0.0);
        for w in worker.samples.windows(2) {
            let (a, b) = (w[0].time, w[1].time);
            let Some(cpu) = w[1].cpu else { continue };
            let threads = level.mean(a, b);
            if threads >= GilContention::BUSY_THREADS {
                let dt = (b - a) as f64;
                busy += threads * dt;
                cores += cpu * dt;
                span += dt;
            }
        }
        if span == 0.0 {
            continue;
        }
        // No more threads can be busy than the worker has.
        let threads = (busy / span).min(f64::from(worker.threads));
        let cpu = cores / span;
        let slowdown = threads / cpu.max(GilContention::GIL_CORES);
        if !(GilContention::MIN_CORES..=GilContention::ONE_CORE).contains(&cpu)
            || slowdown < GilContention::CPU_SLOWDOWN
        {
            continue;
        }
        // The group that kept this worker busiest.
        let mut per_group: FxHashMap<u32, Nanos> = FxHashMap::default();
        for r in &runs {
            *per_group.entry(r.group).or_default() += r.busy_stop - r.busy_start;
        }
        let Some((&group, &busy_ns)) = per_group.iter().max_by_key(|(g, ns)| (**ns, **g)) else {
            continue;
        };
        let crowded_tasks = levels
            .iter()
            .filter(|(i, c)| index.runs[*i].worker == id && *c >= GilContention::BUSY_THREADS)
            .count();
        out.push(Contention {
            group,
            slowdown,
            crowd: threads,
            crowded_tasks,
            busy_ns,
            how: "the worker used about one core while several of its threads were busy",
            max_severity: GilContention::CPU_ONLY_MAX,
        });
    }
    out
}

impl Rule for GilContention {
    fn id(&self) -> &'static str {
        "gil-contention"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let mut found = from_timings(index);
        if found.is_empty() {
            found = from_cpu(index);
        }
        // One finding per group, the strongest evidence first.
        found.sort_by(|a, b| {
            b.slowdown
                .total_cmp(&a.slowdown)
                .then(a.group.cmp(&b.group))
        });
        found.dedup_by_key(|c| c.group);
        let threads = index.threads();
        let mut findings = Vec::new();
        for c in found {
            let group = &index.groups[c.group as usize];
            // In processes, each task would run at its alone speed.
            let saved = (c.busy_ns as f64 * (1.0 - 1.0 / c.slowdown.max(1.0))) as Nanos;
            let impact = per_thread_seconds(saved, threads);
            let Some(severity) = graded(c.slowdown, GilContention::SLOWDOWN, impact) else {
                continue;
            };
            let severity = severity.min(c.max_severity);
            let per_worker = index.workers.values().map(|w| w.threads).max().unwrap_or(1);
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: threads took turns on the GIL: {} ({:.1}x slower with ~{:.1} busy \
                         threads per worker)",
                        group.name, c.how, c.slowdown, c.crowd
                    ),
                )
                .group(&group.name)
                .with_evidence(
                    Evidence::new()
                        .ratio("slowdown_ratio", c.slowdown)
                        .ratio("busy_threads", c.crowd)
                        .count("crowded_tasks", c.crowded_tasks as u64)
                        .seconds("group_busy", c.busy_ns)
                        .count("threads_per_worker", u64::from(per_worker)),
                )
                .advice(format!(
                    "Pure-Python CPU work holds the GIL: use processes, not threads \
                     (`LocalCluster(n_workers={n}, threads_per_worker=1)`, `dask worker \
                     --nworkers {per_worker} --nthreads 1`), or release the GIL in the task \
                     (NumPy/pandas vectorized code, numba `nogil=True`, Cython `with nogil`). \
                     Saves ~{}.",
                    format_duration(saved / u64::from(threads.max(1))),
                    n = index.workers.len() as u32 * per_worker,
                )),
            );
        }
        findings
    }
}
