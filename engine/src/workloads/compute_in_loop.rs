//! `for x in items: result.append(f(x).compute())`: many small computes with client-side work
//! between them, so the cluster idles while it waits for the client.

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};

use super::{KeyFamily, MB, MS, Options, Workload, client_work, keep};

pub const WORKLOAD: Workload = Workload {
    name: "compute-in-loop",
    about: "60 small compute() calls in a Python-style loop with 20 ms of client work between them.",
    fix: Some("builds every graph first and computes them together (dask.compute(*graphs))"),
    configure: keep,
    run,
};

fn small_graph(i: u64) -> Result<Graph, EngineError> {
    let mut graph = GraphBuilder::new();
    let load = KeyFamily::new(&format!("load-item{i}"));
    let score = KeyFamily::new(&format!("score-item{i}"));
    let parts: Vec<_> = (0..4)
        .map(|j| graph.add(load.key(j), Work::new(3 * MS, MB)))
        .collect();
    graph.add_with_deps(score.key(0), Work::new(MS, 8), &parts);
    graph.build()
}

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let items = options.scaled(60);
    if options.fix {
        let graphs = (0..items).map(small_graph).collect::<Result<Vec<_>, _>>()?;
        client.compute_many(&graphs)?;
        client_work(20 * MS);
        return Ok(());
    }
    for i in 0..items {
        client.compute(&small_graph(i)?)?;
        // Client-side Python between calls: the cluster has nothing to do meanwhile.
        client_work(20 * MS);
    }
    Ok(())
}
