use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use traces::{MemoryFractions, WorkerId};

/// How a cluster is set up.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub workers: u32,
    pub threads: u32,
    /// Per worker, in bytes; `None`: no limit (no spilling, pausing or killing).
    pub memory_limit: Option<u64>,
    /// Dask's `distributed.worker.memory.*` fractions.
    pub memory: MemoryFractions,
    pub network: Network,
    /// Resources each worker declares, by worker index; workers past the end declare none.
    pub worker_resources: Vec<BTreeMap<String, f64>>,
    /// Dask's `distributed.scheduler.allowed-failures`: a task that was running on this many
    /// workers when they died fails with `KilledWorker`.
    pub allowed_failures: u32,
    /// Where spill directories go (default: a temporary directory removed at shutdown).
    pub spill_root: Option<PathBuf>,
    /// Write the native trace here while the cluster runs.
    pub record_to: Option<PathBuf>,
    /// Also hand every record to this sink as it is written (a live view; needs `record_to`).
    pub tap: Option<traces::Tap>,
    /// Memory sample period, in nanoseconds (also sampled on every threshold crossing).
    pub sample_every_ns: u64,
    /// Tasks wait out their compute time instead of burning a core: I/O-bound or
    /// GIL-releasing work, which more workers than cores still run side by side.
    pub sleep_compute: bool,
    /// The machine's cores, which every worker of the engine shares (recorded in the trace so
    /// a replay knows how many tasks can burn CPU at once).
    pub host_cores: Option<u32>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            workers: 2,
            threads: 1,
            memory_limit: None,
            memory: MemoryFractions::default(),
            network: Network::default(),
            worker_resources: Vec::new(),
            allowed_failures: 3,
            spill_root: None,
            record_to: None,
            tap: None,
            sample_every_ns: 100_000_000,
            sleep_compute: false,
            host_cores: std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok()),
        }
    }
}

/// A model of the network between workers, so a laptop can imitate a cluster: the inputs a task
/// fetches from one peer travel as one message (as Dask's `gather_dep` batches them), paying
/// `latency` once, and each input takes `bytes / bandwidth` (on top of the real copy).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Network {
    /// Bytes per second; `None`: as fast as memory copies.
    pub bandwidth: Option<u64>,
    pub latency_ns: u64,
}

impl Network {
    /// The modelled time of one input of `bytes`; `first` when it is the first from its peer.
    pub fn delay_ns(&self, bytes: u64, first: bool) -> u64 {
        let wire = match self.bandwidth {
            Some(bw) if bw > 0 => {
                u64::try_from(bytes as u128 * 1_000_000_000 / bw as u128).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        if first {
            self.latency_ns.saturating_add(wire)
        } else {
            wire
        }
    }
}

/// The wire time of one task's gather, paid once per peer after its last input: sleeping a few
/// µs per input costs the timer's slack each time (~60 µs on this VM), which made a 32-input
/// gather of a 1 ms network take 2.2 ms and replays fitted to it predict 4 workers 20 % slow.
#[derive(Debug)]
pub(crate) struct Gather {
    network: Network,
    peer: Option<WorkerId>,
    owed_ns: u64,
}

impl Gather {
    pub(crate) fn new(network: Network) -> Self {
        Self {
            network,
            peer: None,
            owed_ns: 0,
        }
    }

    /// An input of `bytes` from `peer` was copied; `more_from_peer` when the next input comes from
    /// the same peer. Returns how long to sleep now.
    pub(crate) fn arrived(
        &mut self,
        peer: WorkerId,
        bytes: u64,
        more_from_peer: bool,
    ) -> Option<Duration> {
        let first = self.peer != Some(peer);
        self.peer = Some(peer);
        self.owed_ns = self
            .owed_ns
            .saturating_add(self.network.delay_ns(bytes, first));
        if more_from_peer || self.owed_ns == 0 {
            return None;
        }
        Some(Duration::from_nanos(std::mem::take(&mut self.owed_ns)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETWORK: Network = Network {
        bandwidth: Some(1_000_000_000),
        latency_ns: 1_000_000,
    };

    #[test]
    fn a_gather_sleeps_once_per_peer_for_its_latency_and_all_its_bytes() {
        let mut gather = Gather::new(NETWORK);
        // 16 inputs of 64 B from peer 3, then 2 of 1,000 B from peer 5.
        let mut sleeps = Vec::new();
        for i in 0..16 {
            sleeps.push(gather.arrived(3, 64, i < 15));
        }
        sleeps.push(gather.arrived(5, 1_000, true));
        sleeps.push(gather.arrived(5, 1_000, false));
        let slept: Vec<Duration> = sleeps.into_iter().flatten().collect();
        assert_eq!(
            slept,
            [
                Duration::from_nanos(1_000_000 + 16 * 64),
                Duration::from_nanos(1_000_000 + 2 * 1_000)
            ]
        );
    }

    #[test]
    fn a_free_network_never_sleeps() {
        let mut gather = Gather::new(Network::default());
        assert_eq!(gather.arrived(0, 1 << 20, false), None);
    }
}
