//! The native trace format: newline-delimited JSON, the header on line 1, then one record per
//! line with a `"kind"` field (`task`, `memory`, `event`, `group-metrics`). A `.zst` suffix
//! means zstd. A record kind, event type or enum value this reader does not know (a newer
//! minor version wrote it) is skipped with one warning per kind, never an error.
//!
//! ```text
//! {"kind":"header","format":"taskscope-trace","version":"1.0","producer":"…","origin_unix_ns":…,"cluster":{…}}
//! {"kind":"task","key":["x-1f2e",0],"group":"x","worker":0,"thread":0,"status":"ok","nbytes":8000,"phases":[{"action":"compute","start":10,"stop":990}]}
//! {"kind":"memory","time":1000,"worker":0,"managed":8000,"unmanaged":0,"spilled":0}
//! {"kind":"event","time":1200,"type":"worker-paused","worker":0}
//! ```

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{TraceError, describe_json_error};
use crate::model::{
    Action, Event, EventFields, EventKind, FORMAT_NAME, FORMAT_VERSION, FormatVersion,
    GroupMetrics, Header, MemorySample, Record, TaskRecord, TaskRecordRef, TaskStatus,
};

/// How a line is tagged; only used to write (reading dispatches on the `kind` prefix).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Line<'a> {
    Header(&'a Header),
    Task(&'a TaskRecord),
    #[serde(rename = "task")]
    TaskRef(&'a TaskRecordRef<'a>),
    Memory(&'a MemorySample),
    Event(&'a Event),
    GroupMetrics(&'a GroupMetrics),
}

impl Line<'_> {
    /// The record, for messages: its kind and what tells it apart (a task's key), abbreviated.
    fn describe(&self) -> String {
        let (kind, what) = match self {
            Line::Header(_) => ("header", String::new()),
            Line::Task(task) => ("task", task.key.to_string()),
            Line::TaskRef(task) => ("task", task.key.to_string()),
            Line::Memory(sample) => ("memory sample of worker", sample.worker.to_string()),
            Line::Event(event) => ("event", event.kind.name().to_string()),
            Line::GroupMetrics(metrics) => ("group metrics of", metrics.group.clone()),
        };
        /// Characters of a key or name quoted in a message.
        const SHOWN: usize = 60;
        let mut shown: String = what.chars().take(SHOWN).collect();
        if shown.len() < what.len() {
            shown.push('…');
        }
        format!("{kind} {shown}").trim_end().to_string()
    }
}

/// Writes a native trace, record by record, so a run can be recorded while it goes on.
///
/// Lines are gathered in a buffer and handed to the output (or the zstd encoder) in large
/// chunks: the encoder's per-call cost would otherwise dominate. [`TraceWriter::flush`] pushes
/// everything out; dropping the writer without [`TraceWriter::finish`] still does so, best effort.
pub struct TraceWriter<W: Write> {
    sink: Option<Sink<W>>,
    buf: Vec<u8>,
    name: String,
    /// Lines written (the header is line 1).
    lines: u64,
}

enum Sink<W: Write> {
    Plain(W),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Sink<W> {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w,
        }
    }
}

/// zstd level for traces: level 1 still compresses traces ~15-20× and is the fastest, which
/// matters when the writer shares two cores with the workers it records.
const ZSTD_LEVEL: i32 = 1;

/// Bytes gathered before a write to the output.
const WRITE_CHUNK: usize = 128 * 1024;

impl TraceWriter<File> {
    /// Creates `path` (zstd-compressed when it ends in `.zst`) and writes the header.
    pub fn create(
        path: impl AsRef<Path>,
        header: &Header,
    ) -> Result<TraceWriter<File>, TraceError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|cause| TraceError::Write {
            path: name.clone(),
            cause,
        })?;
        let compress = path.extension().is_some_and(|ext| ext == "zst");
        TraceWriter::new(file, &name, header, compress)
    }
}

