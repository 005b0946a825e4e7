//! A cleaned dataset used by two computations without `persist`: `df.x.mean().compute()` then
//! `df.x.max().compute()` recompute the whole cleaning step.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};

use super::{KeyFamily, MB, MS, Options, Workload, keep, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "recompute",
    about: "A shared cleaning step used by two separate compute() calls without persist: computed twice.",
    fix: Some("persists the cleaned data once and reuses it"),
    configure: keep,
    run,
};

fn clean_keys(partitions: u64) -> Vec<traces::Key> {
    let clean = KeyFamily::new("clean");
    (0..partitions).map(|i| clean.key(i)).collect()
}

/// The cleaning step, as its own graph (for persist).
fn cleaned(partitions: u64) -> Result<Graph, EngineError> {
    let mut graph = GraphBuilder::new();
    let read = KeyFamily::new("read-csv");
    for (i, key) in clean_keys(partitions).into_iter().enumerate() {
        let part = graph.add(read.key(i as u64), Work::new(20 * MS, 4 * MB));
        graph.add_with_deps(key, Work::new(40 * MS, 4 * MB), &[part]);
    }
    graph.build()
}

/// An aggregation over the cleaned data: inline (recomputing it) or from persisted keys.
fn aggregation(name: &str, partitions: u64, persisted: bool) -> Result<Graph, EngineError> {
    let mut graph = GraphBuilder::new();
    let read = KeyFamily::new("read-csv");
    let chunk = KeyFamily::new(&format!("{name}-chunk"));
    let outputs = clean_keys(partitions)
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let work = Work::new(5 * MS, 1024);
            if persisted {
                graph.add(chunk.key(i as u64), work.external(key))
            } else {
                let part = graph.add(read.key(i as u64), Work::new(20 * MS, 4 * MB));
                let clean = graph.add_with_deps(key, Work::new(40 * MS, 4 * MB), &[part]);
                graph.add_with_deps(chunk.key(i as u64), work, &[clean])
            }
        })
        .collect();
    tree_reduce(
        &mut graph,
        &format!("{name}-agg"),
        outputs,
        8,
        Work::new(MS, 8),
    );
    graph.build()
}

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let partitions = options.scaled(16);
    if options.fix {
        let keys = client.persist(&cleaned(partitions)?)?;
        client.compute(&aggregation("mean", partitions, true)?)?;
        client.compute(&aggregation("max", partitions, true)?)?;
        client.release(&keys);
    } else {
        client.compute(&aggregation("mean", partitions, false)?)?;
        client.compute(&aggregation("max", partitions, false)?)?;
    }
    Ok(())
}
