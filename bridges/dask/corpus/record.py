#!/usr/bin/env python3
"""Record taskscope's Dask corpus: each scenario of scenarios.py once, on a fresh LocalCluster,
seen three ways from the same run.

    python record.py [--out DIR] [--shape WxT] [--scale F] [SCENARIO ... | all]

For each scenario, DIR/<name>/ gets:

* ``plugin.ndjson.zst``  the TaskscopePlugin trace (written as plugin.ndjson, the plugin closed,
                         then compressed)
* ``stream.json.zst``    ``get_task_stream()`` records as JSON: the pickled ``type`` dropped,
                         tuples as arrays, one record per line inside ``[ ... ]`` (as
                         analyzer/tests/data/dask/record.py and traces/tests/data/ save them)
* ``report.html.zst``    the ``performance_report(filename=...)`` HTML, byte for byte
* ``expected.toml``      what the analyzer should find, per format
* ``facts.json``         wall time, task counts, groups, versions, load average, and the
                         evidence measured in the data (evidence.py)

DIR defaults to analyzer/tests/corpus in this repository.

Variants, without editing the registry (record them outside the repository, e.g. /tmp):

* ``--shape WxT``  W workers x T threads each for every scenario, except those whose pathology
                   (or health) is their shape (``SHAPE_BOUND``): they keep the registry's shape,
                   and record.py says so. ``facts.json`` records the shape used.
* ``--scale F``    multiplies the integer size knobs a workload already takes as keyword
                   parameters (``tiny_bag(n=)``, ``large_arg_delayed(tasks=)``,
                   ``idle_compute_loop(iterations=)``); workloads without one run as they are.

The workload runs inside
``performance_report`` (outer) and ``get_task_stream`` (inner) with the plugin registered before
both, so all three cover the same tasks.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import shutil
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEFAULT_OUT = os.path.join(REPO, "analyzer", "tests", "corpus")

# Worker processes import the task functions by module name: this directory must be on their
# path before the cluster starts.
os.environ["PYTHONPATH"] = HERE + (
    os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""
)
sys.path.insert(0, HERE)

import scenarios  # noqa: E402
import evidence  # noqa: E402


# Scenarios whose pathology, or health, is their cluster shape: --shape leaves them alone.
SHAPE_BOUND = {
    "gil-1x4": "threads sharing one GIL is the pathology",
    "gil-2x2": "threads sharing one GIL is the pathology",
    "threads-io-sleep": "one thread per worker for I/O waits is the pathology",
    "threads-io-bag": "one thread per worker for I/O waits is the pathology",
    "healthy-numpy-threads": "healthy because numpy releases the GIL on its 2 threads",
    "healthy-io-threads": "healthy because its 8 threads overlap the I/O waits",
}
# Scenarios pinned to the first of several workers (scatter / restrictions / resources): a new
# shape applies only when it keeps two workers or more.
NEEDS_WORKERS = {"straggler-scatter": 2, "straggler-restricted": 2, "straggler-resources": 2}


def parse_shape(text: str) -> tuple[int, int]:
    try:
        w, t = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape wants WxT (e.g. 3x1), not {text!r}")
    if w < 1 or t < 1:
        raise argparse.ArgumentTypeError(f"--shape {text}: workers and threads must be >= 1")
    return w, t


def variant(s: scenarios.Scenario, shape) -> tuple[scenarios.Scenario, str | None]:
    """The scenario at ``shape`` (workers, threads), or as it is with the reason it was kept."""
    if shape is None:
        return s, None
    if s.name in SHAPE_BOUND:
        return s, SHAPE_BOUND[s.name]
    if shape[0] < NEEDS_WORKERS.get(s.name, 1):
        return s, f"pinned to one of {NEEDS_WORKERS[s.name]}+ workers"
    return dataclasses.replace(s, n_workers=shape[0], threads_per_worker=shape[1]), None


def scaled_kwargs(s: scenarios.Scenario, scale: float) -> dict:
    """The workload's integer keyword parameters (its size knobs) times ``scale``."""
    if scale == 1.0:
        return {}
    out = {}
    for name, p in list(inspect.signature(s.run).parameters.items())[1:]:
        if isinstance(p.default, int) and not isinstance(p.default, bool):
            out[name] = max(1, round(p.default * scale))
    return out


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def expected_toml(s: scenarios.Scenario) -> str:
    lines = [
        f"scenario = {_toml_str(s.name)}",
        f"expect = {_toml_str(s.expect)}",
        f"description = {_toml_str(s.description)}",
    ]
    if s.formats:
        lines.append("")
        lines.append("[formats]")
        for fmt in scenarios.FORMATS:
            if fmt in s.formats:
                lines.append(f"{fmt} = {_toml_str(s.formats[fmt])}")
    return "\n".join(lines) + "\n"