impl<W: Write> TraceWriter<W> {
    /// Writes the header to `out`; `name` is used in error messages.
    pub fn new(out: W, name: &str, header: &Header, compress: bool) -> Result<Self, TraceError> {
        let sink = if compress {
            let encoder =
                zstd::Encoder::new(out, ZSTD_LEVEL).map_err(|cause| TraceError::Write {
                    path: name.to_string(),
                    cause,
                })?;
            Sink::Zstd(encoder)
        } else {
            Sink::Plain(out)
        };
        let mut writer = TraceWriter {
            sink: Some(sink),
            buf: Vec::with_capacity(WRITE_CHUNK + 4096),
            name: name.to_string(),
            lines: 0,
        };
        writer.write_line(&Line::Header(header))?;
        Ok(writer)
    }

    pub fn write(&mut self, record: &Record) -> Result<(), TraceError> {
        match record {
            Record::Task(task) => self.write_task(task),
            Record::Memory(sample) => self.write_line(&Line::Memory(sample)),
            Record::Event(event) => self.write_line(&Line::Event(event)),
            Record::GroupMetrics(metrics) => self.write_line(&Line::GroupMetrics(metrics)),
        }
    }

    pub fn write_task(&mut self, task: &TaskRecord) -> Result<(), TraceError> {
        if task.group.is_empty() {
            // Files always carry the group so readers need not derive it.
            let mut task = task.clone();
            task.group = task.key.group();
            return self.write_line(&Line::Task(&task));
        }
        self.write_line(&Line::Task(task))
    }

    /// Writes a borrowed task record (its group must be set).
    pub fn write_task_ref(&mut self, task: &TaskRecordRef) -> Result<(), TraceError> {
        self.write_line(&Line::TaskRef(task))
    }

    fn write_line(&mut self, line: &Line) -> Result<(), TraceError> {
        let start = self.buf.len();
        // Serializing our types into a Vec cannot fail.
        serde_json::to_writer(&mut self.buf, line).expect("trace records serialize to JSON");
        self.buf.push(b'\n');
        self.lines += 1;
        // A line the reader would refuse (`read_line`): refused here, so every file written
        // reads back (a record can grow on the way: a group derived from its key, escapes).
        let bytes = self.buf.len() - start;
        if bytes > MAX_LINE {
            self.buf.truncate(start);
            return Err(TraceError::LineTooLong {
                path: self.name.clone(),
                line: self.lines,
                record: line.describe(),
                bytes,
            });
        }
        if self.buf.len() >= WRITE_CHUNK {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), TraceError> {
        let sink = self.sink.as_mut().expect("writer used after finish");
        let result = sink.out().write_all(&self.buf);
        self.buf.clear();
        result.map_err(|cause| self.write_error(cause))
    }

    /// Pushes everything written so far to the underlying writer (for zstd, ends the current
    /// block), so a reader of the file sees every record written before the call.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        self.write_buffer()?;
        let sink = self.sink.as_mut().expect("writer used after finish");
        sink.out().flush().map_err(|cause| self.write_error(cause))
    }

    /// Completes the file (for zstd, the frame) and returns the underlying writer.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.write_buffer()?;
        let mut out = match self.sink.take().expect("writer used after finish") {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.finish().map_err(|cause| self.write_error(cause))?,
        };
        out.flush().map_err(|cause| self.write_error(cause))?;
        Ok(out)
    }

    fn write_error(&self, cause: io::Error) -> TraceError {
        TraceError::Write {
            path: self.name.clone(),
            cause,
        }
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        // Best effort: an explicit `finish` reports errors, a drop cannot.
        if self.sink.is_some() && self.write_buffer().is_ok() {
            match self.sink.take() {
                Some(Sink::Plain(mut w)) => drop(w.flush()),
                Some(Sink::Zstd(w)) => drop(w.finish().and_then(|mut w| w.flush())),
                None => {}
            }
        }
    }
}

