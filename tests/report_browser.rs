//! `taskscope report` pages opened in a real browser: headless Chromium loads the page, runs its
//! script, and must log no error; the DOM after the script ran holds the findings and drawn
//! charts; a screenshot goes to `target/report-screenshots/` for people to look at.
//!
//! Needs Chromium (`scripts/test.sh` installs Debian's `chromium` when missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_taskscope");

fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("Chromium is needed for this test: apt-get install chromium (scripts/test.sh does)")
}

/// Runs headless Chromium on `page` with `args`, killed after a minute; returns (stdout, stderr).
fn headless(page: &Path, args: &[&str]) -> (String, String) {
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            // Time for the script's asynchronous decoding, without waiting on the wall clock.
            "--virtual-time-budget=10000",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its output is read as it comes (a full pipe would stall it); a watchdog ends a hang.
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: signalling our own child, which has not been waited for yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        !watchdog.join().unwrap(),
        "chromium did not finish within a minute on {}",
        page.display()
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(trace: &Path, page: &Path) {
    let status = Command::new(BIN)
        .arg("report")
        .arg(trace)
        .arg("-o")
        .arg(page)
        .status()
        .unwrap();
    assert!(status.success(), "taskscope report {}", trace.display());
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `page`: no console errors, the findings and drawn charts in the DOM, a screenshot.
fn check_in_browser(page: &Path, name: &str, rules: &[&str]) {
    let (dom, log) = headless(page, &["--dump-dom"]);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        errors.is_empty(),
        "console messages:\n{}",
        errors.join("\n")
    );
    // The script marks the body once the stream is decoded and drawn.
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not finish:\n{log}"
    );
    assert!(dom.contains("<canvas id=\"stream\""));
    assert!(dom.contains("class=\"memory-worker\"") || dom.contains("no memory samples"));
    for rule in rules {
        assert!(
            dom.contains(&format!("<code class=\"rule\">{rule}</code>")),
            "{rule} missing"
        );
    }
    let shot = screenshots().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    headless(
        page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "no screenshot at {}", shot.display());
}

#[test]
fn a_demo_runs_report_opens_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("skewed.ndjson.zst");
    let status = Command::new(BIN)
        .args(["run", "skewed-groupby", "-o"])
        .arg(&trace)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let page = dir.path().join("report.html");
    report(&trace, &page);
    check_in_browser(&page, "engine-skewed-groupby", &["skew"]);
    // The engine records dependencies: the group graph and the critical path are drawn.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg id=\"group-graph\""));
    assert!(html.contains("data-group=\"groupby-chunk\""));
    assert!(!html.contains("\"critical\":[]"), "no critical path runs");
}

#[test]
fn a_dask_task_streams_report_opens_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("analyzer/tests/data/dask/tiny.json");
    let page = dir.path().join("report.html");
    report(&trace, &page);
    check_in_browser(&page, "dask-tiny-stream", &["tiny-partitions"]);
}
