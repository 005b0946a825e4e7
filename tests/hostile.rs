//! The `taskscope` binary against hostile or careless use (issue 11): clients that hang up,
//! outputs that are inputs or devices, names and numbers built to break it. Each case ends in a
//! one-line error or correct output, exit 0, 1 or 2 (never a panic's 101, an abort's 134 or
//! SIGPIPE's 141), within a timeout, and leaves its input as it was.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;

mod common;
use traces::{Record, TraceReader};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/traces/tests/data/dask_task_stream.json"
);

/// Every command here finishes in well under this; a hang fails the test instead of the suite.
const TIMEOUT: Duration = Duration::from_secs(60);

fn taskscope() -> Command {
    let mut cmd = Command::cargo_bin("taskscope").unwrap();
    cmd.env("NO_COLOR", "1").timeout(TIMEOUT);
    cmd
}

/// A copy of the Dask fixture in `dir`, to be written at.
fn fixture_in(dir: &Path) -> PathBuf {
    let path = dir.join("stream.json");
    std::fs::copy(FIXTURE, &path).unwrap();
    path
}

/// A native trace with one worker named `worker` and one task of group `group`.
fn trace_named(dir: &Path, group: &str, worker: &str) -> PathBuf {
    let header = serde_json::json!({
        "kind": "header", "format": "taskscope-trace", "version": "1.0", "producer": "hostile",
        "origin_unix_ns": 0,
        "cluster": {"workers": [{"id": 0, "name": worker, "threads": 1}]},
    });
    let task = serde_json::json!({
        "kind": "task", "key": [group, 0], "group": group, "worker": 0, "thread": 0,
        "status": "ok", "phases": [{"action": "compute", "start": 0, "stop": 5_000_000}],
    });
    let path = dir.join("named.ndjson");
    std::fs::write(&path, format!("{header}\n{task}\n")).unwrap();
    path
}

/// Runs `cmd` and checks the outcome: `code`, `stderr` exactly, and `input` unchanged.
fn assert_refused(cmd: &mut Command, code: i32, stderr: &str, input: &Path) {
    let before = std::fs::read(input).unwrap();
    cmd.assert().code(code).stderr(stderr.to_string());
    assert_eq!(
        std::fs::read(input).unwrap(),
        before,
        "{} changed",
        input.display()
    );
}

/// `taskscope ARGS` with stdout going to `stdout` (which `assert_cmd` would capture), killed
/// after [`TIMEOUT`]; returns its exit code and stderr.
fn run_with_stdout(args: &[&str], stdout: Stdio) -> (Option<i32>, String) {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("taskscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(TIMEOUT) {
        Ok(output) => {
            let output = output.unwrap();
            (
                output.status.code(),
                String::from_utf8(output.stderr).unwrap(),
            )
        }
        Err(_) => {
            // SAFETY: signalling a child of this process that has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("taskscope {args:?} timed out");
        }
    }
}

/// Runs `cmd`, which reads `input`: it must succeed and leave `input` as it was.
fn stdout_of(cmd: &mut Command, input: &Path) -> String {
    let before = std::fs::read(input).unwrap();
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        std::fs::read(input).unwrap(),
        before,
        "{} changed",
        input.display()
    );
    String::from_utf8(output.stdout).unwrap()
}

// 1. SIGPIPE: the Observe server outlives clients that hang up.

/// A `taskscope ARGS --serve 127.0.0.1:0` process.
fn served(args: &[&str]) -> common::Served {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("taskscope"));
    command.args(args).args(["--serve", "127.0.0.1:0"]);
    common::Served::spawn(command, TIMEOUT)
}

