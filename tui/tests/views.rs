//! Every view rendered at 80×24 on a fixed trace, compared with reviewed snapshots.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use traces::{
    Action, Cluster, Event, EventKind, Header, Key, KeyPart, MemorySample, Phase, Record,
    TaskRecord, TaskStatus, WorkerSpec,
};
use tui::app::{Action as KeyAction, handle_key};
use tui::state::{Analysis, State};
use tui::view::{self, Tab, Ui};

const MS: u64 = 1_000_000;

fn key(name: &str, i: i64) -> Key {
    Key::Tuple(vec![KeyPart::Str(name.into()), KeyPart::Int(i)])
}

fn task(
    name: &str,
    i: i64,
    worker: u32,
    thread: u32,
    phases: Vec<(Action, u64, u64)>,
    deps: Vec<Key>,
) -> Record {
    Record::Task(TaskRecord {
        key: key(name, i),
        group: name.to_string(),
        worker,
        thread,
        status: TaskStatus::Ok,
        nbytes: 8 << 20,
        inline_bytes: 0,
        working_bytes: 0,
        resources: Default::default(),
        restricted_to: Vec::new(),
        deps,
        attempt: 1,
        error: None,
        phases: phases
            .into_iter()
            .map(|(action, start, stop)| Phase {
                action,
                start: start * MS,
                stop: stop * MS,
                bytes: matches!(
                    action,
                    Action::Transfer | Action::DiskWrite | Action::DiskRead
                )
                .then_some(8 << 20),
                peer: (action == Action::Transfer).then_some(1 - worker.min(1)),
            })
            .collect(),
    })
}

/// Two workers of two threads: loads, a skewed `process` group, transfers, a spill, a failed
/// task, memory samples and a killed worker.
fn fixture() -> (Header, Vec<Record>) {
    let workers = (0..2)
        .map(|id| WorkerSpec {
            id,
            name: format!("tcp://10.0.0.{id}:4000"),
            threads: 2,
            memory_limit: Some(1 << 30),
            resources: Default::default(),
            host: None,
            host_cores: None,
        })
        .collect();
    let header = Header::new(
        "fixture",
        0,
        Cluster {
            workers,
            memory: Default::default(),
        },
    );
    let mut records = vec![Record::Event(Event {
        time: 0,
        kind: EventKind::GraphSubmitted {
            tasks: 17,
            client: None,
        },
    })];
    for i in 0..8 {
        let (w, t) = ((i % 2) as u32, ((i / 2) % 2) as u32);
        let start = (i / 4) as u64 * 100;
        records.push(task(
            "load",
            i,
            w,
            t,
            vec![
                (Action::Queued, 0, start),
                (Action::Compute, start, start + 90),
            ],
            vec![],
        ));
    }
    for i in 0..8 {
        let (w, t) = ((i % 2) as u32, ((i / 2) % 2) as u32);
        let start = 200 + (i / 4) as u64 * 150;
        // Partition 7 is ten times the others: skew.
        let compute = if i == 7 { 1200 } else { 120 };
        records.push(task(
            "process",
            i,
            w,
            t,
            vec![
                (Action::Transfer, start, start + 20),
                (Action::Deserialize, start + 20, start + 25),
                (Action::Compute, start + 25, start + 25 + compute),
            ],
            vec![key("load", i)],
        ));
    }
    records.push(task(
        "sum",
        0,
        0,
        0,
        vec![
            (Action::DiskRead, 1700, 1720),
            (Action::Compute, 1720, 1800),
            (Action::DiskWrite, 1800, 1830),
        ],
        (0..8).map(|i| key("process", i)).collect(),
    ));
    if let Record::Task(t) = &mut records[3] {
        t.status = TaskStatus::Error;
        t.error = Some("ZeroDivisionError: division by zero".into());
    }
    for step in 0..=18u64 {
        for w in 0..2 {
            let managed = (step * 40 + u64::from(w) * 100) << 20;
            records.push(Record::Memory(MemorySample {
                time: step * 100 * MS,
                worker: w,
                managed,
                unmanaged: 150 << 20,
                spilled: if step > 12 { 300 << 20 } else { 0 },
                cpu: None,
            }));
        }
    }
    records.push(Record::Event(Event {
        time: 1500 * MS,
        kind: EventKind::WorkerPaused { worker: 1 },
    }));
    (header, records)
}

fn state() -> State {
    let (header, records) = fixture();
    let mut index = analyzer::TraceIndex::empty(header.clone(), "fixture".into());
    for r in &records {
        index.add(r.clone());
    }
    let findings = analyzer::report(&index.finished()).findings;
    let mut state = State::replay(
        "fixture.ndjson".into(),
        header,
        records,
        Analysis::fixed(findings),
    );
    state.tick(Instant::now());
    state
}

