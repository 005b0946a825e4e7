//! `taskscope bench tui`: frame render time with a million tasks in the state, and live
//! ingest through the real gRPC path (hub → server → client → state) while frames are drawn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use observe::{Hub, Server};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use traces::units::format_count;
use traces::{Record, RecordSink, synthetic};
use tui::state::{Analysis, State};
use tui::view::{self, Tab, Ui};

use crate::output::outln;

const WORKERS: u32 = 4;
const THREADS: u32 = 2;

/// Frames drawn per view and screen size.
const FRAMES: u32 = 30;

pub fn bench_tui(tasks: u64, rate: u64) -> Result<()> {
    outln!(
        "taskscope bench tui: {} synthetic tasks, {WORKERS} workers x {THREADS} threads",
        format_count(tasks)
    )?;
    let records: Vec<Record> = synthetic::records(tasks, WORKERS, THREADS).collect();
    let header = synthetic::header(WORKERS, THREADS);
    let started = Instant::now();
    let mut state = State::replay(
        "bench".into(),
        header.clone(),
        records.clone(),
        Analysis::fixed(Vec::new()),
    );
    let load = started.elapsed();
    outln!(
        "state built from records: {:.2} s ({} records/s)",
        load.as_secs_f64(),
        format_count((records.len() as f64 / load.as_secs_f64()) as u64)
    )?;
    let started = Instant::now();
    state.tick(Instant::now());
    outln!(
        "aggregates (histograms, per-worker totals; at most 4 times a second): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    )?;

    outln!(
        "\n{:<12} {:>9} {:>12} {:>12}",
        "view",
        "screen",
        "mean ms",
        "max ms"
    )?;
    for (w, h) in [(80, 24), (250, 70)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h))?;
        for tab in Tab::ALL {
            let mut ui = Ui {
                tab,
                ..Ui::default()
            };
            let (mean, max) = frames(&mut terminal, &state, &mut ui, |ui, state, i| {
                // Move something each frame, as a person would: the selected row or the zoom.
                if i % 2 == 0 {
                    ui.stream.zoom(state, 0.8);
                } else {
                    ui.stream.pan(state, -0.1);
                }
                ui.progress_selected = i as usize;
            })?;
            outln!(
                "{:<12} {:>9} {:>12.2} {:>12.2}",
                tab.title(),
                format!("{w}x{h}"),
                mean,
                max
            )?;
        }
    }

    let ingest = live_ingest(&header, &records, rate)?;
    outln!(
        "\nlive ingest over gRPC (loopback, one client), produced at {} events/s: {} of {} task events in, {} events/s, while drawing the task stream at 250x70 every 33 ms; {} updates dropped; slowest frame {:.2} ms",
        format_count(rate),
        format_count(ingest.received),
        format_count(tasks),
        format_count(ingest.rate as u64),
        format_count(ingest.dropped),
        ingest.max_frame_ms
    )?;
    Ok(())
}

fn frames(
    terminal: &mut Terminal<TestBackend>,
    state: &State,
    ui: &mut Ui,
    step: impl Fn(&mut Ui, &State, u32),
) -> Result<(f64, f64)> {
    let mut total = 0.0;
    let mut max: f64 = 0.0;
    for i in 0..FRAMES {
        step(ui, state, i);
        let started = Instant::now();
        terminal.draw(|f| view::draw(f, state, ui))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        total += ms;
        max = max.max(ms);
    }
    Ok((total / f64::from(FRAMES), max))
}

struct Ingest {
    received: u64,
    rate: f64,
    dropped: u64,
    max_frame_ms: f64,
}

/// The producer publishes `rate` task events a second (a batch each millisecond); the consumer
/// runs the UI loop's ingest between frames and draws a frame every 33 ms.
fn live_ingest(header: &traces::Header, records: &[Record], rate: u64) -> Result<Ingest> {
    let hub = Arc::new(Hub::new());
    hub.header(header);
    let server = Server::start(hub.clone(), "127.0.0.1:0".parse()?, None)?;
    let watcher = observe::watch(server.local_addr().to_string(), None);
    let mut state = State::live(server.local_addr().to_string());
    // Wait for the (empty) snapshot so the clock starts with the stream.
    while !matches!(state.connection, tui::state::Connection::Live) {
        if let Some(event) = watcher.next_timeout(Duration::from_secs(5)) {
            state.apply(event);
        } else {
            anyhow::bail!("no snapshot from the bench server");
        }
    }
    let tasks: Vec<traces::TaskRecord> = records
        .iter()
        .filter_map(|r| match r {
            Record::Task(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let producer_hub = hub.clone();
    let producer = std::thread::spawn(move || {
        let started = Instant::now();
        for (i, t) in tasks.iter().enumerate() {
            if i % 100 == 0 {
                let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let deps: Vec<&traces::Key> = t.deps.iter().collect();
            producer_hub.task(&t.borrowed(&deps));
            if i % 100 == 99 {
                producer_hub.flush();
            }
        }
        producer_hub.flush();
    });
    let mut terminal = Terminal::new(TestBackend::new(250, 70))?;
    let ui = Ui::default();
    let started = Instant::now();
    let mut max_frame: f64 = 0.0;
    let mut last_received = started;
    let mut next_frame = started;
    // The UI loop's own ingest between frames of 33 ms, until the producer is done and nothing
    // arrived for half a second.
    while !producer.is_finished() || last_received.elapsed() < Duration::from_millis(500) {
        let before = state.store.tasks.len();
        tui::app::ingest_until(&mut state, &watcher, next_frame);
        if state.store.tasks.len() > before {
            last_received = Instant::now();
        }
        let frame_start = Instant::now();
        state.tick(frame_start);
        terminal.draw(|f| view::draw(f, &state, &ui))?;
        max_frame = max_frame.max(frame_start.elapsed().as_secs_f64() * 1e3);
        next_frame = frame_start + Duration::from_millis(33);
    }
    let elapsed = last_received.duration_since(started).as_secs_f64();
    Ok(Ingest {
        received: state.store.tasks.len() as u64,
        rate: state.store.tasks.len() as f64 / elapsed,
        dropped: state.dropped,
        max_frame_ms: max_frame,
    })
}
