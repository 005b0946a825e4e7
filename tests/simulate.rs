//! `taskscope simulate`: its output and errors, and its calibration on real Dask runs (every
//! plugin trace of `analyzer/tests/corpus/` replayed on its own recorded shape).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use engine::simulate::{Model, Replay, simulate};
use predicates::prelude::*;

#[path = "common/readme.rs"]
mod readme;

/// Two workers of a 2-core host, four 100 ms tasks 90 % on the CPU (hand-made, format 1.3).
const CPU_CROWD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/traces/tests/data/cpu_crowd.ndjson"
);

const STREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/traces/tests/data/dask_task_stream.json"
);

fn corpus() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analyzer/tests/corpus"
    ))
}

/// `taskscope simulate TRACE ARGS… --format json`, parsed.
fn simulate_json(trace: &Path, args: &[&str]) -> serde_json::Value {
    let out = taskscope()
        .arg("simulate")
        .arg(trace)
        .args(args)
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn taskscope() -> Command {
    let mut cmd = Command::cargo_bin("taskscope").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd
}

#[test]
fn the_first_line_is_the_calibration_then_one_row_per_shape() {
    let trace = corpus().join("healthy-delayed-tree/plugin.ndjson.zst");
    let out = taskscope()
        .arg("simulate")
        .arg(&trace)
        .args(["--workers", "1,2", "--threads", "1,2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(
            "calibration: replayed on its own shape (2 workers × 1 thread), the model gives "
        ),
        "{text}"
    );
    let rows: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(['1', '2']))
        .collect();
    let shapes: Vec<&str> = rows.iter().map(|r| r.split("  ").next().unwrap()).collect();
    assert_eq!(shapes, ["1×1", "1×2", "2×1 (rec)", "2×2"], "{text}");
    // Replayed within 1 %: no caution about the figures.
    assert!(
        !text.contains("note: the replay of the recorded shape"),
        "{text}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("critical path (unlimited workers, free transfers): "),
        "{text}"
    );
}

#[test]
fn json_has_the_recorded_run_the_predictions_and_the_critical_path() {
    let trace = corpus().join("healthy-delayed-tree/plugin.ndjson.zst");
    let json = simulate_json(&trace, &["--workers", "4", "--threads", "1"]);
    assert_eq!(json["recorded"]["workers"], 2);
    assert_eq!(json["recorded"]["threads"], 1);
    let predictions = json["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 1);
    assert_eq!(predictions[0]["workers"], 4);
    let wall = predictions[0]["wall_seconds"].as_f64().unwrap();
    let critical = json["critical_path_seconds"].as_f64().unwrap();
    let recorded = json["recorded"]["wall_seconds"].as_f64().unwrap();
    // Twice the workers helps a tree of independent leaves, and nothing beats its critical path.
    assert!(critical <= wall && wall < recorded, "{json}");

    // A loaded run's small transfers spread: a task fetching from more peers at once waits
    // for a slower one. One peer waits the latency; `--latency` makes every round wait it.
    let trace = corpus().join("memory-spill-4x1/plugin.ndjson.zst");
    let rounds = |args: &[&str]| -> Vec<f64> {
        let json = simulate_json(&trace, args);
        let model = &json["model"];
        let rounds: Vec<f64> = model["gather_latency_seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        assert_eq!(rounds[0], model["latency_seconds"].as_f64().unwrap());
        rounds
    };
    let fitted = rounds(&["--workers", "4"]);
    assert_eq!(fitted.len(), 10);
    assert!(fitted.windows(2).all(|w| w[0] <= w[1]) && fitted[9] > 4.0 * fitted[0]);
    assert_eq!(rounds(&["--workers", "4", "--latency", "5ms"]), [0.005; 10]);
}

#[test]
fn a_task_stream_replays_without_dependencies_and_says_so() {
    taskscope()
        .args(["simulate", STREAM])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: the trace has no dependencies (a task stream?): tasks replay as independent",
        ));
}

#[test]
fn scattered_data_is_placed_where_it_was_held_and_said_so() {
    // straggler-scatter: 16 arrays scattered to one worker, each read by one task.
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analyzer/tests/corpus/straggler-scatter/plugin.ndjson.zst"
    );
    taskscope()
        .args(["simulate", trace])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: 16 results the trace has no task for (scattered data) start where the trace \
             says they were held",
        ))
        .stdout(predicate::str::contains("are left out").not())
        // Dask kept the tasks by their data; the replay's stealing does not: 40 % short.
        .stdout(predicate::str::contains(
            "note: the replay of the recorded shape is 40 % shorter than the run: something it \
             does not model mattered here",
        ));
}

