"""``taskscope_dask.trace()`` around real LocalCluster jobs, the typed ``Report`` the bundled
binary's JSON becomes, its HTML view, and how the binary is found."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest
import workloads
from conftest import REPO, cluster, read_trace
from dask.system import CPU_COUNT

import taskscope_dask
from taskscope_dask import Report, TaskscopeNotFound, find_taskscope_bin
from taskscope_dask import binary as binary_mod
from taskscope_dask.report import render_html


def test_trace_records_a_localcluster_job_and_analyze_ranks_skew_first(tmp_path):
    path = tmp_path / "run.ndjson"
    with cluster() as (_, client):
        with taskscope_dask.trace(path, client=client) as t:
            workloads.skewed_sort(client)
        assert t.closed
        # The block's end closed and unregistered the plugin: the trace is complete.
        assert "taskscope" not in client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.plugins)
        )
    assert t.path == str(path) and t.local_path == str(path)
    header, records = read_trace(path)
    assert header["version"] == "1.3"
    assert sum(r["kind"] == "task" for r in records) >= 16 * 2
    # A LocalCluster: every worker on the scheduler's host, whose cores the plugin knows.
    workers = header["cluster"]["workers"]
    assert workers and all(w["host"] == "127.0.0.1" for w in workers), workers
    assert all(w["host_cores"] == CPU_COUNT for w in workers), workers

    report = t.analyze()
    assert isinstance(report, Report)
    top = report.findings[0]
    assert top.rule == "skew", str(report)
    # How severe depends on the machine's load; test_pathologies.py holds the bar.
    assert top.at_least("low") and not top.at_least("critical")
    assert top.impact_seconds > 0
    assert top.scope.group in ("sort_partition", "sort_median")
    assert report.summary.tasks == sum(r["kind"] == "task" for r in records)
    assert report.summary.workers == 2

    # to_dict() is the binary's JSON schema, field for field.
    raw = json.loads(
        taskscope_dask.binary.run_taskscope("analyze", path, "--format", "json")
    )
    assert report.to_dict() == raw
    assert report.to_dict()["findings"][0]["rule"] == "skew"

    # In Jupyter: the binary's own findings fragment (`analyze --format html`).
    page = report._repr_html_()
    assert page == taskscope_dask.binary.run_taskscope("analyze", path, "--format", "html")
    assert page.startswith('<div class="taskscope-findings">')
    assert re.findall(r'<code class="rule">([^<]+)</code>', page)[0] == "skew"
    assert "<script" not in page and "src=" not in page  # self-contained
    assert report._repr_html_() is page  # run once, then kept
    assert "<html" in Path(t.report(tmp_path / "run.html")).read_text()[:200].lower()

    svg = Path(t.flamegraph(tmp_path / "run.svg")).read_text()
    assert "<svg" in svg and "sort_median" in svg
    assert t.info()["tasks"]["records"] == report.summary.tasks

    # What-if: the binary's replay of the run on 1 and 4 workers, with skew's fix.
    sim = t.simulate(workers=[1, 4], fix="skew")
    assert isinstance(sim, taskscope_dask.Simulation)
    assert sim.to_dict() == json.loads(
        taskscope_dask.binary.run_taskscope(
            "simulate", path, "--workers", "1,4", "--fix", "skew", "--format", "json"
        )
    )
    assert [p.shape for p in sim.predictions] == ["1\u00d71", "4\u00d71"]
    assert (sim.recorded_workers, sim.recorded_threads) == (2, 1)
    assert sim.fix == "skew" and sim.fix_changes_the_trace
    one, four = sim.predictions
    assert four.wall_seconds < one.wall_seconds
    assert sim.fastest() in sim.predictions
    assert sim.critical_path_seconds <= min(p.wall_seconds for p in sim.predictions)
    # `cores=` reaches the binary: a host of 64 cores is what the model then shares.
    big = t.simulate(workers=[4], cores=64)
    assert big.host_cores in (None, [64]), big.host_cores  # None: no CPU times recorded yet
    assert str(sim).startswith("calibration: replayed on its own shape (2\u00d71)")
    assert "<table>" in sim._repr_html_() and "with --fix skew" in sim._repr_html_()


def test_a_simulation_from_dict_is_typed_and_its_html_escapes_everything():
    raw = {
        "recorded": {
            "workers": 2, "threads": 1, "wall_seconds": 4.0, "replayed_wall_seconds": 3.8,
            "error": -0.05, "utilisation": 0.9,
        },
        "model": {"bandwidth_bytes_per_second": 100_000_000},
        "fix": {"rule": "<script>alert(1)</script>", "applies": "x", "changes_the_trace": True},
        "predictions": [
            {"workers": 2, "threads": 1, "wall_seconds": 3.8, "utilisation": 0.9,
             "transferred_bytes": 10, "spilled_bytes": 0, "workers_killed": 0,
             "fixed_wall_seconds": 3.0},
            {"workers": 4, "threads": 1, "wall_seconds": 2.0, "utilisation": 0.8,
             "transferred_bytes": 20, "spilled_bytes": 0, "workers_killed": 1,
             "fixed_wall_seconds": 2.5},
        ],
        "critical_path_seconds": 0.5,
        "a_field_from_a_newer_binary": 1,
    }
    sim = taskscope_dask.Simulation.from_dict(raw)
    assert sim.calibration_error == -0.05
    assert sim.host_cores is None  # no CPU model: no cores in the model
    assert "cpu: not modelled: each added worker is taken to bring its own cores" in str(sim)
    cores = taskscope_dask.Simulation.from_dict({**raw, "model": {"host_cores": [2, 16]}})
    assert cores.host_cores == [2, 16]
    assert cores.cpu() == "tasks computing on one host share its 2\u201316 cores"
    one = taskscope_dask.Simulation.from_dict({**raw, "model": {"host_cores": [1]}})
    assert "<p>cpu: tasks computing on one host share its 1 core</p>" in one._repr_html_()
    assert sim.predictions[1].workers_killed == 1
    # With a fix that changes the trace, the fastest shape is the fastest fixed one.
    assert sim.fastest() is sim.predictions[1]
    assert sim.to_dict() == raw and sim.to_dict() is not sim.to_dict()
    page = sim._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "2.00\u00d7" not in page and "0.53\u00d7" in page  # 2.0 s over the replayed 3.8 s
    assert "with --fix &lt;script&gt;" in page


def test_trace_finishes_the_trace_when_the_block_raises_and_uses_the_current_client(tmp_path):
    path = tmp_path / "failed.ndjson.zst"
    with cluster() as (_, client):
        # No client given: distributed.get_client(), the current one.
        with pytest.raises(ZeroDivisionError), taskscope_dask.trace(path) as t:
            client.submit(workloads.busy, 0.05).result()
            raise ZeroDivisionError
        assert t.closed
    info = t.info()
    assert info["tasks"]["records"] == 1
    # Analyzing within the block is refused, with the reason.
    t.closed = False
    with pytest.raises(RuntimeError, match="after the `with trace"):
        t.analyze()


def test_fetch_copies_the_trace_from_the_scheduler(tmp_path):
    path = tmp_path / "remote.ndjson"
    with cluster(n_workers=1) as (_, client):
        with taskscope_dask.trace(path, client=client) as t:
            client.submit(workloads.busy, 0.01).result()
        # As if the scheduler ran elsewhere: its file cannot be read here.
        t.scheduler_host = "scheduler.elsewhere"
        t.local_path = None
        with pytest.raises(FileNotFoundError, match=r"t\.fetch\(\)"):
            t.analyze()
        copy = t.fetch(tmp_path / "copy.ndjson")
    assert Path(copy).read_bytes() == path.read_bytes()
    assert t.analyze().summary.tasks == 1


def test_report_from_dict_is_typed_and_its_html_escapes_everything():
    raw = {
        "summary": {
            "format": "taskscope-trace 1.1", "producer": "dask <2026>", "tasks": 3,
            "failed_tasks": 0, "lost_tasks": 0, "groups": 1, "workers": 1, "threads": 1,
            "wall_seconds": 2.0, "busy_seconds": 1.5, "ideal_seconds": 1.5, "efficiency": 0.75,
        },
        "findings": [
            {
                "rule": "skew", "severity": "critical", "impact_seconds": 9.5,
                "impact_from": "simulation",
                "title": "<script>alert(1)</script> & co",
                "scope": {"group": "a<b", "time_range": [0.5, 1.5], "keys": ["('x', 1)"]},
                "evidence": {"ratio": 20.0, "max_seconds": 1.25, "estimated_impact_seconds": 12.5},
                "advice": "repartition \"now\"",
                "simulated": {
                    "saves_seconds": 9.5, "fixed_wall_seconds": 3.0,
                    "replayed_wall_seconds": 12.5, "calibration_error": -0.04,
                },
            },
            {
                "rule": "idle-gaps", "severity": "low", "impact_seconds": 0.1,
                "impact_from": "estimate", "title": "t",
                "scope": {}, "evidence": {}, "advice": "a",
                "simulated": {
                    "saves_seconds": 0.05, "fixed_wall_seconds": 9.95,
                    "replayed_wall_seconds": 10.0, "calibration_error": 0.25,
                },
            },
        ],
        "critical_path": {
            "tasks": 2, "length_seconds": 1.0, "compute_seconds": 0.8,
            "transfer_seconds": 0.1, "wait_seconds": 0.1, "groups": [["a", 1], ["b", 1]],
        },
        "future_field": {"kept": True},
    }
    report = Report.from_dict(raw)
    f = report.findings[0]
    assert (f.rule, f.severity, f.impact_seconds) == ("skew", "critical", 9.5)
    assert (f.impact_from, report.findings[1].impact_from) == ("simulation", "estimate")
    assert f.scope.time_range == (0.5, 1.5) and f.evidence["ratio"] == 20.0
    assert report.critical_path is not None and report.critical_path.groups == [("a", 1), ("b", 1)]
    assert report.worst() == "critical"
    assert report.to_dict() == raw  # unknown fields kept
    report.to_dict()["findings"].clear()
    assert len(report.to_dict()["findings"]) == 2  # a copy

    page = report._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "a&lt;b" in page and "dask &lt;2026&gt;" in page and "&quot;now&quot;" in page
    # Severity colours: critical's and low's badges differ.
    badges = re.findall(r'taskscope-(critical|low)" style="background:(#[0-9a-f]{6})', page)
    assert dict(badges)["critical"] != dict(badges)["low"]
    assert "1. [critical] skew (~9.50 s simulated)" in str(report)
    assert "2. [low] idle-gaps (~0.10 s)" in str(report)
    # The binary's sentence for a simulated fix, word for word.
    assert f.simulated is not None and report.findings[1].simulated is not None
    assert (
        "   simulated: replayed with the fix, the run takes 3.00 s instead of 12.50 s: "
        "9.50 s saved (the replay is -4 % off the recorded run; the rule's estimate was 12.50 s)"
    ) in str(report)
    # A saving within the replay's own error (10 s replayed for 8 s recorded) is not taken.
    assert (
        "   simulated: replayed with the fix, the run takes 9.95 s instead of 10.00 s: 0.05 s "
        "saved (the replay is +25 % off the recorded run, 2.00 s: more than the saving, so the "
        "rule's estimate stands)"
    ) in str(report)
    assert "<b>simulated:</b> replayed with the fix" in render_html(report)

    empty = Report.from_dict({**raw, "findings": [], "critical_path": None})
    assert "No findings" in empty._repr_html_() and empty.worst() == "none"


def test_binary_lookup_order_and_the_error_naming_three_places(tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(binary_mod, "_package_scripts_dirs", lambda: [scripts])
    monkeypatch.setenv("PATH", str(elsewhere))
    monkeypatch.delenv("TASKSCOPE_BIN", raising=False)
    with pytest.raises(TaskscopeNotFound) as err:
        find_taskscope_bin()
    said = str(err.value)
    assert str(scripts / "taskscope") in said and "$TASKSCOPE_BIN is not set" in said
    assert "PATH" in said

    def fake(where: Path) -> str:
        exe = where / "taskscope"
        exe.write_text("#!/bin/sh\necho taskscope 0.0.0\n")
        exe.chmod(0o755)
        return str(exe)

    on_path = fake(elsewhere)
    assert find_taskscope_bin() == on_path
    env_bin = fake(tmp_path)
    monkeypatch.setenv("TASKSCOPE_BIN", env_bin)
    assert find_taskscope_bin() == env_bin
    bundled = fake(scripts)
    assert find_taskscope_bin() == bundled  # the package's own wins


@pytest.mark.skipif(
    not os.environ.get("TASKSCOPE_EXPECT_BUNDLED"),
    reason="only in the wheel's test venv (scripts/test-wheel.sh)",
)
def test_the_wheel_runs_its_bundled_binary_without_cargo():
    assert "TASKSCOPE_BIN" not in os.environ
    assert shutil.which("cargo") is None
    found = find_taskscope_bin()
    assert Path(found).parent == Path(sysconfig.get_path("scripts"))
    assert Path(found).parent == Path(sys.executable).parent


def test_example_notebook_runs_and_its_report_cell_shows_the_skew_finding(tmp_path):
    """examples/notebook.ipynb, executed by nbclient in a fresh kernel: a real LocalCluster with
    a skewed workload under trace(); the cell displaying the report holds the skew finding."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    report_cells = [c for c in nb.cells if c.cell_type == "code" and "t.analyze()" in c.source]
    assert len(report_cells) == 1
    (output,) = [o for o in report_cells[0].outputs if o.output_type == "execute_result"]
    page = output["data"]["text/html"]
    rules = re.findall(r'<code class="rule">([^<]+)</code>', page)
    assert rules and rules[0] == "skew", page
    assert (tmp_path / "notebook-run.ndjson").exists()
    assert (tmp_path / "notebook-run.svg").read_text().lstrip().startswith("<?xml")
    # The what-if cell shows the replay's table: three shapes, with skew's fix beside each.
    (sim_cell,) = [c for c in nb.cells if c.cell_type == "code" and "t.simulate(" in c.source]
    (output,) = [o for o in sim_cell.outputs if o.output_type == "execute_result"]
    page = output["data"]["text/html"]
    assert page.startswith('<div class="taskscope-simulation">'), page
    assert page.count("<tr><td>") == 3 and "with --fix skew" in page, page
