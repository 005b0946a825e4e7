//! Import of Dask performance reports (`performance_report(filename=...)`): the task stream is
//! a Bokeh `ColumnDataSource` in the `docs_json` the HTML embeds, one row per task phase
//! (format: `tests/data/report/FORMAT.md`, bokeh 3.9).
//!
//! Rows carry the phase's midpoint and duration in milliseconds, the key, `name` (an action
//! prefix such as `transfer-` plus the group), the worker and `worker_thread`. A task's rows
//! are consecutive, so they are folded back into task-stream records and imported like
//! `get_task_stream()` output. What a report does not hold stays unknown: result sizes,
//! transfer sources, dependencies.

use serde_json::Value;

use crate::dask_stream::{self, DaskPhase, DaskRecord, Imported};
use crate::error::{TraceError, describe_json_error};
use crate::key::Key;

/// Columns that single out the task-stream source among the report's data sources.
const TASK_STREAM_COLUMNS: [&str; 5] = ["start", "duration", "key", "name", "worker_thread"];

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
pub fn import(html: &str, path: &str) -> Result<Option<Imported>, TraceError> {
    let mut best: Option<Vec<DaskRecord>> = None;
    for (line, json) in json_scripts(html) {
        let docs: Value = serde_json::from_str(&unescape(json)).map_err(|e| {
            TraceError::invalid(
                path,
                line + e.line() as u64 - 1,
                format!(
                    "performance report's embedded document: {}",
                    describe_json_error(&e, ".")
                ),
            )
        })?;
        for source in column_sources(&docs) {
            let records = records(source).map_err(|message| {
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
    }
    Ok(best.map(|records| {
        let producer = format!(
            "{} from a Dask performance report",
            dask_stream::importer_name()
        );
        dask_stream::convert(records, producer)
    }))
}

/// The text of every `<script type="application/json">`, with the line it starts on.
fn json_scripts(html: &str) -> impl Iterator<Item = (u64, &str)> {
    const OPEN: &str = "<script type=\"application/json\"";
    let mut rest = html;
    let mut offset = 0;
    std::iter::from_fn(move || {
        let at = rest.find(OPEN)?;
        let body_start = at + rest[at..].find('>')? + 1;
        let body_end = body_start + rest[body_start..].find("</script>")?;
        let line = html[..offset + body_start].matches('\n').count() as u64 + 1;
        let body = &rest[body_start..body_end];
        offset += body_end;
        rest = &rest[body_end..];
        Some((line, body))
    })
}

/// Bokeh escapes `&`, `<` and `>` in the embedded JSON (`html.escape(..., quote=False)`).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `ColumnDataSource` holding the task-stream columns, as (name, column) pairs.
fn column_sources(docs: &Value) -> Vec<Vec<(&str, &Value)>> {
    let mut found = Vec::new();
    let mut stack = vec![docs];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if map.get("name").and_then(Value::as_str) == Some("ColumnDataSource")
                    && let Some(data) = map.get("attributes").and_then(|a| a.get("data"))
                {
                    let columns = columns(data);
                    if TASK_STREAM_COLUMNS
                        .iter()
                        .all(|c| columns.iter().any(|(name, _)| name == c))
                    {
                        found.push(columns);
                        continue;
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

/// A source's columns: bokeh 3 writes a map as `{"type":"map","entries":[[name, column]…]}`.
fn columns(data: &Value) -> Vec<(&str, &Value)> {
    if let Some(entries) = data.get("entries").and_then(Value::as_array) {
        return entries
            .iter()
            .filter_map(|entry| {
                let pair = entry.as_array()?;
                Some((pair.first()?.as_str()?, pair.get(1)?))
            })
            .collect();
    }
    data.as_object()
        .map(|map| map.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn column<'a>(columns: &[(&str, &'a Value)], name: &str) -> Result<&'a [Value], String> {
    let value = columns
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("no \"{name}\" column"))?;
    // Bokeh writes numpy arrays as {"type":"ndarray","array":[…]}; distributed passes lists.
    let list = value
        .as_array()
        .or_else(|| value.get("array").and_then(Value::as_array))
        .ok_or_else(|| {
            format!("column \"{name}\" is not a list (binary-encoded arrays are not supported)")
        })?;
    Ok(list)
}

fn number(value: &Value, column: &str, row: usize) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| format!("row {row}: column \"{column}\": expected a number, found {value}"))
}

fn text<'a>(value: &'a Value, column: &str, row: usize) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("row {row}: column \"{column}\": expected a string, found {value}"))
}

/// Rows folded back into records: a task's phases are consecutive rows with the same key and
/// worker thread, ending with its compute.
fn records(columns: Vec<(&str, &Value)>) -> Result<Vec<DaskRecord>, String> {
    let starts = column(&columns, "start")?;
    let durations = column(&columns, "duration")?;
    let keys = column(&columns, "key")?;
    let names = column(&columns, "name")?;
    let threads = column(&columns, "worker_thread")?;
    let colors = column(&columns, "color").unwrap_or(&[]);
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
    let mut open_task: Option<(&Value, &str)> = None;
    for row in 0..rows {
        let midpoint = number(&starts[row], "start", row)? / 1e3;
        let duration = number(&durations[row], "duration", row)? / 1e3;
        let worker_thread = text(&threads[row], "worker_thread", row)?;
        let name = text(&names[row], "name", row)?;
        let action = ACTIONS
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or("compute", |(_, action)| action);
        let (worker, thread) = worker_thread
            .rsplit_once('-')
            .and_then(|(w, t)| Some((w, t.parse::<u64>().ok()?)))
            .ok_or_else(|| {
                format!("row {row}: column \"worker_thread\": expected WORKER-THREAD, found {worker_thread:?}")
            })?;
        let continues = open_task == Some((&keys[row], worker_thread));
        if !continues {
            let key: Key = serde_json::from_value(keys[row].clone())
                .map_err(|e| format!("row {row}: column \"key\": {e}"))?;
            records.push(DaskRecord {
                key,
                worker: worker.to_string(),
                thread: Some(thread),
                status: None,
                nbytes: None,
                startstops: Vec::new(),
                exception_text: None,
            });
        }
        let record = records.last_mut().expect("a record was just opened");
        record.startstops.push(DaskPhase {
            action: action.to_string(),
            start: midpoint - duration / 2.0,
            stop: midpoint + duration / 2.0,
            source: None,
        });
        // The compute phase ends a record: a later row with the same key is another attempt.
        if action == "compute" {
            if colors.get(row).and_then(Value::as_str) == Some(ERRED_COLOR) {
                record.status = Some("error".to_string());
            }
            open_task = None;
        } else {
            open_task = Some((&keys[row], worker_thread));
        }
    }
    Ok(records)
}
