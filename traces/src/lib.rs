//! taskscope's event model and trace formats.
//!
//! A trace is a [`Header`] (the cluster, memory thresholds, when the run started) followed by
//! [`Record`]s: one [`TaskRecord`] per task attempt with its [`Phase`]s (queued, transfer,
//! deserialize, compute, disk-write, disk-read), [`MemorySample`]s per worker, and cluster
//! [`Event`]s. This crate reads and writes the native format (newline-delimited JSON, zstd when
//! the name ends in `.zst`) and imports Dask task streams; it depends on nothing else of ours.
//!
//! ```
//! use traces::{Action, Cluster, Header, Key, Phase, Record, TaskRecord, TaskStatus};
//! use traces::{TraceReader, TraceWriter};
//!
//! let header = Header::new("example", 0, Cluster::default());
//! let mut writer = TraceWriter::new(Vec::new(), "example.ndjson", &header, false)?;
//! writer.write(&Record::Task(TaskRecord {
//!     key: Key::from("inc-8f3a2b1c"),
//!     group: String::new(), // derived from the key: "inc"
//!     worker: 0,
//!     thread: 0,
//!     status: TaskStatus::Ok,
//!     nbytes: 28,
//!     inline_bytes: 0,
//!     working_bytes: 0,
//!     resources: Default::default(),
//!     restricted_to: Vec::new(),
//!     deps: vec![],
//!     attempt: 1,
//!     error: None,
//!     phases: vec![Phase { action: Action::Compute, start: 0, stop: 1_000, bytes: None, peer: None }],
//! }))?;
//! let bytes = writer.finish()?;
//!
//! let trace = TraceReader::from_reader(std::io::Cursor::new(bytes), "example.ndjson")?;
//! let (_, records) = trace.read_all()?;
//! let Record::Task(task) = &records[0] else { unreachable!() };
//! assert_eq!(task.group, "inc");
//! # Ok::<(), traces::TraceError>(())
//! ```

mod dask_report;
mod dask_stream;
mod error;
pub mod export;
mod histogram;
mod key;
mod limit;
mod live;
mod model;
mod native;
mod open;
mod readahead;
mod sink;
mod summary;
pub mod synthetic;
pub mod units;

pub use error::TraceError;
pub use histogram::SparseHistogram;
pub use key::{FloatBits, Key, KeyPart, key_split};
pub use limit::{DEFAULT_IMPORT_LIMIT, IMPORT_LIMIT_VAR};
pub use live::{GroupState, LiveState, RunningTask};
pub use model::*;
pub use native::{NativeReader, TraceWriter};
pub use open::{SourceFormat, TraceReader};
pub use sink::{RecordSink, Tap};
pub use summary::{ByteTotals, GroupSummary, PhaseTotals, TaskCounts, TraceSummary, WorkerSummary};
