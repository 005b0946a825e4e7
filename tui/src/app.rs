//! The terminal, the event loop, and keys turned into changes of the [`Ui`] and the clock.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use observe::{Command, WatchTarget, Watcher};
use ratatui::DefaultTerminal;

use crate::state::{Analysis, Connection, State};
use crate::view::{self, Tab, Ui};

/// Time between frames (30 a second); updates and keys are taken in between.
const FRAME: Duration = Duration::from_millis(33);

/// What a key asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    Send(Command),
}

/// Attaches to a running cluster at `target` and shows it live until `q`.
pub fn live(target: WatchTarget) -> Result<()> {
    let mut state = State::live(target.addr.clone());
    let watcher = observe::watch_target(target);
    // A refused token or a malformed address is one line on the shell, not a screen: give the
    // connection a moment to say so before taking over the terminal.
    if let Some(first) = watcher.next_timeout(FIRST_ANSWER) {
        if let observe::WatchEvent::Fatal(error) = first {
            return Err(anyhow!("{error}"));
        }
        state.apply(first);
    }
    run(&mut state, Some(&watcher))
}

/// Watches `target` for `after`, then renders `tab` at 120×40 as text: `top` for scripts. The
/// findings are the analyzer's on what arrived.
pub fn print_live(target: WatchTarget, after: Duration, tab: Tab) -> Result<String> {
    let mut state = State::live(target.addr.clone());
    let watcher = observe::watch_target(target);
    let deadline = Instant::now() + after;
    ingest_until(&mut state, &watcher, deadline);
    match &state.connection {
        Connection::Disconnected { error, .. } | Connection::Failed(error) => {
            return Err(anyhow!("{error}"));
        }
        Connection::Connecting => return Err(anyhow!("no answer from the server")),
        _ => {}
    }
    state.wait_for_findings(Duration::from_secs(10));
    state.tick(Instant::now());
    let mut ui = Ui {
        tab,
        ..Ui::default()
    };
    ui.update_highlight(&state);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40))?;
    terminal.draw(|frame| view::draw(frame, &state, &ui))?;
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    Ok(text)
}

/// How long `live` waits for the server's first answer before opening the UI anyway.
const FIRST_ANSWER: Duration = Duration::from_secs(2);

/// Reads a trace (native or Dask) and replays it.
pub fn replay(path: &Path) -> Result<()> {
    let mut state = load_replay(path)?;
    run(&mut state, None)
}

/// The replay state of a trace file, with its findings computing in the background.
pub fn load_replay(path: &Path) -> Result<State> {
    let trace = traces::TraceReader::open(path)?;
    let header = trace.header().clone();
    // Two threads parse; the store orders what it is given (lanes, samples) itself.
    let (parts, warnings) =
        trace.par_fold(2, Vec::new, |records: &mut Vec<_>, r| records.push(r))?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let records = parts.into_iter().flatten().collect();
    Ok(State::replay(
        path.display().to_string(),
        header,
        records,
        Analysis::of_file(path.to_path_buf()),
    ))
}

fn run(state: &mut State, watcher: Option<&Watcher>) -> Result<()> {
    // Restores the terminal on panics too (ratatui installs the hook).
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = event_loop(&mut terminal, state, watcher);
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    watcher: Option<&Watcher>,
) -> Result<()> {
    let mut ui = Ui::default();
    let keys = spawn_key_reader();
    let mut next_frame = Instant::now();
    loop {
        let mut pressed: Vec<KeyEvent> = keys.try_iter().collect();
        match watcher {
            Some(watcher) => {
                ingest_until(state, watcher, next_frame);
                if let Connection::Failed(error) = &state.connection {
                    return Err(anyhow!("{error}"));
                }
            }
            None => {
                let left = next_frame.saturating_duration_since(Instant::now());
                pressed.extend(keys.recv_timeout(left));
            }
        }
        for key in pressed {
            match handle_key(key, state, &mut ui) {
                Some(Action::Quit) => return Ok(()),
                Some(Action::Send(command)) => {
                    if let Some(watcher) = watcher {
                        watcher.send(command);
                    }
                }
                None => {}
            }
            // Show the key's effect now, not at the next frame.
            next_frame = Instant::now();
        }
        let now = Instant::now();
        if now >= next_frame {
            state.aggregates_wanted = matches!(ui.tab, Tab::Workers | Tab::Histograms);
            state.tick(now);
            ui.update_highlight(state);
            terminal.draw(|frame| view::draw(frame, state, &ui))?;
            next_frame = now + FRAME;
        }
    }
}

/// Takes in updates until `deadline` (waiting for them when none is there): the UI loop does
/// this between frames, so a live run is ingested at full speed while frames stay regular.
pub fn ingest_until(state: &mut State, watcher: &Watcher, deadline: Instant) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match watcher.next_timeout(left) {
            Some(event) => state.apply(event),
            None => return,
        }
    }
}

/// Keys come from a thread blocked in `event::read`, so the loop can wait on updates and keys
/// at once (a key is handled at the latest one frame after it was pressed).
fn spawn_key_reader() -> Receiver<KeyEvent> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                if let Event::Key(key) = event
                    && key.kind != KeyEventKind::Release
                    && tx.send(key).is_err()
                {
                    return;
                }
            }
        })
        .expect("spawning the key reader");
    rx
}