#[test]
fn observe_server_survives_clients_that_hang_up() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("tiny.ndjson");
    let mut served = served(&[
        "run",
        "tiny-partitions",
        "--token",
        "s3cret",
        "-o",
        trace.to_str().unwrap(),
    ]);
    // During the run and after it: no token, a wrong one, the right one (which gets the
    // snapshot, and hangs up in the middle of it).
    let tokens = [None, Some("wrong"), Some("s3cret")];
    // And ordinary watchers, killed mid-way through their second.
    let mut tops: Vec<Child> = (0..5)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("taskscope"))
                .args([
                    "top",
                    &served.addr,
                    "--token",
                    "s3cret",
                    "--print-after",
                    "2s",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ran = None;
    let mut hang_ups = 0;
    let deadline = Instant::now() + TIMEOUT;
    while ran.is_none() || hang_ups < 300 {
        assert!(Instant::now() < deadline, "the run did not end");
        let (read, reset) = [(0, false), (0, true), (9, false), (4096, true)][hang_ups % 4];
        common::raw_watch(
            &served.addr,
            tokens[hang_ups % 3],
            read,
            Duration::ZERO,
            reset,
        );
        hang_ups += 1;
        if hang_ups % 20 == 0
            && let Some(mut top) = tops.pop()
        {
            top.kill().unwrap();
            top.wait().unwrap();
        }
        if ran.is_none() {
            ran = served.saw("ran tiny-partitions in ");
        }
        served.assert_alive();
    }
    served.wait_for("the run is over; still serving on ");
    served.assert_alive();
    // "… wrote 101,615 task records to …": all of them are in the file, with no warning.
    let ran = ran.unwrap();
    let written: u64 = ran
        .split(" wrote ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap();
    let mut reader = TraceReader::open(&trace).unwrap();
    let records: Vec<Record> = (&mut reader).collect::<Result<_, _>>().unwrap();
    assert_eq!(reader.warnings(), [] as [String; 0]);
    let tasks = records
        .iter()
        .filter(|r| matches!(r, Record::Task(_)))
        .count() as u64;
    assert_eq!(tasks, written);
    assert!(written > 100_000, "{ran}");
}

#[test]
fn closed_stdout_is_a_quiet_exit() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just opened and are owned here only.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Nobody will read: every write fails with EPIPE.
    drop(read_end);
    assert_eq!(
        run_with_stdout(&["info", FIXTURE], Stdio::from(write_end)),
        (Some(0), String::new())
    );
}

// 2. Output paths.

#[test]
fn writers_refuse_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_in(dir.path());
    let refused = |shown: &Path| {
        format!(
            "error: {}: output is the input file; choose another -o path\n",
            shown.display()
        )
    };
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let dotdot = sub.join("../stream.json");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for output in [&input, &dotdot, &link] {
        assert_refused(
            taskscope()
                .args(["export", "chrome"])
                .arg(&input)
                .arg("-o")
                .arg(output),
            1,
            &refused(output),
            &input,
        );
        assert_refused(
            taskscope()
                .arg("flamegraph")
                .arg(&input)
                .arg("-o")
                .arg(output),
            1,
            &refused(output),
            &input,
        );
        assert_refused(
            taskscope().arg("convert").arg(&input).arg("-o").arg(output),
            1,
            &refused(output),
            &input,
        );
        assert_refused(
            taskscope().arg("report").arg(&input).arg("-o").arg(output),
            1,
            &refused(output),
            &input,
        );
    }
    let other = dir.path().join("other.json");
    std::fs::copy(FIXTURE, &other).unwrap();
    assert_refused(
        taskscope()
            .args(["flamegraph", "--diff"])
            .arg(&other)
            .arg(&input)
            .arg("-o")
            .arg(&link),
        1,
        &refused(&link),
        &input,
    );
    let graph = dir.path().join("g.toml");
    std::fs::write(&graph, "[[group]]\nname = \"a\"\ncount = 2\n").unwrap();
    assert_refused(
        taskscope().arg("run").arg(&graph).arg("-o").arg(&graph),
        1,
        &refused(&graph),
        &graph,
    );
}

