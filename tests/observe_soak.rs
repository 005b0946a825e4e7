//! The Observe server under a minute of watchers coming and going (issue 11): 50 at a time,
//! some without the token or with a wrong one, some hanging up mid-snapshot, some reading
//! nothing, one `taskscope top` stopped with SIGSTOP, all while `run tiny-partitions --serve`
//! runs. The server never exits, the run's trace holds every task it reports, and the
//! server's resident memory stays within twice that of the same run served with no watcher.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observe::WatchEvent;

mod common;
use traces::{Record, TraceReader};

const BIN: &str = env!("CARGO_BIN_EXE_taskscope");

/// How long watchers come and go.
const SOAK: Duration = Duration::from_secs(60);

/// Watchers at once.
const WATCHERS: usize = 50;

/// tiny-partitions × 14 (about 1.4 million tasks) runs about a minute on 2 cores while 50
/// watchers come and go and the baseline run shares the machine (longer on a loaded one).
const SCALE: &str = "14";

const TOKEN: &str = "s3cret";

/// The run's end, after the soak, and every wait for a line of the server's (a machine busy
/// with other builds can take three times as long as an idle one).
const TIMEOUT: Duration = Duration::from_secs(300);

/// A `taskscope run tiny-partitions … --serve 127.0.0.1:0` process writing `trace`.
fn served(trace: &Path) -> common::Served {
    let mut command = Command::new(BIN);
    command
        .args(["run", "tiny-partitions", "--scale", SCALE])
        .args(["--serve", "127.0.0.1:0", "-o"])
        .arg(trace)
        // Not --token: the environment keeps it out of `ps`.
        .env("TASKSCOPE_TOKEN", TOKEN)
        .env("NO_COLOR", "1");
    common::Served::spawn(command, TIMEOUT)
}

/// Resident memory of `pid` now, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// xorshift64*: enough randomness to vary the watchers, reproducible from the seed printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// What the watchers saw, to show the server kept answering all along.
#[derive(Default)]
struct Tally {
    snapshots: AtomicU64,
    refused: AtomicU64,
    watches: AtomicU64,
    /// When a watcher last got a snapshot.
    last_snapshot: Mutex<Option<Instant>>,
}

