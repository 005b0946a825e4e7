//! Shared by the fuzz targets: read a whole trace, and check that what was read survives a
//! write with `TraceWriter` and a second read unchanged.

#![allow(dead_code)] // each target uses a different subset

use std::io::Cursor;

use traces::{Header, Record, SourceFormat, TraceReader, TraceWriter};

/// A valid native header line. The native target prepends it to half of its inputs, so the
/// fuzzer spends its time on records rather than on rediscovering the header.
pub const HEADER_LINE: &str = concat!(
    r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"fuzz","#,
    r#""origin_unix_ns":1795613463000000000,"cluster":{"workers":["#,
    r#"{"id":0,"name":"tcp://127.0.0.1:35717","threads":2,"memory_limit":4000000000},"#,
    r#"{"id":1,"name":"tcp://127.0.0.1:40049","threads":1,"resources":{"GPU":1.0}}],"#,
    r#""memory":{"target":0.6,"spill":0.7,"pause":0.8,"terminate":0.95}}}"#,
    "\n"
);

/// The read-ahead thread hands the parser 256 KiB chunks (`traces::readahead::CHUNK`, private);
/// padded native inputs put the fuzzed bytes just before a chunk boundary.
pub const READ_AHEAD_CHUNK: usize = 256 * 1024;

/// Turns a `native_reader` fuzz input into the trace given to the reader. The first byte is a
/// mode, the rest is the trace:
///   * bit 0 set: `HEADER_LINE` is prepended;
///   * bits 0 and 1 set: after the header, blank lines so that the rest starts
///     `4 * (mode >> 2)` bytes (0..=252) before the first read-ahead chunk boundary, so records
///     straddle it (small inputs never reach a boundary otherwise).
pub fn native_input(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    let mut input = Vec::new();
    if mode & 1 == 1 {
        input.extend_from_slice(HEADER_LINE.as_bytes());
        if mode & 2 == 2 {
            let start = READ_AHEAD_CHUNK - 4 * usize::from(mode >> 2);
            input.resize(start, b'\n');
        }
    }
    input.extend_from_slice(rest);
    Some(input)
}

/// What a complete read of an input produced.
pub struct Read {
    pub format: SourceFormat,
    pub header: Header,
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// Opens `data` with `TraceReader::from_reader` and iterates every record. `None` when opening
/// fails or a record is an error (rejecting bad input is fine; panicking is not).
pub fn read(data: Vec<u8>) -> Option<Read> {
    let mut reader = TraceReader::from_reader(Cursor::new(data), "fuzz").ok()?;
    let format = reader.format();
    let mut records = Vec::new();
    for record in &mut reader {
        match record {
            Ok(record) => records.push(record),
            Err(_) => return None,
        }
    }
    Some(Read {
        format,
        header: reader.header().clone(),
        records,
        warnings: reader.warnings().to_vec(),
    })
}

/// Writes `header` and `records` as a native trace, reads it back and checks that the same
/// header and records come out, with no warnings.
pub fn check_round_trip(header: &Header, records: &[Record]) {
    let mut writer =
        TraceWriter::new(Vec::new(), "x", header, false).expect("writing a header to a Vec");
    for record in records {
        writer.write(record).expect("writing a record to a Vec");
    }
    let bytes = writer.finish().expect("finishing a trace in a Vec");
    let text = String::from_utf8_lossy(&bytes);

    let mut reader = TraceReader::from_reader(Cursor::new(bytes.clone()), "x")
        .unwrap_or_else(|e| panic!("cannot reopen the trace just written: {e}\n{text}"));
    assert_eq!(
        reader.format(),
        SourceFormat::Native { compressed: false },
        "written trace detected as another format\n{text}"
    );
    let mut again = Vec::with_capacity(records.len());
    for record in &mut reader {
        match record {
            Ok(record) => again.push(record),
            Err(e) => panic!("cannot re-read the trace just written: {e}\n{text}"),
        }
    }
    assert!(
        reader.warnings().is_empty(),
        "warnings re-reading the trace just written: {:?}\n{text}",
        reader.warnings()
    );
    assert_eq!(reader.header(), header, "header changed by write + read\n{text}");
    assert_eq!(again.len(), records.len(), "record count changed by write + read\n{text}");
    for (i, (before, after)) in records.iter().zip(&again).enumerate() {
        assert_eq!(
            before,
            after,
            "record {i} changed by write + read (line {} of the written trace)\n{text}",
            i + 2
        );
    }
}

/// What the Dask importers promise about what they produce: workers numbered 0.. in order,
/// every worker a record refers to declared (executing, or as a transfer source when
/// `peers_allowed`), thread indexes in range, phases never inverted, records sorted by start.
pub fn check_import_promises(read: &Read, peers_allowed: bool) {
    let workers = &read.header.cluster.workers;
    for (i, worker) in workers.iter().enumerate() {
        assert_eq!(worker.id as usize, i, "worker ids are not 0..n: {workers:?}");
        assert!(worker.threads >= 1, "worker with no threads: {worker:?}");
    }
    let mut last_start = 0;
    for record in &read.records {
        let Record::Task(task) = record else {
            panic!("the importer produced a non-task record: {record:?}");
        };
        let worker = workers
            .get(task.worker as usize)
            .unwrap_or_else(|| panic!("task on an undeclared worker: {task:?}"));
        assert!(task.thread < worker.threads, "thread index out of range: {task:?} on {worker:?}");
        for phase in &task.phases {
            assert!(phase.stop >= phase.start, "inverted phase: {task:?}");
            match phase.peer {
                Some(peer) if peers_allowed => {
                    assert!((peer as usize) < workers.len(), "undeclared peer: {task:?}")
                }
                Some(_) => panic!("peer where the format records none: {task:?}"),
                None => {}
            }
        }
        let start = task.start().unwrap_or(0);
        assert!(start >= last_start, "records not sorted by start time");
        last_start = start;
    }
}
