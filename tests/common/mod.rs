//! Helpers shared by the integration tests that hang clients up on the Observe server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

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