def _compress(src: str, dst: str) -> int:
    import zstandard

    with open(src, "rb") as f:
        data = f.read()
    blob = zstandard.ZstdCompressor(level=19).compress(data)
    with open(dst, "wb") as f:
        f.write(blob)
    os.remove(src)
    return len(blob)


def _warm_up():
    import dask.array  # noqa: F401
    import dask.bag  # noqa: F401
    import dask.dataframe  # noqa: F401
    import numpy
    import pandas  # noqa: F401

    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        pass
    # The first large allocation of a fresh process (page faults, malloc arenas) makes its
    # first task several times slower than the rest: pay it here, as a warm cluster has.
    numpy.sort(numpy.random.default_rng(0).random(8_000_000))
    return True


async def _close_taskscope(dask_scheduler):
    """Closes the plugin (the trace is complete on disk) and removes it from the scheduler."""
    plugin = dask_scheduler.plugins.get("taskscope")
    if plugin is None:
        return False
    await plugin.close()
    dask_scheduler.remove_plugin(name="taskscope")
    return True


def _versions() -> dict:
    import platform

    import bokeh
    import dask
    import distributed
    import numpy
    import pandas

    out = {
        "python": platform.python_version(),
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "bokeh": bokeh.__version__,
    }
    try:
        import pyarrow

        out["pyarrow"] = pyarrow.__version__
    except ImportError:
        pass
    try:
        import taskscope_dask

        out["taskscope_dask"] = taskscope_dask.__version__
    except (ImportError, AttributeError):
        pass
    return out