#[test]
fn writers_write_special_files_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_in(dir.path());
    let null = Path::new("/dev/null");
    for args in [
        &["flamegraph"][..],
        &["export", "chrome"],
        &["convert"],
        &["report"],
    ] {
        taskscope()
            .args(args)
            .arg(&input)
            .arg("-o")
            .arg(null)
            .assert()
            .code(0);
        assert!(
            std::fs::metadata(null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // A FIFO gets the bytes, and stays a FIFO.
    let fifo = dir.path().join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let (tx, read) = mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || tx.send(std::fs::read(fifo).unwrap()));
    }
    taskscope()
        .args(["flamegraph", "--folded"])
        .arg(&input)
        .arg("-o")
        .arg(&fifo)
        .assert()
        .code(0);
    let folded = String::from_utf8(read.recv_timeout(TIMEOUT).unwrap()).unwrap();
    assert!(folded.contains(";compute "), "{folded}");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // `run` writes its trace there too, and does not wait forever to read it back.
    let null_run = taskscope()
        .args(["run", "healthy", "--scale", "0.1", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(null_run.status.code(), Some(0), "{null_run:?}");
    let stderr = String::from_utf8(null_run.stderr).unwrap();
    assert!(
        stderr.ends_with("/dev/null is not a regular file: no summary\n"),
        "{stderr}"
    );
    assert!(
        std::fs::metadata(null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(FIXTURE).unwrap()
    );
}

#[test]
fn failed_writes_leave_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"t","origin_unix_ns":0,"cluster":{}}"#;
    let task = r#"{"kind":"task","key":"a-0","group":"a","worker":0,"thread":0,"status":"ok","phases":[{"action":"compute","start":0,"stop":1000}]}"#;
    std::fs::write(
        &bad,
        format!("{header}\n{task}\n{{\"kind\":\"memory\",\"time\":\"soon\",\"worker\":0,\"managed\":1}}\n"),
    )
    .unwrap();
    let out = dir.path().join("out.json");
    std::fs::write(&out, "precious").unwrap();
    assert_refused(
        taskscope()
            .args(["export", "chrome"])
            .arg(&bad)
            .arg("-o")
            .arg(&out),
        1,
        &format!(
            "error: {}: {}:3: field \"time\": expected non-negative integer, found string \"soon\"\n",
            out.display(),
            bad.display()
        ),
        &bad,
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");
    // No temporary file left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.ndjson", "out.json"]);
}

#[test]
fn writers_write_through_symlinks_and_keep_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_in(dir.path());
    let real = dir.path().join("real.svg");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    taskscope()
        .arg("flamegraph")
        .arg(&input)
        .arg("-o")
        .arg(&link)
        .assert()
        .code(0);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("<?xml"));
    // A replaced file keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(&real, private).unwrap();
    taskscope()
        .arg("flamegraph")
        .arg(&input)
        .arg("-o")
        .arg(&real)
        .assert()
        .code(0);
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(FIXTURE).unwrap()
    );
}

// 3. Panics.

#[test]
fn names_of_64_kib_and_more_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let name = "g".repeat(70_000);
    let trace = trace_named(dir.path(), &name, &name);
    for args in [
        &["info"][..],
        &["analyze"],
        &["analyze", "--format", "markdown"],
    ] {
        let stdout = stdout_of(taskscope().args(args).arg(&trace), &trace);
        assert!(stdout.contains(&name) || args[0] == "analyze", "{args:?}");
    }
    let graph = dir.path().join("g.toml");
    std::fs::write(
        &graph,
        format!("[[group]]\nname = \"{name}\"\ncount = 2\nduration = \"1ms\"\n"),
    )
    .unwrap();
    let out = dir.path().join("g.ndjson");
    let stdout = stdout_of(
        taskscope().arg("run").arg(&graph).arg("-o").arg(&out),
        &graph,
    );
    assert!(stdout.contains(&name));
}

#[test]
fn graph_files_with_impossible_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("g.toml");
    let cases = [
        (
            "[[group]]\nname = \"a\"\ncount = 0\n\n[[group]]\nname = \"b\"\ncount = 2\ndeps = [{ group = \"a\" }]\n",
            "group[1] (b).deps: group \"a\" has no tasks (count = 0) to feed one-to-one",
        ),
        (
            "[[group]]\nname = \"a\"\ncount = 0\n\n[[group]]\nname = \"b\"\ncount = 2\ndeps = [{ group = \"a\", pattern = \"fan-out\" }]\n",
            "group[1] (b).deps: group \"a\" has no tasks (count = 0) to feed fan-out",
        ),
        (
            "[[group]]\nname = \"a\"\ncount = 18446744073709551615\n",
            "group[0] (a).count: 18446744073709551615 makes the graph more than 5000000 tasks",
        ),
        (
            "[[group]]\nname = \"a\"\ncount = 3000000\n\n[[group]]\nname = \"b\"\ncount = 3000000\n",
            "group[1] (b).count: 3000000 makes the graph more than 5000000 tasks",
        ),
        (
            "[[group]]\nname = \"a\"\ncount = 2\nskew = { index = 0, factor = 18446744073709551615 }\n",
            "group[0] (a).duration: 1000000 times skew factor 18446744073709551615 is too large",
        ),
        (
            "[[group]]\nname = \"a\"\nduration = \"600years\"\n",
            "group[0] (a).duration: invalid duration \"600years\": longer than 584 years",
        ),
        (
            "[[group]]\nname = \"a\"\noutput = \"20000000TiB\"\n",
            "group[0] (a).output: invalid size \"20000000TiB\": more than 16 EiB",
        ),
    ];
    for (text, error) in cases {
        std::fs::write(&graph, text).unwrap();
        assert_refused(
            taskscope().arg("run").arg(&graph),
            1,
            &format!("error: {}: {error}\n", graph.display()),
            &graph,
        );
    }
}

