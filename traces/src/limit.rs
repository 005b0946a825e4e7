//! A bound on what the Dask importers read: they hold a whole export in memory (a task stream's
//! workers depend on every record), so an endless input (`[` on a FIFO) must end with an error,
//! not grow until the machine runs out of memory.

use std::io::{self, Read};

use crate::error::TraceError;
use crate::units::{format_bytes, parse_bytes};

/// Largest Dask export read by default. The dashboard keeps 100,000 task-stream records (~40 MB
/// as JSON, ~60 MB as a performance report), so this leaves room for larger exports while the
/// importer's memory (at most ~3x its input) stays within a laptop's.
pub const DEFAULT_IMPORT_LIMIT: u64 = 1 << 30;

/// Environment variable that overrides [`DEFAULT_IMPORT_LIMIT`] (a size: `4GiB`, `500MB`).
pub const IMPORT_LIMIT_VAR: &str = "TASKSCOPE_IMPORT_LIMIT";

/// The limit in force, and an error when the variable is set to something that is not a size.
pub(crate) fn import_limit(path: &str) -> Result<u64, TraceError> {
    match std::env::var(IMPORT_LIMIT_VAR) {
        Err(_) => Ok(DEFAULT_IMPORT_LIMIT),
        Ok(text) => parse_bytes(&text).map_err(|message| TraceError::Unrecognized {
            path: path.to_string(),
            message: format!("{IMPORT_LIMIT_VAR}={text:?}: {message}"),
        }),
    }
}

/// The error for an export over `limit`.
pub(crate) fn too_large(path: &str, what: &str, limit: u64) -> TraceError {
    TraceError::Unrecognized {
        path: path.to_string(),
        message: format!(
            "{what} larger than {} (the import limit; set {IMPORT_LIMIT_VAR} to raise it)",
            format_bytes(limit)
        ),
    }
}

/// Reads at most `limit` bytes of `inner`; one more is an error (and sets `exceeded`).
pub(crate) struct Limited<R> {
    inner: R,
    left: u64,
    pub(crate) exceeded: bool,
}

impl<R: Read> Limited<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Limited<R> {
        Limited {
            inner,
            left: limit,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("input over the import limit"));
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        let mut all = Vec::new();
        Limited::new(&b"[1, 2]"[..], 6)
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, b"[1, 2]");
        let mut limited = Limited::new(&b"[1, 2, 3]"[..], 6);
        let mut some = Vec::new();
        assert!(limited.read_to_end(&mut some).is_err());
        assert!(limited.exceeded);
        assert_eq!(some, b"[1, 2,");
    }
}
