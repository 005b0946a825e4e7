//! `par_fold` sees exactly the records, errors and warnings of the sequential reader.

use std::io::Write;

use traces::{Record, TraceReader, TraceWriter, synthetic};

fn synthetic_trace(tasks: u64) -> Vec<u8> {
    let mut writer =
        TraceWriter::new(Vec::new(), "t.ndjson", &synthetic::header(2, 2), false).unwrap();
    for record in synthetic::records(tasks, 2, 2) {
        writer.write(&record).unwrap();
    }
    writer.finish().unwrap()
}

fn write(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join("t.ndjson");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

fn par_records(path: &std::path::Path) -> Result<(Vec<Record>, Vec<String>), String> {
    let (parts, warnings) = TraceReader::open(path)
        .unwrap()
        .par_fold(3, Vec::new, |acc: &mut Vec<(u64, Record)>, r| {
            // Thread i gets batches i, i + 3, …: tag each record with its position to
            // rebuild the file order.
            let n = acc.len() as u64;
            acc.push((n, r));
        })
        .map_err(|e| e.to_string())?;
    // Reassemble in file order: batches of 8192 lines go round-robin to the 3 threads.
    let lines_per_batch = 8192;
    let mut all: Vec<(u64, Record)> = Vec::new();
    for (thread, part) in parts.into_iter().enumerate() {
        for (n, record) in part {
            let batch = n / lines_per_batch;
            let order = (batch * 3 + thread as u64) * lines_per_batch + n % lines_per_batch;
            all.push((order, record));
        }
    }
    all.sort_by_key(|(order, _)| *order);
    Ok((all.into_iter().map(|(_, r)| r).collect(), warnings))
}

#[test]
fn same_records_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    // Every line after the header is one record, so positions map back to file order.
    let path = write(&dir, &synthetic_trace(30_000));
    let (_, sequential) = TraceReader::open(&path).unwrap().read_all().unwrap();
    let (parallel, warnings) = par_records(&path).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(parallel.len(), sequential.len());
    assert!(parallel == sequential, "records differ");
}

#[test]
fn the_first_bad_line_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = synthetic_trace(40_000);
    // Corrupt two lines in different batches: the earlier one is the error.
    let lines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    for line in [30_000usize, 12_000] {
        let at = lines[line - 2] + 1; // start of line `line` (1-based)
        bytes[at] = b'?';
    }
    let path = write(&dir, &bytes);
    let err = par_records(&path).unwrap_err();
    let sequential = TraceReader::open(&path)
        .unwrap()
        .read_all()
        .err()
        .unwrap()
        .to_string();
    assert_eq!(err, sequential);
    assert!(err.contains(":12000: invalid JSON"), "{err}");
}

#[test]
fn a_truncated_last_line_warns_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = synthetic_trace(20_000);
    bytes.truncate(bytes.len() - 40);
    let path = write(&dir, &bytes);
    let mut sequential = TraceReader::open(&path).unwrap();
    let count = (&mut sequential).map(Result::unwrap).count();
    let (parallel, warnings) = par_records(&path).unwrap();
    assert_eq!(parallel.len(), count);
    assert_eq!(warnings, sequential.warnings());
    assert_eq!(warnings.len(), 1);
}

#[test]
fn a_bad_line_before_a_read_error_is_reported_first() {
    // Found by the par_fold fuzz target: a zstd stream whose second line is invalid, followed
    // by bytes that are not zstd. Both readers must report the bad line, not the read error.
    let text = format!(
        "{}\n{{\"kind\":\"memory\"}}\n",
        String::from_utf8(synthetic_trace(0)).unwrap().trim_end()
    );
    let mut bytes = zstd::encode_all(text.as_bytes(), 1).unwrap();
    bytes.extend_from_slice(b"not zstd at all");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &bytes);
    let sequential = TraceReader::open(&path)
        .unwrap()
        .read_all()
        .err()
        .unwrap()
        .to_string();
    assert!(
        sequential.ends_with(":2: missing required field \"time\""),
        "{sequential}"
    );
    assert_eq!(par_records(&path).unwrap_err(), sequential);
}