/// Reads records one line at a time: memory holds one line, whatever the file's size.
pub struct NativeReader<R> {
    input: R,
    path: String,
    header: Header,
    line_no: u64,
    buf: Vec<u8>,
    warnings: Vec<String>,
    unknown: Unknown,
    done: bool,
    /// A read error met after a batch's first lines: reported by the next `next_batch`, so
    /// those lines are parsed (and their own errors, which come first, reported) before it.
    pending_error: Option<TraceError>,
}

impl<R: BufRead> NativeReader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R, path: &str) -> Result<NativeReader<R>, TraceError> {
        let mut buf = Vec::with_capacity(4096);
        let mut line_no = 0;
        let header_line = loop {
            buf.clear();
            let n = read_line(&mut input, &mut buf).map_err(|cause| TraceError::Read {
                path: path.to_string(),
                line: line_no + 1,
                cause,
            })?;
            if n == 0 {
                return Err(TraceError::Empty {
                    path: path.to_string(),
                });
            }
            line_no += 1;
            if !trim_line(&buf).is_empty() {
                break trim_line(&buf);
            }
        };
        let header = parse_header(header_line, path, line_no)?;
        Ok(NativeReader {
            input,
            path: path.to_string(),
            header,
            line_no,
            buf,
            warnings: Vec::new(),
            unknown: Unknown::default(),
            done: false,
            pending_error: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Problems that did not stop the read (a truncated last line, records of kinds this
    /// reader does not know). Complete once the reader has returned `None`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// At the end: the warning for skipped records, before any truncation warning (as
    /// [`crate::TraceReader::par_fold`] orders them).
    fn finish_unknown(&mut self) {
        let unknown = std::mem::take(&mut self.unknown);
        if let Some(warning) = unknown.warning(&self.path) {
            self.warnings.insert(0, warning);
        }
    }

    fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        loop {
            self.buf.clear();
            let read = read_line(&mut self.input, &mut self.buf);
            let n = match read {
                Ok(n) => n,
                // A compressed stream cut short: what decoded so far is kept, as for a plain file.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_zstd_truncation(&e) => {
                    self.warn_truncated(self.buf.len().max(1), "the compressed stream ends early");
                    return Ok(None);
                }
                Err(cause) => {
                    return Err(TraceError::Read {
                        path: self.path.clone(),
                        line: self.line_no + 1,
                        cause,
                    });
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            let complete = self.buf.last() == Some(&b'\n');
            let line = trim_line(&self.buf);
            if line.is_empty() {
                continue;
            }
            return match parse_record(line) {
                Ok(Parsed::Record(record)) => Ok(Some(record)),
                Ok(Parsed::Unknown(what)) => {
                    self.unknown.add(what, self.line_no);
                    continue;
                }
                Ok(Parsed::Partial(record, what)) => {
                    self.unknown.add(what, self.line_no);
                    Ok(Some(record))
                }
                // A recorder that crashed mid-line: keep everything before it.
                Err(_) if !complete => {
                    self.warn_truncated(n, "the last line is incomplete");
                    Ok(None)
                }
                Err(message) => Err(TraceError::invalid(&self.path, self.line_no, message)),
            };
        }
    }

    fn warn_truncated(&mut self, bytes: usize, why: &str) {
        self.warnings.push(truncation_warning(
            &self.path,
            self.line_no.max(1),
            bytes,
            why,
        ));
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Up to `max_lines` raw lines, for parsing elsewhere (see [`parse_batch`]), in `batch`'s
    /// buffers (reused from an earlier batch: no fresh pages per batch).
    pub(crate) fn next_batch(
        &mut self,
        max_lines: usize,
        mut batch: LineBatch,
    ) -> Result<Option<LineBatch>, TraceError> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        if self.done {
            return Ok(None);
        }
        batch.first_line = self.line_no + 1;
        batch.data.clear();
        batch.ends.clear();
        batch.last_incomplete = false;
        while batch.ends.len() < max_lines {
            let before = batch.data.len();
            match read_line(&mut self.input, &mut batch.data) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => {
                    self.line_no += 1;
                    batch.ends.push(batch.data.len());
                    if batch.data.last() != Some(&b'\n') {
                        batch.last_incomplete = true;
                        self.done = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_zstd_truncation(&e) => {
                    let partial = batch.data.len() - before;
                    batch.data.truncate(before);
                    self.warn_truncated(partial.max(1), "the compressed stream ends early");
                    self.done = true;
                    break;
                }
                Err(cause) => {
                    self.done = true;
                    batch.data.truncate(before);
                    let error = TraceError::Read {
                        path: self.path.clone(),
                        line: self.line_no + 1,
                        cause,
                    };
                    if batch.ends.is_empty() {
                        return Err(error);
                    }
                    self.pending_error = Some(error);
                    break;
                }
            }
        }
        Ok((!batch.ends.is_empty()).then_some(batch))
    }
}

fn truncation_warning(path: &str, line: u64, bytes: usize, why: &str) -> String {
    format!(
        "{path}:{line}: dropped {bytes} bytes at the end ({why}; was the recorder interrupted?)"
    )
}

/// Raw lines read by one thread and parsed by another.
#[derive(Default)]
pub(crate) struct LineBatch {
    /// Line number of the first line.
    pub first_line: u64,
    pub data: Vec<u8>,
    /// End offset of each line in `data`.
    pub ends: Vec<usize>,
    /// The last line has no newline: the file ended there.
    pub last_incomplete: bool,
}

/// Parses a batch's records into `each`, noting skipped ones in `unknown`. Returns the warning
/// for an incomplete last line that does not parse (as the sequential reader would), or the
/// first error.
pub(crate) fn parse_batch(
    batch: &LineBatch,
    path: &str,
    unknown: &mut Unknown,
    mut each: impl FnMut(Record),
) -> Result<Option<String>, TraceError> {
    let mut start = 0;
    for (i, &end) in batch.ends.iter().enumerate() {
        let raw = &batch.data[start..end];
        start = end;
        let line = trim_line(raw);
        if line.is_empty() {
            continue;
        }
        let line_no = batch.first_line + i as u64;
        match parse_record(line) {
            Ok(Parsed::Record(record)) => each(record),
            Ok(Parsed::Unknown(what)) => unknown.add(what, line_no),
            Ok(Parsed::Partial(record, what)) => {
                unknown.add(what, line_no);
                each(record);
            }
            Err(_) if batch.last_incomplete && i + 1 == batch.ends.len() => {
                let why = "the last line is incomplete";
                return Ok(Some(truncation_warning(path, line_no, raw.len(), why)));
            }
            Err(message) => return Err(TraceError::invalid(path, line_no, message)),
        }
    }
    Ok(None)
}

impl<R: BufRead> Iterator for NativeReader<R> {
    type Item = Result<Record, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.next_record().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
            self.finish_unknown();
        }
        result
    }
}

/// No record comes near this; a longer line is a corrupt (or hostile) file, refused before it
/// can take the machine's memory.
pub const MAX_LINE: usize = 64 << 20;

/// `read_until(b'\n')`, refusing lines longer than [`MAX_LINE`].
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(total);
        }
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(&available[..used]);
        input.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
        if total > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line longer than {} MiB", MAX_LINE >> 20),
            ));
        }
    }
}

