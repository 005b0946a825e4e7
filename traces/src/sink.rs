//! A live feed of records, beside (not instead of) the trace file: how a producer lets a
//! server show a run while it goes on.

use std::fmt;
use std::sync::Arc;

use crate::model::{Event, GroupMetrics, Header, MemorySample, TaskRecordRef};

/// Receives every record a producer writes, on the producer's writer thread. Implementations
/// must return quickly (copy and hand over); they never slow the workers, only the writer.
pub trait RecordSink: Send + Sync {
    fn header(&self, header: &Header);
    fn task(&self, task: &TaskRecordRef<'_>);
    fn memory(&self, sample: &MemorySample);
    fn event(&self, event: &Event);
    fn group_metrics(&self, metrics: &GroupMetrics);
    /// The producer handed over all it had: a good moment to publish what was buffered.
    fn flush(&self);
}

/// A shared [`RecordSink`], for configurations that are `Clone + Debug`.
#[derive(Clone)]
pub struct Tap(pub Arc<dyn RecordSink>);

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tap")
    }
}
