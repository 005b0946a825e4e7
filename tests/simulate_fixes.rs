//! Fixes against real Dask: corpus scenarios whose finding has a simulated fix, each recorded
//! unfixed and fixed (the finding's advice applied as a Dask user would) on its corpus shape,
//! alternately, three times (`bridges/dask/whatif/fixes.py`, traces and wall times in
//! `analyzer/tests/whatif-fixes/<scenario>/`). For each, the saving the fix really brought (the
//! median wall times' difference, from `facts.json`: wall times are data, nothing here is timed)
//! against the rule's own estimate (`impact_seconds`, or `estimated_impact_seconds` where
//! `analyze` takes the simulated saving as the impact) and the replay's (`simulated`, as
//! `analyze` attaches it, and `simulate --fix` against the recorded wall) on the median unfixed
//! trace. The test keeps the README's table current, checks the facts against the traces, and
//! holds the scenarios where `analyze` attaches no simulated figure to [`NOT_ATTACHED`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use engine::simulate::{Fix, Model, Replay, relative_error, simulate};
use serde_json::Value;

#[path = "common/readme.rs"]
mod readme;

const BEGIN: &str = "<!-- fix table: tests/simulate_fixes.rs -->\n";
const END: &str = "<!-- end of fix table -->\n";

/// Scenarios whose finding `analyze` gives no simulated figure, and why; each must stay without
/// one, so the list shrinks as the replay grows.
const NOT_ATTACHED: [(&str, &str); 0] = [];

