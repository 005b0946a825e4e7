use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use traces::MemoryFractions;

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
/// fetches from one peer travel as one message (as Dask's `gather_dep` batches them), and a
/// worker gathers from up to [`CONCURRENT_GATHERS`] peers at once, so a task pays `latency` once
/// per round of that many peers; each input takes `bytes / bandwidth` of the link they share (on
/// top of the real copy).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Network {
    /// Bytes per second; `None`: as fast as memory copies.
    pub bandwidth: Option<u64>,
    pub latency_ns: u64,
}

/// Dask's `distributed.worker.connections.incoming` (10): the peers a worker fetches from at
/// once. Paying a latency per peer in turn made a task reading from 500 workers wait 500
/// latencies where Dask waits 50.
pub const CONCURRENT_GATHERS: u32 = 10;

impl Network {
    /// The time `bytes` take on the wire, latency aside.
    pub(crate) fn wire_ns(&self, bytes: u64) -> u64 {
        match self.bandwidth {
            Some(bw) if bw > 0 => {
                u64::try_from(bytes as u128 * 1_000_000_000 / bw as u128).unwrap_or(u64::MAX)
            }
            _ => 0,
        }
    }

    /// The latency of a gather from `peers` peers: one per round of [`CONCURRENT_GATHERS`]
    /// fetched at once.
    pub fn gather_latency_ns(&self, peers: u32) -> u64 {
        self.latency_ns
            .saturating_mul(u64::from(peers.div_ceil(CONCURRENT_GATHERS)))
    }
}

/// The network time of one task's gather in the engine's worker: its latency
/// ([`Network::gather_latency_ns`], as the simulator charges it), and each input's wire time,
/// slept once per peer, after its last input: sleeping a few µs per input costs the timer's
/// slack each time (~60 µs on this VM), which made a 32-input gather of a 1 ms network take
/// 2.2 ms and replays fitted to it predict 4 workers 20 % slow.
#[derive(Debug)]
pub(crate) struct Gather {
    network: Network,
    owed_ns: u64,
}

impl Gather {
    /// A gather from `peers` distinct peers; its latency is slept with the first peer's inputs.
    pub(crate) fn new(network: Network, peers: u32) -> Self {
        Self {
            network,
            owed_ns: network.gather_latency_ns(peers),
        }
    }

    /// An input of `bytes` from a peer was copied; `more_from_peer` when the next input comes
    /// from the same peer. Returns how long to sleep now.
    pub(crate) fn arrived(&mut self, bytes: u64, more_from_peer: bool) -> Option<Duration> {
        self.owed_ns = self.owed_ns.saturating_add(self.network.wire_ns(bytes));
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
        // 16 inputs of 64 B from one peer, then 2 of 1,000 B from another (gathered at once:
        // one latency, which the first peer's sleep pays).
        let mut gather = Gather::new(NETWORK, 2);
        let mut sleeps = Vec::new();
        for i in 0..16 {
            sleeps.push(gather.arrived(64, i < 15));
        }
        sleeps.push(gather.arrived(1_000, true));
        sleeps.push(gather.arrived(1_000, false));
        let slept: Vec<Duration> = sleeps.into_iter().flatten().collect();
        assert_eq!(
            slept,
            [
                Duration::from_nanos(1_000_000 + 16 * 64),
                Duration::from_nanos(2 * 1_000)
            ]
        );
    }

    #[test]
    fn a_task_pays_one_latency_per_round_of_ten_peers() {
        // 25 peers: three rounds of latency; the bytes share the link.
        assert_eq!(NETWORK.gather_latency_ns(25), 3 * 1_000_000);
        assert_eq!(NETWORK.gather_latency_ns(10), 1_000_000);
        assert_eq!(NETWORK.gather_latency_ns(0), 0);
        let mut gather = Gather::new(NETWORK, 25);
        let total: Duration = (0..25).filter_map(|_| gather.arrived(1_000, false)).sum();
        assert_eq!(total, Duration::from_nanos(3 * 1_000_000 + 25 * 1_000));
    }

    #[test]
    fn a_free_network_never_sleeps() {
        let mut gather = Gather::new(Network::default(), 1);
        assert_eq!(gather.arrived(1 << 20, false), None);
    }
}
