//! What the UI knows: the run's records ([`Store`]), the scheduler's live state, the findings,
//! the connection, and the clock that says which instant is shown. Nothing here knows about
//! terminals; the views read it and never change it.

mod aggregates;
mod analysis;
mod clock;
mod store;

use std::time::{Duration, Instant};

use analyzer::Finding;
use observe::WatchEvent;
use traces::{Header, LiveState, Nanos, Record};

pub use aggregates::{Aggregates, GroupHistogramRef, WorkerTotals};
pub use analysis::Analysis;
pub use clock::Clock;
pub use store::{Group, Lane, Store, TASK_GRAPH_LIMIT, TaskRow, Worker, WorkerStatus};

/// Where the records come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Live { addr: String },
    Replay { path: String },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Connection {
    Connecting,
    /// Receiving the snapshot.
    Loading,
    Live,
    Disconnected {
        error: String,
        retry_at: Instant,
    },
    /// Retrying cannot help (a refused token).
    Failed(String),
    /// Replays are always "connected".
    Replay,
}

pub struct State {
    pub source: Source,
    pub store: Store,
    pub clock: Clock,
    /// The scheduler's latest state (live runs only).
    pub live: Option<LiveState>,
    pub connection: Connection,
    /// Updates the server dropped because we read too slowly.
    pub dropped: u64,
    /// Whether the cluster is paused (live), as the server last said.
    pub cluster_paused: bool,
    pub findings: Vec<Finding>,
    pub aggregates: Aggregates,
    /// Whether a view shows the aggregates: a full pass over a million tasks takes ~0.1 s,
    /// paid only when someone looks.
    pub aggregates_wanted: bool,
    analysis: Analysis,
    /// The last message for the status line (a failed command…).
    pub notice: Option<(String, Instant)>,
}

impl State {
    /// A replay of records already read, in any order: they are taken in time order, as a
    /// live run delivers them (worker events apply in sequence, and groups are numbered, and
    /// coloured, by first appearance whatever the file's order).
    pub fn replay(path: String, header: Header, records: Vec<Record>, analysis: Analysis) -> State {
        // Ties (tasks finishing together) go by key: the same file always gives the same view.
        let mut order: Vec<(Nanos, u8, u32)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (time, rank) = order_key(r);
                (time, rank, i as u32)
            })
            .collect();
        order.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| tie_break(&records[a.2 as usize], &records[b.2 as usize]))
        });
        let mut store = Store::new(header);
        for &(_, _, i) in &order {
            store.add(&records[i as usize]);
        }
        // Sorted for any instant: a replay is seeked through.
        store.settle(0);
        let mut clock = Clock::replay(store.first.min(store.end));
        clock.cursor = store.end;
        State {
            source: Source::Replay { path },
            store,
            clock,
            live: None,
            connection: Connection::Replay,
            dropped: 0,
            cluster_paused: false,
            findings: Vec::new(),
            aggregates: Aggregates::default(),
            aggregates_wanted: true,
            analysis,
            notice: None,
        }
    }

    /// A live run, before the first message.
    pub fn live(addr: String) -> State {
        State {
            source: Source::Live { addr },
            store: Store::default(),
            clock: Clock::live(),
            live: None,
            connection: Connection::Connecting,
            dropped: 0,
            cluster_paused: false,
            findings: Vec::new(),
            aggregates: Aggregates::default(),
            aggregates_wanted: true,
            analysis: Analysis::live(),
            notice: None,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.source, Source::Live { .. })
    }

    /// Applies one event from the watch connection.
    pub fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Reset(header) => {
                self.analysis.reset(header.clone());
                self.store = Store::new(header);
                self.aggregates = Aggregates::default();
                self.live = None;
                self.dropped = 0;
                self.connection = Connection::Loading;
            }
            WatchEvent::Records(records) => {
                for record in &records {
                    self.store.add(record);
                }
                self.analysis.add(records);
            }
            WatchEvent::Live => self.connection = Connection::Live,
            WatchEvent::Progress(state) => {
                self.cluster_paused = state.paused;
                self.live = Some(state);
            }
            WatchEvent::Dropped(n) => self.dropped = n,
            WatchEvent::Disconnected { error, retry_in } => {
                self.connection = Connection::Disconnected {
                    error,
                    retry_at: Instant::now() + retry_in,
                };
                self.live = None;
            }
            WatchEvent::Paused(paused) => {
                self.cluster_paused = paused;
                self.notify(if paused {
                    "cluster paused: no new task starts"
                } else {
                    "cluster resumed"
                });
            }
            WatchEvent::Fatal(error) => self.connection = Connection::Failed(error),
            WatchEvent::CommandFailed(error) => self.notify(&error),
        }
    }

    /// Waits (up to `timeout`) until the analysis caught up with what arrived.
    pub fn wait_for_findings(&mut self, timeout: Duration) {
        if let Some(findings) = self.analysis.wait(timeout) {
            self.findings = findings;
        }
    }

    pub fn notify(&mut self, message: &str) {
        self.notice = Some((message.to_string(), Instant::now()));
    }

    /// Once per frame: sorts new records, moves the clock, refreshes findings and aggregates.
    pub fn tick(&mut self, now: Instant) {
        let end = self.end();
        self.clock.tick(now, end);
        self.store.settle(self.clock.cursor);
        if let Some(findings) = self.analysis.poll() {
            self.findings = findings;
        }
        if self.aggregates_wanted {
            self.aggregates.refresh(&self.store, self.clock.cursor, now);
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|(_, at)| now.duration_since(*at) > Duration::from_secs(5))
        {
            self.notice = None;
        }
    }

    /// The latest instant known.
    pub fn end(&self) -> Nanos {
        let live = self.live.as_ref().map_or(0, |l| l.time);
        self.store.end.max(live)
    }

    /// Tasks running at the cursor: from the scheduler when following a live run, else from
    /// the records.
    pub fn running_at_cursor(&self) -> Vec<(u32, u32)> {
        let t = self.clock.cursor;
        self.store
            .lane_order
            .iter()
            .filter_map(|&lane| self.store.lane_task_at(lane, t).map(|task| (lane, task)))
            .filter(|&(_, task)| self.store.tasks[task as usize].start <= t)
            .collect()
    }
}