def record(s: scenarios.Scenario, out_root: str, run_kwargs: dict | None = None) -> dict:
    import dask
    from distributed import Client, LocalCluster, get_task_stream, performance_report

    from taskscope_dask import TaskscopePlugin

    out = os.path.join(out_root, s.name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    trace = os.path.join(out, "plugin.ndjson")
    report = os.path.join(out, "report.html")
    stream = os.path.join(out, "stream.json")

    t_setup = time.time()
    with warnings.catch_warnings():
        # "Port 8787 is already in use", "Sending large graph", "Large object ... detected".
        warnings.simplefilter("ignore")
        with dask.config.set(s.config), LocalCluster(
            dashboard_address=":0", **scenarios.cluster_kwargs(s)
        ) as cluster, Client(cluster) as client:
            client.wait_for_workers(s.n_workers)
            addresses = sorted(client.scheduler_info()["workers"])
            for index, resources in s.worker_resources.items():

                async def _set(dask_worker, resources=resources):
                    await dask_worker.set_resources(**resources)

                client.run(_set, workers=[addresses[index]])
            client.run(_warm_up)  # imports and first allocations paid before the recording
            client.register_plugin(TaskscopePlugin(path=trace))
            load_before = os.getloadavg()
            t0 = time.time()
            error = None
            with performance_report(filename=report):
                with get_task_stream() as ts:
                    try:
                        summary = s.run(client, **(run_kwargs or {}))
                    except Exception as e:  # a workload bug: keep the recording, say so
                        summary = f"workload raised {type(e).__name__}: {e}"
                        error = summary
            wall = time.time() - t0
            load_after = os.getloadavg()
            time.sleep(1.2)  # one more memory / metrics sample after the last heartbeat
            closed = client.run_on_scheduler(_close_taskscope)
            # JSON as the old recorders save it: the pickled ``type`` dropped; an erred record's
            # pickled ``exception`` / ``traceback`` too (``exception_text`` and
            # ``traceback_text`` stay).
            records = [
                {k: v for k, v in r.items() if k != "type" and not isinstance(v, bytes)}
                for r in ts.data
            ]
    setup_total = time.time() - t_setup

    with open(stream, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")

    ev = evidence.measure(trace, records)
    sizes = {
        "plugin": _compress(trace, trace + ".zst"),
        "stream": _compress(stream, stream + ".zst"),
        "report": _compress(report, report + ".zst"),
    }
    with open(os.path.join(out, "expected.toml"), "w") as f:
        f.write(expected_toml(s))
    facts = {
        "scenario": s.name,
        "api": s.api,
        "summary": summary,
        "workload_error": error,
        "plugin_closed_before_compress": bool(closed),
        "cluster": {
            "n_workers": s.n_workers,
            "threads_per_worker": s.threads_per_worker,
            "memory_limit": s.memory_limit,
            "processes": s.processes,
            "config": s.config,
            "worker_resources": {str(k): v for k, v in s.worker_resources.items()},
        },
        "run_kwargs": run_kwargs or {},
        "wall_seconds": round(wall, 3),
        "recording_seconds_with_cluster_setup": round(setup_total, 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_count": os.cpu_count(),
        "versions": _versions(),
        "expected": {fmt: s.expected(fmt) for fmt in scenarios.FORMATS},
        "compressed_bytes": sizes,
        **ev,
    }
    write_facts(os.path.join(out, "facts.json"), facts)
    return facts


def write_facts(path: str, facts: dict) -> None:
    """A recording's ``facts.json``: one key per line, in insertion order, newline-ended (this
    recorder's, and the whatif recorders')."""
    with open(path, "w") as f:
        json.dump(facts, f, indent=1, sort_keys=False)
        f.write("\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    p.add_argument("--shape", type=parse_shape, default=None, metavar="WxT",
                   help="workers x threads for every scenario not bound to its shape")
    p.add_argument("--scale", type=float, default=1.0, metavar="F",
                   help="multiply the size parameters workloads take (default 1)")
    p.add_argument("names", nargs="*", default=["all"], help="scenario names, or 'all'")
    args = p.parse_args(argv)
    names = list(scenarios.SCENARIOS) if "all" in args.names or not args.names else args.names
    unknown = [n for n in names if n not in scenarios.SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; known: {', '.join(scenarios.SCENARIOS)}")
    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()
    for name in names:
        s, kept = variant(scenarios.SCENARIOS[name], args.shape)
        if kept:
            print(f"{name}: kept at its own shape {s.n_workers}x{s.threads_per_worker} ({kept})",
                  flush=True)
        kwargs = scaled_kwargs(s, args.scale)
        facts = record(s, args.out, kwargs)
        kb = sum(facts["compressed_bytes"].values()) / 1024
        print(
            f"{name}: {facts['summary']}; wall {facts['wall_seconds']:.1f}s, "
            f"{facts['stream_tasks']} stream records, {kb:.0f} KiB, "
            f"load {facts['load_average_before'][0]:.1f}"
            + (f", shape {s.n_workers}x{s.threads_per_worker}" if args.shape else "")
            + (f", {kwargs}" if kwargs else "")
            + (f"  [WORKLOAD ERROR: {facts['workload_error']}]" if facts["workload_error"] else ""),
            flush=True,
        )
    print(f"recorded {len(names)} scenario(s) in {time.time() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
