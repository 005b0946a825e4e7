//! Packing records into wire messages that stay under gRPC's 4 MB limit, and unpacking them.

use prost::Message;
use traces::{Event, GroupMetrics, Key, MemorySample, Record, TaskRecord};

use crate::convert::InvalidMessage;
use crate::v1;

/// gRPC's default maximum message size; no message we send may exceed it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What one [`v1::Records`] may hold: a quarter of the limit, so a header and framing always
/// fit beside it, and a client decodes one message in a few milliseconds.
pub const BATCH_BYTES: usize = 1024 * 1024;

/// A task whose encoding is over this sends its dependencies separately, in pieces this big.
const DEPS_PIECE_BYTES: usize = BATCH_BYTES / 4;

/// Bytes a repeated field element costs beyond its own encoding: tag and length prefix.
const FIELD_OVERHEAD: usize = 1 + 5;

/// Packs records into [`v1::Records`] of at most [`BATCH_BYTES`] (plus one element).
///
/// ```
/// use proto::RecordsBatcher;
/// let mut batcher = RecordsBatcher::new(proto::BATCH_BYTES);
/// let kind = traces::EventKind::Warning { message: "hi".into(), worker: None, source: None };
/// batcher.push_event(&traces::Event { time: 1, kind });
/// let batches = batcher.finish();
/// assert_eq!(batches.len(), 1);
/// ```
pub struct RecordsBatcher {
    budget: usize,
    current: v1::Records,
    size: usize,
    full: Vec<v1::Records>,
}

impl RecordsBatcher {
    pub fn new(budget: usize) -> RecordsBatcher {
        RecordsBatcher {
            budget,
            current: v1::Records::default(),
            size: 0,
            full: Vec::new(),
        }
    }

    pub fn push(&mut self, record: &Record) {
        match record {
            Record::Task(task) => self.push_task(v1::Task::from(task)),
            Record::Memory(sample) => self.push_memory(sample),
            Record::Event(event) => self.push_event(event),
            Record::GroupMetrics(metrics) => self.push_group_metrics(metrics),
        }
    }

    pub fn push_task(&mut self, mut task: v1::Task) {
        let len = task.encoded_len() + FIELD_OVERHEAD;
        if len <= DEPS_PIECE_BYTES.min(self.budget) {
            self.make_room(len);
            self.current.tasks.push(task);
            self.size += len;
            return;
        }
        // A task reading many inputs (a reduction over a million partitions): its
        // dependencies follow in pieces, and the continuation ends the message.
        let deps = std::mem::take(&mut task.deps);
        task.more_deps_follow = true;
        let len = task.encoded_len() + FIELD_OVERHEAD;
        self.make_room(len);
        let (key, attempt) = (task.key.clone(), task.attempt);
        self.current.tasks.push(task);
        self.size += len;
        let mut piece = v1::TaskDeps {
            key: key.clone(),
            attempt,
            deps: Vec::new(),
            last: false,
        };
        let base = piece.encoded_len() + FIELD_OVERHEAD;
        let mut piece_size = base;
        let mut deps = deps.into_iter().peekable();
        while let Some(dep) = deps.next() {
            piece_size += dep.encoded_len() + FIELD_OVERHEAD;
            piece.deps.push(dep);
            if piece_size >= DEPS_PIECE_BYTES || deps.peek().is_none() {
                piece.last = deps.peek().is_none();
                let next = v1::TaskDeps {
                    key: key.clone(),
                    attempt,
                    deps: Vec::new(),
                    last: false,
                };
                let done = std::mem::replace(&mut piece, next);
                self.make_room(piece_size);
                self.current.more_deps.push(done);
                self.size += piece_size;
                piece_size = base;
            }
        }
        if piece_size == base && self.current.more_deps.last().is_none_or(|p| !p.last) {
            // No dependencies at all: still close the continuation.
            piece.last = true;
            self.current.more_deps.push(piece);
        }
        self.seal();
    }

    pub fn push_memory(&mut self, sample: &MemorySample) {
        let sample = v1::MemorySample::from(sample);
        let len = sample.encoded_len() + FIELD_OVERHEAD;
        self.make_room(len);
        self.current.memory.push(sample);
        self.size += len;
    }

    pub fn push_event(&mut self, event: &Event) {
        let event = v1::Event::from(event);
        let len = event.encoded_len() + FIELD_OVERHEAD;
        self.make_room(len);
        self.current.events.push(event);
        self.size += len;
    }

    pub fn push_group_metrics(&mut self, metrics: &GroupMetrics) {
        let metrics = v1::GroupMetrics::from(metrics);
        let len = metrics.encoded_len() + FIELD_OVERHEAD;
        self.make_room(len);
        self.current.group_metrics.push(metrics);
        self.size += len;
    }

    fn make_room(&mut self, len: usize) {
        if self.size > 0 && self.size + len > self.budget {
            self.seal();
        }
    }

    /// Ends the current batch.
    pub fn seal(&mut self) {
        if self.size > 0 || !self.current.more_deps.is_empty() {
            self.full.push(std::mem::take(&mut self.current));
            self.size = 0;
        }
    }

    /// The batches completed so far.
    pub fn take_full(&mut self) -> Vec<v1::Records> {
        std::mem::take(&mut self.full)
    }

    /// Every batch, the current one included.
    pub fn finish(&mut self) -> Vec<v1::Records> {
        self.seal();
        self.take_full()
    }
}

/// Turns received [`v1::Records`] back into model records, joining dependency continuations.
#[derive(Default)]
pub struct RecordsDecoder {
    /// A task whose dependencies are still arriving.
    pending: Option<TaskRecord>,
}

impl RecordsDecoder {
    pub fn new() -> RecordsDecoder {
        RecordsDecoder::default()
    }

    /// Decodes `records`, passing each complete record to `out`. Within one message, tasks come
    /// first, then memory samples, then events, then group metrics (the producer's interleaving
    /// is not kept).
    pub fn decode(
        &mut self,
        records: &v1::Records,
        mut out: impl FnMut(Record),
    ) -> Result<(), InvalidMessage> {
        for task in &records.tasks {
            if let Some(pending) = self.pending.take() {
                // The continuation never came: keep what arrived.
                out(Record::Task(pending));
            }
            let record = TaskRecord::try_from(task)?;
            if task.more_deps_follow {
                self.pending = Some(record);
            } else {
                out(Record::Task(record));
            }
        }
        for piece in &records.more_deps {
            // A continuation whose task is not the one pending: that task was in an update the
            // server dropped (the stream says how many); its remaining pieces go with it.
            let piece_key = piece.key.as_ref().map(Key::try_from).transpose()?;
            let matches = self.pending.as_ref().is_some_and(|p| {
                Some(&p.key) == piece_key.as_ref() && p.attempt == piece.attempt.max(1)
            });
            if !matches {
                continue;
            }
            let pending = self.pending.as_mut().expect("matched above");
            for dep in &piece.deps {
                pending.deps.push(dep.try_into()?);
            }
            if piece.last {
                out(Record::Task(self.pending.take().expect("matched above")));
            }
        }
        for sample in &records.memory {
            out(Record::Memory(sample.into()));
        }
        for event in &records.events {
            // No kind this schema knows: a newer server's event type, skipped as the trace
            // reader skips unknown event types.
            if event.kind.is_none() {
                continue;
            }
            out(Record::Event(event.try_into()?));
        }
        for metrics in &records.group_metrics {
            out(Record::GroupMetrics(metrics.into()));
        }
        Ok(())
    }
}