#[test]
fn tasks_share_the_recorded_hosts_cores_and_the_cpu_line_says_so() {
    // Two workers of a 2-core host each ran two 100 ms tasks, 90 % of it on the CPU.
    let trace = PathBuf::from(CPU_CROWD);
    let text = String::from_utf8(
        taskscope()
            .arg("simulate")
            .arg(&trace)
            .args(["--workers", "4"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        text.contains(
            "\ncpu: tasks computing on one host share its 2 cores; each wants 90 % of a core \
             (its group's recorded CPU time over compute time); the shape's workers stand on the \
             recorded hosts\n"
        ),
        "{text}"
    );
    // Four tasks wanting 3.6 cores of 2: each takes 1 - 0.9 + 0.9 s where 3.6 / (0.1 + 0.9 s)
    // = 2, s = 1.89: 180 ms, where 100 ms would be half the recorded 200 ms.
    let wall = |args: &[&str]| {
        simulate_json(&trace, args)["predictions"][0]["wall_seconds"]
            .as_f64()
            .unwrap()
    };
    let crowded = wall(&["--workers", "4"]);
    assert!((crowded - 0.18).abs() < 0.002, "{crowded}");
    let roomy = wall(&["--workers", "4", "--cores", "4"]);
    assert!((roomy - 0.1).abs() < 0.002, "{roomy}");
    // Without the metrics, nothing is shared, and the line says why.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("no-metrics.ndjson");
    let text = std::fs::read_to_string(&trace).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("group-metrics"))
        .collect();
    std::fs::write(&bare, kept.join("\n") + "\n").unwrap();
    taskscope()
        .arg("simulate")
        .arg(&bare)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "cpu: not modelled (the trace has no CPU time per group, or no host's cores and no \
             --cores): tasks never slow each other down\n",
        ));
}

#[test]
fn bad_input_is_one_line_and_bad_flags_exit_2() {
    taskscope()
        .args(["simulate", "/nonexistent/trace.ndjson"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("error: ")
                .and(predicate::str::contains("/nonexistent/trace.ndjson")),
        )
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(
        &empty,
        "{\"kind\":\"header\",\"format\":\"taskscope-trace\",\"version\":\"1.1\",\"producer\":\"test\",\"origin_unix_ns\":0,\"cluster\":{}}\n",
    )
    .unwrap();
    taskscope()
        .arg("simulate")
        .arg(&empty)
        .assert()
        .code(1)
        .stderr(format!(
            "error: cannot replay {}: the trace has no finished task to replay\n",
            empty.display()
        ));
    for (flag, value) in [
        ("--workers", "0"),
        ("--workers", "4097"),
        ("--threads", "two"),
        ("--bandwidth", "fast"),
        ("--latency", "soon"),
        ("--memory-limit", "lots"),
        ("--cores", "0"),
    ] {
        taskscope()
            .args(["simulate", STREAM, flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(flag));
    }
    // A Dask cluster of a thousand workers is a shape to predict (the engine runs at most 64).
    let json = simulate_json(Path::new(STREAM), &["--workers", "1000,4096"]);
    let workers: Vec<u64> = json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, [1000, 4096], "{json}");
}

/// Scenarios the replay does not model yet, and why; each must stay outside the bound, so the
/// list shrinks as the model grows.
const UNMODELLED: [(&str, &str); 7] = [
    (
        "healthy-aligned-join",
        "the replay moves 206 MiB where Dask's transfers record 126 MiB, and its dependent tasks waited 9 ms (median) for the scheduler's round trip, a median its 102 of them measure loosely (10th to 75th percentile: 0 to 24 ms)",
    ),
    (
        "healthy-aligned-join-4x1",
        "the replay's placement moves 412 MiB where Dask, keeping aligned partitions together, moved 240 MiB",
    ),
    (
        "healthy-aligned-join-slow-start",
        "the replay's placement moves 320 MiB where Dask, keeping aligned partitions together, moved 153 MiB, at the 87 MiB/s its slow first second measured",
    ),
    (
        "healthy-aligned-join-3x1",
        "the replay's placement moves 446 MiB where Dask, keeping aligned partitions together, moved 206 MiB",
    ),
    (
        "healthy-bag-4x1",
        "the replay's placement moves 48.8 MiB of parsed records where Dask moved 17.1 MiB in 21 transfers, at the 11 MB/s those measured (pickled Python objects)",
    ),
    (
        "serialization-objects-2x2",
        "the replay's placement moves 54.7 MiB of pickled lists where Dask, placing merges on 2 threads a worker, moved 83.7 MiB",
    ),
    (
        "straggler-scatter",
        "Dask moved 1 of its 16 tasks away from the worker holding their scattered inputs; the replay's work stealing, which does not weigh the 24 MB each move fetches, moves 6",
    ),
];

/// The replay's error on its own recorded shape stays within this for every other scenario.
const CALIBRATION_BOUND: f64 = 0.25;

const BEGIN: &str = "<!-- calibration table: tests/simulate.rs -->\n";
const END: &str = "<!-- end of calibration table -->\n";

#[test]
fn replaying_each_real_dask_run_on_its_own_shape_gives_back_its_wall_time() {
    let mut dirs: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("plugin.ndjson.zst").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "{} scenarios", dirs.len());
    let mut table = String::from(
        "| scenario | shape | recorded | replayed | error |\n|---|---|---:|---:|---:|\n",
    );
    let mut wrong = Vec::new();
    let mut within = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let file = Replay::open(&dir.join("plugin.ndjson.zst")).unwrap();
        let header = file.header;
        let replay = file.replay.unwrap();
        let shape = replay.recorded.shape;
        let predicted = simulate(
            &replay,
            &Model::recorded(&replay, header.cluster.memory, shape),
        );
        let recorded = replay.recorded.wall_ns as f64 / 1e9;
        let replayed = predicted.wall_ns as f64 / 1e9;
        let error = (replayed - recorded) / recorded;
        let reason = UNMODELLED.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        let _ = writeln!(
            table,
            "| {name} | {shape} | {recorded:.2} s | {replayed:.2} s | {:+.0} %{} |",
            error * 100.0,
            reason.map_or(String::new(), |r| format!(" ({r})"))
        );
        within += usize::from(error.abs() <= 0.20);
        match reason {
            None if error.abs() > CALIBRATION_BOUND => {
                wrong.push(format!("{name}: {:+.0} %", error * 100.0))
            }
            Some(_) if error.abs() <= CALIBRATION_BOUND => wrong.push(format!(
                "{name} is modelled now ({:+.0} %): take it off UNMODELLED",
                error * 100.0
            )),
            _ => {}
        }
    }
    let _ = writeln!(
        table,
        "\n{within} of {} runs replay within 20 % of their recorded wall time.",
        dirs.len()
    );
    readme::check_root_table(BEGIN, END, &table, &wrong);
}

