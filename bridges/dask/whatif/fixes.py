#!/usr/bin/env python3
"""Record the fix validation set: corpus scenarios whose finding has a simulated fix, run as the
corpus runs them (unfixed) and as a Dask user would fix them after reading the finding's advice
(fixed), so that the saving ``taskscope simulate --fix RULE`` predicts from the unfixed trace,
and the rule's own ``impact_seconds``, can be compared with the saving the fix really brings
(tests/simulate_fixes.rs).

    python fixes.py [--out DIR] [--reps 3] [--min-idle 0.9] [--taskscope BIN] [SCENARIO ... | all]

For each scenario, DIR/<scenario>/ gets ``unfixed-<rep>.ndjson.zst`` and ``fixed-<rep>.ndjson.zst``
(the TaskscopePlugin trace, the plugin closed before compression) and ``facts.json``: per run, the
trace's wall time (first task start to last task stop, as ``taskscope info`` measures it: what
``analyze`` calls the wall), the client's wall time around the workload, the load average before
and after and the CPUs' idle share just before. DIR defaults to analyzer/tests/whatif-fixes.
Unfixed and fixed runs alternate (unfixed-1, fixed-1, unfixed-2, ...), each on a fresh cluster of
the scenario's shape, so that a change in the machine's load falls on both.

The cluster setup is the corpus recorder's and the wait for a quiet second is
whatif/record.py's (both imported); the unfixed workloads and the task functions are the corpus's
``scenarios``. Only the plugin's trace is taken, as whatif/record.py does.

The trace's wall leaves out what happens on the client before the first task starts or after the
last one ends: a ``client.scatter`` before the tasks, or the client-side work left after one
compute of a list. Both walls are kept; the comparison uses the trace's, which is what the
rules and the replay measure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEFAULT_OUT = os.path.join(REPO, "analyzer", "tests", "whatif-fixes")


def _load_whatif_recorder():
    """whatif/record.py as a module; loading it loads the corpus recorder (corpus/record.py),
    which puts the corpus directory on sys.path and on the workers' PYTHONPATH."""
    spec = importlib.util.spec_from_file_location("whatif_record", os.path.join(HERE, "record.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


whatif = _load_whatif_recorder()
corpus = whatif.corpus
import numpy as np  # noqa: E402
import scenarios  # noqa: E402  (on sys.path once the corpus recorder is loaded)

# =================================================================================================
# The fixed workloads: each scenario's code with the finding's advice applied. Task functions are
# scenarios' where the fix keeps them; the few new ones live here (pickled by value).
# =================================================================================================

# ---------------------------------------------------------------- idle-gaps: one compute of a list


def idle_compute_loop(client, iterations=30):
    """All 30 iterations' graphs built first and computed together; the client-side work done
    on the results afterwards."""
    import dask

    graphs = [
        [dask.delayed(scenarios.small_task, pure=False)(it, j) for j in range(4)]
        for it in range(iterations)
    ]
    results = []
    for parts in dask.compute(*graphs):
        results.append(sum(parts))
        scenarios.client_side_work(0.08)
    return f"iterations={len(results)}"


def idle_partitions_loop(client):
    """Every partition computed in one ``dask.compute``, the client-side pandas work after."""
    import dask
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(24), rows=60_000)
    ddf = ddf.map_partitions(scenarios.enrich)
    total_rows = 0
    for part in dask.compute(*ddf.to_delayed()):
        total_rows += len(part)
        part.describe()
        scenarios.client_side_work(0.05)
    return f"rows={total_rows}"


def idle_futures_result(client):
    """The 40 steps submitted at once, each on the previous one's future (the chain stays on the
    cluster); one result at the end, the client-side work after."""
    value = 0.0
    for i in range(40):
        value = client.submit(scenarios.step, value, i, pure=False)
    value = value.result()
    for _ in range(40):
        scenarios.client_side_work(0.06)
    return f"value={value:.3f}"


def idle_list_itertuples(client):
    """One compute of the frame, then itertuples on the pandas result."""
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(16), rows=40_000)
    ddf = ddf.map_partitions(scenarios.enrich)
    rows = list(ddf[["user", "value2"]].compute().itertuples())
    acc = 0.0
    for r in rows[::50]:
        acc += r.value2
    return f"rows={len(rows)}"


