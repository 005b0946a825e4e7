//! The Observe port's security from the command line (issue 11): the token from a file, TLS
//! with a self-signed certificate made here, and refusing to send a token in clear text
//! beyond loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_taskscope");

/// Every command here finishes in well under this.
mod common;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `cert.pem` (for 127.0.0.1 and localhost, signed by itself) and `key.pem` in `dir`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// `taskscope ARGS` to its end, with no token in the environment.
fn taskscope(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TASKSCOPE_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn assert_one_line_error(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {expected}\n")
    );
}

/// A `taskscope run … --serve` process (no token from the environment).
fn served(args: &[&str]) -> common::Served {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("TASKSCOPE_TOKEN");
    common::Served::spawn(command, TIMEOUT)
}

#[test]
fn top_reads_a_tls_server_with_its_certificate_and_fails_in_one_line_without() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let trace = dir.path().join("healthy.ndjson");
    let served = served(&[
        "run",
        "healthy",
        "--serve",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--token-file",
        token.to_str().unwrap(),
        "-o",
        trace.to_str().unwrap(),
    ]);
    // Everything the run did is there for a watcher.
    served.wait_for("ran ");
    let https = format!("https://127.0.0.1:{}", served.port());
    let print = |addr: &str, extra: &[&str]| {
        let mut args = vec!["top", addr, "--print-after", "2s"];
        args.extend_from_slice(extra);
        taskscope(&args)
    };
    let cert = cert.to_str().unwrap();
    let token = token.to_str().unwrap();

    let out = print(&https, &["--tls-ca", cert, "--token-file", token]);
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("tasks 57"), "{screen}");
    // --tls-ca alone says TLS; the token may come from the environment.
    let out = Command::new(BIN)
        .args(["top", &served.addr, "--tls-ca", cert, "--print-after", "2s"])
        .env("TASKSCOPE_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let out = print(&https, &["--token-file", token]);
    assert_one_line_error(
        &out,
        &format!(
            "cannot connect to {https}: transport error: invalid peer certificate: UnknownIssuer; the server's TLS certificate is not trusted: pass --tls-ca with it or with the CA that signed it"
        ),
    );
    let out = print(&served.addr, &["--token-file", token]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // "connection lost: transport error" or "Internal: h2 protocol error…", as the race goes.
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.starts_with("error: ")
            && error.ends_with(&format!(
                "; if the server serves TLS, write {https} and pass --tls-ca\n"
            ))
            && error.lines().count() == 1,
        "{error}"
    );
    let out = print(&https, &["--tls-ca", cert, "--token", "guess"]);
    assert_one_line_error(
        &out,
        &format!("{https}: unauthenticated: missing or wrong token"),
    );
}

#[test]
fn a_token_beyond_loopback_needs_tls_or_insecure() {
    let refused = taskscope(&["run", "healthy", "--serve", "0.0.0.0:0", "--token", "t"]);
    assert_one_line_error(
        &refused,
        "refusing to serve on 0.0.0.0:0 without TLS: the token would travel in clear text, readable by anyone on the network path; pass --tls-cert and --tls-key, bind 127.0.0.1, or pass --insecure to accept that",
    );
    // Said explicitly, it serves (nothing connects from beyond this machine).
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.ndjson");
    let trace = trace.to_str().unwrap();
    let insecure = served(&[
        "run",
        "healthy",
        "--serve",
        "0.0.0.0:0",
        "--token",
        "t",
        "--insecure",
        "-o",
        trace,
    ]);
    assert!(insecure.addr.starts_with("0.0.0.0:"), "{}", insecure.addr);
    drop(insecure);
    let (cert, key) = self_signed(dir.path());
    let with_tls = served(&[
        "run",
        "healthy",
        "--serve",
        "0.0.0.0:0",
        "--token",
        "t",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "-o",
        trace,
    ]);
    assert!(with_tls.addr.starts_with("0.0.0.0:"), "{}", with_tls.addr);
}

