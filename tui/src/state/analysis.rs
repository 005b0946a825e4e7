//! The analyzer's findings, computed off the UI thread: once for a replay, and again and again
//! as records arrive for a live run.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use analyzer::{Finding, TraceIndex};
use traces::{Header, Record};

/// A live run is re-analyzed at most this often (and never more than a third of the time).
const LIVE_EVERY: Duration = Duration::from_secs(1);

enum Input {
    Reset(Header),
    Records(Vec<Record>),
    /// Analyze what arrived now, whatever the pace.
    AnalyzeNow,
}

pub struct Analysis {
    input: Option<Sender<Input>>,
    /// Findings, and whether they answer an `AnalyzeNow` (or are final).
    output: Receiver<(Vec<Finding>, bool)>,
}

impl Analysis {
    /// Findings of a whole trace file, read again in the background.
    pub fn of_file(path: std::path::PathBuf) -> Analysis {
        let (tx, output) = channel();
        std::thread::spawn(move || {
            if let Ok(report) = traces::TraceReader::open(&path).and_then(analyzer::analyze) {
                let _ = tx.send((report.findings, true));
            }
        });
        Analysis {
            input: None,
            output,
        }
    }

    /// Findings of a fixed list of findings (tests).
    pub fn fixed(findings: Vec<Finding>) -> Analysis {
        let (tx, output) = channel();
        let _ = tx.send((findings, true));
        Analysis {
            input: None,
            output,
        }
    }

    pub fn live() -> Analysis {
        let (input, rx) = channel::<Input>();
        let (tx, output) = channel();
        std::thread::spawn(move || live_loop(rx, tx));
        Analysis {
            input: Some(input),
            output,
        }
    }

    pub fn reset(&self, header: Header) {
        if let Some(input) = &self.input {
            let _ = input.send(Input::Reset(header));
        }
    }

    pub fn add(&self, records: Vec<Record>) {
        if let Some(input) = &self.input {
            let _ = input.send(Input::Records(records));
        }
    }

    /// The newest findings, if new ones arrived.
    pub fn poll(&self) -> Option<Vec<Finding>> {
        self.output.try_iter().last().map(|(findings, _)| findings)
    }

    /// Findings of everything sent so far: asks for an analysis now and waits for it.
    pub fn wait(&self, timeout: Duration) -> Option<Vec<Finding>> {
        if let Some(input) = &self.input {
            let _ = input.send(Input::AnalyzeNow);
        }
        let deadline = Instant::now() + timeout;
        let mut latest = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.output.recv_timeout(left) {
                Ok((findings, last)) => {
                    latest = Some(findings);
                    if last {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        latest
    }
}

fn live_loop(rx: Receiver<Input>, tx: Sender<(Vec<Finding>, bool)>) {
    let mut index: Option<TraceIndex> = None;
    let mut changed = false;
    let mut next_run = Instant::now();
    loop {
        let input = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(input) => Some(input),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut now = false;
        match input {
            Some(Input::AnalyzeNow) => now = true,
            Some(Input::Reset(header)) => {
                index = Some(TraceIndex::empty(header, "taskscope live".to_string()));
                changed = true;
            }
            Some(Input::Records(records)) => {
                if let Some(index) = &mut index {
                    for record in records {
                        index.add(record);
                    }
                    changed = true;
                }
            }
            None => {}
        }
        if (now || (changed && Instant::now() >= next_run))
            && let Some(index) = &index
        {
            let started = Instant::now();
            let findings = analyzer::report(&index.finished()).findings;
            if tx.send((findings, now)).is_err() {
                return;
            }
            changed = false;
            next_run = Instant::now() + LIVE_EVERY.max(started.elapsed() * 3);
        }
    }
}