#[test]
fn a_full_stdout_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_in(dir.path());
    let full = || std::fs::File::create("/dev/full").unwrap();
    for args in [
        vec!["info", input.to_str().unwrap()],
        vec!["analyze", input.to_str().unwrap()],
        vec!["run", "--list"],
        vec!["flamegraph", "--folded", input.to_str().unwrap()],
        vec!["report", input.to_str().unwrap()],
        vec!["simulate", input.to_str().unwrap()],
    ] {
        let before = std::fs::read(&input).unwrap();
        assert_eq!(
            run_with_stdout(&args, Stdio::from(full())),
            (
                Some(1),
                "error: cannot write to stdout: No space left on device (os error 28)\n".into()
            ),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
}

#[test]
fn absurd_run_flags_are_refused_up_front() {
    let cases = [
        (
            &["--scale", "inf"][..],
            "invalid value 'inf' for '--scale <SCALE>': invalid scale \"inf\": expected a number above 0 and at most 50",
        ),
        (
            &["--scale", "1e20"],
            "invalid value '1e20' for '--scale <SCALE>': invalid scale \"1e20\": expected a number above 0 and at most 50",
        ),
        (
            &["--scale", "NaN"],
            "invalid value 'NaN' for '--scale <SCALE>': invalid scale \"NaN\": expected a number above 0 and at most 50",
        ),
        (
            &["--scale", "0"],
            "invalid value '0' for '--scale <SCALE>': invalid scale \"0\": expected a number above 0 and at most 50",
        ),
        (
            &["--bandwidth", "1B/s"],
            "invalid value '1B/s' for '--bandwidth <BANDWIDTH>': invalid bandwidth \"1B/s\": below the slowest this engine models, 1MB/s",
        ),
        (
            &["--bandwidth", "0B/s"],
            "invalid value '0B/s' for '--bandwidth <BANDWIDTH>': invalid bandwidth \"0B/s\": below the slowest this engine models, 1MB/s",
        ),
        (
            &["--latency", "600years"],
            "invalid value '600years' for '--latency <LATENCY>': invalid duration \"600years\": longer than 584 years",
        ),
        (
            &["--memory-limit", "1e30"],
            "invalid value '1e30' for '--memory-limit <MEMORY_LIMIT>': invalid size \"1e30\": expected a number with an optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB",
        ),
    ];
    for (flags, error) in cases {
        let output = taskscope()
            .args(["run", "tiny-partitions"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().next(), Some(&*format!("error: {error}")));
    }
}

#[test]
fn memory_limit_zero_means_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.ndjson");
    taskscope()
        .args([
            "run",
            "healthy",
            "--scale",
            "0.1",
            "--memory-limit",
            "0",
            "-o",
        ])
        .arg(&trace)
        .assert()
        .code(0);
    let (header, _) = TraceReader::open(&trace).unwrap().read_all().unwrap();
    assert!(
        header
            .cluster
            .workers
            .iter()
            .all(|w| w.memory_limit.is_none())
    );
}

// 4. Output injection.

/// A name that sets the terminal title, rings, clears the screen, and forges lines.
const EVIL: &str = "evil\x1b]0;pwned\x07\x1b[2J\rFAKE\t99999\nx;y z\u{9b}1m\u{202e}";

#[test]
fn names_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_named(dir.path(), EVIL, EVIL);
    let escaped = "evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\rFAKE\\t99999\\nx;y z\\u{9b}1m\\u{202e}";
    let info = stdout_of(taskscope().arg("info").arg(&trace), &trace);
    assert!(info.contains(&format!("    0  {escaped}")), "{info}");
    assert!(info.contains(&format!("  {escaped}  ")), "{info}");
    for args in [
        &["info"][..],
        &["analyze"],
        &["analyze", "--format", "markdown"],
    ] {
        let stdout = stdout_of(taskscope().args(args).arg(&trace), &trace);
        assert!(
            !stdout.contains(['\x1b', '\x07', '\r', '\t', '\u{9b}', '\u{202e}']),
            "{args:?}: {stdout:?}"
        );
        assert!(!stdout.contains("\nFAKE"), "{args:?}: {stdout:?}");
    }
    for by in ["group", "worker"] {
        let folded = stdout_of(
            taskscope()
                .args(["flamegraph", "--folded", "--by", by])
                .arg(&trace),
            &trace,
        );
        let frame = "evil_]0_pwned__[2J_FAKE_99999_x_y_z_1m_";
        let expected = match by {
            "group" => format!("{frame};compute 5000\n"),
            _ => format!("{frame};{frame};compute 5000\n"),
        };
        assert_eq!(folded, expected);
    }
    // Errors quote names (here a file name) escaped too, on one line.
    let named = dir.path().join("bad\x1b[2J\nname.json");
    std::fs::write(&named, "not a trace").unwrap();
    let output = taskscope().arg("info").arg(&named).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("bad\\u{1b}[2J\\nname.json"), "{stderr:?}");
}