#[test]
fn token_files_are_one_line_or_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(path("empty"), "").unwrap();
    std::fs::write(path("newline"), "\n").unwrap();
    std::fs::write(path("two"), "a\nb\n").unwrap();
    std::fs::write(path("binary"), b"a\x1b]0;x\x07").unwrap();
    std::fs::write(path("huge"), vec![b'a'; 100_000]).unwrap();
    let cases = [
        (
            path("missing"),
            format!(
                "cannot read --token-file {}: No such file or directory (os error 2)",
                path("missing")
            ),
        ),
        (
            path(""),
            format!(
                "cannot read --token-file {}: Is a directory (os error 21)",
                path("")
            ),
        ),
        (
            path("empty"),
            format!("--token-file {} is empty", path("empty")),
        ),
        (
            path("newline"),
            format!("--token-file {} is empty", path("newline")),
        ),
        (
            path("two"),
            format!(
                "--token-file {} holds more than one line: a token is one line",
                path("two")
            ),
        ),
        (
            path("binary"),
            format!(
                "--token-file {}: the token must be printable ASCII (it is sent in a header)",
                path("binary")
            ),
        ),
        (
            path("huge"),
            format!(
                "--token-file {} is larger than 64.0 KiB: not what it should hold",
                path("huge")
            ),
        ),
    ];
    for (file, error) in &cases {
        let served = taskscope(&[
            "run",
            "healthy",
            "--serve",
            "127.0.0.1:0",
            "--token-file",
            file,
        ]);
        assert_one_line_error(&served, error);
        let top = taskscope(&["top", "--token-file", file, "--print-after", "1s"]);
        assert_one_line_error(&top, error);
    }
    // CRLF is a line end too.
    std::fs::write(path("crlf"), "s3cret\r\n").unwrap();
    let trace = path("t.ndjson");
    let served = served(&[
        "run",
        "healthy",
        "--serve",
        "127.0.0.1:0",
        "--token-file",
        &path("crlf"),
        "-o",
        &trace,
    ]);
    let out = Command::new(BIN)
        .args(["top", &served.addr, "--print-after", "2s"])
        .env("TASKSCOPE_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn tls_files_are_checked_with_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let serve = |cert: &str, key: &str| {
        taskscope(&[
            "run",
            "healthy",
            "--serve",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ])
    };
    assert_one_line_error(
        &serve(key, key),
        &format!(
            "--tls-cert {key}: no PEM CERTIFICATE in it (expected a -----BEGIN …CERTIFICATE----- line)"
        ),
    );
    assert_one_line_error(
        &serve(cert, cert),
        &format!(
            "--tls-key {cert}: no PEM PRIVATE KEY in it (expected a -----BEGIN …PRIVATE KEY----- line)"
        ),
    );
    let other = tempfile::tempdir().unwrap();
    let (_, other_key) = self_signed(other.path());
    assert_one_line_error(
        &serve(cert, other_key.to_str().unwrap()),
        "invalid TLS certificate or key: keys may not be consistent: KeyMismatch",
    );
    assert_one_line_error(
        &taskscope(&["top", "--tls-ca", "no-such-ca.pem", "--print-after", "1s"]),
        "cannot read --tls-ca no-such-ca.pem: No such file or directory (os error 2)",
    );
    assert_one_line_error(
        &taskscope(&[
            "top",
            "http://127.0.0.1:1",
            "--tls-ca",
            cert,
            "--print-after",
            "1s",
        ]),
        "http://127.0.0.1:1: an http:// address is plain HTTP/2, but a TLS certificate authority is given; write https://",
    );
    // Half a pair, or TLS without serving, is a usage error.
    let half = taskscope(&["run", "healthy", "--serve", "--tls-cert", cert]);
    assert_eq!(half.status.code(), Some(2), "{half:?}");
    let unserved = taskscope(&["run", "healthy", "--tls-cert", cert, "--tls-key", key]);
    assert_eq!(unserved.status.code(), Some(2), "{unserved:?}");
}

#[test]
fn help_says_a_token_on_the_command_line_shows_in_ps() {
    for command in ["run", "demo", "top"] {
        let out = taskscope(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains("Visible to every user of this machine in `ps`: prefer TASKSCOPE_TOKEN or --token-file"),
            "{command}: {help}"
        );
        assert!(help.contains("--token-file <PATH>"), "{command}: {help}");
    }
    let run = String::from_utf8_lossy(&taskscope(&["run", "--help"]).stdout).into_owned();
    for flag in ["--tls-cert <PATH>", "--tls-key <PATH>", "--insecure"] {
        assert!(run.contains(flag), "{run}");
    }
    let top = String::from_utf8_lossy(&taskscope(&["top", "--help"]).stdout).into_owned();
    assert!(top.contains("--tls-ca <PATH>"), "{top}");
}
