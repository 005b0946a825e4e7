#!/usr/bin/env python3
"""Record the what-if validation set: the same Dask graphs on LocalClusters of several shapes,
so that ``taskscope simulate`` can predict each shape from each other shape's trace
(tests/simulate_shapes.rs compares the predictions with the recorded wall times).

    python record.py [--out DIR] [--shapes 1x1,2x1,1x2] [--min-idle 0.9] [GRAPH ... | all]

For each graph, DIR/<graph>/ gets ``<W>x<T>.ndjson.zst`` per shape (the TaskscopePlugin trace,
the plugin closed before compression) and ``facts.json`` (per shape: wall time, load average
before and after, the CPUs' idle share just before, versions). DIR defaults to
analyzer/tests/whatif. The machine is shared: each run waits (up to ``--quiet-timeout``) for a
second in which the CPUs are ``--min-idle`` idle before it starts.

The cluster setup is the corpus recorder's (bridges/dask/corpus/record.py, imported): a fresh
process-based ``LocalCluster`` per run, the workers warmed up (imports, a first big allocation)
before the plugin is registered, the plugin closed and removed on the scheduler before the
cluster closes, zstd level 19. Unlike the corpus, no task stream or performance report is taken
(they add work on the scheduler during the run, and the replay reads the plugin trace only).

Task functions come from the corpus's ``scenarios`` module (pickled by reference; the corpus
recorder puts its directory on the workers' ``PYTHONPATH``). Every graph is sized to take a few
seconds on one thread. The machine has 2 cores: the default shapes run at most 2 threads in
all; ``--shapes 4x1,2x2`` records the crowded shapes that check the replay's shared cores
(tests/simulate_shapes.rs predicts them from the default shapes' traces).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEFAULT_OUT = os.path.join(REPO, "analyzer", "tests", "whatif")


def _load_corpus_recorder():
    """bridges/dask/corpus/record.py as a module (this file is record.py too: no plain import).
    Importing it puts the corpus directory on sys.path and on the workers' PYTHONPATH."""
    spec = importlib.util.spec_from_file_location(
        "corpus_record", os.path.join(CORPUS, "record.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_recorder()
import scenarios  # noqa: E402  (on sys.path once the corpus recorder is loaded)

# =================================================================================================
# The graphs: client-side code only; the task functions are scenarios'.
# =================================================================================================


def delayed_tree(client):
    """24 numpy sorts (~80-100 ms each) reduced pairwise: the corpus's healthy-delayed-tree."""
    return scenarios.healthy_delayed_tree(client)


def dataframe_etl(client):
    """from_map of 16 x 400k-row event frames, enriched per partition, then a groupby-agg."""
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(16), rows=400_000)
    ddf = ddf.map_partitions(scenarios.enrich)
    res = ddf.groupby("cat")["value2"].agg(["mean", "sum", "count"]).compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


def array_reduction(client):
    """sin(x)**2 summed over axis 0 of a 12000x12000 array in 16 chunks of 72 MB, then a mean."""
    import dask.array as da

    x = da.random.default_rng(7).random((12_000, 12_000), chunks=(3000, 3000))
    res = (da.sin(x) ** 2).sum(axis=0).mean().compute()
    return f"result={res:.6f}"


def futures_map(client):
    """client.map over 24 numpy sorts, summed by one submit on the futures."""
    futs = client.map(scenarios.sort_work, range(24))
    return f"result={client.submit(scenarios.total, futs).result():.6f}"


def sleep_map(client):
    """24 tasks waiting 100 ms each (I/O: the GIL released, no CPU), summed on the cluster."""
    futs = client.map(scenarios.sleep_io, range(24), seconds=0.1, pure=False)
    return f"result={client.submit(scenarios.total, futs).result()}"


def shuffle(client):
    """16 event frames of 300k rows shuffled by user with shuffle_method="tasks" (an all-to-all of
    split and group tasks whose pieces move between workers), then a per-partition count."""
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(16), rows=300_000)
    res = ddf.shuffle("user", shuffle_method="tasks", npartitions=16).map_partitions(len).compute()
    return f"partitions={len(res)}, rows={int(res.sum())}"


@dataclass(frozen=True)
class Graph:
    name: str
    run: Callable
    description: str


GRAPHS = {
    g.name: g
    for g in [
        Graph("delayed-tree", delayed_tree, delayed_tree.__doc__ or ""),
        Graph("dataframe-etl", dataframe_etl, dataframe_etl.__doc__ or ""),
        Graph("array-reduction", array_reduction, array_reduction.__doc__ or ""),
        Graph("futures-map", futures_map, futures_map.__doc__ or ""),
        Graph("sleep-map", sleep_map, sleep_map.__doc__ or ""),
        Graph("shuffle", shuffle, shuffle.__doc__ or ""),
    ]
}