#[test]
fn a_fix_is_predicted_beside_each_shape() {
    let trace = corpus().join("large-arg-delayed/plugin.ndjson.zst");
    let json = simulate_json(&trace, &["--workers", "2", "--fix", "oversized-argument"]);
    assert_eq!(json["fix"]["rule"], "oversized-argument");
    let p = &json["predictions"][0];
    let (wall, fixed) = (
        p["wall_seconds"].as_f64().unwrap(),
        p["fixed_wall_seconds"].as_f64().unwrap(),
    );
    // 16 tasks each shipping a 40 MB argument: once per worker, the run is mostly gone.
    assert!(fixed < wall / 4.0, "{json}");
    assert_eq!(json["fix"]["changes_the_trace"], true);
    // A fix with nothing to change in a trace says so instead of predicting no saving.
    let tree = corpus().join("healthy-delayed-tree/plugin.ndjson.zst");
    let json = simulate_json(&tree, &["--workers", "2", "--fix", "recomputation"]);
    assert_eq!(json["fix"]["changes_the_trace"], false);
    assert!(
        json["predictions"][0]["fixed_wall_seconds"].is_null(),
        "{json}"
    );
    taskscope()
        .arg("simulate")
        .arg(&tree)
        .args(["--fix", "recomputation"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "fix recomputation: nothing in this trace for it to change",
        ));
    taskscope()
        .arg("simulate")
        .arg(&trace)
        .args(["--fix", "communication"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no simulated fix for \"communication\"; the simulator applies: idle-gaps, oversized-argument, recomputation, skew, tiny-partitions",
        ));
}

