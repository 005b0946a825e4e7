"""taskscope's own client (``taskscope top --print-after``, Rust/tonic) watching the plugin's
server: the same wire format both ways, continuations and all."""
from __future__ import annotations

import os
import subprocess

import pytest

import workloads
from conftest import cluster, taskscope_bin

from taskscope_dask import TaskscopePlugin
from taskscope_dask.observe import free_port


@pytest.fixture(scope="module")
def top():
    binary = taskscope_bin()
    usage = subprocess.run([binary, "top", "--help"], capture_output=True, text=True)
    if "--print-after" not in usage.stdout:
        pytest.skip(f"{binary} has no `top --print-after` (an older build)")

    def run(address: str, view: str, token: str | None = None) -> str:
        env = {"NO_COLOR": "1"}
        if token is not None:
            env["TASKSCOPE_TOKEN"] = token
        proc = subprocess.run(
            [binary, "top", address, "--print-after", "2s", "--view", view],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


def test_top_reads_the_plugin(top):
    port = free_port()
    address = f"127.0.0.1:{port}"
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(serve=port))
        workloads.skewed(client)
        findings = top(address, "findings")
        progress = top(address, "progress")
        workers = top(address, "workers")
    first = findings.splitlines()[2]
    # The hot partition is slow to load and to group: either group may lead, by the run's timing.
    assert "skew" in first and ("groupby_chunk" in first or "load_partition" in first), findings
    for group in ("load_partition", "groupby_chunk", "groupby_combine"):
        assert group in progress, progress
    assert "w0" in workers and "w1" in workers, workers


def test_top_with_a_token(top):
    port = free_port()
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(serve=port, token="s3cret"))
        client.gather(client.map(workloads.tiny_f, range(10)))
        screen = top(f"127.0.0.1:{port}", "progress", token="s3cret")
    assert "tiny_f" in screen, screen


def test_top_reads_the_plugin_over_tls(tmp_path):
    """``tls_cert``/``tls_key`` and ``token_file`` on a real scheduler, read by ``taskscope top
    https://… --tls-ca`` with ``--token-file``."""
    from test_observe_security import self_signed

    cert, key = self_signed(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TASKSCOPE_TOKEN"}
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(
            TaskscopePlugin(serve=port, token_file=token_file, tls_cert=cert, tls_key=key)
        )
        client.gather(client.map(workloads.tiny_f, range(10)))
        watch = [taskscope_bin(), "top", f"https://127.0.0.1:{port}", "--print-after", "2s",
                 "--view", "progress", "--token-file", str(token_file)]
        trusted = subprocess.run(watch + ["--tls-ca", cert], capture_output=True, text=True,
                                 timeout=60, env=env)
        untrusted = subprocess.run(watch, capture_output=True, text=True, timeout=60, env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert "tiny_f" in trusted.stdout, trusted.stdout
    assert untrusted.returncode == 1
    assert "invalid peer certificate: UnknownIssuer" in untrusted.stderr, untrusted.stderr
    assert untrusted.stderr.count("\n") == 1, untrusted.stderr
