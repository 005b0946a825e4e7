//! A groupby where one key holds most of the data: one partition ~20× the others in size and
//! time, so the whole job waits on one straggler task.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{KeyFamily, MB, MS, Options, Workload, keep, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "skewed-groupby",
    about: "Groupby on a skewed key: one partition ~20x the others in size and compute time (a straggler).",
    fix: Some("splits the hot key's partition into 20 even pieces (repartition / salting)"),
    configure: keep,
    run,
};

/// How much bigger the hot partition is.
const SKEW: u64 = 20;

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let partitions = options.scaled(24);
    let mut graph = GraphBuilder::new();
    let read = KeyFamily::new("read-csv");
    let chunk = KeyFamily::new("groupby-chunk");
    let mut outputs = Vec::new();
    let mut next = 0;
    for i in 0..partitions {
        let hot = i == partitions / 2;
        let pieces = if hot && options.fix { SKEW } else { 1 };
        let factor = if hot && !options.fix { SKEW } else { 1 };
        for _ in 0..pieces {
            let part = graph.add(read.key(next), Work::new(5 * MS * factor, 2 * MB * factor));
            outputs.push(graph.add_with_deps(
                chunk.key(next),
                Work::new(40 * MS * factor, 256 * 1024),
                &[part],
            ));
            next += 1;
        }
    }
    tree_reduce(
        &mut graph,
        "groupby-agg",
        outputs,
        8,
        Work::new(2 * MS, 64 * 1024),
    );
    client.compute(&graph.build()?)?;
    Ok(())
}
