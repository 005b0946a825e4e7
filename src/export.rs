//! `taskscope flamegraph` and `taskscope export`.

use std::io::Write;
use std::path::Path;

use analyzer::flamegraph::{self, StackBy};
use anyhow::{Context, Result};
use traces::TraceReader;

use crate::cli::{ExportArgs, ExportFormat, FlamegraphArgs, StackRoot};

pub fn flamegraph(args: &FlamegraphArgs) -> Result<()> {
    let by = match args.by {
        StackRoot::Group => StackBy::Group,
        StackRoot::Worker => StackBy::Worker,
    };
    let fold = |path: &Path| -> Result<Vec<String>> {
        let lines = flamegraph::folded(TraceReader::open(path)?, by)?;
        anyhow::ensure!(
            !lines.is_empty(),
            "{}: no task phases to draw",
            path.display()
        );
        Ok(lines)
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
    write_output(args.output.as_deref(), &bytes)
}

fn lines_bytes(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
        }
        None => std::io::stdout()
            .write_all(bytes)
            .context("cannot write to stdout"),
    }
}

pub fn export(args: &ExportArgs) -> Result<()> {
    match &args.format {
        ExportFormat::Chrome { trace, output } => {
            let reader = TraceReader::open(trace)?;
            let file = std::fs::File::create(output)
                .with_context(|| format!("{}: cannot write", output.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let events = traces::export::write_chrome_trace(reader, &mut out)
                .with_context(|| format!("{}", output.display()))?;
            out.flush()
                .with_context(|| format!("{}: cannot write", output.display()))?;
            eprintln!("wrote {events} trace events to {}", output.display());
            Ok(())
        }
    }
}
