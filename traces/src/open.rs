//! Opening any trace: the format is told from the content, not the file name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::TraceError;
use crate::limit::Limited;
use crate::model::{Header, Record};
use crate::native::{LineBatch, NativeReader, Unknown};
use crate::readahead::ReadAhead;
use crate::{dask_report, dask_stream};

/// zstd frame magic number (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Read buffer: large enough that line reads rarely refill mid-record.
const READ_BUFFER: usize = 256 * 1024;

/// What a file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// The native NDJSON trace.
    Native { compressed: bool },
    /// `client.get_task_stream()` saved as JSON.
    DaskTaskStream { compressed: bool },
    /// The HTML `performance_report(filename=...)` writes.
    DaskPerformanceReport { compressed: bool },
}

impl SourceFormat {
    pub fn describe(self) -> &'static str {
        match self {
            SourceFormat::Native { compressed: false } => "taskscope trace",
            SourceFormat::Native { compressed: true } => "taskscope trace (zstd)",
            SourceFormat::DaskTaskStream { compressed: false } => "Dask task stream",
            SourceFormat::DaskTaskStream { compressed: true } => "Dask task stream (zstd)",
            SourceFormat::DaskPerformanceReport { compressed: false } => "Dask performance report",
            SourceFormat::DaskPerformanceReport { compressed: true } => {
                "Dask performance report (zstd)"
            }
        }
    }
}

/// A trace of any supported format, read as a header followed by a stream of records.
///
/// ```no_run
/// let mut trace = traces::TraceReader::open("run.ndjson.zst")?;
/// println!("{} workers", trace.header().cluster.workers.len());
/// for record in &mut trace {
///     let record = record?;
///     // …
/// }
/// for warning in trace.warnings() {
///     eprintln!("warning: {warning}");
/// }
/// # Ok::<(), traces::TraceError>(())
/// ```
pub struct TraceReader {
    format: SourceFormat,
    inner: Inner,
}

enum Inner {
    Native(NativeReader<Box<dyn BufRead + Send>>),
    Imported {
        header: Header,
        records: std::vec::IntoIter<Record>,
        warnings: Vec<String>,
    },
}

impl TraceReader {
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader, TraceError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|cause| TraceError::Open {
            path: name.clone(),
            cause,
        })?;
        TraceReader::from_reader(file, &name)
    }

    /// Reads from any byte stream; `name` is used in messages.
    pub fn from_reader(input: impl Read + Send + 'static, name: &str) -> Result<Self, TraceError> {
        let mut raw = BufReader::with_capacity(READ_BUFFER, input);
        let compressed = peek(&mut raw, name)?.starts_with(&ZSTD_MAGIC);
        let mut input: Box<dyn BufRead + Send> = if compressed {
            let decoder = zstd::Decoder::with_buffer(raw).map_err(|cause| TraceError::Open {
                path: name.to_string(),
                cause,
            })?;
            Box::new(ReadAhead::new(decoder))
        } else {
            Box::new(ReadAhead::new(raw))
        };
        let first = peek(&mut input, name)?
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace());
        match first {
            None => Err(TraceError::Empty {
                path: name.to_string(),
            }),
            Some(b'{') => Ok(TraceReader {
                format: SourceFormat::Native { compressed },
                inner: Inner::Native(NativeReader::new(input, name)?),
            }),
            Some(b'[') => {
                let imported = dask_stream::import(&mut input, name)?;
                Ok(TraceReader::imported(
                    SourceFormat::DaskTaskStream { compressed },
                    imported,
                ))
            }
            Some(b'<') => {
                let html = read_rest(&mut input, name, "Dask performance report")?;
                match dask_report::import(html, name)? {
                    Some(imported) => Ok(TraceReader::imported(
                        SourceFormat::DaskPerformanceReport { compressed },
                        imported,
                    )),
                    None => Err(TraceError::Unrecognized {
                        path: name.to_string(),
                        message: "looks like HTML but holds no Dask task stream (the \
                                  performance_report of a run that computed something has one)"
                            .to_string(),
                    }),
                }
            }
            Some(_) => Err(TraceError::Unrecognized {
                path: name.to_string(),
                message: "not a trace: expected a taskscope trace (NDJSON starting with a \
                          header object), a Dask task stream (a JSON list) or a Dask \
                          performance report (HTML)"
                    .to_string(),
            }),
        }
    }

    pub fn format(&self) -> SourceFormat {
        self.format
    }

    fn imported(format: SourceFormat, imported: dask_stream::Imported) -> TraceReader {
        TraceReader {
            format,
            inner: Inner::Imported {
                header: imported.header,
                records: imported.records.into_iter(),
                warnings: imported.warnings,
            },
        }
    }

    pub fn header(&self) -> &Header {
        match &self.inner {
            Inner::Native(reader) => reader.header(),
            Inner::Imported { header, .. } => header,
        }
    }

    /// Problems that did not stop the read; complete once the records are exhausted.
    pub fn warnings(&self) -> &[String] {
        match &self.inner {
            Inner::Native(reader) => reader.warnings(),
            Inner::Imported { warnings, .. } => warnings,
        }
    }

    /// Reads everything: for tests and small traces (the iterator keeps memory flat).
    pub fn read_all(mut self) -> Result<(Header, Vec<Record>), TraceError> {
        let records = (&mut self).collect::<Result<Vec<_>, _>>()?;
        Ok((self.header().clone(), records))
    }
}

