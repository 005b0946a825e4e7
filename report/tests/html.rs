//! The report page: well-formed, self-contained, every finding on it, and small enough at a
//! million tasks. (`tests/report_browser.rs` at the root opens it in a real browser.)

use std::path::{Path, PathBuf};

use traces::{TraceWriter, synthetic};

fn write_trace(dir: &Path, tasks: u64) -> PathBuf {
    let path = dir.join(format!("synthetic-{tasks}.ndjson.zst"));
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        TraceWriter::new(file, "t.ndjson.zst", &synthetic::header(4, 2), true).unwrap();
    for record in synthetic::records(tasks, 4, 2) {
        writer.write(&record).unwrap();
    }
    writer.finish().unwrap();
    path
}

/// A real Dask run's task stream (a skewed groupby) from the analyzer's fixtures.
fn dask_stream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analyzer/tests/data/dask/skewed.json")
}

/// Elements outside `<script>` and `<style>` open and close in order (void elements are
/// written self-closed).
fn assert_well_formed(html: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if rest.starts_with("<!") {
            rest = &rest[rest.find('>').expect("a declaration ends") + 1..];
            continue;
        }
        let end = rest.find('>').expect("a tag ends");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            if name == "script" || name == "style" {
                // Raw text: skip to its end tag.
                let close = format!("</{name}>");
                rest = &rest[rest.find(&close).expect("raw text ends") + close.len()..];
            } else {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn assert_self_contained(html: &str) {
    for needle in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(needle), "the page reaches out: {needle}");
    }
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn a_dask_task_stream_report_holds_every_finding() {
    let path = dask_stream();
    let html = report::render(&path, &report::Options::default())
        .unwrap()
        .html;
    assert_well_formed(&html);
    assert_self_contained(&html);
    let analysis = analyzer::analyze(traces::TraceReader::open(&path).unwrap()).unwrap();
    assert!(!analysis.findings.is_empty());
    for f in &analysis.findings {
        assert!(html.contains(&format!("<code class=\"rule\">{}</code>", f.rule)));
        assert!(html.contains(&escaped(&f.advice)), "{}", f.advice);
    }
    assert!(html.contains("<title>skewed.json — taskscope report</title>"));
    assert!(html.contains("Dask task stream"));
    // Task streams have no dependencies and no memory samples: said, not drawn empty.
    assert!(html.contains("This trace has no dependencies"));
    assert!(html.contains("<p class=\"none\">No replay here: the trace has neither"));
    assert!(html.contains("<canvas id=\"stream\""));
    assert!(html.contains("img class=\"flamegraph\" id=\"fg-group\""));
}

#[test]
fn names_cannot_break_out_of_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    let header = synthetic::header(1, 1);
    let mut writer =
        TraceWriter::new(std::fs::File::create(&path).unwrap(), "t", &header, false).unwrap();
    for record in synthetic::records(20, 1, 1) {
        let mut record = record;
        if let traces::Record::Task(task) = &mut record {
            task.group = "</script><script>alert(1)</script>".into();
        }
        writer.write(&record).unwrap();
    }
    writer.finish().unwrap();
    let title = "<b>\"quoted\" & 'single'</b>";
    let options = report::Options {
        title: Some(title.into()),
    };
    let html = report::render(&path, &options).unwrap().html;
    assert_well_formed(&html);
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains(&escaped(title)));
    assert_eq!(
        html.matches("<script").count(),
        2,
        "the data and the page's own script"
    );
}

/// The budget: a million tasks in under 25 MB.
#[test]
fn a_million_tasks_fit_the_size_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_trace(dir.path(), 1_000_000);
    let html = report::render(&path, &report::Options::default())
        .unwrap()
        .html;
    assert!(html.len() < 25 << 20, "{} bytes", html.len());
    assert_self_contained(&html);
    // Past 50,000 tasks the keys stay out; the groups and phases are all there.
    assert!(html.contains("\"keys\":[]"));
}

/// What notebooks show (`taskscope analyze --format html`): the page's findings, alone.
#[test]
fn the_findings_fragment_is_the_pages_findings() {
    let path = dask_stream();
    let analysis = analyzer::analyze(traces::TraceReader::open(&path).unwrap()).unwrap();
    let fragment = report::findings_html(&analysis);
    assert_well_formed(&fragment);
    assert_self_contained(&fragment);
    assert!(fragment.starts_with("<div class=\"taskscope-findings\">"));
    let page = report::render(&path, &report::Options::default())
        .unwrap()
        .html;
    for f in &analysis.findings {
        let article = format!("<code class=\"rule\">{}</code>", f.rule);
        assert!(fragment.contains(&article) && page.contains(&article));
        assert!(fragment.contains(&escaped(&f.advice)));
    }
}

#[test]
fn a_plugin_trace_is_predicted_on_larger_clusters() {
    // A real Dask run (2 workers x 1 thread) whose replay lands within 5 % of it.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../analyzer/tests/corpus/healthy-futures-map/plugin.ndjson.zst");
    let html = report::render(&path, &report::Options::default())
        .unwrap()
        .html;
    assert_well_formed(&html);
    let at = html
        .find("<section id=\"whatif\">")
        .expect("a What if section");
    let section = &html[at..at + html[at..].find("</section>").unwrap()];
    assert!(
        section.contains("on its own shape (2×1) the replay gives"),
        "{section}"
    );
    let rows: Vec<&str> = section.matches("<tr><td>").collect();
    assert_eq!(rows.len(), 4, "{section}");
    for shape in ["2×1 (recorded)", "4×1", "8×1", "16×1"] {
        assert!(
            section.contains(&format!("<tr><td>{shape}</td>")),
            "{section}"
        );
    }
    assert!(section.contains("which no number of workers can beat"));
    // The trace predates hosts' cores: the section says more workers bring their own.
    assert!(
        section.contains("CPU is not modelled here (the trace has no CPU time per group, or no host's cores): each added worker is taken to bring its own cores."),
        "{section}"
    );
}

#[test]
fn the_what_if_section_says_whose_cores_the_workers_share() {
    // Two workers of a 2-core host ran four 100 ms tasks, 90 % of it on the CPU.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/tests/data/cpu_crowd.ndjson");
    let html = report::render(&path, &report::Options::default())
        .unwrap()
        .html;
    let at = html
        .find("<section id=\"whatif\">")
        .expect("a What if section");
    let section = &html[at..at + html[at..].find("</section>").unwrap()];
    assert!(
        section.contains(
            "<p>More workers stand on the recorded host, whose 2 cores the computing tasks \
             share: past them, tasks slow each other down, each wanting its group's recorded \
             share of a core (90 %). <code>taskscope simulate --cores N</code> predicts a \
             bigger machine.</p>"
        ),
        "{section}"
    );
    // 4 workers run the 4 tasks side by side, at 1.8 times their time on 2 cores: 180 ms.
    assert!(
        section.contains("<tr><td>4×1</td><td>180 ms</td>"),
        "{section}"
    );
}
