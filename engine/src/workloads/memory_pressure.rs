//! More data than memory: results pile up past the target and spill, tasks with large working
//! sets pause their worker, and one allocation spike kills a worker whose work is recomputed.

use crate::client::Client;
use crate::config::ClusterConfig;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{Explicit, KeyFamily, MB, MS, Options, Workload, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "memory-pressure",
    about: "768 MiB of results on 2 x 256 MiB workers: spills past 60%, wide sorts pause workers past 80%, a spike kills one.",
    fix: Some("uses 4x more, 4x smaller partitions with smaller working sets"),
    configure,
    run,
};

/// Default worker memory for this workload, unless the user gave one.
const LIMIT: u64 = 256 * MB;

fn configure(config: &mut ClusterConfig, explicit: &Explicit) {
    if !explicit.memory_limit {
        config.memory_limit = Some(LIMIT);
    }
}

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let (partitions, size, working) = if options.fix {
        (options.scaled(192), 4 * MB, 8 * MB)
    } else {
        (options.scaled(48), 16 * MB, 64 * MB)
    };
    let mut graph = GraphBuilder::new();
    let load = KeyFamily::new("read-parquet");
    let transform = KeyFamily::new("transform");
    let loads: Vec<_> = (0..partitions)
        .map(|i| graph.add(load.key(i), Work::new(10 * MS, size)))
        .collect();
    // Loads are all queued before any transform is ready, so their results pile up (breadth
    // first, as Dask without co-assignment does).
    let outputs: Vec<_> = loads
        .iter()
        .enumerate()
        .map(|(i, &part)| {
            let mut work = Work::new(15 * MS, size / 2).working_bytes(working);
            if !options.fix && i % 12 == 5 {
                // A wide sort: its working set alone is past the pause line (86 %).
                work = Work::new(40 * MS, size / 2).working_bytes(LIMIT * 86 / 100);
            }
            if !options.fix && i == loads.len() * 2 / 3 {
                // One record blows up on its first attempt: 1.2x the worker's memory.
                work = work.spike(LIMIT + LIMIT / 5, 1);
            }
            graph.add_with_deps(transform.key(i as u64), work, &[part])
        })
        .collect();
    tree_reduce(&mut graph, "merge", outputs, 8, Work::new(5 * MS, MB));
    client.compute(&graph.build()?)?;
    Ok(())
}
