//! The analyzer scored on real Dask runs: every scenario of `analyzer/tests/corpus/`, recorded
//! once three ways by `bridges/dask/corpus/record.py` (the plugin's trace, the task stream, the
//! performance report), must give its expected answer in every format. The scenario × format
//! table is the README's (`TASKSCOPE_UPDATE_README=1` rewrites it there).

#[path = "../../tests/common/readme.rs"]
mod readme;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use analyzer::{Report, Severity};
use serde::Deserialize;
use traces::TraceReader;

/// The formats a scenario is recorded in: (name in `expected.toml`, file).
const FORMATS: [(&str, &str); 3] = [
    ("plugin", "plugin.ndjson.zst"),
    ("stream", "stream.json.zst"),
    ("report", "report.html.zst"),
];

/// Nothing `moderate` or worse: what a healthy run, or a format that cannot show the
/// pathology, must give.
const QUIET: &str = "quiet";
const HEALTHY: &str = "healthy";

#[derive(Deserialize)]
struct Expected {
    scenario: String,
    expect: String,
    #[serde(default)]
    formats: std::collections::BTreeMap<String, String>,
}

impl Expected {
    fn for_format(&self, format: &str) -> &str {
        let expect = self.formats.get(format).unwrap_or(&self.expect);
        if expect == HEALTHY { QUIET } else { expect }
    }
}

struct Score {
    scenario: String,
    expect: String,
    /// Per format: the answer shown, and whether it is right.
    cells: Vec<(String, bool)>,
}

fn judge(report: &Report, expect: &str) -> (String, bool) {
    let top = report.findings.first();
    let shown = match top {
        Some(f) if f.severity >= Severity::Low => format!("{} ({})", f.rule, f.severity),
        _ => "nothing".to_string(),
    };
    let right = if expect == QUIET {
        report.worst() < Severity::Moderate
    } else {
        top.is_some_and(|f| f.rule == expect)
    };
    (shown, right)
}

fn score() -> Vec<Score> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("analyzer/tests/corpus: record it with bridges/dask/corpus/record.py")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.toml").exists())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("expected.toml")).unwrap();
            let expected: Expected = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join("expected.toml").display()));
            let cells = FORMATS
                .iter()
                .map(|(format, file)| {
                    let trace = TraceReader::open(dir.join(file))
                        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                    let report = analyzer::analyze(trace).unwrap();
                    judge(&report, expected.for_format(format))
                })
                .collect();
            Score {
                scenario: expected.scenario,
                expect: expected.expect,
                cells,
            }
        })
        .collect()
}

fn table(scores: &[Score]) -> String {
    let mut out = String::from(
        "| scenario | expected | plugin trace | task stream | performance report |\n\
         |---|---|---|---|---|\n",
    );
    let mut right = [0usize; 3];
    for s in scores {
        let _ = write!(out, "| `{}` | {} |", s.scenario, s.expect);
        for (i, (shown, ok)) in s.cells.iter().enumerate() {
            right[i] += usize::from(*ok);
            let _ = write!(out, " {} {shown} |", if *ok { "✓" } else { "✗" });
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "| **right** | | **{}/{n}** | **{}/{n}** | **{}/{n}** |",
        right[0],
        right[1],
        right[2],
        n = scores.len()
    );
    out
}

const BEGIN: &str = "<!-- corpus table: analyzer/tests/corpus.rs -->\n";
const END: &str = "<!-- end of corpus table -->\n";

/// `$TASKSCOPE_CORPUS` scores another corpus of the same layout (without the README check).
fn corpus() -> PathBuf {
    std::env::var_os("TASKSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"))
}

/// The README's table is this one (`TASKSCOPE_UPDATE_README=1` makes it so).
fn check_readme(table: &str) {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    readme::check_block(&readme, BEGIN, END, table);
}

#[test]
fn every_scenario_gives_its_expected_answer_in_every_format() {
    let scores = score();
    let table = table(&scores);
    println!("{table}");
    if std::env::var_os("TASKSCOPE_CORPUS").is_none() {
        assert!(scores.len() >= 32, "{} scenarios", scores.len());
        check_readme(&table);
    }
    let wrong: Vec<String> = scores
        .iter()
        .flat_map(|s| {
            FORMATS.iter().zip(&s.cells).filter(|(_, (_, ok))| !ok).map(
                move |((format, _), (shown, _))| {
                    format!(
                        "{} ({format}): expected {}, got {shown}",
                        s.scenario, s.expect
                    )
                },
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