impl Iterator for TraceReader {
    type Item = Result<Record, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Native(reader) => reader.next(),
            Inner::Imported { records, .. } => records.next().map(Ok),
        }
    }
}

/// Everything left in `input` (the report importer needs a whole file), up to the import limit.
fn read_rest(input: &mut dyn BufRead, name: &str, what: &str) -> Result<Vec<u8>, TraceError> {
    let limit = crate::limit::import_limit(name)?;
    let mut limited = Limited::new(input, limit);
    let mut bytes = Vec::new();
    match limited.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(_) if limited.exceeded => Err(crate::limit::too_large(name, what, limit)),
        Err(cause) => Err(TraceError::Read {
            path: name.to_string(),
            line: 1,
            cause,
        }),
    }
}

/// The first bytes of `input` without consuming them (at least 4 unless the input is shorter).
fn peek<'a>(input: &'a mut dyn BufRead, name: &str) -> Result<&'a [u8], TraceError> {
    input.fill_buf().map_err(|cause| TraceError::Read {
        path: name.to_string(),
        line: 1,
        cause,
    })
}

/// Lines per batch handed to a parsing thread.
const PAR_BATCH_LINES: usize = 8192;
/// Batches queued per thread: memory stays bounded whatever the trace's size.
const PAR_QUEUE: usize = 2;

impl TraceReader {
    /// Folds every record into per-thread accumulators: one thread splits lines, `threads`
    /// threads parse and fold contiguous batches of them (thread `i` gets batches `i`,
    /// `i + threads`, …, each in order). Parsing and the caller's per-record work both run in
    /// parallel, and each thread frees what it parsed. Returns the accumulators (thread order)
    /// and the warnings; errors are the sequential reader's (the earliest line wins).
    pub fn par_fold<A, I, F>(
        self,
        threads: usize,
        init: I,
        fold: F,
    ) -> Result<(Vec<A>, Vec<String>), TraceError>
    where
        A: Send,
        I: Fn() -> A + Sync,
        F: Fn(&mut A, Record) + Sync,
    {
        let mut reader = match self.inner {
            Inner::Imported {
                records, warnings, ..
            } => {
                let mut acc = init();
                for record in records {
                    fold(&mut acc, record);
                }
                return Ok((vec![acc], warnings));
            }
            Inner::Native(reader) => reader,
        };
        let threads = threads.max(1);
        let path = reader.path().to_string();
        std::thread::scope(|scope| {
            let mut senders = Vec::with_capacity(threads);
            let mut workers = Vec::with_capacity(threads);
            // Parsed batches come back to be filled again.
            let (recycle, recycled) = std::sync::mpsc::channel::<LineBatch>();
            for _ in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel::<LineBatch>(PAR_QUEUE);
                senders.push(tx);
                let (init, fold, path) = (&init, &fold, path.as_str());
                let recycle = recycle.clone();
                workers.push(scope.spawn(move || {
                    let mut acc = init();
                    let mut warning = None;
                    let mut unknown = Unknown::default();
                    for batch in rx {
                        let parsed = crate::native::parse_batch(&batch, path, &mut unknown, |r| {
                            fold(&mut acc, r)
                        });
                        match parsed {
                            Ok(None) => {}
                            Ok(Some(w)) => warning = Some(w),
                            // Dropping the receiver stops the splitter.
                            Err(e) => return (acc, warning, unknown, Some(e)),
                        }
                        let _ = recycle.send(batch);
                    }
                    (acc, warning, unknown, None)
                }));
            }
            drop(recycle);
            let mut read_error = None;
            let mut next = 0;
            loop {
                let empty = recycled.try_recv().unwrap_or_default();
                match reader.next_batch(PAR_BATCH_LINES, empty) {
                    Ok(Some(batch)) => {
                        if senders[next % threads].send(batch).is_err() {
                            break;
                        }
                        next += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                }
            }
            drop(senders);
            let mut accs = Vec::with_capacity(threads);
            let mut warnings = reader.warnings().to_vec();
            let mut errors: Vec<TraceError> = read_error.into_iter().collect();
            let mut unknown = Unknown::default();
            for worker in workers {
                let (acc, warning, theirs, error) =
                    worker.join().expect("a trace parsing thread panicked");
                accs.push(acc);
                warnings.extend(warning);
                unknown.merge(theirs);
                errors.extend(error);
            }
            // Before the truncation warnings, as the sequential reader orders them.
            if let Some(skipped) = unknown.warning(&path) {
                warnings.insert(0, skipped);
            }
            match errors.into_iter().min_by_key(error_line) {
                Some(error) => Err(error),
                None => Ok((accs, warnings)),
            }
        })
    }
}

/// The line an error is about, to report the first one.
fn error_line(error: &TraceError) -> u64 {
    match error {
        TraceError::Invalid { line, .. } | TraceError::Read { line, .. } => *line,
        _ => 0,
    }
}