fn render(state: &State, ui: &Ui) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| view::draw(f, state, ui)).unwrap();
    terminal
}

fn press(state: &mut State, ui: &mut Ui, code: KeyCode) -> Option<KeyAction> {
    let action = handle_key(KeyEvent::new(code, KeyModifiers::NONE), state, ui);
    ui.update_highlight(state);
    action
}

#[test]
fn every_view_at_80_by_24() {
    let state = state();
    for tab in Tab::ALL {
        let ui = Ui {
            tab,
            ..Ui::default()
        };
        let terminal = render(&state, &ui);
        insta::assert_snapshot!(format!("{tab:?}").to_lowercase(), terminal.backend());
    }
}

#[test]
fn phases_have_their_own_look() {
    let state = state();
    let terminal = render(&state, &Ui::default());
    let buffer = terminal.backend().buffer();
    let cells: Vec<(char, Color)> = buffer
        .content()
        .iter()
        .map(|c| (c.symbol().chars().next().unwrap_or(' '), c.fg))
        .collect();
    assert!(cells.contains(&('▒', Color::Red)), "a transfer cell");
    assert!(cells.contains(&('░', Color::Yellow)), "a disk cell");
    assert!(cells.iter().any(|&(ch, _)| ch == '✗'), "the failed task");
}

#[test]
fn selecting_a_task_shows_its_phases() {
    let mut state = state();
    let mut ui = Ui::default();
    press(&mut state, &mut ui, KeyCode::Right);
    insta::assert_snapshot!("selected_task", render(&state, &ui).backend());
}

#[test]
fn a_finding_highlights_its_scope_and_enter_zooms_to_it() {
    let mut state = state();
    // The failed task that never succeeded failed the job: it comes first.
    assert_eq!(
        state.findings.first().map(|f| f.rule),
        Some("task-failures")
    );
    let mut ui = Ui::default();
    press(&mut state, &mut ui, KeyCode::Char('7'));
    assert_eq!(ui.highlight.group, state.store.group_named("load"));
    press(&mut state, &mut ui, KeyCode::Enter);
    assert_eq!(ui.tab, Tab::Stream);
    insta::assert_snapshot!("finding_zoomed", render(&state, &ui).backend());
    press(&mut state, &mut ui, KeyCode::Esc);
    assert_eq!(ui.highlight, Default::default());
}

#[test]
fn the_filter_keeps_matching_groups_or_keys() {
    let mut state = state();
    let mut ui = Ui {
        tab: Tab::Progress,
        ..Ui::default()
    };
    press(&mut state, &mut ui, KeyCode::Char('/'));
    for c in "proc".chars() {
        press(&mut state, &mut ui, KeyCode::Char(c));
    }
    press(&mut state, &mut ui, KeyCode::Enter);
    let screen = render(&state, &ui).backend().to_string();
    assert!(screen.contains("process"), "{screen}");
    assert!(!screen.contains("load "), "{screen}");
    // Text naming no group matches keys: `('load', 3)` only.
    press(&mut state, &mut ui, KeyCode::Char('/'));
    for c in "'load', 3".chars() {
        press(&mut state, &mut ui, KeyCode::Char(c));
    }
    press(&mut state, &mut ui, KeyCode::Enter);
    assert_eq!(ui.filter.tasks.as_ref().map(|t| t.len()), Some(1));
}

#[test]
fn replay_controls_move_the_clock() {
    let mut state = state();
    let mut ui = Ui::default();
    let end = state.end();
    press(&mut state, &mut ui, KeyCode::Home);
    assert_eq!(state.clock.cursor, state.clock.start);
    press(&mut state, &mut ui, KeyCode::Char('.'));
    assert_eq!(state.clock.cursor, state.clock.start + end / 10);
    press(&mut state, &mut ui, KeyCode::Char(']'));
    assert_eq!(state.clock.speed(), 2.0);
    press(&mut state, &mut ui, KeyCode::Char(' '));
    assert!(state.clock.playing);
    // Seeking back into the run shows fewer tasks done.
    let done: u64 = state.group_progress().iter().map(|g| g.done).sum();
    assert!(done < 17, "{done}");
    insta::assert_snapshot!("progress_at_10_percent", {
        let ui = Ui {
            tab: Tab::Progress,
            ..Ui::default()
        };
        render(&state, &ui).backend().to_string()
    });
    assert_eq!(
        press(&mut state, &mut ui, KeyCode::Char('q')),
        Some(KeyAction::Quit)
    );
}