// Sums of numbers from the input.

#[test]
fn sums_past_u64_saturate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ndjson");
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"p","origin_unix_ns":0,"cluster":{}}"#;
    // Two tasks of 2^63 ns (their total wrapped to "0 ns"), on thread u32::MAX of worker
    // u32::MAX (the thread count overflowed).
    let task = |i: u32| {
        format!(
            r#"{{"kind":"task","key":["a",{i}],"group":"a","worker":4294967295,"thread":4294967295,"status":"ok","phases":[{{"action":"compute","start":0,"stop":9223372036854775808}}]}}"#
        )
    };
    std::fs::write(&path, format!("{header}\n{}\n{}\n", task(0), task(1))).unwrap();
    let info = stdout_of(taskscope().arg("info").arg(&path), &path);
    assert!(
        info.contains("  a              2  307445734m33s  153722867m16s  153722867m16s"),
        "{info}"
    );
    assert!(
        info.contains("workers      1 (4294967295 threads)"),
        "{info}"
    );
    let folded = stdout_of(
        taskscope().args(["flamegraph", "--folded"]).arg(&path),
        &path,
    );
    assert_eq!(folded, "a;compute 18446744073709551\n");
}

#[test]
fn analyze_sums_past_u64_saturate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ndjson");
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"p","origin_unix_ns":0,"cluster":{}}"#;
    // Tasks of 2^63 ns on thread u32::MAX of worker u32::MAX: their busy time, a key computed
    // twice (the repeated time), a task of two 2^63 ns computes (its compute time) and a chain
    // through it (the critical path) all summed past u64 (a panic in debug builds, a wrapped
    // "0 s" in release).
    let task = |key: &str, deps: &str, phases: &str| {
        format!(
            r#"{{"kind":"task","key":{key},"group":"a","worker":4294967295,"thread":4294967295,"status":"ok","deps":[{deps}],"phases":[{phases}]}}"#
        )
    };
    let half = r#"{"action":"compute","start":0,"stop":9223372036854775808}"#;
    let second_half =
        r#"{"action":"compute","start":9223372036854775808,"stop":18446744073709551615}"#;
    let lines = [
        header.to_string(),
        task(r#"["a",0]"#, "", half),
        task(r#"["a",1]"#, "", half),
        task(r#"["a",0]"#, "", half),
        task(r#"["a",2]"#, r#"["a",1]"#, &format!("{half},{second_half}")),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = stdout_of(
        taskscope().args(["analyze", "--format", "json"]).arg(&path),
        &path,
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let max_seconds = u64::MAX as f64 / 1e9;
    let summary = &report["summary"];
    assert_eq!(summary["threads"], 4294967295u64, "{summary}");
    assert_eq!(
        summary["busy_seconds"].as_f64(),
        Some(max_seconds),
        "{summary}"
    );
    assert_eq!(
        summary["wall_seconds"].as_f64(),
        Some(max_seconds),
        "{summary}"
    );
    let path_ = &report["critical_path"];
    assert_eq!(path_["tasks"], 2, "{path_}");
    assert_eq!(
        path_["compute_seconds"].as_f64(),
        Some(max_seconds),
        "{path_}"
    );
    assert_eq!(path_["wait_seconds"].as_f64(), Some(0.0), "{path_}");
    let text = stdout_of(taskscope().arg("analyze").arg(&path), &path);
    assert!(!text.is_empty());
}

// Memory that grows without bound.

/// Feeds `head` then `chunk` over and over into a FIFO that `taskscope info` reads, until the
/// reader goes away; returns info's exit code and stderr.
fn info_of_endless_fifo(head: &'static [u8], chunk: &'static [u8], limit: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("endless.json");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            // Ends with EPIPE once the reader closes its end (Rust ignores SIGPIPE).
            if out.write_all(head).is_ok() {
                while out.write_all(chunk).is_ok() {}
            }
        })
    };
    let output = taskscope()
        .env("TASKSCOPE_IMPORT_LIMIT", limit)
        .arg("info")
        .arg(&fifo)
        .output()
        .unwrap();
    writer.join().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn endless_dask_exports_stop_at_the_import_limit() {
    let records = b"{\"key\": \"x-1\", \"worker\": \"w\", \"startstops\": []},\n";
    let (code, stderr) = info_of_endless_fifo(b"[", records, "4MiB");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.ends_with(
            "endless.json: Dask task stream larger than 4.00 MiB (the import limit; set \
             TASKSCOPE_IMPORT_LIMIT to raise it)\n"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, stderr) = info_of_endless_fifo(b"<html>", b"<p>more</p>\n", "4MiB");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.ends_with(
            "endless.json: Dask performance report larger than 4.00 MiB (the import limit; set \
             TASKSCOPE_IMPORT_LIMIT to raise it)\n"
        ),
        "{stderr}"
    );
    // Without the variable the limit is 1 GiB (reading that much here would take most of the
    // timeout; `traces::DEFAULT_IMPORT_LIMIT`).
    assert_eq!(traces::DEFAULT_IMPORT_LIMIT, 1 << 30);
    let (code, stderr) = info_of_endless_fifo(b"[", b" ", "lots");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.ends_with(
            "endless.json: TASKSCOPE_IMPORT_LIMIT=\"lots\": invalid size \"lots\": expected a \
             number with an optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB\n"
        ),
        "{stderr}"
    );
}

