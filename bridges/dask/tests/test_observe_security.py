"""The Observe port's security, without Dask: the token compared in constant time and read
from a file, TLS with a self-signed certificate made here (read by taskscope's own Rust
client, ``taskscope top --tls-ca``), and no token in clear text beyond loopback."""
from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import time

import grpc
import pytest

from conftest import taskscope_bin
from taskscope_dask import TaskscopePlugin
from taskscope_dask._proto import observe_pb2 as pb
from taskscope_dask._proto import observe_pb2_grpc as pb_grpc
from taskscope_dask.observe import (
    ObserveServer,
    check_cleartext,
    read_pem,
    read_token_file,
    resolve_token,
    same_token,
)
from test_observe_server import HEADER, task, wait_drained


def self_signed(directory) -> tuple[str, str]:
    """``cert.pem`` (for 127.0.0.1 and localhost, signed by itself, not a CA) and ``key.pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    tls = (read_pem(cert, "tls_cert", "CERTIFICATE"), read_pem(key, "tls_key", "PRIVATE KEY"))
    s = ObserveServer(HEADER, "127.0.0.1", 0, "s3cret", pause=lambda p: p, tick=0.05, tls=tls)
    s.start()
    for i in range(40):
        s.feed(task(i))
    wait_drained(s)
    yield s, cert
    s.stop()


def top(address: str, *args: str, token: str | None = "s3cret") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TASKSCOPE_TOKEN"}
    env["NO_COLOR"] = "1"
    if token is not None:
        env["TASKSCOPE_TOKEN"] = token
    return subprocess.run(
        [taskscope_bin(), "top", address, "--print-after", "2s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_taskscope_top_reads_the_tls_server_with_its_certificate(tls_server):
    server, cert = tls_server
    assert server.tls
    https = f"https://{server.address}"
    out = top(https, "--tls-ca", cert)
    assert out.returncode == 0, out.stderr
    assert "tasks 40" in out.stdout, out.stdout
    # Without the certificate: one line, exit 1.
    out = top(https)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1, out.stderr
    assert "invalid peer certificate: UnknownIssuer" in out.stderr, out.stderr
    assert "pass --tls-ca" in out.stderr, out.stderr
    # The token is still needed over TLS.
    out = top(https, "--tls-ca", cert, token="guess")
    assert out.returncode == 1
    assert out.stderr == f"error: {https}: unauthenticated: missing or wrong token\n"


def test_grpc_clients_need_the_certificate_and_the_token(tls_server):
    server, cert = tls_server
    with open(cert, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    good = (("authorization", "Bearer s3cret"),)
    with grpc.secure_channel(server.address, credentials) as channel:
        stub = pb_grpc.ObserveStub(channel)
        first = next(iter(stub.Watch(pb.WatchRequest(), metadata=good)))
        assert first.snapshot.header.producer == "test"
        for metadata in [(), (("authorization", "Bearer s3cre"),),
                         (("authorization", "Bearer s3crets3cret"),)]:
            with pytest.raises(grpc.RpcError) as refused:
                next(iter(stub.Watch(pb.WatchRequest(), metadata=metadata)))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Plain HTTP/2 to a TLS port gets nothing.
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as plain:
            next(iter(pb_grpc.ObserveStub(channel).Watch(pb.WatchRequest(), metadata=good,
                                                          timeout=5)))
        assert plain.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.DEADLINE_EXCEEDED)


def test_tokens_compare_whole():
    assert same_token("Bearer s3cret", "Bearer s3cret")
    for wrong in ["", "Bearer s3cre", "Bearer s3crets", "Bearer S3cret", "Bearer s3cret\0"]:
        assert not same_token(wrong, "Bearer s3cret")
    # Bearer tokens are ASCII; anything else is refused, not an exception.
    assert not same_token("Bearer s3cr\udcffet", "Bearer s3cret")


def test_token_files(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKSCOPE_TOKEN", raising=False)

    def write(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    assert read_token_file(write("plain", b"s3cret\n")) == "s3cret"
    assert read_token_file(write("crlf", b"s3cret\r\n")) == "s3cret"
    assert read_token_file(write("bare", b"s3cret")) == "s3cret"
    cases = {
        write("empty", b""): "is empty",
        write("newline", b"\n"): "is empty",
        write("two", b"a\nb\n"): "holds more than one line",
        write("escape", b"a\x1b]0;x\x07"): "must be printable ASCII",
        write("huge", b"a" * 100_000): "is larger than 65536 bytes",
        str(tmp_path / "missing"): "cannot read token_file .*: No such file or directory",
        str(tmp_path): "cannot read token_file .*: Is a directory",
    }
    for path, error in cases.items():
        with pytest.raises(ValueError, match=error):
            read_token_file(path)
    # The argument, else the file, else the variable.
    token_file = write("token", b"from-file\n")
    assert resolve_token("0.0.0.0", 1, "given", token_file) == "given"
    assert resolve_token("0.0.0.0", 1, None, token_file) == "from-file"
    monkeypatch.setenv("TASKSCOPE_TOKEN", "from-env")
    assert resolve_token("0.0.0.0", 1, None, token_file) == "from-file"
    assert resolve_token("0.0.0.0", 1, None) == "from-env"


def test_a_token_beyond_loopback_needs_tls_or_insecure(tmp_path):
    with pytest.raises(ValueError, match="without TLS: the token would travel in clear text"):
        check_cleartext("0.0.0.0", 7878, "t", tls=False, insecure=False)
    check_cleartext("0.0.0.0", 7878, "t", tls=True, insecure=False)
    check_cleartext("0.0.0.0", 7878, "t", tls=False, insecure=True)
    check_cleartext("127.0.0.1", 7878, "t", tls=False, insecure=False)
    check_cleartext("::1", 7878, "t", tls=False, insecure=False)
    cert, key = self_signed(tmp_path)
    with pytest.raises(ValueError, match="no PEM CERTIFICATE"):
        read_pem(key, "tls_cert", "CERTIFICATE")
    with pytest.raises(ValueError, match="no PEM PRIVATE KEY"):
        read_pem(cert, "tls_key", "PRIVATE KEY")
    with pytest.raises(ValueError, match="go together"):
        TaskscopePlugin(serve=True, tls_cert=cert)
    with pytest.raises(ValueError, match="need serve"):
        TaskscopePlugin(path="x.ndjson", tls_cert=cert, tls_key=key)


def test_the_server_keeps_answering_after_failed_handshakes(tls_server):
    """Clients that connect and say nothing, or garbage, do not stop the TLS server."""
    import socket

    server, cert = tls_server
    host, port = server.address.rsplit(":", 1)
    for payload in [b"", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\x16\x03\x01\x00\x05hello"]:
        with socket.create_connection((host, int(port))) as s:
            s.sendall(payload)
            time.sleep(0.05)
    out = top(f"https://{server.address}", "--tls-ca", cert)
    assert out.returncode == 0, out.stderr
