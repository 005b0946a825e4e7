//! What-if: a recorded run replayed on another cluster shape, in virtual time, by the engine's
//! own [`Scheduler`](crate::scheduler) (placement by input bytes, depth-first order, work
//! stealing, Dask's memory lines). Tasks take their recorded compute and deserialize times,
//! stretched when the tasks computing on one host want more than its cores (`cpu.rs`);
//! transfers and disk I/O are costed from their bytes with a network and disk model.
//!
//! [`Replay`] is what is replayed (graphs of recorded tasks, from a trace or built directly);
//! [`simulate`] replays it on one [`Shape`] and returns a [`Prediction`].

mod cpu;
mod driver;
mod fix;
mod replay;

pub use cpu::CpuModel;
pub(crate) use driver::cost;
pub use driver::simulate;
pub use fix::Fix;
pub use replay::{Recorded, Replay, ReplayError, ReplayFile, RoundLatency, Submission};

use std::collections::BTreeMap;

use traces::{Key, MemoryFractions, WorkerId};

use crate::config::{CONCURRENT_GATHERS, Network};

/// How far a prediction is from what happened: +0.05 is 5 % longer (0 when nothing happened).
pub fn relative_error(predicted: u64, actual: u64) -> f64 {
    if actual == 0 {
        return 0.0;
    }
    (predicted as f64 - actual as f64) / actual as f64
}

/// Workers × threads per worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    pub workers: u32,
    pub threads: u32,
}

impl Shape {
    pub fn slots(self) -> u64 {
        u64::from(self.workers) * u64::from(self.threads)
    }
}

/// The shapes `simulate` predicts unless told: the recorded one, then 2, 4 and 8 times its
/// workers (as many as the simulator models), with its threads per worker.
pub fn default_shapes(recorded: Shape) -> Vec<Shape> {
    let mut shapes: Vec<Shape> = [1, 2, 4, 8]
        .iter()
        .map(|f| recorded.workers.saturating_mul(*f))
        .filter(|&w| w <= crate::MAX_SIMULATED_WORKERS)
        .map(|workers| Shape {
            workers,
            threads: recorded.threads,
        })
        .collect();
    shapes.dedup();
    shapes
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.workers, self.threads)
    }
}

/// The machine model a replay runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub shape: Shape,
    /// Per worker, in bytes; `None`: no limit.
    pub memory_limit: Option<u64>,
    pub memory: MemoryFractions,
    /// Each transfer between workers costs `latency + bytes / bandwidth`, one latency per
    /// round of peers gathered at once.
    pub network: Network,
    /// A round's latency by its number of peers; `None`: `network.latency_ns` for any.
    pub round_latency_ns: Option<RoundLatency>,
    /// Spill writes and reads, bytes per second.
    pub disk_write_bps: u64,
    pub disk_read_bps: u64,
    /// A thread's overhead per task before it starts one (scheduler and worker bookkeeping).
    pub dispatch_ns: u64,
    /// A task made ready by its inputs reaches its worker this long after (the scheduler's
    /// round trip: the result reported, the dependent sent).
    pub ready_latency_ns: u64,
    /// Inline arguments reach a task's worker at this rate before it runs; `None`: free.
    pub inline_bps: Option<u64>,
    /// Keep every task's placement in the prediction (for comparing with a real run).
    pub keep_placements: bool,
    /// Cores of every host, in place of the recorded ones (`None`: as recorded).
    pub cores: Option<u32>,
}

impl Model {
    /// The replay's recorded machine, on `shape`.
    pub fn recorded(replay: &Replay, memory: MemoryFractions, shape: Shape) -> Model {
        let r = &replay.recorded;
        Model {
            shape,
            memory_limit: r.memory_limit,
            memory,
            network: r.network,
            round_latency_ns: r.round_latency_ns,
            disk_write_bps: r.disk_write_bps,
            disk_read_bps: r.disk_read_bps,
            dispatch_ns: r.dispatch_ns,
            ready_latency_ns: r.ready_latency_ns,
            inline_bps: r.inline_bps,
            keep_placements: false,
            cores: None,
        }
    }

    /// A latency set by hand (`--latency`): every round of peers waits it, whatever the recorded
    /// spread.
    pub fn set_latency(&mut self, latency_ns: u64) {
        self.network.latency_ns = latency_ns;
        self.round_latency_ns = None;
    }

    /// The latency of a gather from `peers` peers: rounds of [`CONCURRENT_GATHERS`] at once,
    /// each waiting for its slowest.
    pub fn gather_latency_ns(&self, peers: u32) -> u64 {
        let Some(rounds) = &self.round_latency_ns else {
            return self.network.gather_latency_ns(peers);
        };
        let (full, rest) = (peers / CONCURRENT_GATHERS, peers % CONCURRENT_GATHERS);
        let last = if rest > 0 {
            rounds[rest as usize - 1]
        } else {
            0
        };
        rounds[CONCURRENT_GATHERS as usize - 1]
            .saturating_mul(u64::from(full))
            .saturating_add(last)
    }

    /// What a task costs its thread before its inputs: dispatch, and its inline arguments.
    pub fn dispatch_cost(&self, inline_bytes: u64) -> u64 {
        let shipping = self.inline_bps.map_or(0, |bps| cost(inline_bytes, bps));
        self.dispatch_ns.saturating_add(shipping)
    }
}

/// The recorded workers' resources on `workers` workers: more workers repeat the recorded ones
/// in turn (a cluster of the same kind, larger); fewer each take the most of every recorded
/// worker they stand for, so every task still finds a worker that can run it.
pub(crate) fn spread(
    recorded: &[BTreeMap<String, f64>],
    workers: u32,
) -> Vec<BTreeMap<String, f64>> {
    let (w, r) = (workers as usize, recorded.len());
    if r == 0 || recorded.iter().all(BTreeMap::is_empty) {
        return Vec::new();
    }
    (0..w)
        .map(|i| {
            let mut merged: BTreeMap<String, f64> = BTreeMap::new();
            for source in (i % r..r.max(w)).step_by(w).map(|j| j % r) {
                for (name, &amount) in &recorded[source] {
                    let held = merged.entry(name.clone()).or_default();
                    *held = held.max(amount);
                }
            }
            merged
        })
        .collect()
}

/// What the replay predicts for one shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prediction {
    /// From the first submission to the last result, in nanoseconds.
    pub wall_ns: u64,
    /// Thread time occupied by tasks (inputs, deserialize, compute, spilling).
    pub busy_ns: u64,
    /// `busy_ns` over the thread-slots' time.
    pub utilisation: f64,
    /// Task attempts run (retries and recomputations included).
    pub attempts: u64,
    pub transfers: u64,
    pub transferred_bytes: u64,
    pub spilled_bytes: u64,
    /// Workers killed for memory.
    pub kills: u64,
    /// Tasks that never produced a result (errors, `KilledWorker`).
    pub erred: u64,
    /// With [`Model::keep_placements`]: each successful attempt's key and worker, in finishing
    /// order.
    pub placements: Vec<(Key, WorkerId)>,
}
