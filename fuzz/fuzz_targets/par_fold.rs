//! Checks `TraceReader::par_fold` against the sequential iterator on the same bytes: the same
//! Ok/Err, the same error message, the same warnings, and the same records in the same order
//! (thread `i` gets batches `i`, `i + 2`, … of 8192 lines after the header; the harness
//! computes each record's line to rebuild what each thread must have seen).
//!
//! Input: a mode byte, then the trace.
//!   * bits 0-1 (shape): 0 the rest as is; 1 `common::HEADER_LINE` + rest; 2 and 3 header,
//!     then the rest's first line repeated about 8192 (2) or 16384 (3) times, then the rest's
//!     other lines, so that they sit around a batch boundary (`R = base - 8 + (mode >> 4)`
//!     repetitions), capped at ~2 MB;
//!   * bits 2-3 (zstd): 0 plain; 1 zstd-compressed; 2 compressed, last 3 bytes cut off;
//!     3 compressed, then a garbage (not a zstd frame) tail.

#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use traces::{Record, TraceError, TraceReader};

#[path = "common.rs"]
mod common;

const BATCH: usize = 8192;
const MAX_INPUT: usize = 2 << 20;

fn build(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    let mut input = Vec::new();
    match mode & 3 {
        0 => input.extend_from_slice(rest),
        1 => {
            input.extend_from_slice(common::HEADER_LINE.as_bytes());
            input.extend_from_slice(rest);
        }
        shape => {
            input.extend_from_slice(common::HEADER_LINE.as_bytes());
            let split = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
            let (line, others) = rest.split_at(split);
            let mut line = line.to_vec();
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            let base = if shape == 2 { BATCH } else { 2 * BATCH };
            let wanted = base - 8 + usize::from(mode >> 4);
            let repeats = wanted.min(MAX_INPUT / line.len());
            input.reserve(line.len() * repeats + others.len());
            for _ in 0..repeats {
                input.extend_from_slice(&line);
            }
            input.extend_from_slice(others);
        }
    }
    match (mode >> 2) & 3 {
        0 => {}
        zstd_mode => {
            let mut compressed = zstd::encode_all(&input[..], 1).ok()?;
            if zstd_mode == 2 {
                compressed.truncate(compressed.len().saturating_sub(3));
            } else if zstd_mode == 3 {
                compressed.extend_from_slice(b"\x00\x01garbage\n");
            }
            input = compressed;
        }
    }
    Some(input)
}

/// The decompressed text (as far as it decodes), to number lines.
fn text(input: &[u8]) -> Vec<u8> {
    if input.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        let mut out = Vec::new();
        if let Ok(mut decoder) = zstd::Decoder::new(input) {
            let _ = decoder.read_to_end(&mut out);
        }
        out
    } else {
        input.to_vec()
    }
}

/// Known issue (see README.md, "Findings"): when the input stream fails mid-batch (a zstd
/// stream followed by garbage), `NativeReader::next_batch` returns the read error and drops
/// the lines it had already read into the batch, so an invalid record earlier in that batch is
/// never parsed and `par_fold` reports the later read error instead of the sequential reader's
/// parse error. Tolerated unless `PAR_FOLD_STRICT` is set, so the fuzzer can look further.
fn known_batch_loss(parallel: &TraceError, sequential: &TraceError) -> bool {
    if std::env::var_os("PAR_FOLD_STRICT").is_some() {
        return false;
    }
    matches!(
        (parallel, sequential),
        (TraceError::Read { line: p, .. }, TraceError::Invalid { line: s, .. }) if p > s
    )
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = build(data) else {
        return;
    };
    let Ok(mut sequential) = TraceReader::from_reader(Cursor::new(input.clone()), "fuzz") else {
        return;
    };
    let Ok(parallel) = TraceReader::from_reader(Cursor::new(input.clone()), "fuzz") else {
        panic!("the second open failed where the first succeeded");
    };
    assert_eq!(sequential.format(), parallel.format());
    let native = matches!(sequential.format(), traces::SourceFormat::Native { .. });

    let mut records = Vec::new();
    let mut error = None;
    for record in &mut sequential {
        match record {
            Ok(r) => records.push(r),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let warnings = sequential.warnings().to_vec();

    let par = parallel.par_fold(2, Vec::new, |acc: &mut Vec<Record>, r| acc.push(r));
    let (accs, par_warnings) = match (par, error) {
        (Err(p), Some(s)) => {
            if known_batch_loss(&p, &s) {
                return;
            }
            assert_eq!(p.to_string(), s.to_string(), "different errors (parallel vs sequential)");
            return;
        }
        (Err(p), None) => panic!(
            "par_fold failed where the sequential read succeeded: {p}\n({} records, warnings {warnings:?})",
            records.len()
        ),
        (Ok((accs, _)), Some(s)) => panic!(
            "par_fold succeeded ({} records) where the sequential read failed: {s}",
            accs.iter().map(Vec::len).sum::<usize>()
        ),
        (Ok(ok), None) => ok,
    };
    assert_eq!(par_warnings, warnings, "different warnings (parallel vs sequential)");
    let total: usize = accs.iter().map(Vec::len).sum();
    assert_eq!(total, records.len(), "different record counts (parallel vs sequential)");
    if !native {
        assert_eq!(accs.len(), 1);
        assert!(accs[0] == records, "imported records differ");
        return;
    }
    assert_eq!(accs.len(), 2);

    // Line number (1-based) of each record line: non-blank lines after the header line.
    let text = text(&input);
    let mut lines = text.split_inclusive(|&b| b == b'\n').enumerate();
    let header_line = lines
        .by_ref()
        .find(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(i, _)| i + 1)
        .expect("a header line");
    let record_lines: Vec<usize> = lines
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(i, _)| i + 1)
        .take(records.len())
        .collect();
    assert_eq!(record_lines.len(), records.len(), "fewer non-blank lines than records");
    let mut expected: [Vec<&Record>; 2] = [Vec::new(), Vec::new()];
    for (record, line) in records.iter().zip(&record_lines) {
        let batch = (line - header_line - 1) / BATCH;
        expected[batch % 2].push(record);
    }
    for (thread, (want, got)) in expected.iter().zip(&accs).enumerate() {
        assert_eq!(want.len(), got.len(), "thread {thread}: record count");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert!(*w == g, "thread {thread}: record {i} differs:\n{w:?}\n{g:?}");
        }
    }
});