# ---------------------------------------------------------------- oversized-argument: scatter once


def large_arg_delayed(client, tasks=16):
    """The 40 MB array scattered to every worker once; the delayed calls take its future."""
    import dask

    table = np.random.default_rng(0).random(scenarios.LARGE_ARG_ELEMENTS)
    table = client.scatter(table, broadcast=True)
    parts = [dask.delayed(scenarios.score_rows, pure=False)(table, i) for i in range(tasks)]
    return f"result={sum(dask.compute(*parts)):.3f}"


def large_arg_dict_map(client):
    """The lookup dict scattered to every worker once. ``client.scatter(lookup)`` would scatter
    each of the dict's values under its own key (a dict is a key -> data mapping to scatter):
    the dict goes in a list."""
    lookup = scenarios.make_lookup()
    [lookup] = client.scatter([lookup], broadcast=True)
    batches = [list(range(i * 1000, i * 1000 + 1000)) for i in range(24)]
    futs = [client.submit(scenarios.lookup_prices, b, lookup, pure=False) for b in batches]
    return f"result={sum(client.gather(futs)):.3f}"


# ---------------------------------------------------------------- recomputation: persist


def recompute_delayed(client):
    """The expensive intermediate persisted before the two computations that read it."""
    import dask

    y = [
        dask.delayed(scenarios.expensive, pure=True)(
            dask.delayed(scenarios.load_block, pure=True)(i)
        )
        for i in range(16)
    ]
    y = list(dask.persist(*y))
    s = scenarios.tree_reduce(
        [dask.delayed(scenarios.block_sum, pure=True)(b) for b in y], scenarios.add
    )
    m = scenarios.tree_reduce(
        [dask.delayed(scenarios.block_max, pure=True)(b) for b in y], scenarios.maximum
    )
    a = s.compute()
    b = m.compute()
    return f"sum={a:.3f}, max={b:.6f}"


def recompute_dataframe(client):
    """The cleaned frame persisted before the three computations that read it."""
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(8))
    clean = ddf.map_partitions(scenarios.enrich)
    clean = clean[clean["value2"] > 0.1].persist()
    a = clean["value2"].sum().compute()
    b = clean.groupby("hour")["roll"].mean().compute()
    c = len(clean)
    return f"sum={a:.3f}, groups={len(b)}, rows={c}"


# ---------------------------------------------------------------- skew: split the hot partition


def skew_array_chunk(client):
    """The same rows in regular chunks of 1,600 (the small chunks' size): 35 chunks, none
    bigger than the median."""
    import dask.array as da

    rows = 32_000 + 1_600 * 15
    x = da.random.default_rng(1).random((rows, 1000), chunks=(1_600, 1000))
    y = x.map_blocks(scenarios.sort_columns, dtype=x.dtype)
    res = y[::100].sum().compute()
    return f"result={res:.3f}"


def skew_delayed_partition(client):
    """The big input (24 units) split into 24 inputs of one unit, the size of the others."""
    import dask

    inputs = [(i, 1) for i in range(16) if i != 5] + [(1000 + k, 1) for k in range(24)]
    chunks = [
        dask.delayed(scenarios.groupby_chunk, pure=True)(
            dask.delayed(scenarios.load_partition, pure=True)(i, s)
        )
        for i, s in inputs
    ]
    res = scenarios.tree_reduce(chunks, scenarios.groupby_combine).compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


HOT_SALT = 55  # the finding's "salt the hot key so its rows spread over ~55 partitions"


def salt_hot_user(df, hot=0, pieces=HOT_SALT):
    """A salted group key: the hot user's rows spread over ``pieces`` keys (-1 to -pieces, by
    timestamp), everyone else's key their user id."""
    users = df["user"].to_numpy()
    salted = np.where(users == hot, -1 - df["ts"].to_numpy() % pieces, users)
    return df.assign(key=salted)