// 6. Smaller ones: Dask times no trace holds, warnings of every reader, event fields, lines the
// reader would refuse.

/// `taskscope info` of `contents` written to `dir/name`: exit code 1 and exactly `stderr`
/// (`{path}` standing for the file's path).
fn assert_info_refuses(dir: &Path, name: &str, contents: &str, stderr: &str) {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    let expected = stderr.replace("{path}", &path.display().to_string());
    assert_refused(taskscope().arg("info").arg(&path), 1, &expected, &path);
}

#[test]
fn dask_times_no_trace_can_hold_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Record 0 is fine; record 1, on line 2, has the phase under test.
    let stream = |start: &str, stop: &str| {
        format!(
            "[{{\"key\": \"x-1\", \"worker\": \"w\", \"startstops\": [{{\"action\": \"compute\", \
             \"start\": 1700000000, \"stop\": 1700000001}}]}},\n{{\"key\": \"x-2\", \"worker\": \
             \"w\", \"startstops\": [{{\"action\": \"compute\", \"start\": {start}, \"stop\": \
             {stop}}}]}}]\n"
        )
    };
    let field = |field: &str, message: &str| {
        format!(
            "error: {{path}}:2: task-stream record 1: field \"startstops[0].{field}\": {message}\n"
        )
    };
    let range =
        "s is not an instant a trace can hold (0 to 9223372036 s since 1970: the year 2262)";
    for (start, stop, expected) in [
        ("1e308", "1e308", field("start", &format!("1e308 {range}"))),
        (
            "1700000000",
            "1e19",
            field("stop", &format!("1e19 {range}")),
        ),
        ("-5", "1700000000", field("start", &format!("-5 {range}"))),
        // Python's json.dump writes a float NaN as NaN, which JSON does not have.
        (
            "NaN",
            "1700000000",
            field("start", "invalid JSON: expected value (column 77)"),
        ),
        (
            "1e400",
            "1",
            field("start", "invalid JSON: number out of range (column 82)"),
        ),
        (
            "1700003600",
            "1700000000",
            field(
                "stop",
                "the phase stops 3600 s before it starts (at most 60 s is read, as a clock \
                 stepped back)",
            ),
        ),
    ] {
        assert_info_refuses(dir.path(), "stream.json", &stream(start, stop), &expected);
    }
    // A clock stepped back by a second is read, as a phase of no length.
    let path = dir.path().join("stepped.json");
    std::fs::write(&path, stream("1700000002", "1700000001")).unwrap();
    let json = stdout_of(
        taskscope().args(["info", "--format", "json"]).arg(&path),
        &path,
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["tasks"]["ok"], 2, "{json}");
    assert_eq!(
        json["groups"][0]["total_compute_ns"], 1_000_000_000,
        "{json}"
    );

    // The performance report: its task stream's rows are a midpoint and a duration in ms.
    let report = |start: &str, duration: &str| {
        format!(
            "<html><script type=\"application/json\" id=\"x\">{{\"d\":{{\"type\":\"object\",\
             \"name\":\"ColumnDataSource\",\"attributes\":{{\"data\":{{\"type\":\"map\",\
             \"entries\":[[\"start\",[1700000000000, {start}]],[\"duration\",[1.0, {duration}]],\
             [\"key\",[\"x-1\", \"x-2\"]],[\"name\",[\"x\", \"x\"]],[\"worker_thread\",\
             [\"tcp://w:1-7\", \"tcp://w:1-7\"]]]}}}}}}}}</script></html>\n"
        )
    };
    let row = |column: &str, message: &str| {
        format!(
            "error: {{path}}:1: performance report task stream: row 1: column \"{column}\": \
             {message}\n"
        )
    };
    let range_ms =
        "ms is not an instant a trace can hold (0 to 9223372036854 ms since 1970: the year 2262)";
    for (start, duration, expected) in [
        ("1e308", "1.0", row("start", &format!("1e308 {range_ms}"))),
        ("-1", "1.0", row("start", &format!("-1 {range_ms}"))),
        (
            "1700000000000",
            "1e300",
            row(
                "duration",
                "1e300 ms: the phase would start before 1970 or end after 2262 (the instants a \
                 trace can hold)",
            ),
        ),
        (
            "1700000000000",
            "-7200000",
            row(
                "duration",
                "-7200000 ms: the phase stops 7200 s before it starts (at most 60 s is read, as \
                 a clock stepped back)",
            ),
        ),
    ] {
        assert_info_refuses(
            dir.path(),
            "report.html",
            &report(start, duration),
            &expected,
        );
    }
}

