//! Reading (and decompressing) on a second thread, so parsing never waits on I/O or zstd.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

/// Bytes per chunk handed from the reading thread to the parser.
const CHUNK: usize = 256 * 1024;

/// Chunks in flight: bounds memory at `DEPTH × CHUNK` whatever the file size.
const DEPTH: usize = 4;

/// A `BufRead` fed by a thread that reads `inner` ahead of the consumer.
pub(crate) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied buffers go back to the reading thread instead of being freed.
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    pub(crate) fn new(mut inner: impl Read + Send + 'static) -> ReadAhead {
        let (send_chunk, chunks) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        let (recycle, recycled) = sync_channel::<Vec<u8>>(DEPTH + 2);
        thread::Builder::new()
            .name("trace-readahead".into())
            .spawn(move || {
                loop {
                    let mut buf = recycled.try_recv().unwrap_or_default();
                    buf.resize(CHUNK, 0);
                    let (n, error) = read_full(&mut inner, &mut buf);
                    buf.truncate(n);
                    // A send fails when the consumer stopped reading early: nothing left to do.
                    if n > 0 && send_chunk.send(Ok(buf)).is_err() {
                        return;
                    }
                    if let Some(e) = error {
                        let _ = send_chunk.send(Err(e));
                        return;
                    }
                    if n < CHUNK {
                        // End of input.
                        let _ = send_chunk.send(Ok(Vec::new()));
                        return;
                    }
                }
            })
            .expect("the OS refused to start the read-ahead thread");
        ReadAhead {
            chunks,
            recycle,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read and the error that
/// stopped it, if any (bytes read before an error are still delivered).
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.current.len() && !self.done {
            match self.chunks.recv() {
                Ok(Ok(chunk)) if !chunk.is_empty() => {
                    let old = std::mem::replace(&mut self.current, chunk);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // End of input (an empty chunk) or the thread is gone.
                Ok(Ok(_)) | Err(_) => self.done = true,
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len());
    }
}
