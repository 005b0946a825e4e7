use traces::units::format_duration;
use traces::{Nanos, WorkerId};

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::communication::is_p2p;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Tasks that wait (on files, the network, `sleep`) while holding the only thread of their
/// worker: the worker's CPU idles. The guide: many threads for I/O-bound work, one per worker
/// for CPU-bound Python. Needs the plugin's evidence (Dask's per-group thread CPU time, or the
/// workers' CPU samples); task streams cannot tell waiting from computing.
pub struct ThreadsPerWorker;

impl ThreadsPerWorker {
    /// Share of the group's compute time its threads spent off the CPU: 90 / 95 / 98 / 99 %.
    /// Dask counts waiting for a free core as off the CPU too: CPU-bound tasks on a loaded
    /// 2-core host measured 78–86 % (`bridges/dask/README.md`), sleeping tasks over 99 %.
    pub const WAITING_SHARE: [f64; 4] = [0.90, 0.95, 0.98, 0.99];
    /// Threads to suggest at most (Dask's default for I/O-heavy workers is the core count;
    /// beyond a few dozen, the event loop becomes the limit).
    pub const MAX_THREADS: u64 = 16;
    /// Dask's fine performance metrics (`distributed.metrics`): time on the CPU and off it
    /// while executing tasks.
    pub const CPU_METRIC: &str = "execute/thread-cpu/seconds";
    pub const NONCPU_METRIC: &str = "execute/thread-noncpu/seconds";
}

/// Share of `group`'s execution its threads spent off the CPU, from Dask's metrics.
fn waiting_share(index: &TraceIndex, group: &str) -> Option<f64> {
    let m = index.group_metrics.get(group)?;
    let cpu = m.get(ThreadsPerWorker::CPU_METRIC);
    let off = m.get(ThreadsPerWorker::NONCPU_METRIC);
    (cpu + off > 0.0).then(|| off / (cpu + off))
}

/// Share of a single-thread worker's busy time its process was off the CPU, from its samples.
fn idle_cpu_share(index: &TraceIndex, id: WorkerId) -> Option<f64> {
    let worker = index.workers.get(&id)?;
    let (mut busy, mut cores) = (0.0, 0.0);
    for w in worker.samples.windows(2) {
        let Some(cpu) = w[1].cpu else { continue };
        let (a, b) = (w[0].time, w[1].time);
        let busy_here: Nanos = index
            .lanes
            .get(&(id, 0))?
            .iter()
            .map(|&(s, e)| e.min(b).saturating_sub(s.max(a)))
            .sum();
        let dt = (b - a).max(1) as f64;
        if busy_here as f64 >= 0.8 * dt {
            busy += dt;
            cores += cpu.min(1.0) * dt;
        }
    }
    (busy > 0.0).then(|| 1.0 - cores / busy)
}

impl Rule for ThreadsPerWorker {
    fn id(&self) -> &'static str {
        "threads-per-worker"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let single: Vec<WorkerId> = index
            .workers
            .iter()
            .filter(|(_, w)| w.threads == 1 && w.tasks > 0)
            .map(|(id, _)| *id)
            .collect();
        if single.is_empty()
            || single.len() < index.workers.values().filter(|w| w.tasks > 0).count()
        {
            return Vec::new();
        }
        let threads = index.threads();
        let cpu_idle = {
            let shares: Vec<f64> = single
                .iter()
                .filter_map(|&id| idle_cpu_share(index, id))
                .collect();
            (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
        };
        let mut findings = Vec::new();
        for group in &index.groups {
            // A P2P shuffle's tasks wait on its comms and barriers, not on I/O that more threads
            // would overlap: that time is the communication rule's ("shuffle-transfer: waited
            // off the CPU 100%" told a shuffle to add 16 threads).
            if is_p2p(group) {
                continue;
            }
            let (share, how) = match (waiting_share(index, &group.name), cpu_idle) {
                (Some(share), _) => (share, "Dask's thread CPU time"),
                (None, Some(share)) => (share, "the workers' CPU samples"),
                (None, None) => continue,
            };
            let busy: Nanos = group.compute_total();
            // k threads overlap k waiting tasks: the CPU share bounds the useful k.
            let suggested = ((1.0 / (1.0 - share).max(0.01)).round() as u64)
                .clamp(2, ThreadsPerWorker::MAX_THREADS);
            let saved = (busy as f64 * (1.0 - 1.0 / suggested as f64)) as Nanos;
            let impact = per_thread_seconds(saved, threads);
            let Some(severity) = graded(share, ThreadsPerWorker::WAITING_SHARE, impact) else {
                continue;
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: its tasks waited off the CPU {:.0}% of their {} ({how}) on workers \
                         with one thread each",
                        group.name,
                        share * 100.0,
                        format_duration(busy)
                    ),
                )
                .group(&group.name)
                .with_evidence(
                    Evidence::new()
                        .ratio("waiting_share", share)
                        .seconds("compute", busy)
                        .count("single_thread_workers", single.len() as u64)
                        .count("suggested_threads", suggested),
                )
                .advice(format!(
                    "The work is I/O-bound: give each worker more threads so waiting tasks \
                     overlap (`LocalCluster(threads_per_worker={suggested})`, `dask worker \
                     --nthreads {suggested}`). One thread per worker is for CPU-bound Python; \
                     ~{suggested} threads would cut this group's time by ~{:.0}%.",
                    (1.0 - 1.0 / suggested as f64) * 100.0
                )),
            );
        }
        findings
    }
}
