//! `taskscope flamegraph` and `taskscope export`.

use std::io::Write;
use std::path::{Path, PathBuf};

use analyzer::flamegraph::{self, StackBy};
use anyhow::{Context, Result};
use traces::TraceReader;
use traces::units::printable;

use crate::cli::{ExportArgs, ExportFormat, FlamegraphArgs, ReportArgs, StackRoot};
use crate::output::OutputFile;

pub fn flamegraph(args: &FlamegraphArgs) -> Result<()> {
    let by = match args.by {
        StackRoot::Group => StackBy::Group,
        StackRoot::Worker => StackBy::Worker,
    };
    let fold = |path: &Path| -> Result<Vec<String>> {
        let mut trace = TraceReader::open(path)?;
        let lines = flamegraph::folded(&mut trace, by)?;
        crate::print_warnings(trace.warnings());
        anyhow::ensure!(
            !lines.is_empty(),
            "{}: no task phases to draw",
            path.display()
        );
        Ok(lines)
    };
    let inputs: Vec<&Path> = match (&args.trace, &args.diff) {
        (_, Some(pair)) => pair.iter().map(PathBuf::as_path).collect(),
        (Some(trace), None) => vec![trace.as_path()],
        (None, None) => Vec::new(),
    };
    // Checked before reading, which may take a while.
    let output = match &args.output {
        Some(path) => Some(OutputFile::create(path, "-o", &inputs)?),
        None => None,
    };
    let bytes = match (&args.trace, &args.diff) {
        (_, Some(pair)) => {
            let (before, after) = (fold(&pair[0])?, fold(&pair[1])?);
            if args.folded {
                lines_bytes(&after)
            } else {
                let title = format!("{} vs {}", pair[1].display(), pair[0].display());
                flamegraph::diff_svg(&before, &after, &title)?
            }
        }
        (Some(trace), None) => {
            let lines = fold(trace)?;
            if args.folded {
                lines_bytes(&lines)
            } else {
                flamegraph::svg(&lines, &format!("taskscope: {}", trace.display()))?
            }
        }
        (None, None) => unreachable!("clap requires a trace or --diff"),
    };
    match output {
        Some(output) => output.write_all(&bytes),
        None => crate::output::print_bytes(&bytes),
    }
}

pub fn report(args: &ReportArgs) -> Result<()> {
    // Checked before reading, which may take a while.
    let output = match &args.output {
        Some(path) => Some(OutputFile::create(path, "-o", &[&args.trace])?),
        None => None,
    };
    let options = report::Options {
        title: args.title.clone(),
    };
    let page = report::render(&args.trace, &options)?;
    crate::print_warnings(&page.warnings);
    match output {
        Some(output) => output.write_all(page.html.as_bytes()),
        None => crate::output::print(&page.html),
    }
}

fn lines_bytes(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

pub fn export(args: &ExportArgs) -> Result<()> {
    match &args.format {
        ExportFormat::Chrome { trace, output } => {
            // Checked before reading, which may take a while.
            let file = OutputFile::create(output, "-o", &[trace])?;
            let mut reader = TraceReader::open(trace)?;
            let mut out = std::io::BufWriter::new(file.open()?);
            let events = traces::export::write_chrome_trace(&mut reader, &mut out)
                .with_context(|| format!("{}", output.display()))?;
            crate::print_warnings(reader.warnings());
            out.flush()
                .with_context(|| format!("{}: cannot write", output.display()))?;
            drop(out);
            file.commit()?;
            eprintln!(
                "wrote {events} trace events to {}",
                printable(&output.display().to_string())
            );
            Ok(())
        }
    }
}