#[test]
fn help_and_resizes_down_to_tiny_terminals() {
    let state = state();
    let ui = Ui {
        help: true,
        ..Ui::default()
    };
    insta::assert_snapshot!("help", render(&state, &ui).backend());
    for (w, h) in [(20, 5), (1, 1), (200, 60)] {
        for tab in Tab::ALL {
            let ui = Ui {
                tab,
                help: tab == Tab::Graph,
                ..Ui::default()
            };
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| view::draw(f, &state, &ui)).unwrap();
        }
    }
}

#[test]
fn a_new_snapshot_replaces_everything_known() {
    let (header, records) = fixture();
    let mut state = State::live("127.0.0.1:1".into());
    state.apply(observe::WatchEvent::Reset(header.clone()));
    state.apply(observe::WatchEvent::Records(records.clone()));
    state.apply(observe::WatchEvent::Live);
    state.tick(Instant::now());
    assert_eq!(state.store.tasks.len(), 17);
    // The server restarted with a smaller run: nothing of the old one may remain.
    state.apply(observe::WatchEvent::Reset(header));
    state.apply(observe::WatchEvent::Records(records[..5].to_vec()));
    state.tick(Instant::now());
    assert_eq!(state.store.tasks.len(), 4);
    assert_eq!(
        state
            .aggregates
            .histograms()
            .map(|h| h.micros.len())
            .sum::<u64>(),
        4
    );
    for tab in Tab::ALL {
        render(
            &state,
            &Ui {
                tab,
                ..Ui::default()
            },
        );
    }
}

#[test]
fn zoom_and_pan_stay_within_the_run() {
    let mut state = state();
    let mut ui = Ui::default();
    let (start, end) = ui.stream.window(&state);
    assert_eq!((start, end), (0, 1_830 * MS));
    press(&mut state, &mut ui, KeyCode::Char('+'));
    let (a, b) = ui.stream.window(&state);
    assert_eq!(b - a, (end - start) / 2);
    for _ in 0..10 {
        press(&mut state, &mut ui, KeyCode::Char('H'));
    }
    let (a2, b2) = ui.stream.window(&state);
    assert_eq!((a2, b2 - a2), (0, b - a), "panned to the start, same span");
    for _ in 0..10 {
        press(&mut state, &mut ui, KeyCode::Char('L'));
    }
    assert_eq!(
        ui.stream.window(&state).1,
        end,
        "back at the newest instant"
    );
    press(&mut state, &mut ui, KeyCode::Char('0'));
    assert_eq!(ui.stream.window(&state), (start, end));
}

#[test]
fn live_counts_merge_with_newer_records() {
    let (header, records) = fixture();
    let mut state = State::live("127.0.0.1:1".into());
    state.apply(observe::WatchEvent::Reset(header));
    state.apply(observe::WatchEvent::Records(records));
    state.apply(observe::WatchEvent::Live);
    // A sample taken when only 2 of 8 `process` tasks had finished: the records say 8.
    state.apply(observe::WatchEvent::Progress(traces::LiveState {
        time: 1,
        paused: false,
        groups: vec![
            traces::GroupState {
                name: "process".into(),
                waiting: 4,
                running: 2,
                done: 2,
                erred: 0,
                dependencies: vec!["load".into()],
            },
            traces::GroupState {
                name: "next".into(),
                waiting: 5,
                running: 0,
                done: 0,
                erred: 0,
                dependencies: vec!["process".into()],
            },
        ],
        running: vec![],
    }));
    state.tick(Instant::now());
    let progress = state.group_progress();
    let row = |name: &str| progress.iter().find(|g| g.name == name).unwrap().clone();
    let process = row("process");
    assert_eq!(
        (
            process.waiting,
            process.running,
            process.done,
            process.erred
        ),
        (0, 0, 8, 0)
    );
    let next = row("next");
    assert_eq!((next.waiting, next.done, next.group), (5, 0, None));
    assert_eq!(next.dependencies, vec!["process".to_string()]);
}

#[test]
fn a_replay_does_not_depend_on_record_order() {
    // Parallel loading hands records over in batches from two threads: any order must do.
    let (header, records) = fixture();
    let mut reversed = records.clone();
    reversed.reverse();
    let build = |records: Vec<Record>| {
        let mut state = State::replay(
            "fixture.ndjson".into(),
            header.clone(),
            records,
            Analysis::fixed(Vec::new()),
        );
        state.tick(Instant::now());
        state
    };
    let (a, b) = (build(records), build(reversed));
    for tab in Tab::ALL {
        let ui = Ui {
            tab,
            ..Ui::default()
        };
        assert_eq!(
            render(&a, &ui).backend().buffer(),
            render(&b, &ui).backend().buffer(),
            "{tab:?}"
        );
    }
}