#[test]
fn analyze_says_what_a_simulated_fix_saves_when_the_replay_reproduces_the_run() {
    let json_of = |scenario: &str, file: &str| -> serde_json::Value {
        let out = taskscope()
            .args(["analyze", "--format", "json"])
            .arg(corpus().join(scenario).join(file))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    let json = |scenario: &str| json_of(scenario, "plugin.ndjson.zst");
    let text = |scenario: &str| {
        taskscope()
            .arg("analyze")
            .arg(corpus().join(scenario).join("plugin.ndjson.zst"))
            .assert()
            .success()
    };
    // 32 keys computed twice: reading them instead saves about the repeated compute.
    let report = json("recompute-delayed");
    let finding = &report["findings"][0];
    assert_eq!(finding["rule"], "recomputation");
    let simulated = &finding["simulated"];
    let saves = simulated["saves_seconds"].as_f64().unwrap();
    // The replay's saving is the impact; the rule's estimate, which agrees here, is evidence.
    assert_eq!(finding["impact_from"], "simulation", "{finding}");
    assert!(
        (finding["impact_seconds"].as_f64().unwrap() - saves).abs() < 1e-3,
        "{finding}"
    );
    let estimate = finding["evidence"]["estimated_impact_seconds"]
        .as_f64()
        .unwrap();
    assert!((saves - estimate).abs() < 0.25 * estimate, "{finding}");
    assert!(
        simulated["calibration_error"].as_f64().unwrap().abs() <= 0.25,
        "{finding}"
    );
    // A task stream has no graph to fix: its replay would take the client's gaps for dispatch
    // overhead and find nothing to submit at once.
    let report = json_of("idle-compute-loop", "stream.json.zst");
    assert_eq!(report["findings"][0]["rule"], "idle-gaps");
    assert!(report["findings"][0].get("simulated").is_none(), "{report}");
    assert_eq!(report["findings"][0]["impact_from"], "estimate");
    assert!(report["findings"][0]["evidence"]["estimated_impact_seconds"].is_null());
    // A hot key behind a P2P shuffle: the replay runs the unfixed graph 15 % (1.3 s) faster
    // than recorded and finds nothing to gain from splitting the key, less than its own error
    // (a real Dask run of the fix saved 16 %). The rule's estimate stands, and the severe skew
    // stays first.
    let report = json("skew-hot-key");
    let top = &report["findings"][0];
    assert_eq!(
        (&top["rule"], &top["severity"], &top["impact_from"]),
        (&"skew".into(), &"severe".into(), &"estimate".into()),
        "{report}"
    );
    assert!(
        top["simulated"]["saves_seconds"].as_f64().unwrap() < 0.1,
        "{top}"
    );
    assert!(
        top["evidence"]["estimated_impact_seconds"].is_null(),
        "{top}"
    );
    text("idle-compute-loop").stdout(
        predicate::str::contains("1. [severe] idle-gaps (~2.62 s simulated): ").and(
            predicate::str::is_match(
                "   simulated: replayed with the fix, the run takes [0-9.]+ s instead of \
                     [0-9.]+ s: 2.62 s saved \\(the replay is [-+][0-9]+ % off the recorded \
                     run; the rule's estimate was 2.57 s\\)",
            )
            .unwrap(),
        ),
    );
    text("skew-hot-key").stdout(
        predicate::str::contains("1. [severe] skew (~3.97 s): ").and(
            predicate::str::is_match(
                "0.00 s saved \\(the replay is -1[0-9] % off the recorded run, 1.[0-9]{2} s: \
                     more than the saving, so the rule's estimate stands\\)",
            )
            .unwrap(),
        ),
    );
}

#[test]
fn a_trace_read_from_a_pipe_is_analyzed_once_without_a_replay() {
    let bytes = std::fs::read(corpus().join("recompute-delayed/plugin.ndjson.zst")).unwrap();
    taskscope()
        .args(["analyze", "/dev/stdin"])
        .write_stdin(bytes)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("recomputation")
                .and(predicate::str::contains("simulated:").not()),
        );
}

