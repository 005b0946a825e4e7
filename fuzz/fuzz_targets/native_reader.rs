//! Fuzzes `TraceReader::from_reader` on arbitrary bytes (native NDJSON, zstd, and whatever the
//! format detection makes of them), then checks that a trace that reads without error survives
//! a `TraceWriter` write and a second read unchanged.
//!
//! Input layout (see `common::native_input`): the first byte selects a mode, the rest is the
//! trace.
//!   * low bit 0: the rest is given to the reader as is;
//!   * low bit 1: `common::HEADER_LINE` (a valid header) is prepended to the rest, so that
//!     mutations of records are not wasted on a broken header;
//!   * low bits 11: as 1, plus blank lines after the header so that the rest starts just before
//!     the read-ahead thread's 256 KiB chunk boundary.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(input) = common::native_input(data) else {
        return;
    };
    if let Some(read) = common::read(input) {
        common::check_round_trip(&read.header, &read.records);
    }
});
