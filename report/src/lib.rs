//! taskscope's HTML report: one self-contained page per run — findings first, then the task
//! stream, memory, task groups, flamegraph and critical path — that opens from a mail
//! attachment or a CI artifact (no network, no external fonts).
//!
//! The trace is read once: the analyzer's index, the flamegraph's stacks and the task stream's
//! phases are gathered in the same pass. Phases go to the page as compact columns (varints,
//! gzip, base64) that the page's script decodes into typed arrays and draws on a `<canvas>`,
//! never one DOM node per task, so a million tasks stay a page of a few megabytes.
//!
//! ```no_run
//! let page = report::render("run.ndjson.zst".as_ref(), &report::Options::default())?;
//! std::fs::write("report.html", page.html)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod columns;
mod page;

use std::path::Path;

use analyzer::TraceIndex;
use analyzer::flamegraph::Stacks;
use traces::{Event, Header, MemorySample, Record, TraceError, TraceReader};

pub use columns::Columns;

/// What the page says beyond the trace.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The page's title; the trace's file name when absent.
    pub title: Option<String>,
}

/// Everything the page shows, gathered from one pass over the trace.
struct Gathered {
    index: TraceIndex,
    stacks: Stacks,
    columns: Columns,
    events: Vec<Event>,
}

impl Gathered {
    fn new(header: &Header, format: &str) -> Gathered {
        Gathered {
            index: TraceIndex::empty(header.clone(), format.to_string()),
            stacks: Stacks::new(header),
            columns: Columns::default(),
            events: Vec::new(),
        }
    }

    fn add(&mut self, record: Record) {
        self.stacks.add(&record);
        match &record {
            Record::Task(task) => self.columns.add(task),
            Record::Event(event) => self.events.push(event.clone()),
            Record::Memory(_) | Record::GroupMetrics(_) => {}
        }
        self.index.add(record);
    }

    fn merge(&mut self, other: Gathered) {
        self.index.merge(other.index);
        self.stacks.merge(other.stacks);
        self.columns.merge(other.columns);
        self.events.extend(other.events);
    }
}

/// Threads parsing the trace (with one more splitting its lines), as `analyze` uses.
const PARSE_THREADS: usize = 2;

/// The findings alone as an HTML fragment with its own scoped style: what a notebook shows
/// (`taskscope analyze --format html`), the same markup as the report page's findings.
pub fn findings_html(report: &analyzer::Report) -> String {
    use traces::units::format_duration;
    let s = &report.summary;
    let mut out = format!(
        "<div class=\"taskscope-findings\">\n<style>\n{}</style>\n<p class=\"summary-line\">\
         {} tasks in {} groups on {} workers ({} threads): wall {}, ideal {} ({:.0}% \
         efficient)</p>\n",
        page::FINDINGS_STYLE,
        s.tasks,
        s.groups,
        s.workers,
        s.threads,
        format_duration((s.wall_seconds * 1e9) as traces::Nanos),
        format_duration((s.ideal_seconds * 1e9) as traces::Nanos),
        s.efficiency * 100.0
    );
    page::findings(report, &mut out);
    out.push_str("</div>\n");
    out
}

/// A rendered report.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub html: String,
    /// The reader's warnings (a truncated last line…), also on the page: for the caller to
    /// print as other commands do.
    pub warnings: Vec<String>,
}

/// Reads the trace at `path` and renders its report.
pub fn render(path: &Path, options: &Options) -> Result<Rendered, TraceError> {
    let trace = TraceReader::open(path)?;
    let header = trace.header().clone();
    let format = trace.format().describe().to_string();
    let (parts, warnings) = trace.par_fold(
        PARSE_THREADS,
        || Gathered::new(&header, &format),
        |g, record| g.add(record),
    )?;
    let mut parts = parts.into_iter();
    let mut all = parts
        .next()
        .expect("par_fold returns one accumulator at least");
    for part in parts {
        all.merge(part);
    }
    let mut index = all.index.into_finished();
    index.warnings = warnings.clone();
    let mut report = analyzer::report(&index);
    let whatif = whatif::attach_and_predict(&mut report, path)?;
    all.events.sort_by_key(|e| e.time);
    let title = options.title.clone().unwrap_or_else(|| {
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let memory: Vec<(u32, &[MemorySample])> = index
        .workers
        .iter()
        .map(|(id, w)| (*id, w.samples.as_slice()))
        .collect();
    let html = page::Page {
        title: &title,
        header: &header,
        index: &index,
        report: &report,
        stacks: &all.stacks,
        columns: all.columns,
        events: &all.events,
        memory,
        whatif: whatif.as_ref(),
    }
    .html();
    Ok(Rendered { html, warnings })
}