def skew_hot_key(client):
    """The hot user salted: grouped by a salted key, its rows spread over 55 groups (its
    sessions are computed per piece: the price of salting a per-key computation). One key
    column, not ``groupby(["user", "salt"])``: Dask's groupby-apply shuffles on the first
    ``by`` column only, which would keep the hot user's rows in one partition."""
    import dask.dataframe as dd

    ddf = dd.from_map(scenarios.events_frame, range(12), rows=200_000, hot_share=0.6)
    ddf = ddf.map_partitions(salt_hot_user)
    meta = ddf._meta.drop(columns="key").assign(smooth=0.0, rank=0.0, n=0)
    out = ddf.groupby("key").apply(scenarios.sessionize, meta=meta)
    res = out.groupby("cat")["smooth"].mean().compute()
    return f"groups={len(res)}"


# ---------------------------------------------------------------- tiny-partitions: bigger pieces


def inc_batch(xs):
    return sum(scenarios.inc(x) for x in xs)


def tiny_futures_map(client):
    """The 3,000 elements in 4 batches (the finding's ~4 partitions)."""
    batches = [list(b) for b in np.array_split(np.arange(3000), 4)]
    futs = client.map(inc_batch, batches)
    return f"result={sum(client.gather(futs))}"


def tiny_array(client):
    """The array in one chunk (the finding's ~1 partition; chunks="auto" gives the same)."""
    import dask.array as da

    x = da.random.default_rng(0).random((1600, 1600), chunks=(1600, 1600))
    res = (x * 2 + 1).sum().compute()
    return f"result={res:.3f}"


def tiny_bag(client, n=1200):
    """One partition (the finding's ~1) instead of one per element."""
    import dask.bag as db

    b = db.from_sequence(range(n), npartitions=1).map(scenarios.tiny_f)
    return f"result={b.sum().compute()}"


def tiny_dataframe(client):
    """2 partitions (the finding's ~2) instead of 1,200."""
    import dask.dataframe as dd

    pdf = scenarios.events_frame(0, rows=300_000)
    ddf = dd.from_pandas(pdf, npartitions=2)
    res = ddf["value"].sum().compute()
    return f"result={res:.3f}"


# The scenario -> its fixed workload, in the README table's order (by rule).
FIXES: dict[str, Callable] = {
    "idle-compute-loop": idle_compute_loop,
    "idle-futures-result": idle_futures_result,
    "idle-list-itertuples": idle_list_itertuples,
    "idle-partitions-loop": idle_partitions_loop,
    "large-arg-delayed": large_arg_delayed,
    "large-arg-dict-map": large_arg_dict_map,
    "recompute-delayed": recompute_delayed,
    "recompute-dataframe": recompute_dataframe,
    "skew-array-chunk": skew_array_chunk,
    "skew-delayed-partition": skew_delayed_partition,
    "skew-hot-key": skew_hot_key,
    "tiny-futures-map": tiny_futures_map,
    "tiny-array": tiny_array,
    "tiny-bag": tiny_bag,
    "tiny-dataframe": tiny_dataframe,
}

# =================================================================================================
# Recording
# =================================================================================================


def trace_wall_seconds(taskscope: str, path: str) -> float:
    """The trace's wall time (first task start to last task stop), as ``taskscope info`` reads
    it: the wall ``analyze`` reports."""
    out = subprocess.run(
        [taskscope, "info", path, "--format", "json"], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)["wall_ns"] / 1e9


