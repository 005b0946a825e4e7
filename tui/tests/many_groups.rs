//! The Histograms view of a trace with 100,000 groups (issue 11): each group's histogram holds
//! what the group recorded. A dense HdrHistogram up to a day in microseconds is ~230 KiB from
//! its first value: 23 GB for this trace (`replay` of a 10,000-group trace peaked at 2.3 GB).
//! Alone in its file: the test reads its own process's resident memory.

use std::collections::BTreeMap;
use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use traces::{
    Action, Cluster, Header, Key, KeyPart, MemoryFractions, Phase, Record, TaskRecord, TaskStatus,
    WorkerSpec,
};
use tui::state::{Analysis, State};
use tui::view::{self, Tab, Ui};

const GROUPS: u64 = 100_000;

/// Resident memory of this process (`VmRSS`), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn trace() -> (Header, Vec<Record>) {
    let header = Header::new(
        "many groups",
        0,
        Cluster {
            workers: vec![WorkerSpec {
                id: 0,
                name: "w".into(),
                threads: 1,
                memory_limit: None,
                resources: BTreeMap::new(),
                host: None,
                host_cores: None,
            }],
            memory: MemoryFractions::default(),
        },
    );
    let records = (0..GROUPS)
        .map(|g| {
            let name = format!("group-{g:06}");
            // 500 µs to ~1.5 ms of compute, one task per group, back to back.
            let start = g * 2_000_000;
            let stop = start + 500_000 + (g % 1_000) * 1_000;
            Record::Task(TaskRecord {
                key: Key::Tuple(vec![KeyPart::Str(name.as_str().into()), KeyPart::Int(0)]),
                group: name,
                worker: 0,
                thread: 0,
                status: TaskStatus::Ok,
                nbytes: 8,
                inline_bytes: 0,
                working_bytes: 0,
                resources: Default::default(),
                restricted_to: Vec::new(),
                deps: Vec::new(),
                attempt: 1,
                error: None,
                phases: vec![Phase {
                    action: Action::Compute,
                    start,
                    stop,
                    bytes: None,
                    peer: None,
                }],
            })
        })
        .collect();
    (header, records)
}

#[test]
fn histograms_of_100000_groups_take_bytes_per_group() {
    let (header, records) = trace();
    let mut state = State::replay(
        "groups.ndjson".into(),
        header,
        records,
        Analysis::fixed(Vec::new()),
    );
    state.aggregates_wanted = true;
    let before = resident_bytes();
    state.tick(Instant::now());
    let grown = resident_bytes().saturating_sub(before);
    assert_eq!(state.aggregates.histograms().count(), GROUPS as usize);
    // ~100 bytes a group (a one-bucket sparse histogram and its slot).
    assert!(
        grown < 64 << 20,
        "the histograms of {GROUPS} groups took {grown} bytes"
    );

    let ui = Ui {
        tab: Tab::Histograms,
        ..Ui::default()
    };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| view::draw(f, &state, &ui)).unwrap();
    let lines: Vec<String> = terminal
        .backend()
        .buffer()
        .content()
        .chunks(80)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect();
    assert_eq!(
        lines[2..5],
        [
            "group (compute time)             tasks        p50        p99        max         ",
            "group-000000                         1     500 µs     500 µs     500 µs         ",
            "group-000001                         1     501 µs     501 µs     501 µs         ",
        ]
    );
    assert_eq!(lines[16].trim_end(), "██████");
    assert_eq!(lines[21].trim_end(), "≤511 µs");
}
