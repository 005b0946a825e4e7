//! taskscope's built-in execution engine, in Dask's image.
//!
//! A [`Cluster`] runs workers (threads in this process), each with its threads, a memory limit,
//! a result store and a spill directory. The scheduler puts ready tasks on the worker holding
//! most of their input bytes, lets idle workers steal, moves data between workers (a real copy,
//! optionally delayed by a network model), spills least-recently-used results past Dask's
//! *target* fraction, pauses workers past *pause* and kills them past *terminate*, recomputing
//! what they held. Every task attempt's timeline is recorded in the native trace format.
//!
//! ```
//! use engine::{Cluster, ClusterConfig, GraphBuilder, Work};
//! use traces::Key;
//!
//! let cluster = Cluster::start(ClusterConfig::default())?;
//! let mut graph = GraphBuilder::new();
//! let a = graph.add(Key::from("load-1"), Work::new(10_000, 1_000));
//! let b = graph.add(Key::from("load-2"), Work::new(10_000, 1_000));
//! graph.add_with_deps(Key::from("sum-1"), Work::new(5_000, 8), &[a, b]);
//! let outputs = cluster.client().compute(&graph.build()?)?;
//! assert_eq!(outputs[0].0, Key::from("sum-1"));
//! assert_eq!(outputs[0].1.len(), 8);
//! # Ok::<(), engine::EngineError>(())
//! ```

mod client;
mod cluster;
mod compute;
mod config;
mod error;
mod graph;
mod recorder;
mod scheduler;
pub mod simulate;
mod store;
mod worker;

pub use client::Client;
pub use cluster::Cluster;
pub use compute::{checksum, generate_output, output_seed};
pub use config::{CONCURRENT_GATHERS, ClusterConfig, Network};
pub use error::EngineError;
pub use graph::{Graph, GraphBuilder, TaskRef, TaskSpec, Work, WorkExtra};
#[doc(hidden)]
pub use recorder::{CPU_METRIC, NONCPU_METRIC, recording_cost_ns};
pub use scheduler::{MAX_SIMULATED_WORKERS, MAX_WORKERS, Progress};
pub mod workloads;