#[test]
fn native_phases_that_stop_long_before_they_start_are_refused() {
    // Every reader counts on start <= stop: `analyze` and `report` of such a phase panicked
    // (an overflow) in a debug build and wrapped in a release one.
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.1","producer":"hostile","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w","threads":1}]}}"#;
    let trace = |start: u64, stop: u64| {
        format!(
            "{header}\n{{\"kind\":\"task\",\"key\":\"x-1\",\"worker\":0,\"phases\":[{{\"action\":\
             \"queued\",\"start\":0,\"stop\":1}},{{\"action\":\"compute\",\"start\":{start},\
             \"stop\":{stop}}}]}}\n"
        )
    };
    for command in ["info", "analyze", "report", "flamegraph"] {
        let path = dir.path().join("inverted.ndjson");
        std::fs::write(&path, trace(3_600_000_000_000, 1)).unwrap();
        assert_refused(
            taskscope().arg(command).arg(&path),
            1,
            &format!(
                "error: {}:2: field \"phases[1].stop\": the phase stops 3599.999999999 s before \
                 it starts (at most 60 s is read, as a clock stepped back)\n",
                path.display()
            ),
            &path,
        );
    }
    // A clock stepped back by a second: a phase of no length.
    let path = dir.path().join("stepped.ndjson");
    std::fs::write(&path, trace(2_000_000_000, 1_000_000_000)).unwrap();
    let json = stdout_of(
        taskscope().args(["analyze", "--format", "json"]).arg(&path),
        &path,
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["summary"]["tasks"], 1, "{json}");
}

/// A native trace of one task whose last line (a second task) is cut mid-way.
fn truncated_trace(dir: &Path) -> (PathBuf, String) {
    let path = trace_named(dir, "x", "w");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let cut = br#"{"kind":"task","key":["x",1],"group":"x","worker":0,"phases":[{"act"#;
    file.write_all(cut).unwrap();
    let warning = format!(
        "warning: {}:3: dropped {} bytes at the end (the last line is incomplete; was the \
         recorder interrupted?)\n",
        path.display(),
        cut.len()
    );
    (path, warning)
}

