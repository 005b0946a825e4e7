//! Import of Dask performance reports (`performance_report(filename=...)`): the task stream is
//! a Bokeh `ColumnDataSource` in the `docs_json` the HTML embeds, one row per task phase
//! (format: `tests/data/report/FORMAT.md`, bokeh 3.9).
//!
//! Rows carry the phase's midpoint and duration in milliseconds, the key, `name` (an action
//! prefix such as `transfer-` plus the group), the worker and `worker_thread`. A task's rows
//! are consecutive, so they are folded back into task-stream records and imported like
//! `get_task_stream()` output. What a report does not hold stays unknown: result sizes,
//! transfer sources, dependencies.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::dask_stream::{self, DaskPhase, DaskRecord, Imported};
use crate::error::{TraceError, describe_json_error};
use crate::key::Key;

/// Columns that single out the task-stream source among the report's data sources.
const TASK_STREAM_COLUMNS: [&str; 5] = ["start", "duration", "key", "name", "worker_thread"];

/// Columns kept while scanning the document: the task stream's, and `color` (erred tasks).
const KEPT_COLUMNS: [&str; 6] = ["start", "duration", "key", "name", "worker_thread", "color"];

/// Action prefixes of `name` (`distributed.diagnostics.task_stream.prefix`).
const ACTIONS: [(&str, &str); 4] = [
    ("transfer-", "transfer"),
    ("disk-write-", "disk-write"),
    ("disk-read-", "disk-read"),
    ("deserialize-", "deserialize"),
];

/// What `color_of_message` gives a compute phase that erred.
const ERRED_COLOR: &str = "black";

/// `Ok(None)` when the HTML holds no task stream (not a performance report).
///
/// Memory: the document's bytes, then only the columns of maps that could be the task stream
/// (never a tree of the whole document), then the records; the bytes are freed before the
/// records are built.
pub fn import(html: Vec<u8>, path: &str) -> Result<Option<Imported>, TraceError> {
    let mut sources: Vec<Columns> = Vec::new();
    for (line, json) in json_scripts(&html) {
        let before = sources.len();
        // Invalid UTF-8 is replaced, as a browser would; valid text is not copied.
        let json = String::from_utf8_lossy(json);
        let mut de = serde_json::Deserializer::from_str(&json);
        let scanned = Scan {
            found: &mut sources,
        }
        .deserialize(&mut de)
        .and_then(|_| de.end());
        scanned.map_err(|e| {
            TraceError::invalid(
                path,
                line + e.line() as u64 - 1,
                format!(
                    "performance report's embedded document: {}",
                    describe_json_error(&e, ".")
                ),
            )
        })?;
        for source in &mut sources[before..] {
            source.line = line;
        }
    }
    drop(html);
    let mut best: Option<Vec<DaskRecord>> = None;
    for source in sources {
        let line = source.line;
        let records = records(source.columns).map_err(|message| {
            TraceError::invalid(
                path,
                line,
                format!("performance report task stream: {message}"),
            )
        })?;
        if best.as_ref().is_none_or(|b| records.len() > b.len()) {
            best = Some(records);
        }
    }
    Ok(best.map(|records| {
        let producer = format!(
            "{} from a Dask performance report",
            dask_stream::importer_name()
        );
        dask_stream::convert(records, producer)
    }))
}

