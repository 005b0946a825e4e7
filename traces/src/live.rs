//! What a scheduler knows at one instant: task groups by state, tasks running. Not part of a
//! trace (a trace records what finished); live views show it beside the records.

use std::sync::Arc;

use crate::key::Key;
use crate::model::WorkerId;

/// The scheduler's state at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    /// Nanoseconds since the trace origin.
    pub time: u64,
    /// Whether the producer's pause holds the cluster (no task starts).
    pub paused: bool,
    /// In the order graphs were submitted and groups first appear in them.
    pub groups: Vec<GroupState>,
    pub running: Vec<RunningTask>,
}

/// The tasks of one group (over every graph held), by state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupState {
    pub name: Arc<str>,
    /// Inputs missing, or queued for a thread.
    pub waiting: u64,
    pub running: u64,
    /// In memory or already released.
    pub done: u64,
    pub erred: u64,
    /// Groups this group's tasks read from.
    pub dependencies: Vec<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunningTask {
    pub key: Key,
    pub group: Arc<str>,
    pub worker: WorkerId,
    pub thread: u32,
    /// When it started on its thread.
    pub start: u64,
}
