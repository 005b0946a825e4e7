//! Fuzzes the Dask performance-report importer (HTML with a Bokeh `docs_json`) through
//! `TraceReader::from_reader`, checks the importer's promises on what it produced, and that
//! the imported trace survives a native `TraceWriter` write and a second read unchanged.
//!
//! Input layout: if the first byte is `<`, the whole input is the HTML document as is (so the
//! real report is a valid seed unchanged). Otherwise the first byte is dropped and the rest is
//! wrapped as the body of a `<script type="application/json">` block, so mutations are spent
//! on the embedded JSON rather than on rediscovering the HTML around it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use traces::SourceFormat;

#[path = "common.rs"]
mod common;

pub const OPEN: &[u8] = b"<html>\n<body>\n<script type=\"application/json\" id=\"x\">\n";
pub const CLOSE: &[u8] = b"\n</script>\n</body>\n</html>\n";

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let html = if first == b'<' {
        data.to_vec()
    } else {
        let mut html = Vec::with_capacity(OPEN.len() + rest.len() + CLOSE.len());
        html.extend_from_slice(OPEN);
        html.extend_from_slice(rest);
        html.extend_from_slice(CLOSE);
        html
    };
    let Some(read) = common::read(html) else {
        return;
    };
    assert_eq!(read.format, SourceFormat::DaskPerformanceReport { compressed: false });

    common::check_import_promises(&read, false);
    common::check_round_trip(&read.header, &read.records);
});
