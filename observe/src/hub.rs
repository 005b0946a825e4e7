//! The hub between a producer and the watchers: history for snapshots, a bounded broadcast for
//! live updates.

use std::sync::{Arc, Mutex, MutexGuard};

use prost::Message;
use proto::{BATCH_BYTES, RecordsBatcher, v1};
use tokio::sync::broadcast;
use traces::{Event, GroupMetrics, Header, LiveState, MemorySample, RecordSink, TaskRecordRef};

/// Live updates held per watcher at most (each up to [`proto::BATCH_BYTES`]); a watcher that
/// falls further behind loses the oldest and is told how many.
pub const LIVE_BUFFER: usize = 256;

/// Encoded records kept for snapshots at most (~10 M tasks); past it the oldest go, and new
/// watchers are told how many batches their snapshot lacks.
pub const HISTORY_LIMIT_BYTES: usize = 1 << 30;

/// Pause and resume the producer (the engine stops starting tasks).
pub trait Control: Send + Sync {
    /// Returns whether the producer is paused afterwards.
    fn pause(&self) -> bool;
    fn resume(&self) -> bool;
}

/// What the producer said so far, and the channel to live watchers.
pub struct Hub {
    inner: Mutex<Inner>,
    updates: broadcast::Sender<Arc<v1::Update>>,
    control: Mutex<Option<Arc<dyn Control>>>,
}

struct Inner {
    header: Option<v1::Header>,
    /// Every record so far, as encoded [`v1::Records`] of at most [`BATCH_BYTES`]: about 100
    /// bytes per task, and each entry becomes one snapshot message as is.
    history: std::collections::VecDeque<Arc<[u8]>>,
    history_bytes: usize,
    /// Batches dropped from the front of `history` to stay under the limit.
    evicted: u64,
    limit: usize,
    batcher: RecordsBatcher,
    progress: Option<Arc<v1::Update>>,
}

/// What a new watcher gets before live updates.
pub(crate) struct Snapshot {
    pub header: v1::Header,
    pub history: Vec<Arc<[u8]>>,
    /// Batches of the run's start the snapshot lacks.
    pub evicted: u64,
    pub progress: Option<Arc<v1::Update>>,
    pub live: broadcast::Receiver<Arc<v1::Update>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub::with_history_limit(HISTORY_LIMIT_BYTES)
    }

    /// A hub keeping at most `limit` bytes of records for snapshots.
    pub fn with_history_limit(limit: usize) -> Hub {
        Hub {
            inner: Mutex::new(Inner {
                header: None,
                history: Default::default(),
                history_bytes: 0,
                evicted: 0,
                limit,
                batcher: RecordsBatcher::new(BATCH_BYTES),
                progress: None,
            }),
            updates: broadcast::channel(LIVE_BUFFER).0,
            control: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_control(&self, control: Arc<dyn Control>) {
        *self.control.lock().unwrap_or_else(|e| e.into_inner()) = Some(control);
    }

    pub(crate) fn control(&self) -> Option<Arc<dyn Control>> {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes the scheduler's current state (not kept in history; the latest goes to new
    /// watchers after their snapshot).
    pub fn publish_progress(&self, state: &LiveState) {
        let update = Arc::new(v1::Update {
            dropped: 0,
            kind: Some(v1::update::Kind::Progress(state.into())),
        });
        let mut inner = self.lock();
        inner.progress = Some(update.clone());
        // No receiver is not an error: nobody watches yet.
        let _ = self.updates.send(update);
    }

    /// Watch streams open now (each holds a receiver of the live updates).
    pub fn watchers(&self) -> usize {
        self.updates.receiver_count()
    }

    /// Records held for snapshots, in encoded bytes.
    pub fn history_bytes(&self) -> usize {
        self.lock().history_bytes
    }

    pub(crate) fn subscribe(&self) -> Option<Snapshot> {
        let inner = self.lock();
        // Subscribing under the lock that publishing takes: no update is both in the history
        // and in the live stream, and none is in neither.
        Some(Snapshot {
            header: inner.header.clone()?,
            history: inner.history.iter().cloned().collect(),
            evicted: inner.evicted,
            progress: inner.progress.clone(),
            live: self.updates.subscribe(),
        })
    }

    /// Adds a record; batches it filled go out at once (whatever the producer's flushes).
    fn push(&self, add: impl FnOnce(&mut RecordsBatcher)) {
        let mut inner = self.lock();
        add(&mut inner.batcher);
        let full = inner.batcher.take_full();
        self.publish_batches(&mut inner, full);
    }

    fn publish_batches(&self, inner: &mut Inner, batches: Vec<v1::Records>) {
        for records in batches {
            let bytes: Arc<[u8]> = records.encode_to_vec().into();
            inner.history_bytes += bytes.len();
            inner.history.push_back(bytes);
            while inner.history_bytes > inner.limit
                && let Some(old) = inner.history.pop_front()
            {
                inner.history_bytes -= old.len();
                inner.evicted += 1;
            }
            let _ = self.updates.send(Arc::new(v1::Update {
                dropped: 0,
                kind: Some(v1::update::Kind::Records(records)),
            }));
        }
    }
}

impl RecordSink for Hub {
    fn header(&self, header: &Header) {
        self.lock().header = Some(header.into());
    }

    fn task(&self, task: &TaskRecordRef<'_>) {
        self.push(|batcher| batcher.push_task(task.into()));
    }

    fn memory(&self, sample: &MemorySample) {
        self.push(|batcher| batcher.push_memory(sample));
    }

    fn event(&self, event: &Event) {
        self.push(|batcher| batcher.push_event(event));
    }

    fn group_metrics(&self, metrics: &GroupMetrics) {
        self.push(|batcher| batcher.push_group_metrics(metrics));
    }

    fn flush(&self) {
        let mut inner = self.lock();
        let batches = inner.batcher.finish();
        self.publish_batches(&mut inner, batches);
    }
}
