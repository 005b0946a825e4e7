//! Fuzzes the Dask task-stream importer through `TraceReader::from_reader` (a JSON list), then
//! checks what the importer promises about its output, and that the imported trace survives a
//! native `TraceWriter` write and a second read unchanged.
//!
//! Inputs that do not start (after whitespace) with `[` are skipped: they would not reach the
//! importer, and the native target covers them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use traces::{Record, SourceFormat};

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

    // The importer's own promises: workers numbered 0.. in order, every worker a record
    // refers to (executing or as a transfer source) is declared, phases never invert, and
    // records come sorted by start time.
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
            if let Some(peer) = phase.peer {
                assert!((peer as usize) < workers.len(), "undeclared peer: {task:?}");
            }
        }
        let start = task.start().unwrap_or(0);
        assert!(start >= last_start, "records not sorted by start time");
        last_start = start;
    }

    common::check_round_trip(&read.header, &read.records);
});