/// Where a record goes in a replay: its time, then tasks before samples before events.
fn order_key(record: &Record) -> (Nanos, u8) {
    match record {
        Record::Task(t) => (t.stop().unwrap_or(0), 0),
        Record::Memory(m) => (m.time, 1),
        Record::Event(e) => (e.time, 2),
        Record::GroupMetrics(g) => (g.time, 3),
    }
}

/// Records of the same time and kind: tasks by key and attempt, samples by worker, events by
/// what they say (a total order, so any load order gives the same result).
fn tie_break(a: &Record, b: &Record) -> std::cmp::Ordering {
    match (a, b) {
        (Record::Task(a), Record::Task(b)) => {
            (&a.key, a.attempt, a.worker).cmp(&(&b.key, b.attempt, b.worker))
        }
        (Record::Memory(a), Record::Memory(b)) => a.worker.cmp(&b.worker),
        (Record::Event(a), Record::Event(b)) => {
            format!("{:?}", a.kind).cmp(&format!("{:?}", b.kind))
        }
        (Record::GroupMetrics(a), Record::GroupMetrics(b)) => a.group.cmp(&b.group),
        _ => std::cmp::Ordering::Equal,
    }
}

/// One task group's tasks by state at the cursor.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupProgress {
    pub name: String,
    /// The store's group id, if a task of it finished.
    pub group: Option<u32>,
    pub waiting: u64,
    pub running: u64,
    pub done: u64,
    pub erred: u64,
    pub dependencies: Vec<String>,
}

impl GroupProgress {
    pub fn total(&self) -> u64 {
        self.waiting + self.running + self.done + self.erred
    }
}

impl State {
    /// Task groups by state at the cursor, from the records; when following a live run, the
    /// scheduler's own counts of waiting and running tasks (tasks not run yet) are merged in.
    pub fn group_progress(&self) -> Vec<GroupProgress> {
        let mut rows = self.recorded_progress();
        let Some(live) = self.live.as_ref().filter(|_| self.clock.follow) else {
            return rows;
        };
        for g in &live.groups {
            let row = match rows.iter().position(|r| *r.name == *g.name) {
                Some(i) => &mut rows[i],
                None => {
                    rows.push(GroupProgress {
                        name: g.name.to_string(),
                        group: None,
                        waiting: 0,
                        running: 0,
                        done: 0,
                        erred: 0,
                        dependencies: Vec::new(),
                    });
                    rows.last_mut().expect("just pushed")
                }
            };
            // The sample may be older than the newest records: keep the group's total from
            // the sample and the finished counts from whichever is further along.
            let total = g.waiting + g.running + g.done + g.erred;
            row.done = row.done.max(g.done);
            row.erred = row.erred.max(g.erred);
            row.running = g.running.min(total.saturating_sub(row.done + row.erred));
            row.waiting = total.saturating_sub(row.done + row.erred + row.running);
            for d in &g.dependencies {
                if !row.dependencies.iter().any(|r| **r == **d) {
                    row.dependencies.push(d.to_string());
                }
            }
        }
        rows
    }

    fn recorded_progress(&self) -> Vec<GroupProgress> {
        let t = self.clock.cursor;
        self.store
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.tasks > 0 || !g.deps.is_empty())
            .map(|(i, g)| {
                let (started, done) = self.store.group_counts_at(i as u32, t);
                let erred = if t >= self.store.end {
                    u64::from(g.erred)
                } else {
                    0
                };
                GroupProgress {
                    name: g.name.clone(),
                    group: Some(i as u32),
                    waiting: u64::from(g.tasks) - started,
                    running: started - done,
                    done: done - erred.min(done),
                    erred: erred.min(done),
                    dependencies: g
                        .deps
                        .iter()
                        .map(|&d| self.store.groups[d as usize].name.clone())
                        .collect(),
                }
            })
            .collect()
    }
}
