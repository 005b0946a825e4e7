"""Failed, retried and lost attempts: statuses, attempt numbers and cluster events."""
from __future__ import annotations

import os
import signal
import time

from conftest import cluster, info, read_trace

from taskscope_dask import TaskscopePlugin


def fail(x):
    raise ValueError(f"bad input {x}")


def flaky(path):
    """Fails until it has been called three times (counted in a file)."""
    with open(path, "a+") as f:
        f.write("x")
        f.seek(0)
        calls = len(f.read())
    if calls < 3:
        raise RuntimeError(f"flaky call {calls}")
    return calls


def sleepy(seconds):
    time.sleep(seconds)
    return seconds


def test_errors_and_retries(tmp_path):
    path = tmp_path / "run.ndjson"
    counter = tmp_path / "calls"
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path)))
        bad = client.submit(fail, 1)
        assert bad.exception() is not None
        retried = client.submit(flaky, str(counter), retries=2)
        assert retried.result() == 3
        bad_key, retried_key = bad.key, retried.key
    _, records = read_trace(path)
    tasks = [r for r in records if r["kind"] == "task"]
    failed = [t for t in tasks if t["key"] == bad_key]
    assert len(failed) == 1
    assert failed[0]["status"] == "error"
    assert "ValueError" in failed[0]["error"] and "bad input 1" in failed[0]["error"]
    assert any(p["action"] == "compute" for p in failed[0]["phases"])

    attempts = [t for t in tasks if t["key"] == retried_key]
    assert [(t["status"], t.get("attempt", 1)) for t in attempts] == [
        ("error", 1),
        ("error", 2),
        ("ok", 3),
    ]
    retries = [r for r in records if r["kind"] == "event" and r["type"] == "task-retried"]
    assert [(r["key"], r["attempt"]) for r in retries] == [(retried_key, 2), (retried_key, 3)]
    summary = info(path)
    assert summary["tasks"]["error"] == 3 and summary["tasks"]["ok"] == 1
    assert summary["tasks"]["retried"] == 2


def test_worker_killed_mid_task(tmp_path):
    path = tmp_path / "run.ndjson"
    with cluster(n_workers=2) as (c, client):
        client.register_plugin(TaskscopePlugin(path=str(path), interval=0.1))
        future = client.submit(sleepy, 3, pure=False)
        victim = None
        while victim is None:
            time.sleep(0.05)
            victim = next((w for w, k in client.processing().items() if future.key in k), None)
        pid = client.run(os.getpid, workers=[victim])[victim]
        time.sleep(1.0)  # let a heartbeat report the task as executing
        os.kill(pid, signal.SIGKILL)
        assert future.result(timeout=60) == 3
        key = future.key
    header, records = read_trace(path)
    ids = {w["name"]: w["id"] for w in header["cluster"]["workers"]}
    events = [r for r in records if r["kind"] == "event"]
    killed = [e for e in events if e["type"] == "worker-killed"]
    assert [e["worker"] for e in killed] == [ids[victim]]
    assert any(e["type"] == "worker-added" for e in events), "the nanny's replacement"
    attempts = [t for t in records if t["kind"] == "task" and t["key"] == key]
    assert [(t["status"], t.get("attempt", 1)) for t in attempts] == [("lost", 1), ("ok", 2)]
    lost = attempts[0]
    assert lost["worker"] == ids[victim]
    # The last heartbeat before the death said the task was computing.
    assert any(p["action"] == "compute" for p in lost["phases"])
    summary = info(path)
    assert summary["tasks"]["lost"] == 1
    assert [w["killed"] for w in summary["workers"] if w["id"] == ids[victim]] == [True]
