//! Workloads that reproduce what the Dask best-practices guide warns about, plus a healthy one,
//! so the analyzer and the UI always have a real run to show. Each is real work: CPU loops and
//! byte buffers of the sizes they declare, no sleeps.

use std::hash::{Hash, Hasher};

use traces::{Key, KeyPart};

use crate::client::Client;
use crate::config::ClusterConfig;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, TaskRef, Work};

mod compute_in_loop;
pub mod file;
mod healthy;
mod large_argument;
mod memory_pressure;
mod recompute;
mod shapes;
mod shuffle;
mod skewed_groupby;
mod tiny_partitions;

pub use shapes::{busy_map_graph, map_graph, tree_graph};

pub const MB: u64 = 1 << 20;
pub const MS: u64 = 1_000_000;

/// How a workload is run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Run the corrected variant (scatter, persist, repartition, batch…).
    pub fix: bool,
    /// Multiplies task counts (1.0: the default size, a few seconds on 2 cores).
    pub scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fix: false,
            scale: 1.0,
        }
    }
}

impl Options {
    /// `n` scaled, at least 1.
    pub fn scaled(&self, n: u64) -> u64 {
        ((n as f64 * self.scale).round() as u64).max(1)
    }
}

/// A named workload.
pub struct Workload {
    pub name: &'static str,
    /// One sentence: what it does and what it shows.
    pub about: &'static str,
    /// What `--fix` changes, if it has a fixed variant.
    pub fix: Option<&'static str>,
    /// Adjusts the cluster before it starts (a memory limit, a network model) where the user
    /// did not choose.
    pub configure: fn(&mut ClusterConfig, &Explicit),
    /// Drives the client: submits graphs, waits, does client-side work.
    pub run: fn(&Client, &Options) -> Result<(), EngineError>,
}

/// Which cluster settings the user gave explicitly (workloads keep those).
#[derive(Clone, Copy, Debug, Default)]
pub struct Explicit {
    pub memory_limit: bool,
    pub network: bool,
}

impl Workload {
    /// Runs the workload on a default cluster (as `configure` adjusts it), recording to
    /// `trace`; returns the number of task records written.
    pub fn record(&self, options: &Options, trace: &std::path::Path) -> Result<u64, EngineError> {
        let mut config = ClusterConfig {
            record_to: Some(trace.to_path_buf()),
            ..ClusterConfig::default()
        };
        (self.configure)(&mut config, &Explicit::default());
        let cluster = crate::Cluster::start(config)?;
        (self.run)(&cluster.client(), options)?;
        cluster.shutdown()
    }
}

pub fn all() -> &'static [Workload] {
    &[
        healthy::WORKLOAD,
        skewed_groupby::WORKLOAD,
        tiny_partitions::WORKLOAD,
        large_argument::WORKLOAD,
        compute_in_loop::WORKLOAD,
        memory_pressure::WORKLOAD,
        shuffle::WORKLOAD,
        recompute::WORKLOAD,
    ]
}

pub fn find(name: &str) -> Option<&'static Workload> {
    all().iter().find(|w| w.name == name)
}

fn keep(_: &mut ClusterConfig, _: &Explicit) {}

/// A Dask-style token: 32 hex digits derived from the name.
pub fn token(name: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    let a = hasher.finish();
    a.hash(&mut hasher);
    format!("{a:016x}{:016x}", hasher.finish())
}

/// Names a collection's tasks the way Dask does: `("name-<token>", i)`.
pub struct KeyFamily {
    name: std::sync::Arc<str>,
}

impl KeyFamily {
    pub fn new(prefix: &str) -> KeyFamily {
        KeyFamily {
            name: format!("{prefix}-{}", token(prefix)).into(),
        }
    }

    pub fn key(&self, i: u64) -> Key {
        Key::Tuple(vec![
            KeyPart::Str(self.name.clone()),
            KeyPart::Int(i as i64),
        ])
    }
}

/// Reduces `inputs` `fan_in` at a time until one task is left (Dask's tree reduction).
pub fn tree_reduce(
    graph: &mut GraphBuilder,
    prefix: &str,
    mut inputs: Vec<TaskRef>,
    fan_in: usize,
    work: Work,
) -> TaskRef {
    let keys = KeyFamily::new(prefix);
    let mut next = 0;
    loop {
        let level: Vec<TaskRef> = inputs
            .chunks(fan_in.max(2))
            .map(|chunk| {
                next += 1;
                graph.add_with_deps(keys.key(next - 1), work.clone(), chunk)
            })
            .collect();
        if level.len() == 1 {
            return level[0];
        }
        inputs = level;
    }
}

/// Client-side work between computes: a real CPU loop.
fn client_work(nanos: u64) {
    let start = std::time::Instant::now();
    let mut x = 1u64;
    while start.elapsed().as_nanos() < u128::from(nanos) {
        for _ in 0..64 {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7);
        }
    }
    std::hint::black_box(x);
}