#[test]
fn every_reader_warns_of_a_truncated_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (input, warning) = truncated_trace(dir.path());
    let svg = dir.path().join("out.svg");
    let chrome = dir.path().join("out.json");
    let html = dir.path().join("out.html");
    for (args, tail) in [
        (vec!["info"], String::new()),
        (vec!["analyze"], String::new()),
        (vec!["flamegraph", "--folded"], String::new()),
        (
            vec!["flamegraph", "-o", svg.to_str().unwrap()],
            String::new(),
        ),
        (vec!["report", "-o", html.to_str().unwrap()], String::new()),
        (
            vec!["export", "chrome", "-o", chrome.to_str().unwrap()],
            format!("wrote 4 trace events to {}\n", chrome.display()),
        ),
    ] {
        let output = taskscope().args(&args).arg(&input).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert_eq!(
            String::from_utf8(output.stderr).unwrap(),
            format!("{warning}{tail}"),
            "{args:?}"
        );
    }
    // Both sides of a differential flamegraph.
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = trace_named(&other_dir, "y", "w");
    let output = taskscope()
        .args(["flamegraph", "--folded", "--diff"])
        .arg(&input)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(String::from_utf8(output.stderr).unwrap(), warning);
}

#[test]
fn errors_in_event_records_name_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.1","producer":"hostile","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w","threads":1}]}}"#;
    for (event, message) in [
        (
            r#"{"kind":"event","time":5,"type":"worker-paused","worker":"w"}"#,
            r#"field "worker": expected non-negative integer, found string "w""#,
        ),
        (
            r#"{"kind":"event","time":5,"type":"worker-added","worker":{"id":1,"name":"a","threads":-1}}"#,
            r#"field "worker.threads": expected non-negative integer, found integer `-1`"#,
        ),
        (
            r#"{"kind":"event","time":5,"type":"warning","message":"m","worker":0,"source":7}"#,
            r#"field "source": expected string, found integer `7`"#,
        ),
        (
            r#"{"kind":"event","time":5,"type":"task-retried","key":"x-1","attempt":-2}"#,
            r#"field "attempt": expected non-negative integer, found integer `-2`"#,
        ),
        (
            r#"{"kind":"event","time":-5,"type":"worker-paused","worker":0}"#,
            r#"field "time": expected non-negative integer, found integer `-5`"#,
        ),
        (
            r#"{"kind":"event","time":5,"type":"worker-killed","worker":0}"#,
            r#"missing required field "reason""#,
        ),
        (
            r#"{"kind":"event","time":5,"type":3}"#,
            r#"field "type": expected string, found number"#,
        ),
    ] {
        assert_info_refuses(
            dir.path(),
            "events.ndjson",
            &format!("{header}\n{event}\n"),
            &format!("error: {{path}}:2: {message}\n"),
        );
    }
}

#[test]
fn convert_refuses_a_line_the_reader_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    // A key of 40 MiB: its line reads (under the 64 MiB limit), but the native format also
    // writes the group derived from it, which would make a line of 80 MiB.
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.1","producer":"hostile","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w","threads":1}]}}"#;
    let key = "k".repeat(40 << 20);
    let task = |key: &str| {
        format!(
            "{{\"kind\":\"task\",\"key\":[\"{key}\",0],\"worker\":0,\"phases\":[{{\"action\":\
             \"compute\",\"start\":0,\"stop\":5000000}}]}}\n"
        )
    };
    let input = dir.path().join("long.ndjson");
    std::fs::write(&input, format!("{header}\n{}{}", task("x"), task(&key))).unwrap();
    for output in ["out.ndjson", "out.ndjson.zst"] {
        let output = dir.path().join(output);
        let expected = format!(
            "error: {}:3: task ('{}… would be a line of 83886224 bytes, over the 64 MiB a trace \
             line may hold (the reader refuses longer lines); not written\n",
            output.display(),
            &key[..58]
        );
        assert_refused(
            taskscope()
                .arg("convert")
                .arg(&input)
                .arg("-o")
                .arg(&output),
            1,
            &expected,
            &input,
        );
        // Nothing left behind: no output, no temporary file.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("long.ndjson")]);
    }
}