/// The text of every `<script type="application/json">`, with the line it starts on. One pass:
/// lines are counted from the previous script on, not from the start of the file.
fn json_scripts(html: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    const OPEN: &[u8] = b"<script type=\"application/json\"";
    const CLOSE: &[u8] = b"</script>";
    let mut offset = 0;
    let mut line = 1u64;
    let mut counted = 0;
    std::iter::from_fn(move || {
        let at = offset + find(&html[offset..], OPEN)?;
        let body_start = at + html[at..].iter().position(|&b| b == b'>')? + 1;
        let body_end = body_start + find(&html[body_start..], CLOSE)?;
        line += html[counted..body_start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted = body_start;
        offset = body_end;
        Some((line, &html[body_start..body_end]))
    })
}

/// First occurrence of `needle` in `haystack` (linear in practice: the needles are short and
/// begin with `<`, which the scan jumps between).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|&b| b == needle[0]) {
        let at = from + at;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Bokeh escapes `&`, `<` and `>` in the embedded JSON (`html.escape(..., quote=False)`); the
/// escaped text is still valid JSON, so only the strings kept are unescaped.
fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn unescape_value(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('&') => Value::String(unescape(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(unescape_value).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, unescape_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A map that holds every task-stream column (a candidate task-stream source).
struct Columns {
    /// Kept for messages about the source (the line of its script).
    line: u64,
    columns: Vec<(&'static str, Column)>,
}

/// A column's cells, packed while every cell is a number, or every cell a string.
enum Column {
    Numbers(Vec<f64>),
    /// Strings, the repeated ones shared (a worker thread or a colour recurs on every row).
    Texts(Vec<Rc<str>>),
    Values(Vec<Value>),
    /// Not a list (binary-encoded arrays, or a field that is not a column at all).
    NotAList,
}

thread_local! {
    /// What freed text cells hold.
    static EMPTY: Rc<str> = Rc::from("");
}

/// Distinct strings shared per column: enough for every worker thread and colour, while a
/// column of distinct keys does not grow a table beside itself.
const SHARED_TEXTS: usize = 1_024;

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Numbers(n) => n.len(),
            Column::Texts(t) => t.len(),
            Column::Values(v) => v.len(),
            Column::NotAList => 0,
        }
    }

    fn value(&self, row: usize) -> Option<Value> {
        match self {
            Column::Numbers(n) => n.get(row).map(|&x| Value::from(x)),
            Column::Texts(t) => t.get(row).map(|s| Value::String(s.to_string())),
            Column::Values(v) => v.get(row).cloned(),
            Column::NotAList => None,
        }
    }

    /// Drops the cell at `row`'s text (reading it again gives an empty string or `null`).
    fn free(&mut self, row: usize) {
        match self {
            Column::Texts(texts) => {
                if let Some(cell) = texts.get_mut(row) {
                    *cell = EMPTY.with(Rc::clone);
                }
            }
            Column::Values(values) => {
                if let Some(cell) = values.get_mut(row) {
                    *cell = Value::Null;
                }
            }
            Column::Numbers(_) | Column::NotAList => {}
        }
    }

    /// Whether two rows hold the same cell.
    fn same(&self, a: usize, b: usize) -> bool {
        match self {
            Column::Numbers(n) => n[a] == n[b],
            Column::Texts(t) => t[a] == t[b],
            Column::Values(v) => v[a] == v[b],
            Column::NotAList => false,
        }
    }
}

/// Builds a [`Column`] cell by cell.
struct ColumnBuilder {
    column: Column,
    shared: HashSet<Rc<str>>,
}

impl ColumnBuilder {
    fn push(&mut self, cell: Value) {
        match (&mut self.column, cell) {
            (Column::NotAList, Value::Number(n)) => {
                self.column = Column::Numbers(vec![n.as_f64().unwrap_or(f64::NAN)])
            }
            (Column::NotAList, Value::String(s)) => {
                let text = self.share(s);
                self.column = Column::Texts(vec![text]);
            }
            (Column::NotAList, other) => self.column = Column::Values(vec![other]),
            (Column::Numbers(numbers), Value::Number(n)) if n.as_f64().is_some() => {
                numbers.push(n.as_f64().expect("checked"))
            }
            (Column::Texts(_), Value::String(s)) => {
                let text = self.share(s);
                if let Column::Texts(texts) = &mut self.column {
                    texts.push(text);
                }
            }
            (Column::Values(values), other) => values.push(other),
            (_, other) => {
                let mut values: Vec<Value> =
                    match std::mem::replace(&mut self.column, Column::NotAList) {
                        Column::Numbers(n) => n.into_iter().map(Value::from).collect(),
                        Column::Texts(t) => {
                            t.iter().map(|s| Value::String(s.to_string())).collect()
                        }
                        Column::Values(v) => v,
                        Column::NotAList => Vec::new(),
                    };
                values.push(other);
                self.column = Column::Values(values);
            }
        }
    }

    fn share(&mut self, text: String) -> Rc<str> {
        if let Some(known) = self.shared.get(text.as_str()) {
            return known.clone();
        }
        let text: Rc<str> = text.into();
        if self.shared.len() < SHARED_TEXTS {
            self.shared.insert(text.clone());
        }
        text
    }
}

/// What a scanned JSON value was, as far as its parent needs to know.
enum Node {
    /// A string naming a kept column (the first half of a bokeh map entry).
    ColumnName(&'static str),
    /// A `[name, column]` pair of a bokeh map's `entries`.
    Entry(&'static str, Column),
    Other,
}

/// Walks any JSON value, keeping the columns of every map (a JSON object, or a bokeh
/// `{"type":"map","entries":[[name, column]…]}`) that holds all task-stream columns.
struct Scan<'a> {
    found: &'a mut Vec<Columns>,
}

fn kept_name(name: &str) -> Option<&'static str> {
    KEPT_COLUMNS.iter().copied().find(|c| *c == name)
}

/// Keeps `columns` when they are a task-stream source.
fn keep(found: &mut Vec<Columns>, columns: Vec<(&'static str, Column)>) {
    if TASK_STREAM_COLUMNS
        .iter()
        .all(|c| columns.iter().any(|(name, _)| name == c))
    {
        found.push(Columns { line: 0, columns });
    }
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Node, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(kept_name(v).map_or(Node::Other, Node::ColumnName))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let found = self.found;
        // A bokeh map entry: a column name, then its column, and nothing else.
        let first = seq.next_element_seed(Scan { found: &mut *found })?;
        if let Some(Node::ColumnName(name)) = first {
            let Some(column) = seq.next_element_seed(ColumnSeed { found: &mut *found })? else {
                return Ok(Node::Other);
            };
            if seq
                .next_element_seed(Scan { found: &mut *found })?
                .is_none()
            {
                return Ok(Node::Entry(name, column));
            }
            while seq
                .next_element_seed(Scan { found: &mut *found })?
                .is_some()
            {}
            return Ok(Node::Other);
        }
        // Otherwise maybe a map's entries: keep the columns among them.
        let mut columns = Vec::new();
        let mut next = first;
        while let Some(node) = next {
            if let Node::Entry(name, column) = node {
                columns.push((name, column));
            }
            next = seq.next_element_seed(Scan { found: &mut *found })?;
        }
        keep(found, columns);
        Ok(Node::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
        scan_map(map, self.found)?;
        Ok(Node::Other)
    }
}

/// Scans an object's values, keeps its columns when they are a task stream's, and returns its
/// `array` field as a column (bokeh's `ndarray`).
fn scan_map<'de, A: MapAccess<'de>>(
    mut map: A,
    found: &mut Vec<Columns>,
) -> Result<Column, A::Error> {
    let mut columns = Vec::new();
    let mut array = Column::NotAList;
    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
        if key == "array" {
            array = map.next_value_seed(ColumnSeed { found: &mut *found })?;
        } else if let Some(name) = kept_name(&key) {
            let column = map.next_value_seed(ColumnSeed { found: &mut *found })?;
            columns.push((name, column));
        } else {
            map.next_value_seed(Scan { found: &mut *found })?;
        }
    }
    keep(found, columns);
    Ok(array)
}

/// A value that may be a column: a list, or bokeh's `{"type":"ndarray","array":[…]}`.
/// Anything else is scanned on (it may hold sources) and is [`Column::NotAList`].
struct ColumnSeed<'a> {
    found: &'a mut Vec<Columns>,
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_> {
    type Value = Column;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Column, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_> {
    type Value = Column;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, _: &str) -> Result<Column, E> {
        Ok(Column::NotAList)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Column, E> {
        Ok(Column::NotAList)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Column, E> {
        Ok(Column::NotAList)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Column, E> {
        Ok(Column::NotAList)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Column, E> {
        Ok(Column::NotAList)
    }
    fn visit_unit<E>(self) -> Result<Column, E> {
        Ok(Column::NotAList)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Column, A::Error> {
        let mut builder = ColumnBuilder {
            column: Column::NotAList,
            shared: HashSet::new(),
        };
        while let Some(cell) = seq.next_element::<Value>()? {
            builder.push(cell);
        }
        // An empty list is a column of no rows.
        Ok(match builder.column {
            Column::NotAList => Column::Numbers(Vec::new()),
            column => column,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Column, A::Error> {
        scan_map(map, self.found)
    }
}

/// Takes the column `name` out of `columns`.
fn column(columns: &mut Vec<(&str, Column)>, name: &str) -> Result<Column, String> {
    let at = columns
        .iter()
        .position(|(n, _)| *n == name)
        .ok_or_else(|| format!("no \"{name}\" column"))?;
    // Bokeh writes numpy arrays as {"type":"ndarray","array":[…]}; distributed passes lists.
    match columns.swap_remove(at).1 {
        Column::NotAList => Err(format!(
            "column \"{name}\" is not a list (binary-encoded arrays are not supported)"
        )),
        list => Ok(list),
    }
}

fn number(column: &Column, name: &str, row: usize) -> Result<f64, String> {
    match column {
        Column::Numbers(numbers) => Ok(numbers[row]),
        Column::Values(values) => values[row].as_f64().ok_or_else(|| {
            format!(
                "row {row}: column \"{name}\": expected a number, found {}",
                values[row]
            )
        }),
        Column::Texts(texts) => Err(format!(
            "row {row}: column \"{name}\": expected a number, found {}",
            Value::String(texts[row].to_string())
        )),
        Column::NotAList => unreachable!("checked by column()"),
    }
}

fn text<'a>(column: &'a Column, name: &str, row: usize) -> Result<Cow<'a, str>, String> {
    match column {
        Column::Texts(texts) => Ok(unescape(&texts[row])),
        Column::Values(values) if values[row].is_string() => {
            Ok(unescape(values[row].as_str().expect("a string")))
        }
        _ => Err(format!(
            "row {row}: column \"{name}\": expected a string, found {}",
            column.value(row).unwrap_or(Value::Null)
        )),
    }
}

/// Rows folded back into records: a task's phases are consecutive rows with the same key and
/// worker thread, ending with its compute.
fn records(mut columns: Vec<(&'static str, Column)>) -> Result<Vec<DaskRecord>, String> {
    let starts = column(&mut columns, "start")?;
    let durations = column(&mut columns, "duration")?;
    let mut keys = column(&mut columns, "key")?;
    let mut names = column(&mut columns, "name")?;
    let threads = column(&mut columns, "worker_thread")?;
    let colors = column(&mut columns, "color").ok();
    let rows = starts.len();
    for (name, len) in [
        ("duration", durations.len()),
        ("key", keys.len()),
        ("name", names.len()),
        ("worker_thread", threads.len()),
    ] {
        if len != rows {
            return Err(format!(
                "column \"{name}\" has {len} rows, \"start\" has {rows}"
            ));
        }
    }
    let mut records: Vec<DaskRecord> = Vec::new();
    // The open task's key and worker thread (rows of one task are consecutive).
    let mut open_task: Option<usize> = None;
    for row in 0..rows {
        let midpoint_ms = number(&starts, "start", row)?;
        let duration_ms = number(&durations, "duration", row)?;
        let (midpoint, duration) = (midpoint_ms / 1e3, duration_ms / 1e3);
        let worker_thread = text(&threads, "worker_thread", row)?;
        let name = text(&names, "name", row)?;
        let action: &'static str = ACTIONS
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or("compute", |(_, action)| action);
        drop(name);
        let (worker, thread) = worker_thread
            .rsplit_once('-')
            .and_then(|(w, t)| Some((w, t.parse::<u64>().ok()?)))
            .ok_or_else(|| {
                format!("row {row}: column \"worker_thread\": expected WORKER-THREAD, found {worker_thread:?}")
            })?;
        let continues =
            open_task.is_some_and(|open| keys.same(open, row) && threads.same(open, row));
        if !continues {
            let key = keys.value(row).unwrap_or(Value::Null);
            let parsed: Key = serde_json::from_value(unescape_value(key))
                .map_err(|e| format!("row {row}: column \"key\": {e}"))?;
            records.push(DaskRecord {
                key: parsed,
                worker: worker.to_string(),
                thread: Some(thread),
                status: None,
                nbytes: None,
                startstops: Vec::new(),
                exception_text: None,
            });
        }
        let (start, stop) = (midpoint - duration / 2.0, midpoint + duration / 2.0);
        // The midpoint alone tells a bad "start" from a bad "duration".
        let checked = match dask_stream::check_instant(midpoint_ms, 1e3, "ms") {
            Err(message) => Err(("start", message)),
            Ok(()) => {
                let within = dask_stream::check_instant(start, 1.0, "s")
                    .and_then(|()| dask_stream::check_instant(stop, 1.0, "s"))
                    .map_err(|_| {
                        "the phase would start before 1970 or end after 2262 (the instants a \
                         trace can hold)"
                            .to_string()
                    });
                within
                    .and_then(|()| dask_stream::check_order(start, stop))
                    .map_err(|why| {
                        let ms = dask_stream::number_text(duration_ms);
                        ("duration", format!("{ms} ms: {why}"))
                    })
            }
        };
        if let Err((column, message)) = checked {
            return Err(format!("row {row}: column \"{column}\": {message}"));
        }
        let record = records.last_mut().expect("a record was just opened");
        record.startstops.push(DaskPhase {
            action: Cow::Borrowed(action),
            start,
            stop,
            source: None,
        });
        // The compute phase ends a record: a later row with the same key is another attempt.
        if action == "compute" {
            if colors
                .as_ref()
                .is_some_and(|c| is_text(c, row, ERRED_COLOR))
            {
                record.status = Some("error".to_string());
            }
            open_task = None;
        } else {
            open_task = Some(row);
        }
        // Only this row can be compared with from now on: free the previous one's texts, so
        // the columns shrink as the records grow.
        if let Some(previous) = row.checked_sub(1) {
            keys.free(previous);
            names.free(previous);
        }
    }
    Ok(records)
}

/// Whether the cell at `row` is the string `text`.
fn is_text(column: &Column, row: usize, text: &str) -> bool {
    match column {
        Column::Texts(texts) => texts.get(row).is_some_and(|t| **t == *text),
        Column::Values(values) => values.get(row).and_then(Value::as_str) == Some(text),
        _ => false,
    }
}