fn fixes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("analyzer/tests/whatif-fixes")
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn f64_at(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_f64()
        .unwrap_or_else(|| panic!("facts.json: no number at {path:?}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("facts.json: no string at {path:?}"))
}

/// One scenario's row: the real saving and the two predictions of it.
struct Row {
    scenario: String,
    rule: String,
    unfixed: f64,
    fixed: f64,
    /// The median client-side wall times' difference (scatter and client work included).
    client_saving: f64,
    /// The paired savings' range (unfixed-i − fixed-i of each repetition).
    paired: (f64, f64),
    estimate: f64,
    /// `analyze`'s simulated saving (against the replay's own wall), when attached.
    attached: Option<f64>,
    /// Why `analyze` attaches none.
    not_attached: Option<String>,
    /// `simulate --fix` on the recorded shape: the recorded wall minus the fixed prediction.
    simulate_fix: Option<f64>,
    calibration: f64,
}

fn row(dir: &Path) -> Row {
    let scenario = dir.file_name().unwrap().to_string_lossy().to_string();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap();
    let rule = str_at(&facts, &["rule"]).to_string();
    let unfixed = f64_at(&facts, &["unfixed", "median_trace_wall_seconds"]);
    let fixed = f64_at(&facts, &["fixed", "median_trace_wall_seconds"]);
    let client_saving = f64_at(&facts, &["unfixed", "median_client_wall_seconds"])
        - f64_at(&facts, &["fixed", "median_client_wall_seconds"]);

    // The facts are the traces': each committed trace's wall is the one facts.json records.
    let runs = facts["runs"].as_array().unwrap();
    let mut by_rep: std::collections::BTreeMap<u64, (Option<f64>, Option<f64>)> =
        Default::default();
    for run in runs {
        let wall = f64_at(run, &["trace_wall_seconds"]);
        let rep = run["rep"].as_u64().unwrap();
        let entry = by_rep.entry(rep).or_default();
        match str_at(run, &["variant"]) {
            "unfixed" => entry.0 = Some(wall),
            _ => entry.1 = Some(wall),
        }
        let path = dir.join(str_at(run, &["file"]));
        if path.exists() {
            let report = analyzer::analyze(traces::TraceReader::open(&path).unwrap()).unwrap();
            assert!(
                (report.summary.wall_seconds - wall).abs() < 1e-3,
                "{}: wall {} s, facts.json says {wall} s",
                path.display(),
                report.summary.wall_seconds
            );
        }
    }
    let savings: Vec<f64> = by_rep
        .values()
        .filter_map(|(u, f)| Some((*u)? - (*f)?))
        .collect();
    assert!(
        !savings.is_empty(),
        "{scenario}: no repetition with both runs"
    );
    let paired = (
        savings.iter().copied().fold(f64::INFINITY, f64::min),
        savings.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    for variant in ["unfixed", "fixed"] {
        let file = dir.join(str_at(&facts, &[variant, "median_file"]));
        assert!(
            file.exists(),
            "{}: the median run is committed",
            file.display()
        );
    }

    // The rule's estimate and analyze's simulated figure, on the median unfixed trace.
    let trace = dir.join(str_at(&facts, &["unfixed", "median_file"]));
    let mut report = analyzer::analyze(traces::TraceReader::open(&trace).unwrap()).unwrap();
    whatif::attach(&mut report, &trace).unwrap();
    // analyze takes an attached simulated saving as the impact and keeps the rule's own in the
    // evidence; of several findings of the rule, the one the rule estimates largest.
    let estimate = |f: &analyzer::Finding| {
        f.evidence("estimated_impact_seconds")
            .unwrap_or(f.impact_seconds)
    };
    let finding = report
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .max_by(|a, b| estimate(a).total_cmp(&estimate(b)))
        .unwrap_or_else(|| panic!("{scenario}: no {rule} finding on the unfixed trace"));
    let estimate = estimate(finding);
    let attached = finding.simulated.map(|s| s.saves_seconds);

    // `simulate --fix RULE` on the recorded shape, and why analyze attaches nothing.
    let file = Replay::open(&trace).unwrap();
    let replay = file.replay.unwrap();
    let model = Model::recorded(&replay, file.header.cluster.memory, replay.recorded.shape);
    let replayed = simulate(&replay, &model).wall_ns;
    let calibration = relative_error(replayed, replay.recorded.wall_ns);
    let fix = Fix::from_rule(&rule).unwrap();
    let simulate_fix = replay
        .fixed(fix)
        .map(|fixed| seconds(replay.recorded.wall_ns) - seconds(simulate(&fixed, &model).wall_ns));
    let not_attached = match attached {
        Some(_) => None,
        None if calibration.abs() > whatif::CALIBRATION_BOUND => Some(format!(
            "replay {:+.0} % off the recorded wall",
            calibration * 100.0
        )),
        None if replay
            .fixed_in(fix, finding.scope.group.as_deref(), &finding.scope.keys)
            .is_none() =>
        {
            Some("the fix changes nothing in the finding's scope".to_string())
        }
        None => Some("not attached".to_string()),
    };
    Row {
        scenario,
        rule,
        unfixed,
        fixed,
        client_saving,
        paired,
        estimate,
        attached,
        not_attached,
        simulate_fix,
        calibration,
    }
}

/// Which prediction is closer to the real saving: the rule's estimate or the simulation's
/// (`analyze`'s figure, or `simulate --fix`'s where `analyze` attaches none); within 0.05 s of
/// each other, a tie.
fn closer(real: f64, estimate: f64, simulated: Option<f64>, attached: bool) -> String {
    let Some(simulated) = simulated else {
        return "rule (no simulation)".to_string();
    };
    let (e, s) = ((estimate - real).abs(), (simulated - real).abs());
    let verdict = if (e - s).abs() < 0.05 {
        "tie"
    } else if e < s {
        "rule"
    } else {
        "simulation"
    };
    if attached {
        verdict.to_string()
    } else {
        format!("{verdict} (`simulate --fix`)")
    }
}

#[test]
fn a_fixed_real_dask_run_saves_what_the_rule_or_the_replay_predicted() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenario in {}", fixes_dir().display());
    let mut rows: Vec<Row> = dirs.iter().map(|d| row(d)).collect();
    rows.sort_by(|a, b| (&a.rule, &a.scenario).cmp(&(&b.rule, &b.scenario)));

    let mut table = String::from(
        "| scenario | rule | unfixed → fixed | real saving | client's clock | rule estimate | \
         simulated saving | `simulate --fix` | closer |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut wrong = Vec::new();
    let (mut rule_wins, mut sim_wins) = (0, 0);
    for r in &rows {
        let real = r.unfixed - r.fixed;
        let simulated = match (r.attached, &r.not_attached) {
            (Some(s), _) => format!("{s:.2} s"),
            (None, Some(why)) => format!("— ({why})"),
            (None, None) => unreachable!(),
        };
        let simulate_fix = r
            .simulate_fix
            .map_or("— (changes nothing)".to_string(), |s| format!("{s:.2} s"));
        let verdict = closer(
            real,
            r.estimate,
            r.attached.or(r.simulate_fix),
            r.attached.is_some(),
        );
        rule_wins += usize::from(verdict.starts_with("rule"));
        sim_wins += usize::from(verdict.starts_with("simulation"));
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} s → {:.2} s | {real:.2} s ({:.2}–{:.2}) | {:.2} s | {:.2} s | \
             {simulated} | {simulate_fix} | {verdict} |",
            r.scenario,
            r.rule,
            r.unfixed,
            r.fixed,
            r.paired.0,
            r.paired.1,
            r.client_saving,
            r.estimate
        );
        let listed = NOT_ATTACHED.iter().find(|(s, _)| *s == r.scenario);
        match (r.attached, listed) {
            (Some(s), Some(_)) => wrong.push(format!(
                "{}: analyze attaches a simulated saving now ({s:.2} s, calibration {:+.0} %): \
                 take it off NOT_ATTACHED",
                r.scenario,
                r.calibration * 100.0
            )),
            (None, None) => wrong.push(format!(
                "{}: analyze attaches no simulated saving ({}): list it in NOT_ATTACHED with why",
                r.scenario,
                r.not_attached.as_deref().unwrap_or("")
            )),
            _ => {}
        }
    }
    let _ = writeln!(
        table,
        "\nThe rule's estimate is closer to the real saving in {rule_wins} of {} scenarios, the \
         simulation in {sim_wins} (the others within 0.05 s of each other).",
        rows.len()
    );
    if !NOT_ATTACHED.is_empty() {
        let _ = writeln!(table, "\nNo simulated figure, and why:\n");
        for (scenario, why) in NOT_ATTACHED {
            let _ = writeln!(table, "* {scenario}: {why}");
        }
    }
    readme::check_root_table(BEGIN, END, &table, &wrong);
}
