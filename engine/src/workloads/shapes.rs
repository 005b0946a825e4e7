//! Graph shapes for the scheduling-overhead benchmark.

use crate::error::EngineError;
use crate::graph::{Graph, GraphBuilder, Work};

use super::{KeyFamily, tree_reduce};

/// `tasks` independent no-op tasks (`x.map_partitions(f)` on tiny partitions).
pub fn map_graph(tasks: u64) -> Result<Graph, EngineError> {
    let keys = KeyFamily::new("noop");
    let mut graph = GraphBuilder::with_capacity(tasks as usize, 0);
    for i in 0..tasks {
        graph.add(keys.key(i), Work::default());
    }
    graph.build()
}

/// `tasks` independent tasks of `compute_ns` of real CPU work each.
pub fn busy_map_graph(tasks: u64, compute_ns: u64) -> Result<Graph, EngineError> {
    let keys = KeyFamily::new("work");
    let mut graph = GraphBuilder::with_capacity(tasks as usize, 0);
    for i in 0..tasks {
        graph.add(keys.key(i), Work::new(compute_ns, 0));
    }
    graph.build()
}

/// About `tasks` no-op tasks: leaves reduced 8 at a time (`x.sum()` over many partitions).
pub fn tree_graph(tasks: u64) -> Result<Graph, EngineError> {
    let leaves = (tasks * 7 / 8).max(1);
    let keys = KeyFamily::new("leaf");
    let mut graph = GraphBuilder::with_capacity(tasks as usize, tasks as usize);
    let inputs = (0..leaves)
        .map(|i| graph.add(keys.key(i), Work::default()))
        .collect();
    tree_reduce(&mut graph, "combine", inputs, 8, Work::default());
    graph.build()
}
