"""Workloads with a known pathology, recorded by the plugin on a real LocalCluster: the analyzer's
top finding on the trace is that pathology (as on the task-stream fixtures in
analyzer/tests/data/dask/, which the same workloads recorded)."""
from __future__ import annotations

import json
import time

import pytest

import workloads
from conftest import analyze, cluster, read_trace, taskscope

from taskscope_dask import TaskscopePlugin

SEVERITY = ["none", "low", "moderate", "severe", "critical"]

CASES = [
    # workload, worker memory limit, rule expected first
    ("skewed", "2GiB", "skew"),
    ("tiny", "2GiB", "tiny-partitions"),
    ("large_argument", "2GiB", "oversized-argument"),
    ("loop", "2GiB", "idle-gaps"),
    ("spill", "400MiB", "memory-pressure"),
]


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """Records a workload once per module: ``record(name, memory_limit)`` → trace path."""
    done: dict[str, str] = {}

    def run(workload: str, memory_limit: str = "2GiB") -> str:
        if workload not in done:
            path = str(tmp_path_factory.mktemp(workload) / f"{workload}.ndjson")
            with cluster(memory_limit=memory_limit) as (_, client):
                client.register_plugin(TaskscopePlugin(path=path))
                getattr(workloads, workload)(client)
            done[workload] = path
        return done[workload]

    return run


@pytest.mark.parametrize("workload,memory_limit,rule", CASES, ids=[c[0] for c in CASES])
def test_top_finding_is_the_pathology(record, workload, memory_limit, rule):
    path = record(workload, memory_limit)
    report = analyze(path)
    findings = report["findings"]
    summary = "\n".join(
        f"  {f['rule']} {f['severity']} {f['impact_seconds']:.3f}s {f['title']}" for f in findings
    )
    assert findings, f"{workload}: no findings on {path}"
    assert findings[0]["rule"] == rule, f"{workload} ({path}):\n{summary}"
    assert SEVERITY.index(findings[0]["severity"]) >= SEVERITY.index("moderate"), summary


def test_healthy_run_has_nothing_moderate(record):
    path = record("healthy")
    findings = analyze(path)["findings"]
    worst = max((SEVERITY.index(f["severity"]) for f in findings), default=0)
    assert worst < SEVERITY.index("moderate"), findings


def test_large_argument_is_measured_inline(record):
    """The 16 MiB array passed to every task shows as each task's inline bytes."""
    path = record("large_argument")
    _, records = read_trace(path)
    tasks = [r for r in records if r["kind"] == "task" and r["group"] == "use_table"]
    assert len(tasks) == 48
    size = workloads.LARGE_ELEMENTS * 8
    assert all(size <= t["inline_bytes"] < size + 4096 for t in tasks), tasks[0]


def nap(i):
    time.sleep(0.2)
    return i


def test_resource_restrictions_are_recorded_and_replayed(tmp_path):
    """Tasks that need the one GPU of each 2-thread worker run one at a time there: the trace
    says what they required, and the replay queues them as Dask did instead of running two a
    worker."""
    path = str(tmp_path / "gpu.ndjson")
    with cluster(threads=2, resources={"GPU": 1}) as (_, client):
        client.register_plugin(TaskscopePlugin(path=path))
        futures = client.map(nap, range(8), resources={"GPU": 1}, pure=False)
        assert client.gather(futures) == list(range(8))
    header, records = read_trace(path)
    assert [w["resources"] for w in header["cluster"]["workers"]] == [{"GPU": 1.0}] * 2
    naps = [r for r in records if r["kind"] == "task" and r["group"] == "nap"]
    assert len(naps) == 8
    assert all(t["resources"] == {"GPU": 1.0} for t in naps), naps[0]
    out = json.loads(taskscope("simulate", path, "--workers", "2", "--format", "json"))
    # Four rounds of 0.2 s per worker, not two.
    assert out["predictions"][0]["wall_seconds"] >= 0.75, out


def test_worker_restrictions_are_recorded_and_replayed(tmp_path):
    """Tasks pinned to one 2-thread worker (``workers=``, no ``allow_other_workers``) run two at
    a time there while the other worker idles: the trace says where they were allowed, and the
    replay keeps them there."""
    path = str(tmp_path / "pinned.ndjson")
    with cluster(threads=2) as (_, client):
        client.register_plugin(TaskscopePlugin(path=path))
        first = sorted(client.scheduler_info()["workers"])[0]
        futures = client.map(nap, range(8), workers=[first], pure=False)
        assert client.gather(futures) == list(range(8))
    header, records = read_trace(path)
    pinned = [w["id"] for w in header["cluster"]["workers"] if w["name"] == first]
    naps = [r for r in records if r["kind"] == "task" and r["group"] == "nap"]
    assert len(naps) == 8 and len(pinned) == 1
    assert all(t["restricted_to"] == pinned for t in naps), naps[0]
    out = json.loads(taskscope("simulate", path, "--workers", "2", "--format", "json"))
    # Four rounds of 0.2 s on the one worker, not two rounds on both.
    assert out["predictions"][0]["wall_seconds"] >= 0.75, out


def test_scattered_data_is_recorded_where_it_was_held_and_replayed_there(tmp_path):
    """Inputs scattered to one worker have no task: the trace says where they were held and how
    big they are, and the replay places the tasks that read them there, as Dask did."""
    import numpy as np

    path = str(tmp_path / "scattered.ndjson")
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(path=path))
        first = sorted(client.scheduler_info()["workers"])[0]
        data = client.scatter([np.ones(1_000_000) * i for i in range(6)], workers=[first])
        assert sum(client.gather(client.map(np.sum, data))) == 15_000_000
    header, records = read_trace(path)
    held = [w["id"] for w in header["cluster"]["workers"] if w["name"] == first]
    added = [r for r in records if r["kind"] == "event" and r["type"] == "data-added"]
    assert sorted(a["key"] for a in added) == sorted(f.key for f in data)
    assert all(a["workers"] == held and a["nbytes"] == 8_000_000 for a in added), added
    # Every input is known to the replay, which places the tasks by it.
    out = json.loads(taskscope("simulate", path, "--format", "json"))
    assert out["model"]["unknown_dependencies"] == 0, out