/// Follows the server with taskscope's own client (`token` or none) for `follow`, or until the
/// snapshot starts with `mid_snapshot`, then drops it (which closes the connection).
fn client_watch(
    addr: &str,
    token: Option<&str>,
    follow: Duration,
    mid_snapshot: bool,
    tally: &Tally,
) {
    let watcher = observe::watch(addr.to_string(), token.map(str::to_string));
    let deadline = Instant::now() + follow.max(Duration::from_secs(5));
    let stop_at = if mid_snapshot {
        deadline
    } else {
        Instant::now() + follow
    };
    while Instant::now() < deadline {
        match watcher.next_timeout(Duration::from_millis(50)) {
            Some(WatchEvent::Reset(_)) => {
                tally.snapshots.fetch_add(1, Ordering::Relaxed);
                *tally.last_snapshot.lock().unwrap() = Some(Instant::now());
                if mid_snapshot {
                    return;
                }
            }
            Some(WatchEvent::Fatal(error)) => {
                assert!(
                    error.ends_with("unauthenticated: missing or wrong token"),
                    "{error}"
                );
                assert_ne!(token, Some(TOKEN), "the right token was refused: {error}");
                tally.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
        if Instant::now() >= stop_at && token == Some(TOKEN) {
            return;
        }
    }
}

/// One of the 50: watches in one of seven ways, again and again, until `until`.
fn churn(addr: &str, seed: u64, until: Instant, tally: &Tally) {
    let mut rng = Rng(seed | 1);
    while Instant::now() < until {
        let reset = rng.below(2) == 0;
        match rng.below(7) {
            0 => common::raw_watch(addr, None, 512, Duration::ZERO, reset),
            1 => common::raw_watch(addr, Some("wrong"), 512, Duration::ZERO, reset),
            // Hangs up somewhere in the snapshot's first 64 KiB.
            2 => common::raw_watch(
                addr,
                Some(TOKEN),
                rng.below(64 * 1024) as usize,
                Duration::ZERO,
                reset,
            ),
            // Reads nothing for a while: the server's writes to it wait.
            3 => common::raw_watch(addr, Some(TOKEN), 0, rng.millis(500, 3000), reset),
            4 => client_watch(addr, Some(TOKEN), Duration::ZERO, true, tally),
            5 => client_watch(addr, Some(TOKEN), rng.millis(200, 3000), false, tally),
            _ => client_watch(
                addr,
                [None, Some("guess")][rng.below(2) as usize],
                Duration::ZERO,
                false,
                tally,
            ),
        }
        tally.watches.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(rng.millis(0, 200));
    }
}

/// Samples resident memory every 200 ms while each run lasts; the largest seen per process.
struct RssSampler {
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl RssSampler {
    fn start(runs: &[&common::Served]) -> RssSampler {
        let runs: Vec<(u32, Arc<AtomicBool>)> = runs.iter().map(|s| (s.pid(), s.ran())).collect();
        let thread = std::thread::spawn(move || {
            let mut peaks = vec![0u64; runs.len()];
            let deadline = Instant::now() + TIMEOUT;
            while runs.iter().any(|(_, ran)| !ran.load(Ordering::Relaxed))
                && Instant::now() < deadline
            {
                for (peak, (pid, ran)) in peaks.iter_mut().zip(&runs) {
                    if !ran.load(Ordering::Relaxed) {
                        *peak = (*peak).max(rss_kib(*pid).unwrap_or(0));
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            peaks
        });
        RssSampler { thread }
    }

    /// The peaks, once every run has ended.
    fn finish(self) -> Vec<u64> {
        self.thread.join().unwrap()
    }
}

/// "ran … in 31.2 s: 1,422,583 tasks, … wrote 1,422,583 task records to …": (tasks, records).
fn reported(ran: &str) -> (u64, u64) {
    let number = |text: &str| -> u64 { text.replace(',', "").parse().unwrap() };
    let tasks = ran.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    let records = ran
        .split(" wrote ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    (number(tasks), number(records))
}

#[test]
fn observe_survives_fifty_watchers_coming_and_going_for_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    // The same run, served, that nobody watches, at the same time on the same machine: its
    // memory is what the data costs.
    let baseline = served(&dir.path().join("baseline.ndjson"));
    let trace = dir.path().join("soak.ndjson");
    let mut served = served(&trace);
    let sampler = RssSampler::start(&[&baseline, &served]);
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("soak seed {seed}");

    // One `top` that stops dead in the middle of its snapshot and stays stopped.
    let mut stalled = Command::new(BIN)
        .args(["top", &served.addr, "--print-after", "600s"])
        .env("TASKSCOPE_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(stalled.id() as i32, libc::SIGSTOP) }, 0);

    let until = Instant::now() + SOAK;
    let tally = Arc::new(Tally::default());
    let watchers: Vec<_> = (0..WATCHERS as u64)
        .map(|i| {
            let addr = served.addr.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                churn(
                    &addr,
                    seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    until,
                    &tally,
                )
            })
        })
        .collect();
    let mut ran = None;
    while Instant::now() < until {
        served.assert_alive();
        if ran.is_none() {
            ran = served.saw("ran tiny-partitions in ");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for watcher in watchers {
        watcher.join().unwrap();
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(stalled.id() as i32, libc::SIGCONT) }, 0);
    stalled.kill().unwrap();
    stalled.wait().unwrap();
    served.assert_alive();

    let ran = ran.unwrap_or_else(|| served.wait_for("ran tiny-partitions in "));
    let ran_for = started.elapsed();
    baseline.wait_for("ran tiny-partitions in ");
    served.assert_alive();
    // The runs' peaks: what comes after (reading the trace back for the summary) is the same
    // for both and no concern of the server's.
    let peaks = sampler.finish();
    let (baseline_kib, served_kib) = (peaks[0], peaks[1]);
    let snapshots = tally.snapshots.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    eprintln!(
        "{} watches ({snapshots} snapshots, {refused} refused by the token check) over {:?}; {ran} ({:.0?} after the start); peak RSS {} MiB served and watched, {} MiB served alone",
        tally.watches.load(Ordering::Relaxed),
        SOAK,
        ran_for,
        served_kib / 1024,
        baseline_kib / 1024
    );

    // The server answered all along: a snapshot reached a watcher in the soak's last seconds.
    let last = tally
        .last_snapshot
        .lock()
        .unwrap()
        .expect("no watcher got a snapshot");
    assert!(
        until.saturating_duration_since(last) < Duration::from_secs(10),
        "no snapshot in the last 10 s of the soak"
    );
    assert!(
        snapshots > 100 && refused > 10,
        "{snapshots} snapshots, {refused} refused"
    );

    // The trace holds every task the run reports, with no warning.
    let (tasks, written) = reported(&ran);
    assert_eq!(tasks, written, "{ran}");
    let mut reader = TraceReader::open(&trace).unwrap();
    let records: Vec<Record> = (&mut reader).collect::<Result<_, _>>().unwrap();
    assert_eq!(reader.warnings(), [] as [String; 0]);
    let in_trace = records
        .iter()
        .filter(|r| matches!(r, Record::Task(_)))
        .count() as u64;
    assert_eq!(in_trace, written);
    assert!(written > 1_300_000, "{ran}");

    assert!(
        served_kib <= 2 * baseline_kib,
        "peak RSS {served_kib} KiB with watchers, over twice the {baseline_kib} KiB without"
    );
}
