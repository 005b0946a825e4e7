//! `taskscope convert`: any readable trace to the native format.

use anyhow::Result;
use traces::units::printable;
use traces::{TraceReader, TraceWriter};

use crate::cli::ConvertArgs;
use crate::output::OutputFile;

pub fn run(args: &ConvertArgs) -> Result<()> {
    let output = OutputFile::create(&args.output, "-o", &[&args.input])?;
    let mut trace = TraceReader::open(&args.input)?;
    let compress = args.output.extension().is_some_and(|ext| ext == "zst");
    let out_name = args.output.display().to_string();
    let mut writer =
        TraceWriter::new(output.open()?, &out_name, &trace.header().clone(), compress)?;
    let mut records = 0u64;
    for record in &mut trace {
        writer.write(&record?)?;
        records += 1;
    }
    writer.finish()?;
    output.commit()?;
    crate::print_warnings(trace.warnings());
    eprintln!(
        "wrote {records} records from {} ({}) to {}",
        printable(&args.input.display().to_string()),
        trace.format().describe(),
        printable(&out_name)
    );
    Ok(())
}
