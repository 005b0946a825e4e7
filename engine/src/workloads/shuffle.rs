//! A task-based shuffle (`set_index` / `groupby().apply` on an unsorted column): each input is
//! split into one piece per output, and every output gathers its piece of every input —
//! all-to-all transfers across workers.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{Explicit, KeyFamily, MB, MS, Options, Workload};
use crate::config::{ClusterConfig, Network};

pub const WORKLOAD: Workload = Workload {
    name: "shuffle",
    about: "All-to-all shuffle of 16 partitions (256 pieces of 1 MiB) over a 250 MB/s, 1 ms network.",
    fix: Some(
        "shuffles 4 partitions of 4x the size (16 pieces of 16 MiB: fewer, larger transfers)",
    ),
    configure: slow_network,
    run,
};

/// A 2 Gbit/s link, unless the user chose one: the transfers of a task-based shuffle then cost
/// more than its compute, as on a cluster whose workers share a busy network.
fn slow_network(config: &mut ClusterConfig, explicit: &Explicit) {
    if !explicit.network {
        config.network = Network {
            bandwidth: Some(250_000_000),
            latency_ns: MS,
        };
    }
}

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let (partitions, piece) = if options.fix {
        (options.scaled(4), 16 * MB)
    } else {
        (options.scaled(16), MB)
    };
    let mut graph = GraphBuilder::new();
    let load = KeyFamily::new("read-parquet");
    let split = KeyFamily::new("shuffle-split");
    let combine = KeyFamily::new("shuffle-combine");
    let mut pieces = vec![Vec::with_capacity(partitions as usize); partitions as usize];
    for i in 0..partitions {
        let part = graph.add(load.key(i), Work::new(2 * MS, piece * partitions));
        for (j, out) in pieces.iter_mut().enumerate() {
            let key = split.key(i * partitions + j as u64);
            out.push(graph.add_with_deps(key, Work::new(MS / 4, piece), &[part]));
        }
    }
    for (j, inputs) in pieces.iter().enumerate() {
        graph.add_with_deps(combine.key(j as u64), Work::new(2 * MS, piece), inputs);
    }
    client.compute(&graph.build()?)?;
    Ok(())
}
