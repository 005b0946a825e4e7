//! Fuzzes the Dask task-stream importer through `TraceReader::from_reader` (a JSON list), then
//! checks what the importer promises about its output, and that the imported trace survives a
//! native `TraceWriter` write and a second read unchanged.
//!
//! Inputs that do not start (after whitespace) with `[` are skipped: they would not reach the
//! importer, and the native target covers them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use traces::SourceFormat;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return;
    }
    let Some(read) = common::read(data.to_vec()) else {
        return;
    };
    assert_eq!(read.format, SourceFormat::DaskTaskStream { compressed: false });

    common::check_import_promises(&read, true);
    common::check_round_trip(&read.header, &read.records);
});
