"""The other way in: ``dask scheduler --preload taskscope_dask --taskscope-trace ...``."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
import pytest

import workloads
from conftest import info, read_trace

from taskscope_dask._proto import observe_pb2 as pb
from taskscope_dask._proto import observe_pb2_grpc as pb_grpc
from taskscope_dask.observe import free_port


HERE = os.path.dirname(os.path.abspath(__file__))


def dask_cli(*args: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        # The scheduler unpickles the graph: it must import the tests' workloads module.
        env={**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])},
    )


def wait_for_file(path, proc, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{path} did not appear (exit code {proc.poll()})")
        time.sleep(0.1)


def stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_scheduler_preload(tmp_path):
    from distributed import Client

    trace = tmp_path / "run.ndjson"
    scheduler_file = tmp_path / "scheduler.json"
    port = free_port()
    log = open(tmp_path / "cluster.log", "w")
    scheduler = dask_cli(
        "scheduler",
        "--no-dashboard",
        "--port", "0",
        "--scheduler-file", str(scheduler_file),
        "--preload", "taskscope_dask",
        "--taskscope-trace", str(trace),
        "--taskscope-serve", f"127.0.0.1:{port}",
        log=log,
    )
    worker = None
    try:
        wait_for_file(scheduler_file, scheduler)
        worker = dask_cli(
            "worker",
            "--scheduler-file", str(scheduler_file),
            "--nthreads", "2",
            "--no-nanny",
            "--no-dashboard",
            "--memory-limit", "1GiB",
            log=log,
        )
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            futures = client.map(workloads.tiny_f, range(20))
            assert client.gather(futures) == [x * x + 1 for x in range(20)]
            keys = {f.key for f in futures}
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                first = next(iter(pb_grpc.ObserveStub(channel).Watch(pb.WatchRequest())))
                assert first.snapshot.header.producer.startswith("dask ")
            client.shutdown()
        scheduler.wait(timeout=60)
    finally:
        if worker is not None:
            stop(worker)
        stop(scheduler)
        log.close()
    logs = (tmp_path / "cluster.log").read_text()
    assert "recording to" in logs, logs
    header, records = read_trace(trace)
    assert header["producer"].startswith("dask ")
    # The worker joined after the scheduler started: a worker-added event, not the header.
    added = [r for r in records if r["kind"] == "event" and r["type"] == "worker-added"]
    assert [a["worker"]["threads"] for a in added] == [2]
    assert added[0]["worker"]["memory_limit"] == 2**30
    tasks = [r for r in records if r["kind"] == "task"]
    assert {r["key"] for r in tasks} == keys
    assert {r["thread"] for r in tasks} <= {0, 1}
    assert info(trace)["tasks"]["ok"] == 20


def test_preload_without_options_says_what_is_missing(tmp_path):
    """Dask logs a failing preload and runs on; the log says what to add."""
    log_path = tmp_path / "scheduler.log"
    with open(log_path, "w") as log:
        proc = dask_cli("scheduler", "--no-dashboard", "--port", "0",
                        "--preload", "taskscope_dask", log=log)
        try:
            deadline = time.time() + 60
            while "Failed to start preload" not in log_path.read_text():
                assert proc.poll() is None and time.time() < deadline, log_path.read_text()
                time.sleep(0.1)
        finally:
            stop(proc)
    assert "needs --taskscope-trace PATH and/or --taskscope-serve" in log_path.read_text()


def test_preload_refuses_a_token_in_clear_text(tmp_path):
    """A token beyond loopback without --taskscope-tls-cert/-key: the preload fails, and the log
    says why (the check comes before taskscope binds anything)."""
    log_path = tmp_path / "scheduler.log"
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with open(log_path, "w") as log:
        proc = dask_cli("scheduler", "--no-dashboard", "--port", "0",
                        "--preload", "taskscope_dask",
                        "--taskscope-serve", "0.0.0.0:0",
                        "--taskscope-token-file", str(token_file), log=log)
        try:
            deadline = time.time() + 60
            while "Failed to start preload" not in log_path.read_text():
                assert proc.poll() is None and time.time() < deadline, log_path.read_text()
                time.sleep(0.1)
        finally:
            stop(proc)
    assert "without TLS: the token would travel in clear text" in log_path.read_text()