def record_one(
    s: scenarios.Scenario,
    variant: str,
    rep: int,
    out: str,
    taskscope: str,
    min_idle: float,
    timeout: float,
) -> dict:
    """Runs scenario ``s`` unfixed or fixed once on a fresh cluster of its shape with the plugin;
    writes ``out/<variant>-<rep>.ndjson.zst`` and returns the run's facts."""
    import dask
    from distributed import Client, LocalCluster

    from taskscope_dask import TaskscopePlugin

    assert not s.worker_resources, f"{s.name}: worker resources are not set up here"
    workload = s.run if variant == "unfixed" else FIXES[s.name]
    trace = whatif.fresh_trace(out, f"{variant}-{rep}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Port 8787 is already in use", large graphs
        with (
            dask.config.set(s.config),
            LocalCluster(dashboard_address=":0", **scenarios.cluster_kwargs(s)) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(s.n_workers)
            client.run(corpus._warm_up)
            idle_before = whatif.wait_for_quiet(min_idle, timeout) if min_idle > 0 else None
            client.register_plugin(TaskscopePlugin(path=trace))
            load_before = os.getloadavg()
            t0 = time.time()
            summary = workload(client)
            wall = time.time() - t0
            load_after = os.getloadavg()
            time.sleep(0.5)  # the last task events reach the plugin
            closed = client.run_on_scheduler(corpus._close_taskscope)
    size = corpus._compress(trace, trace + ".zst")
    return {
        "variant": variant,
        "rep": rep,
        "file": f"{variant}-{rep}.ndjson.zst",
        "summary": summary,
        "trace_wall_seconds": round(trace_wall_seconds(taskscope, trace + ".zst"), 4),
        "client_wall_seconds": round(wall, 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_idle_share_before": None if idle_before is None else round(idle_before, 3),
        "plugin_closed_before_compress": bool(closed),
        "compressed_bytes": size,
    }


def median_run(runs: list[dict], variant: str) -> dict:
    """The run of ``variant`` with the median trace wall (the lower middle one of an even
    number)."""
    mine = sorted(
        (r for r in runs if r["variant"] == variant), key=lambda r: r["trace_wall_seconds"]
    )
    return mine[(len(mine) - 1) // 2]


def summarize(runs: list[dict]) -> dict:
    out = {}
    for variant in ("unfixed", "fixed"):
        walls = [r["trace_wall_seconds"] for r in runs if r["variant"] == variant]
        clients = [r["client_wall_seconds"] for r in runs if r["variant"] == variant]
        out[variant] = {
            "median_trace_wall_seconds": round(statistics.median(walls), 4),
            "trace_wall_seconds": walls,
            "median_client_wall_seconds": round(statistics.median(clients), 3),
            "median_file": median_run(runs, variant)["file"],
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    p.add_argument(
        "--reps", type=int, default=3, help="runs of each variant (default: %(default)s)"
    )
    p.add_argument(
        "--taskscope",
        default=os.environ.get("TASKSCOPE", os.path.join(REPO, "target", "debug", "taskscope")),
        help="the taskscope binary measuring each trace's wall (default: $TASKSCOPE or "
        "%(default)s)",
    )
    whatif.add_quiet_arguments(p, quiet_timeout=20.0)
    p.add_argument("names", nargs="*", default=["all"], help="scenario names, or 'all'")
    args = p.parse_args(argv)
    names = list(FIXES) if "all" in args.names or not args.names else args.names
    unknown = [n for n in names if n not in FIXES]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; known: {', '.join(FIXES)}")
    t_all = time.time()
    for name in names:
        s = scenarios.SCENARIOS[name]
        out = os.path.join(args.out, name)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        runs = []
        for rep in range(1, args.reps + 1):
            for variant in ("unfixed", "fixed"):
                run = record_one(
                    s, variant, rep, out, args.taskscope, args.min_idle, args.quiet_timeout
                )
                runs.append(run)
                print(
                    f"{name} {variant}-{rep}: {run['summary']}; trace wall "
                    f"{run['trace_wall_seconds']:.2f}s, client {run['client_wall_seconds']:.2f}s, "
                    f"{run['compressed_bytes'] / 1024:.0f} KiB, "
                    f"load {run['load_average_before'][0]:.2f}, "
                    f"idle before {run['cpu_idle_share_before']}",
                    flush=True,
                )
        facts = {
            "scenario": name,
            "rule": s.expect,
            "shape": s.shape(),
            "unfixed": " ".join(s.description.split()),
            "fixed": " ".join((FIXES[name].__doc__ or "").split()),
            **summarize(runs),
            "runs": runs,
            "cpu_count": os.cpu_count(),
            "versions": corpus._versions(),
        }
        corpus.write_facts(os.path.join(out, "facts.json"), facts)
    print(f"recorded {len(names)} scenario(s) in {time.time() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