fn is_zstd_truncation(e: &io::Error) -> bool {
    // zstd reports a frame cut short as an `Other` error with this text.
    e.to_string().contains("incomplete frame")
}

fn trim_line(buf: &[u8]) -> &[u8] {
    buf.trim_ascii()
}

fn parse_header(line: &[u8], path: &str, line_no: u64) -> Result<Header, TraceError> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        TraceError::invalid(
            path,
            line_no,
            format!(
                "not a taskscope trace header: {}",
                describe_json_error(&e, ".")
            ),
        )
    })?;
    let kind = value.get("kind").and_then(|k| k.as_str());
    let format = value.get("format").and_then(|f| f.as_str());
    if kind != Some("header") || format != Some(FORMAT_NAME) {
        return Err(TraceError::invalid(
            path,
            line_no,
            format!(
                "not a taskscope trace: line 1 must be the header \
                 ({{\"kind\":\"header\",\"format\":\"{FORMAT_NAME}\",…}})"
            ),
        ));
    }
    // The version is checked before the rest, so a newer header with other fields still gets
    // the version message rather than a confusing field error.
    if let Some(found) = value.get("version").and_then(|v| v.as_str()) {
        let version: FormatVersion = found.parse().map_err(|e: String| {
            TraceError::invalid(path, line_no, format!("field \"version\": {e}"))
        })?;
        if version.major > FORMAT_VERSION.major {
            return Err(TraceError::NewerVersion {
                path: path.to_string(),
                found: found.to_string(),
                supported: FORMAT_VERSION.major,
            });
        }
    }
    from_value_with_path(value).map_err(|message| TraceError::invalid(path, line_no, message))
}

