//! Exporters: the trace in other tools' formats.

mod chrome;

pub use chrome::{ExportError, write_chrome_trace};
