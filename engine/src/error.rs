use thiserror::Error;

/// What the engine tells the client.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum EngineError {
    #[error("graph has a cycle through {}", .0.join(", "))]
    Cycle(Vec<String>),
    #[error("graph has duplicate keys: {}", .0.join(", "))]
    DuplicateKeys(Vec<String>),
    #[error("missing dependencies (not in the graph, not scattered or persisted): {}", .0.join(", "))]
    MissingDependencies(Vec<String>),
    #[error("task {key} failed: {message}")]
    Task { key: String, message: String },
    /// Dask's `KilledWorker`: the task was running on this many workers when they died.
    #[error("KilledWorker: task {key} was running on {deaths} workers that died")]
    KilledWorker { key: String, deaths: u32 },
    #[error("task {key} needs resources {needs} that no worker has")]
    NoWorkerHasResources { key: String, needs: String },
    #[error("task {key} was cancelled")]
    Cancelled { key: String },
    #[error("the scattered value {key} was lost when its worker died")]
    LostData { key: String },
    #[error("the cluster restarted or shut down before the work finished")]
    Restarted,
    #[error("cannot start worker threads: {0}")]
    Spawn(String),
    /// Writing the trace failed (the message names the file).
    #[error("{0}")]
    Trace(String),
    #[error("spill directory: {0}")]
    SpillDir(String),
}
