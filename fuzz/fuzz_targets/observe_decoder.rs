//! Fuzzes what `taskscope top` does with the Observe server's messages: arbitrary bytes split
//! into length-delimited `v1::Update` messages (as a hostile or broken server could send them
//! over gRPC), each decoded with prost and turned into model records by
//! `proto::RecordsDecoder` (headers and progress converted as the client does).
//!
//! Checks: no panic, crash, hang or OOM; every record the decoder accepts re-encodes with
//! `proto::RecordsBatcher` and decodes back equal (tasks, samples and events in that order, as
//! the decoder orders one message).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::{RecordsBatcher, RecordsDecoder, v1};
use traces::{Header, LiveState, Record};

fuzz_target!(|data: &[u8]| {
    let mut decoder = RecordsDecoder::new();
    let mut input = data;
    let mut decoded: Vec<Record> = Vec::new();
    while !input.is_empty() {
        let Ok(update) = v1::Update::decode_length_delimited(&mut input) else {
            break;
        };
        let records = match update.kind {
            Some(v1::update::Kind::Snapshot(snapshot)) => {
                if let Some(header) = &snapshot.header {
                    decoder = RecordsDecoder::new();
                    let _: Header = header.into();
                }
                snapshot.records
            }
            Some(v1::update::Kind::Records(records)) => Some(records),
            Some(v1::update::Kind::Progress(progress)) => {
                let _ = LiveState::try_from(&progress);
                None
            }
            None => None,
        };
        if let Some(records) = records {
            let mut out = Vec::new();
            if decoder.decode(&records, |r| out.push(r)).is_err() {
                // The client drops the connection on an invalid message.
                return;
            }
            decoded.extend(out);
        }
    }
    check_round_trip(&decoded);
});

/// Encodes `records` as the server would and decodes them again.
fn check_round_trip(records: &[Record]) {
    let ordered: Vec<&Record> = [
        |r: &Record| matches!(r, Record::Task(_)),
        |r: &Record| matches!(r, Record::Memory(_)),
        |r: &Record| matches!(r, Record::Event(_)),
    ]
    .iter()
    .flat_map(|keep| records.iter().filter(move |r| keep(r)))
    .collect();
    let mut batcher = RecordsBatcher::new(proto::BATCH_BYTES);
    for record in &ordered {
        batcher.push(record);
    }
    let mut decoder = RecordsDecoder::new();
    let mut again = Vec::new();
    for batch in batcher.finish() {
        decoder
            .decode(&batch, |r| again.push(r))
            .expect("what the decoder accepted re-encodes validly");
    }
    let mut again: Vec<&Record> = again.iter().collect();
    // One batch may hold several kinds: compare per kind, in order.
    again.sort_by_key(|r| match r {
        Record::Task(_) => 0,
        Record::Memory(_) => 1,
        _ => 2,
    });
    assert_eq!(ordered.len(), again.len(), "record count changed");
    for (a, b) in ordered.iter().zip(&again) {
        // Debug text, so that a NaN read from the wire equals itself.
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
