"""One run seen three ways: the plugin's trace, ``get_task_stream()`` saved as JSON, and the
``performance_report`` HTML (as traces/tests/data/report/record_report.py records them).
``taskscope info`` must agree with Dask, and the report import with the task stream."""
from __future__ import annotations

import json

import pytest

from conftest import cluster, info, read_trace

from taskscope_dask import TaskscopePlugin


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import dask.array as da
    from dask.utils import key_split
    from distributed import get_task_stream, performance_report

    out = tmp_path_factory.mktemp("same-run")
    trace = out / "run.ndjson"
    report = out / "report.html"
    stream = out / "task_stream.json"
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(trace)))
        x = da.random.RandomState(42).random_sample((2000, 2000), chunks=(400, 400))
        expr = (x + x.T).mean(axis=0).sum()
        with performance_report(filename=str(report)):
            with get_task_stream() as ts:
                expr.compute()
        # What the scheduler says it ran: one transition log entry per task leaving processing.
        computed = client.run_on_scheduler(
            lambda dask_scheduler: sum(
                1 for t in dask_scheduler.transition_log if t[1] == "processing" and t[2] == "memory"
            )
        )
    records = [{k: v for k, v in r.items() if k != "type"} for r in ts.data]
    stream.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    groups: dict[str, int] = {}
    for r in records:
        key = tuple(r["key"]) if isinstance(r["key"], list) else r["key"]
        groups[key_split(key)] = groups.get(key_split(key), 0) + 1
    return {
        "trace": trace,
        "report": report,
        "stream": stream,
        "records": records,
        "groups": groups,
        "computed": computed,
    }


def test_info_counts_match_dask(run):
    summary = info(run["trace"])
    assert summary["format"] == "taskscope trace"
    assert summary["producer"].startswith("dask ")
    assert summary["tasks"]["records"] == len(run["records"]) == run["computed"]
    assert summary["tasks"]["ok"] == len(run["records"])
    assert {g["group"]: g["tasks"] for g in summary["groups"]} == run["groups"]
    assert len(summary["workers"]) == 2
    assert sum(w["tasks"] for w in summary["workers"]) == len(run["records"])
    assert summary["events"].get("graph-submitted", 0) >= 1
    # Phases the task stream has are the ones the trace has, one for one.
    stream_phases: dict[str, int] = {}
    for r in run["records"]:
        for ss in r["startstops"]:
            stream_phases[ss["action"]] = stream_phases.get(ss["action"], 0) + 1
    for action, count in stream_phases.items():
        assert summary["phases"][action]["count"] == count, action


def test_trace_tasks_carry_what_the_stream_lacks(run):
    header, records = read_trace(run["trace"])
    assert [w["threads"] for w in header["cluster"]["workers"]] == [1, 1]
    tasks = [r for r in records if r["kind"] == "task"]
    by_key = {json.dumps(t["key"]): t for t in tasks}
    for r in run["records"]:
        task = by_key[json.dumps(r["key"])]
        assert task["nbytes"] == r["nbytes"]
        assert task["worker"] in (0, 1)
        assert task["thread"] == 0
        actions = [p["action"] for p in task["phases"]]
        assert actions.count("compute") == 1
    # Dependencies and queued phases come only from the scheduler.
    assert sum(1 for t in tasks if t.get("deps")) > len(tasks) // 2
    assert all(t["phases"][0]["action"] == "queued" for t in tasks)
    assert any(r["kind"] == "memory" for r in records)


def test_report_import_matches_task_stream(run):
    report = info(run["report"])
    stream = info(run["stream"])
    assert report["format"] == "Dask performance report"
    assert stream["format"] == "Dask task stream"
    assert report["tasks"] == stream["tasks"]
    assert report["tasks"]["records"] == len(run["records"])
    assert {a: p["count"] for a, p in report["phases"].items()} == {
        a: p["count"] for a, p in stream["phases"].items()
    }
    assert abs(report["wall_ns"] - stream["wall_ns"]) < 1_000_000
    assert [(w["name"], w["threads"], w["tasks"]) for w in report["workers"]] == [
        (w["name"], w["threads"], w["tasks"]) for w in stream["workers"]
    ]
    report_groups = {g["group"]: g for g in report["groups"]}
    stream_groups = {g["group"]: g for g in stream["groups"]}
    assert report_groups.keys() == stream_groups.keys()
    for name, g in stream_groups.items():
        r = report_groups[name]
        assert r["tasks"] == g["tasks"], name
        # The report keeps milliseconds as floats: a microsecond per task at most.
        assert abs(r["total_compute_ns"] - g["total_compute_ns"]) <= 1000 * g["tasks"], name