SHAPES = ((1, 1), (2, 1), (1, 2))

# =================================================================================================
# Recording
# =================================================================================================


def _cpu_idle_share(seconds: float = 1.0) -> float | None:
    """The machine's idle share of CPU time over ``seconds`` (/proc/stat; None elsewhere)."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(min_idle: float, timeout: float) -> float | None:
    """Waits (up to ``timeout`` seconds) for a second in which the machine is ``min_idle``
    idle: the machine is shared, and a run that competes for its cores records slower tasks.
    Returns the last idle share measured."""
    deadline = time.time() + timeout
    while True:
        idle = _cpu_idle_share()
        if idle is None or idle >= min_idle or time.time() >= deadline:
            return idle


def record_one(
    graph: Graph, workers: int, threads: int, out: str, min_idle: float, timeout: float
) -> dict:
    """Runs ``graph`` once on a fresh LocalCluster(workers, threads) with the plugin; writes
    ``out/<W>x<T>.ndjson.zst`` and returns the run's facts."""
    from distributed import Client, LocalCluster

    from taskscope_dask import TaskscopePlugin

    trace = fresh_trace(out, f"{workers}x{threads}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Port 8787 is already in use", large graphs
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=threads,
                memory_limit="2GiB",
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(workers)
            client.run(corpus._warm_up)
            idle_before = wait_for_quiet(min_idle, timeout) if min_idle > 0 else None
            client.register_plugin(TaskscopePlugin(path=trace))
            load_before = os.getloadavg()
            t0 = time.time()
            summary = graph.run(client)
            wall = time.time() - t0
            load_after = os.getloadavg()
            time.sleep(0.5)  # the last task events reach the plugin
            closed = client.run_on_scheduler(corpus._close_taskscope)
    size = corpus._compress(trace, trace + ".zst")
    return {
        "shape": f"{workers}x{threads}",
        "summary": summary,
        "wall_seconds": round(wall, 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_idle_share_before": None if idle_before is None else round(idle_before, 3),
        "plugin_closed_before_compress": bool(closed),
        "compressed_bytes": size,
    }


def fresh_trace(out: str, stem: str) -> str:
    """``out/<stem>.ndjson`` for the plugin to write, with any earlier recording of it (plain or
    compressed) removed."""
    trace = os.path.join(out, f"{stem}.ndjson")
    for stale in (trace, trace + ".zst"):
        if os.path.exists(stale):
            os.remove(stale)
    return trace


def add_quiet_arguments(p: argparse.ArgumentParser, quiet_timeout: float) -> None:
    """``--min-idle`` and ``--quiet-timeout``: how long to wait for a quiet machine before each
    run (this recorder's and ``fixes.py``'s)."""
    p.add_argument(
        "--min-idle",
        type=float,
        default=0.9,
        help="before each run, wait for a second with this idle share of the CPUs "
        "(0: do not wait; default: %(default)s)",
    )
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=quiet_timeout,
        help="record anyway after waiting this many seconds (default: %(default)s)",
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    p.add_argument(
        "--shapes",
        default=",".join(f"{w}x{t}" for w, t in SHAPES),
        help="workers x threads, comma-separated (default: %(default)s)",
    )
    add_quiet_arguments(p, quiet_timeout=120.0)
    p.add_argument("names", nargs="*", default=["all"], help="graph names, or 'all'")
    args = p.parse_args(argv)
    names = list(GRAPHS) if "all" in args.names or not args.names else args.names
    unknown = [n for n in names if n not in GRAPHS]
    if unknown:
        p.error(f"unknown graph(s) {unknown}; known: {', '.join(GRAPHS)}")
    shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    t_all = time.time()
    for name in names:
        graph = GRAPHS[name]
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        facts_path = os.path.join(out, "facts.json")
        facts = {"graph": name, "description": " ".join(graph.description.split()), "runs": {}}
        if os.path.exists(facts_path):  # keep the shapes not re-recorded
            with open(facts_path) as f:
                facts["runs"] = json.load(f).get("runs", {})
        for workers, threads in shapes:
            run = record_one(graph, workers, threads, out, args.min_idle, args.quiet_timeout)
            facts["runs"][run["shape"]] = run
            print(
                f"{name} {run['shape']}: {run['summary']}; wall {run['wall_seconds']:.2f}s, "
                f"{run['compressed_bytes'] / 1024:.0f} KiB, "
                f"load {run['load_average_before'][0]:.2f}, "
                f"idle before {run['cpu_idle_share_before']}",
                flush=True,
            )
        facts["runs"] = dict(sorted(facts["runs"].items()))
        facts["cpu_count"] = os.cpu_count()
        facts["versions"] = corpus._versions()
        corpus.write_facts(facts_path, facts)
    print(f"recorded {len(names)} graph(s) in {time.time() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
