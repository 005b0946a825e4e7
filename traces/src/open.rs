//! Opening any trace: the format is told from the content, not the file name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::dask_stream;
use crate::error::TraceError;
use crate::model::{Header, Record};
use crate::native::NativeReader;
use crate::readahead::ReadAhead;

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
}

impl SourceFormat {
    pub fn describe(self) -> &'static str {
        match self {
            SourceFormat::Native { compressed: false } => "taskscope trace",
            SourceFormat::Native { compressed: true } => "taskscope trace (zstd)",
            SourceFormat::DaskTaskStream { compressed: false } => "Dask task stream",
            SourceFormat::DaskTaskStream { compressed: true } => "Dask task stream (zstd)",
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
                let mut bytes = Vec::new();
                input
                    .read_to_end(&mut bytes)
                    .map_err(|cause| TraceError::Read {
                        path: name.to_string(),
                        line: 1,
                        cause,
                    })?;
                let imported = dask_stream::import(&bytes, name)?;
                Ok(TraceReader {
                    format: SourceFormat::DaskTaskStream { compressed },
                    inner: Inner::Imported {
                        header: imported.header,
                        records: imported.records.into_iter(),
                        warnings: imported.warnings,
                    },
                })
            }
            Some(b'<') => Err(TraceError::Unrecognized {
                path: name.to_string(),
                message: "looks like HTML; this build reads taskscope traces (NDJSON) and Dask \
                          task streams (a JSON list), not Dask performance reports"
                    .to_string(),
            }),
            Some(_) => Err(TraceError::Unrecognized {
                path: name.to_string(),
                message: "not a trace: expected a taskscope trace (NDJSON starting with a \
                          header object) or a Dask task stream (a JSON list)"
                    .to_string(),
            }),
        }
    }

    pub fn format(&self) -> SourceFormat {
        self.format
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

/// The first bytes of `input` without consuming them (at least 4 unless the input is shorter).
fn peek<'a>(input: &'a mut dyn BufRead, name: &str) -> Result<&'a [u8], TraceError> {
    input.fill_buf().map_err(|cause| TraceError::Read {
        path: name.to_string(),
        line: 1,
        cause,
    })
}
