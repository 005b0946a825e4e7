//! Helpers shared by the integration tests that serve a run and watch it: the served process,
//! and a raw HTTP/2 watch that hangs up.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `taskscope … --serve` process, its stderr read line by line on a thread; killed on drop.
pub struct Served {
    child: Child,
    /// `HOST:PORT` it serves on.
    pub addr: String,
    stderr: mpsc::Receiver<String>,
    /// Set when the run's summary line (`ran …`) is written: the trace is complete.
    ran: Arc<AtomicBool>,
    timeout: Duration,
}

impl Served {
    /// Spawns `command` and waits (at most `timeout`, as every later wait) for its address.
    pub fn spawn(mut command: Command, timeout: Duration) -> Served {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ran ") {
                    flag.store(true, Ordering::Relaxed);
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
            stderr,
            ran,
            timeout,
        };
        // "serving Observe on 127.0.0.1:PORT: watch with …"
        let line = served.wait_for("serving Observe on ");
        served.addr = line["serving Observe on ".len()..]
            .split(": ")
            .next()
            .unwrap()
            .to_string();
        served
    }

    /// The next stderr line starting with `prefix` (panics after the timeout).
    pub fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no {prefix:?} on the server's stderr: {e}"),
            }
        }
    }

    /// Any stderr line starting with `prefix` already written.
    pub fn saw(&self, prefix: &str) -> Option<String> {
        self.stderr.try_iter().find(|line| line.starts_with(prefix))
    }

    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the server exited: {status:?}");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the run has written its summary line, as a flag other threads can read.
    pub fn ran(&self) -> Arc<AtomicBool> {
        self.ran.clone()
    }

    /// The port of [`Served::addr`].
    pub fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/2 frame (RFC 7540 4.1).
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// An HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2).
pub fn header(block: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    block.push(0);
    block.push(name.len() as u8);
    block.extend(name.as_bytes());
    block.push(value.len() as u8);
    block.extend(value.as_bytes());
}

/// A Watch over raw HTTP/2 that never acknowledges anything nor opens the flow-control window:
/// reads up to `read` bytes of the answer, keeps the connection `hold` longer, then hangs up
/// with a FIN or, with `reset`, an RST.
pub fn raw_watch(addr: &str, token: Option<&str>, read: usize, hold: Duration, reset: bool) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let mut block = Vec::new();
    header(&mut block, ":method", "POST");
    header(&mut block, ":scheme", "http");
    header(&mut block, ":path", "/taskscope.observe.v1.Observe/Watch");
    header(&mut block, ":authority", addr);
    header(&mut block, "content-type", "application/grpc");
    header(&mut block, "te", "trailers");
    if let Some(token) = token {
        header(&mut block, "authorization", &format!("Bearer {token}"));
    }
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    request.extend(frame(0x1, 0x4, 1, &block)); // HEADERS, END_HEADERS
    request.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0])); // an empty WatchRequest, END_STREAM
    if stream.write_all(&request).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = vec![0u8; 16 * 1024];
    let mut got = 0;
    while got < read {
        let want = buffer.len().min(read - got);
        match stream.read(&mut buffer[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    std::thread::sleep(hold);
    if reset {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a `linger` of the size given.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
}
