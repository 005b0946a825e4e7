//! A balanced map-reduce: equal partitions of ~100 ms / 8 MiB, a tree reduction. Nothing to fix.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{KeyFamily, MB, MS, Options, Workload, keep, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "healthy",
    about: "Balanced map-reduce: equal ~100 ms, 8 MiB partitions and a tree reduction (the baseline).",
    fix: None,
    configure: keep,
    run,
};

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let partitions = options.scaled(24);
    let mut graph = GraphBuilder::new();
    let read = KeyFamily::new("read-parquet");
    let process = KeyFamily::new("process");
    let outputs = (0..partitions)
        .map(|i| {
            let part = graph.add(read.key(i), Work::new(60 * MS, 8 * MB));
            graph.add_with_deps(process.key(i), Work::new(60 * MS, MB), &[part])
        })
        .collect();
    tree_reduce(
        &mut graph,
        "aggregate",
        outputs,
        4,
        Work::new(5 * MS, 64 * 1024),
    );
    client.compute(&graph.build()?)?;
    Ok(())
}