/// Records skipped because this reader does not know their kind, event type or an enum value
/// in them, counted per description.
#[derive(Debug, Default)]
pub(crate) struct Unknown {
    /// Description → (count, first line).
    seen: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Unknown {
    fn add(&mut self, what: String, line: u64) {
        let entry = self.seen.entry(what).or_insert((0, line));
        entry.0 += 1;
        entry.1 = entry.1.min(line);
    }

    pub(crate) fn merge(&mut self, other: Unknown) {
        for (what, (count, line)) in other.seen {
            let entry = self.seen.entry(what).or_insert((0, line));
            entry.0 += count;
            entry.1 = entry.1.min(line);
        }
    }

    /// One warning for everything skipped, or none.
    pub(crate) fn warning(&self, path: &str) -> Option<String> {
        let first = self.seen.values().map(|(_, line)| *line).min()?;
        let total: u64 = self.seen.values().map(|(count, _)| count).sum();
        let what: Vec<String> = self
            .seen
            .iter()
            .map(|(what, (count, _))| format!("{what} ×{count}"))
            .collect();
        Some(format!(
            "{path}:{first}: skipped {total} record{} or phase{0} this reader does not know \
             ({}); written by a newer taskscope?",
            if total == 1 { "" } else { "s" },
            what.join(", ")
        ))
    }
}

/// A parsed line: a record, or what made it unknown to this reader.
pub(crate) enum Parsed {
    Record(Record),
    /// Skipped whole.
    Unknown(String),
    /// Read without the parts this reader does not know (a phase of an unknown action).
    Partial(Record, String),
}

/// Parses one record line. The common case, a line the writer produced (`{"kind":"task",…`),
/// goes straight to its type; other spellings, and lines that fail the typed parse, go through a
/// `Value` first, where unknown kinds, event types and enum values are told apart from errors.
pub(crate) fn parse_record(line: &[u8]) -> Result<Parsed, String> {
    // One validation of the whole line is cheaper than serde_json's check of every string.
    let line = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    if line.starts_with(r#"{"kind":"task","#)
        && let Ok(mut task) = serde_json::from_str::<TaskRecord>(line)
    {
        settle(&mut task)?;
        return Ok(Parsed::Record(Record::Task(task)));
    }
    if line.starts_with(r#"{"kind":"memory","#)
        && let Ok(sample) = serde_json::from_str(line)
    {
        return Ok(Parsed::Record(Record::Memory(sample)));
    }
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| describe_json_error(&e, "."))?;
    let Some(kind) = value.get("kind") else {
        return Err("missing required field \"kind\"".to_string());
    };
    let record = match kind.as_str() {
        Some("task") => {
            let mut value = value;
            if let Some(status) = unknown_value(
                value.get("status"),
                &TaskStatus::ALL.map(TaskStatus::as_str),
            ) {
                return Ok(Parsed::Unknown(format!("task status \"{status}\"")));
            }
            let dropped = drop_unknown_phases(&mut value);
            let mut task: TaskRecord = from_value_with_path(value)?;
            settle(&mut task)?;
            if let Some(action) = dropped {
                return Ok(Parsed::Partial(
                    Record::Task(task),
                    format!("phase action \"{action}\""),
                ));
            }
            Record::Task(task)
        }
        Some("memory") => Record::Memory(from_value_with_path(value)?),
        Some("event") => {
            let kind = value.get("type").and_then(|t| t.as_str());
            if let Some(kind) = kind
                && !EventKind::NAMES.contains(&kind)
            {
                return Ok(Parsed::Unknown(format!("event type \"{kind}\"")));
            }
            Record::Event(event_from_value(value)?)
        }
        Some("group-metrics") => Record::GroupMetrics(from_value_with_path(value)?),
        Some("header") => return Err("a second header (kind \"header\") after line 1".to_string()),
        Some(other) => return Ok(Parsed::Unknown(format!("kind \"{other}\""))),
        None => {
            return Err(format!(
                "field \"kind\": expected string, found {}",
                json_kind(kind)
            ));
        }
    };
    Ok(Parsed::Record(record))
}

/// The string `value` holds when it is not one of `known`.
fn unknown_value(value: Option<&serde_json::Value>, known: &[&str]) -> Option<String> {
    value?
        .as_str()
        .filter(|s| !known.contains(s))
        .map(str::to_string)
}

/// Removes the phases whose action this reader does not know; returns one such action.
fn drop_unknown_phases(task: &mut serde_json::Value) -> Option<String> {
    let phases = task.get_mut("phases")?.as_array_mut()?;
    let known = Action::ALL.map(Action::as_str);
    let mut dropped = None;
    phases.retain(|phase| match unknown_value(phase.get("action"), &known) {
        Some(action) => {
            dropped = Some(action);
            false
        }
        None => true,
    });
    dropped
}

/// What the file may leave out or slightly off: the group (derived from the key), a phase
/// stopping a little before it starts ([`crate::Phase::order`]); a phase stopping long before
/// it starts is an error.
fn settle(task: &mut TaskRecord) -> Result<(), String> {
    if task.group.is_empty() {
        task.group = task.key.group();
    }
    for (i, phase) in task.phases.iter_mut().enumerate() {
        phase
            .order()
            .map_err(|why| format!("field \"phases[{i}].stop\": {why}"))?;
    }
    Ok(())
}

/// An event record, its errors naming their field (`"worker"`, `"worker.threads"`), which the
/// derived `Deserialize` of the flattened, internally tagged [`EventKind`] cannot do: the type
/// tag picks a variant of [`EventFields`] (the same variants, externally tagged) instead.
fn event_from_value(value: serde_json::Value) -> Result<Event, String> {
    let serde_json::Value::Object(mut fields) = value else {
        return Err(format!("expected object, found {}", json_kind(&value)));
    };
    fields.remove("kind");
    let time = fields
        .remove("time")
        .ok_or_else(|| "missing required field \"time\"".to_string())?;
    let time: crate::model::Nanos =
        serde_json::from_value(time).map_err(|e| describe_json_error(&e, "time"))?;
    let kind = match fields.remove("type") {
        Some(serde_json::Value::String(kind)) => kind,
        Some(other) => {
            return Err(format!(
                "field \"type\": expected string, found {}",
                json_kind(&other)
            ));
        }
        None => return Err("missing required field \"type\"".to_string()),
    };
    let tagged = serde_json::Value::Object(
        [(kind, serde_json::Value::Object(fields))]
            .into_iter()
            .collect(),
    );
    let fields: EventFields = serde_path_to_error::deserialize(tagged).map_err(|e| {
        // The path starts with the variant (`worker-paused.worker`): the file has no such level.
        let path = e.path().to_string();
        let path = path.split_once('.').map_or(".", |(_, inner)| inner);
        describe_json_error(e.inner(), path)
    })?;
    Ok(Event {
        time,
        kind: fields.into(),
    })
}

fn from_value_with_path<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| describe_json_error(e.inner(), &e.path().to_string()))
}

pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
