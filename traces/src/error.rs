//! Errors that name the file, the line and what is wrong.

use std::io;

/// Something wrong with a trace file. `Display` is the one line the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{path}: cannot open: {cause}")]
    Open { path: String, cause: io::Error },

    #[error("{path}: cannot write: {cause}")]
    Write { path: String, cause: io::Error },

    #[error("{path}:{line}: read error: {cause}")]
    Read {
        path: String,
        line: u64,
        cause: io::Error,
    },

    #[error(
        "{path}: empty file: expected a taskscope trace, a Dask task stream or a Dask \
         performance report"
    )]
    Empty { path: String },

    #[error("{path}: {message}")]
    Unrecognized { path: String, message: String },

    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: u64,
        message: String,
    },

    /// A record the writer refused: its line would be longer than [`crate::native::MAX_LINE`],
    /// which the reader refuses, so the file could not be read back.
    #[error(
        "{path}:{line}: {record} would be a line of {bytes} bytes, over the {} MiB a trace line \
         may hold (the reader refuses longer lines); not written",
        crate::native::MAX_LINE >> 20
    )]
    LineTooLong {
        path: String,
        line: u64,
        record: String,
        bytes: usize,
    },

    #[error(
        "{path}: trace format version {found} is newer than this build of taskscope reads \
         ({supported}.x); upgrade taskscope"
    )]
    NewerVersion {
        path: String,
        found: String,
        supported: u32,
    },
}

impl TraceError {
    pub(crate) fn invalid(path: &str, line: u64, message: impl Into<String>) -> TraceError {
        TraceError::Invalid {
            path: path.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// Turns a serde_json error found at `path` (as `serde_path_to_error` spells it, `.` for the
/// root) into words a user can act on: `field "phases[0].start": expected integer, found string
/// "x"` rather than `invalid type: string "x", expected u64 at line 1 column 71`.
pub(crate) fn describe_json_error(err: &serde_json::Error, path: &str) -> String {
    let full = err.to_string();
    // serde_json appends the position inside the line; the caller reports the line itself.
    let msg = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => &full[..],
    };
    if err.is_eof() {
        return format!("invalid JSON: {msg}");
    }
    let path = if path == "." { "" } else { path };
    if err.is_syntax() {
        let syntax = format!("invalid JSON: {msg} (column {})", err.column());
        // A value JSON cannot hold where a field's value goes: `NaN` (Python's json writes it
        // for a float NaN), a number past f64's range.
        return if path.is_empty() {
            syntax
        } else {
            format!("field \"{path}\": {syntax}")
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        let full_path = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return format!("missing required field \"{full_path}\"");
    }
    let detail = if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        match rest.rsplit_once(", expected ") {
            Some((found, expected)) => {
                format!("expected {}, found {found}", json_type_name(expected))
            }
            None => rest.to_string(),
        }
    } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
        rest.replace('`', "\"")
            .replacen("\"", "unknown value \"", 1)
    } else {
        msg.to_string()
    };
    if path.is_empty() {
        detail
    } else {
        format!("field \"{path}\": {detail}")
    }
}

/// Rust type names in serde messages, as JSON types.
fn json_type_name(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "isize" => "integer",
        "f32" | "f64" => "number",
        "a string" => "string",
        "a boolean" => "boolean",
        "a sequence" => "array",
        "struct TaskRecord"
        | "struct Phase"
        | "struct Header"
        | "struct Cluster"
        | "struct WorkerSpec"
        | "struct MemorySample"
        | "struct MemoryFractions" => "object",
        other => other,
    }
}
