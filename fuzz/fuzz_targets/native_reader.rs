//! Fuzzes `TraceReader::from_reader` on arbitrary bytes (native NDJSON, zstd, and whatever the
//! format detection makes of them), then checks that a trace that reads without error survives
//! a `TraceWriter` write and a second read unchanged.
//!
//! Input layout: the first byte selects a mode, the rest is the trace.
//!   * low bit 0: the rest is given to the reader as is;
//!   * low bit 1: `common::HEADER_LINE` (a valid header) is prepended to the rest, so that
//!     mutations of records are not wasted on a broken header.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(common::HEADER_LINE.len() + rest.len());
    if mode & 1 == 1 {
        input.extend_from_slice(common::HEADER_LINE.as_bytes());
    }
    input.extend_from_slice(rest);
    if let Some(read) = common::read(input) {
        common::check_round_trip(&read.header, &read.records);
    }
});
