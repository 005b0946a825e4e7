//! `taskscope convert`: any readable trace to the native format.

use std::path::Path;

use anyhow::{Context, Result, bail};
use traces::{TraceReader, TraceWriter};

use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs) -> Result<()> {
    if same_file(&args.input, &args.output) {
        bail!(
            "{}: output is the input file; choose another -o path",
            args.output.display()
        );
    }
    let mut trace = TraceReader::open(&args.input)?;
    // Write beside the target and rename at the end, so a failed conversion leaves no
    // half-written file under the requested name.
    let dir = match args.output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let partial = tempfile::Builder::new()
        .prefix(".taskscope-convert")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create output", args.output.display()))?;
    let compress = args.output.extension().is_some_and(|ext| ext == "zst");
    let out_name = args.output.display().to_string();
    let mut writer = TraceWriter::new(
        partial.as_file(),
        &out_name,
        &trace.header().clone(),
        compress,
    )?;
    let mut records = 0u64;
    for record in &mut trace {
        writer.write(&record?)?;
        records += 1;
    }
    writer.finish()?;
    partial
        .persist(&args.output)
        .with_context(|| format!("{}: cannot write", args.output.display()))?;
    crate::print_warnings(trace.warnings());
    eprintln!(
        "wrote {records} records from {} ({}) to {}",
        args.input.display(),
        trace.format().describe(),
        args.output.display()
    );
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