#[test]
fn hostile_shapes_and_durations_end_in_a_clear_error_or_saturated_times() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"p","origin_unix_ns":0,"cluster":{}}"#;
    let task = |key: &str, thread: u32, deps: &str, phases: &str| {
        format!(
            r#"{{"kind":"task","key":{key},"group":"a","worker":0,"thread":{thread},"status":"ok","deps":[{deps}],"phases":[{phases}]}}"#
        )
    };
    let half = r#"{"action":"compute","start":0,"stop":9223372036854775808}"#;
    let second = r#"{"action":"compute","start":9223372036854775808,"stop":18446744073709551615}"#;
    // A thread numbered u32::MAX: a worker of four billion threads, which no replay can hold.
    let wide = dir.path().join("wide.ndjson");
    std::fs::write(
        &wide,
        format!("{header}\n{}\n", task(r#"["a",0]"#, u32::MAX, "", half)),
    )
    .unwrap();
    taskscope()
        .arg("simulate")
        .arg(&wide)
        .assert()
        .code(1)
        .stderr(format!(
            "error: cannot replay {}: the recorded cluster has 1 workers of up to 4294967295 \
             threads; the simulator models at most 4096 workers of 256 threads\n",
            wide.display()
        ));
    // `analyze` of it still answers, without a simulated figure.
    taskscope().arg("analyze").arg(&wide).assert().success();
    // Tasks of 2^63 ns in a chain: every sum saturates instead of overflowing.
    let long = dir.path().join("long.ndjson");
    let lines = [
        header.to_string(),
        task(r#"["a",0]"#, 0, "", half),
        task(r#"["a",1]"#, 0, r#"["a",0]"#, second),
    ];
    std::fs::write(&long, lines.join("\n") + "\n").unwrap();
    let json = simulate_json(&long, &["--workers", "1,2"]);
    assert_eq!(json["predictions"].as_array().unwrap().len(), 2, "{json}");
    assert!(
        json["critical_path_seconds"].as_f64().unwrap() > 1.8e10,
        "{json}"
    );
    // Sizes of 2^64 - 1 bytes everywhere a trace gives one (results, working memory,
    // scattered data, resources), on a worker with a memory limit: memory saturates.
    let huge = dir.path().join("huge.ndjson");
    let max = u64::MAX;
    let lines = [
        r#"{"kind":"header","format":"taskscope-trace","version":"1.2","producer":"p","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w","threads":2,"memory_limit":1000,"resources":{"GPU":1e308}}]}}"#.to_string(),
        format!(r#"{{"kind":"event","time":0,"type":"data-added","key":"d","workers":[0,7],"nbytes":{max}}}"#),
        format!(r#"{{"kind":"event","time":0,"type":"data-added","key":"e","workers":[],"nbytes":{max}}}"#),
        format!(r#"{{"kind":"task","key":"x","worker":0,"status":"ok","nbytes":{max},"working_bytes":{max},"resources":{{"GPU":1e308}},"restricted_to":[4294967295],"deps":["d","e"],"phases":[{{"action":"compute","start":1,"stop":5}}]}}"#),
        format!(r#"{{"kind":"task","key":"y","worker":0,"thread":1,"status":"lost","working_bytes":{max},"phases":[{{"action":"compute","start":1,"stop":5}}]}}"#),
        format!(r#"{{"kind":"task","key":"y","worker":0,"status":"ok","nbytes":{max},"working_bytes":{max},"deps":["x"],"phases":[{{"action":"compute","start":6,"stop":9}}]}}"#),
    ];
    std::fs::write(&huge, lines.join("\n") + "\n").unwrap();
    let json = simulate_json(&huge, &["--workers", "1,2,4"]);
    assert_eq!(json["predictions"].as_array().unwrap().len(), 3, "{json}");
    // Hosts of one and of 2^32 - 1 cores crowded by 2^63 ns tasks wanting a whole core, and
    // group metrics past any sense (CPU time of 1e308 s, a negative wait).
    let crowded = dir.path().join("crowded.ndjson");
    let lines = [
        r#"{"kind":"header","format":"taskscope-trace","version":"1.3","producer":"p","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w","threads":2,"host":"h","host_cores":1},{"id":1,"name":"v","threads":2,"host":"g","host_cores":4294967295}]}}"#.to_string(),
        task(r#"["a",0]"#, 0, "", half),
        task(r#"["a",1]"#, 1, "", half),
        task(r#"["a",2]"#, 0, r#"["a",0]"#, second),
        r#"{"kind":"group-metrics","time":0,"group":"a","metrics":{"execute/thread-cpu/seconds":1e308,"execute/thread-noncpu/seconds":0}}"#.to_string(),
        r#"{"kind":"group-metrics","time":0,"group":"b","metrics":{"execute/thread-cpu/seconds":1e308,"execute/thread-noncpu/seconds":-5}}"#.to_string(),
    ];
    std::fs::write(&crowded, lines.join("\n") + "\n").unwrap();
    for cores in ["1", "65536"] {
        let json = simulate_json(
            &crowded,
            &[
                "--workers",
                "1,2,64",
                "--threads",
                "1,256",
                "--cores",
                cores,
            ],
        );
        assert_eq!(json["predictions"].as_array().unwrap().len(), 6, "{json}");
        assert_eq!(
            json["model"]["cpu_share"],
            serde_json::json!([1.0, 1.0]),
            "{json}"
        );
    }
    let json = simulate_json(&crowded, &["--workers", "1,2"]);
    assert_eq!(
        json["model"]["host_cores"],
        serde_json::json!([1, 4294967295u32]),
        "{json}"
    );
}