/// Applies one key.
pub fn handle_key(key: KeyEvent, state: &mut State, ui: &mut Ui) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if ui.filter.editing {
        match key.code {
            KeyCode::Enter => ui.filter.apply(&state.store),
            KeyCode::Esc => {
                ui.filter = Default::default();
            }
            KeyCode::Backspace => {
                ui.filter.text.pop();
            }
            KeyCode::Char(c) => ui.filter.text.push(c),
            _ => {}
        }
        return None;
    }
    if ui.help {
        if matches!(
            key.code,
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q')
        ) {
            ui.help = false;
        }
        return None;
    }
    let end = state.end();
    let tenth = (end.saturating_sub(state.clock.start) / 10).max(1) as i64;
    match key.code {
        KeyCode::Char('q') => return Some(Action::Quit),
        KeyCode::Char('?') => ui.help = true,
        KeyCode::Esc => {
            ui.filter = Default::default();
            ui.stream.selected_task = None;
            ui.finding_focus = false;
        }
        KeyCode::Char('/') => {
            ui.filter.editing = true;
            ui.filter.text.clear();
        }
        KeyCode::Tab => ui.tab = Tab::ALL[(tab_index(ui.tab) + 1) % Tab::ALL.len()],
        KeyCode::BackTab => {
            ui.tab = Tab::ALL[(tab_index(ui.tab) + Tab::ALL.len() - 1) % Tab::ALL.len()]
        }
        KeyCode::Char(c @ '1'..='7') => ui.tab = Tab::ALL[c as usize - '1' as usize],
        KeyCode::Char(' ') if !state.is_live() => state.clock.toggle_play(end),
        KeyCode::Char('p') if state.is_live() => {
            return Some(Action::Send(if state.cluster_paused {
                Command::Resume
            } else {
                Command::Pause
            }));
        }
        KeyCode::Char(']') => state.clock.faster(),
        KeyCode::Char('[') => state.clock.slower(),
        KeyCode::Char(',') | KeyCode::Char('<') => state.clock.seek_by(-tenth, end),
        KeyCode::Char('.') | KeyCode::Char('>') => state.clock.seek_by(tenth, end),
        KeyCode::Home | KeyCode::Char('g') => state.clock.seek_start(),
        KeyCode::End | KeyCode::Char('G') => {
            state.clock.seek_end(end);
            if !state.is_live() {
                // A replay at its end is a finished run: nothing more to follow.
                state.clock.follow = false;
            }
        }
        KeyCode::Up | KeyCode::Char('k') => move_selection(state, ui, false),
        KeyCode::Down | KeyCode::Char('j') => move_selection(state, ui, true),
        KeyCode::Left | KeyCode::Char('h') if ui.tab == Tab::Stream => {
            ui.stream.step_task(state, false)
        }
        KeyCode::Right | KeyCode::Char('l') if ui.tab == Tab::Stream => {
            ui.stream.step_task(state, true)
        }
        KeyCode::Char('+') | KeyCode::Char('=') => ui.stream.zoom(state, 0.5),
        KeyCode::Char('-') => ui.stream.zoom(state, 2.0),
        KeyCode::Char('H') => ui.stream.pan(state, -0.25),
        KeyCode::Char('L') => ui.stream.pan(state, 0.25),
        KeyCode::Char('0') => ui.stream.fit(),
        KeyCode::Enter if ui.tab == Tab::Findings => {
            ui.finding_focus = true;
            zoom_to_finding(state, ui);
        }
        _ => {}
    }
    None
}

fn tab_index(tab: Tab) -> usize {
    Tab::ALL.iter().position(|&t| t == tab).unwrap_or(0)
}

fn move_selection(state: &State, ui: &mut Ui, down: bool) {
    let step = |v: &mut usize, len: usize| {
        *v = if down {
            (*v + 1).min(len.saturating_sub(1))
        } else {
            v.saturating_sub(1)
        };
    };
    match ui.tab {
        Tab::Stream => ui.stream.step_lane(state, down),
        Tab::Memory | Tab::Workers => step(&mut ui.workers_selected, state.store.workers.len()),
        Tab::Graph => step(&mut ui.graph_selected, view::graph_nodes(state)),
        Tab::Progress => step(&mut ui.progress_selected, state.group_progress().len()),
        Tab::Histograms => step(
            &mut ui.histograms_selected,
            state.aggregates.histograms().count(),
        ),
        Tab::Findings => {
            ui.finding_focus = true;
            step(&mut ui.findings_selected, state.findings.len())
        }
    }
}

/// Enter on a finding: show its time range in the task stream.
fn zoom_to_finding(state: &State, ui: &mut Ui) {
    ui.update_highlight(state);
    if let Some((a, b)) = ui.highlight.time_range {
        let span = b.saturating_sub(a).max(1_000_000);
        let pad = span / 10;
        ui.stream.span = Some(span + 2 * pad);
        let end = b + pad;
        ui.stream.end = (end < state.clock.cursor).then_some(end);
    }
    if let Some(worker) = ui.highlight.worker
        && let Some(i) = state
            .store
            .lane_order
            .iter()
            .position(|&l| state.store.lanes[l as usize].worker == worker)
    {
        ui.stream.lane = i;
    }
    // A finding that names an example task: select it and show it with some context.
    let store = &state.store;
    let example = state
        .findings
        .get(ui.findings_selected)
        .and_then(|f| f.scope.keys.first())
        .and_then(|key| {
            store
                .tasks
                .iter()
                .position(|row| store.keys[row.key as usize].to_string() == *key)
        });
    if let Some(t) = example {
        let row = &store.tasks[t];
        ui.stream.selected_task = Some(t as u32);
        if let Some(i) = store.lane_order.iter().position(|&l| l == row.lane) {
            ui.stream.lane = i;
        }
        if ui.highlight.time_range.is_none() {
            let length = (row.stop - row.start).max(1_000_000);
            ui.stream.span = Some(length * 3);
            let end = row.stop + length;
            ui.stream.end = (end < state.clock.cursor).then_some(end);
        }
    }
    ui.tab = Tab::Stream;
}
