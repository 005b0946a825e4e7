//! `taskscope run … --serve` and `taskscope top` driven as a person would: top runs inside tmux,
//! keys go in with `send-keys`, the screen comes back with `capture-pane`.
//!
//! Needs tmux (`.ci/run` installs it from Debian).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_taskscope");

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        // One tmux server per test: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("taskscope-e2e-{}-{n}", std::process::id());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "top",
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .status()
            .expect("tmux is needed for this test: apt-get install tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-L").arg(&self.socket).args(args);
        cmd.env_remove("TMUX");
        cmd
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains every one of `texts`.
    fn wait_for(&self, texts: &[&str]) -> String {
        self.wait_until(&format!("{texts:?}"), |screen| {
            texts.iter().all(|t| screen.contains(t))
        })
    }

    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Presses q and waits for the program, and with it tmux's session, to end.
    fn quit(&self) {
        self.keys(&["q"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() {
            assert!(Instant::now() < deadline, "it did not quit on q");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "top"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).stderr(Stdio::null()).status();
    }
}

/// A `taskscope run --serve` process, killed on drop.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Served {
    fn start(dir: &Path, workload: &str, addr: &str) -> Served {
        Served::start_with_token(dir, workload, addr, None)
    }

    fn start_with_token(dir: &Path, workload: &str, addr: &str, token: Option<&str>) -> Served {
        let log = dir.join(format!("{workload}.log"));
        let mut command = Command::new(BIN);
        if let Some(token) = token {
            command.env("TASKSCOPE_TOKEN", token);
        }
        let child = command
            .args(["run", workload, "--serve", addr, "-o"])
            .arg(dir.join(format!("{workload}.ndjson.zst")))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let served = Served { child, log };
        served.wait_log("serving Observe on");
        served
    }

    fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?} in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Served {
    /// The task count of the run's summary line: `ran NAME in 1.23 s: 52 tasks, …`.
    fn tasks_run(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap();
        let line = log
            .lines()
            .find(|l| l.starts_with("ran "))
            .expect("the summary line");
        let after = &line[line.find(" s: ").expect("the run time") + 4..];
        after.split(' ').next().unwrap().to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn top_shows_a_served_run_and_reconnects_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Served::start(dir.path(), "skewed-groupby", &addr);
    let tmux = Tmux::start(&format!("{BIN} top {addr}"));

    // Workers' lanes and the task count arrive live.
    tmux.wait_for(&["● live", "w0/t0", "w1/t0"]);
    server.wait_log("still serving");
    // Every task the run reports is on the screen.
    let tasks = server.tasks_run();
    let count = format!("tasks {tasks}");
    let screen = tmux.wait_until(&count, |screen| {
        let status = screen.lines().next().unwrap_or("");
        status.trim_end().ends_with(&count) || status.contains(&format!("{count} "))
    });
    assert!(screen.contains("1 Task stream"), "{screen}");

    // The analyzer's finding for this workload, live.
    tmux.keys(&["7"]);
    tmux.wait_for(&["skew", "fix:"]);

    // The workers table.
    tmux.keys(&["5"]);
    tmux.wait_for(&["threads", "busy", "w0   running", "w1   running"]);

    // Pause and resume reach the engine.
    tmux.keys(&["p"]);
    tmux.wait_for(&["CLUSTER PAUSED"]);
    tmux.keys(&["p"]);
    tmux.wait_for(&["cluster resumed"]);

    // The server goes away: top says so and keeps retrying.
    drop(server);
    tmux.wait_for(&["disconnected, retrying in"]);

    // A new run on the same address: top reconnects and shows it from its start.
    let server = Served::start(dir.path(), "healthy", &addr);
    tmux.keys(&["1"]);
    tmux.wait_for(&["● live", "w0/t0"]);
    server.wait_log("still serving");

    // Help, then quit: top exits and tmux's session with it.
    tmux.keys(&["?"]);
    tmux.wait_for(&["close this help"]);
    tmux.keys(&["Escape"]);
    tmux.quit();
}

#[test]
fn top_refuses_a_wrong_token_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _served = Served::start_with_token(
        dir.path(),
        "healthy",
        &format!("127.0.0.1:{port}"),
        Some("right"),
    );
    let addr = format!("127.0.0.1:{port}");
    let out = Command::new(BIN)
        .args(["top", &addr, "--token", "wrong"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {addr}: unauthenticated: missing or wrong token\n")
    );
}

#[test]
fn serving_beyond_loopback_without_a_token_is_refused() {
    let out = Command::new(BIN)
        .args(["run", "healthy", "--serve", "0.0.0.0:0"])
        .env_remove("TASKSCOPE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: refusing to serve on 0.0.0.0:0 without a token: anyone who can reach it could watch and pause the cluster; pass --token-file or set TASKSCOPE_TOKEN, or bind 127.0.0.1\n"
    );
}

#[test]
fn replay_plays_a_recorded_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("healthy.ndjson");
    let status = Command::new(BIN)
        .args(["run", "healthy", "-o"])
        .arg(&trace)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let tmux = Tmux::start(&format!("{BIN} replay {}", trace.display()));
    tmux.wait_for(&["healthy.ndjson", "w0/t0", "tasks 57"]);
    // From the start, playing: the clock moves.
    tmux.keys(&["Home"]);
    tmux.wait_for(&["⏸ paused ×1", "t=0 ns"]);
    tmux.keys(&["]", "Space"]);
    tmux.wait_for(&["▶ playing ×2"]);
    tmux.wait_until("the clock to move", |screen| !screen.contains("t=0 ns"));
    // A balanced run: the analyzer has nothing to say.
    tmux.keys(&["7"]);
    tmux.wait_for(&["no findings: nothing the rules flag"]);
    tmux.quit();
}

#[test]
fn replay_of_a_missing_file_is_one_line() {
    let out = Command::new(BIN)
        .args(["replay", "no-such-trace.ndjson"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: no-such-trace.ndjson: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn top_prints_a_view_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Served::start(dir.path(), "skewed-groupby", &addr);
    server.wait_log("still serving");
    let out = Command::new(BIN)
        .args(["top", &addr, "--print-after", "1s", "--view", "findings"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    let first_finding = screen.lines().nth(2).unwrap_or("");
    assert!(first_finding.contains("skew"), "{screen}");
    assert!(screen.contains("fix: "), "{screen}");
    assert_eq!(screen.lines().count(), 40);

    // Nobody listening: one line, exit 1.
    drop(server);
    let out = Command::new(BIN)
        .args(["top", &addr, "--print-after", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot connect to {addr}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn serving_on_a_taken_port_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["run", "healthy", "--serve", &addr, "-o"])
        .arg(std::env::temp_dir().join("taskscope-taken-port.ndjson"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: cannot listen on {addr}: Address already in use (os error 98)\n")
    );
}

#[test]
fn an_unknown_view_is_a_usage_error_naming_the_views() {
    let out = Command::new(BIN)
        .args(["top", "--print-after", "1s", "--view", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid value 'nope' for '--view <VIEW>': invalid view \"nope\": expected one of stream, memory, graph, progress, workers, histograms, findings\n"),
        "{stderr}"
    );
}
