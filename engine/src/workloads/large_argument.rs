//! A 128 MiB lookup table passed inline to every task instead of being scattered once: each
//! task carries (and deserializes) its own copy.

use bytes::Bytes;
use traces::Key;

use crate::client::Client;
use crate::error::EngineError;
use crate::graph::{GraphBuilder, Work};

use super::{KeyFamily, MB, MS, Options, Workload, keep, tree_reduce};

pub const WORKLOAD: Workload = Workload {
    name: "large-argument",
    about: "A 128 MiB object embedded in each of 32 tasks instead of scattered once (deserialized every time).",
    fix: Some("scatters the object once with broadcast=True and passes its key"),
    configure: keep,
    run,
};

const TABLE: u64 = 128 * MB;

fn run(client: &Client, options: &Options) -> Result<(), EngineError> {
    let tasks = options.scaled(32);
    let table = Bytes::from(vec![42u8; TABLE as usize]);
    let table_key = Key::from("lookup-table-8a1f9c2e");
    if options.fix {
        client.scatter(vec![(table_key.clone(), table.clone())], true)?;
    }
    let mut graph = GraphBuilder::new();
    let join = KeyFamily::new("join-lookup");
    let outputs = (0..tasks)
        .map(|i| {
            let work = Work::new(10 * MS, MB);
            let work = if options.fix {
                work.external(table_key.clone())
            } else {
                work.inline(table.clone())
            };
            graph.add(join.key(i), work)
        })
        .collect();
    tree_reduce(&mut graph, "concat", outputs, 8, Work::new(MS, MB));
    client.compute(&graph.build()?)?;
    if options.fix {
        client.release(&[table_key]);
    }
    Ok(())
}
