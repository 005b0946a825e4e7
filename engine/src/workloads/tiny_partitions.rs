//! Far too many, far too small partitions: 100,000 tasks of tens of microseconds, where the
//! per-task overhead is the job.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{KeyFamily, Options, Workload, keep, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "tiny-partitions",
    about: "100,000 tasks of ~20 us each (from_sequence with a tiny partition size): overhead dominates.",
    fix: Some("uses 1/500 as many partitions, each doing 500x the work"),
    configure: keep,
    run,
};

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let (partitions, work_ns, bytes) = if options.fix {
        (options.scaled(100), 10_000_000, 4_000 * 500)
    } else {
        (options.scaled(50_000), 20_000, 4_000)
    };
    let mut graph = GraphBuilder::with_capacity(2 * partitions as usize, 2 * partitions as usize);
    let load = KeyFamily::new("from-sequence");
    let map = KeyFamily::new("map");
    let outputs = (0..partitions)
        .map(|i| {
            let part = graph.add(load.key(i), Work::new(work_ns, bytes));
            graph.add_with_deps(map.key(i), Work::new(work_ns, 64), &[part])
        })
        .collect();
    tree_reduce(&mut graph, "sum", outputs, 32, Work::new(10_000, 8));
    client.compute(&graph.build()?)?;
    Ok(())
}
