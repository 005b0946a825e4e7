//! The Observe port's secrets from the command line: the bearer token (flag, file or
//! environment) and TLS certificates, read with one-line errors.

use std::io::Read;
use std::path::Path;

use anyhow::{Result, bail};
use observe::{Security, TOKEN_ENV, TlsIdentity, WatchTarget};
use traces::units::printable;

use crate::cli::{ServeArgs, TokenArgs, TopArgs};

/// A token file longer than this is not a token (and `/dev/zero` must not fill memory).
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A PEM file longer than this is not a certificate chain or a key.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// `--token`, else `--token-file`, else `$TASKSCOPE_TOKEN`; an empty one is none.
pub fn token(args: &TokenArgs) -> Result<Option<String>> {
    if let Some(path) = &args.token_file {
        return token_file(path).map(Some);
    }
    let token = match &args.token {
        Some(token) => Some(token.clone()),
        None => std::env::var(TOKEN_ENV).ok(),
    };
    Ok(token.filter(|t| !t.is_empty()))
}

fn token_file(path: &Path) -> Result<String> {
    let name = printable(&path.display().to_string()).to_string();
    let bytes = read_bounded(path, "--token-file", MAX_TOKEN_FILE_BYTES)?;
    let Ok(text) = String::from_utf8(bytes) else {
        bail!("--token-file {name}: not text");
    };
    // What `echo TOKEN > FILE` wrote, on any platform.
    let token = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if token.is_empty() {
        bail!("--token-file {name} is empty");
    }
    if token.contains(['\n', '\r']) {
        bail!("--token-file {name} holds more than one line: a token is one line");
    }
    // The token travels in an HTTP/2 header, which takes printable ASCII only.
    if !token.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        bail!("--token-file {name}: the token must be printable ASCII (it is sent in a header)");
    }
    Ok(token.to_string())
}

/// How `run`/`demo --serve` protect the port.
pub fn serve_security(args: &ServeArgs) -> Result<Security> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsIdentity {
            cert_pem: read_pem(cert, "--tls-cert", "CERTIFICATE")?,
            key_pem: read_pem(key, "--tls-key", "PRIVATE KEY")?,
        }),
        // clap requires both or neither.
        _ => None,
    };
    Ok(Security {
        token: token(&args.token)?,
        tls,
        insecure: args.insecure,
    })
}

/// Where `top` connects, with what.
pub fn watch_target(args: &TopArgs) -> Result<WatchTarget> {
    let tls_ca = match &args.tls_ca {
        Some(path) => Some(read_pem(path, "--tls-ca", "CERTIFICATE")?),
        None => None,
    };
    Ok(WatchTarget {
        addr: args.addr.clone(),
        token: token(&args.token)?,
        tls_ca,
    })
}

/// A PEM file that holds at least one `-----BEGIN …{label}-----` block.
fn read_pem(path: &Path, flag: &str, label: &str) -> Result<Vec<u8>> {
    let pem = read_bounded(path, flag, MAX_PEM_BYTES)?;
    let marker = format!("{label}-----");
    let has_block = pem.split(|&b| b == b'\n').any(|line| {
        line.starts_with(b"-----BEGIN ") && line.trim_ascii_end().ends_with(marker.as_bytes())
    });
    if !has_block {
        bail!(
            "{flag} {}: no PEM {label} in it (expected a -----BEGIN …{label}----- line)",
            printable(&path.display().to_string())
        );
    }
    Ok(pem)
}

fn read_bounded(path: &Path, flag: &str, limit: u64) -> Result<Vec<u8>> {
    let name = printable(&path.display().to_string()).to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| anyhow::anyhow!("cannot read {flag} {name}: {e}"))?;
    if bytes.len() as u64 > limit {
        bail!(
            "{flag} {name} is larger than {}: not what it should hold",
            traces::units::format_bytes(limit)
        );
    }
    Ok(bytes)
}
