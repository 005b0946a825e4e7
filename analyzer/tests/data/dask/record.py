#!/usr/bin/env python3
"""Record real Dask task-stream fixtures, one per scheduling pathology.

Each scenario starts a fresh process-based ``LocalCluster`` (2 workers x 1
thread, no dashboard), runs a small workload inside ``get_task_stream()`` and
writes ``<scenario>.json`` next to this script.

Saving format (same as traces/tests/data/record_dask_task_stream.py): the list
``ts.data`` returned by Dask, with the ``type`` field (pickled bytes) dropped;
tuples (tuple keys, ``startstops``) become JSON arrays.  One record per line
inside ``[ ... ]``.  Nothing else is altered.

Scenarios:
  healthy    24 equal ~100 ms CPU tasks (numpy sort) + tree reduction
  skewed     groupby-like job, 24 partitions, one ~20x bigger than the rest
  tiny       a few thousand sub-millisecond tasks (dask.bag, partition_size=1)
  loop       30 x compute() of a 4-task graph with ~20 ms client work between
  spill      ~1 GiB of numpy chunks held under memory_limit=400MiB -> spilling
  rechunk    row chunks -> column chunks (all-to-all transfers)
  recompute  the same expensive intermediate computed twice without persist

Usage:
    python record.py SCENARIO [SCENARIO ...]
    python record.py all

summarize.py (next to this script) computes the facts quoted in README.md.
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd

import dask
import dask.array as da
import dask.bag as db
import distributed
from distributed import Client, LocalCluster, get_task_stream, wait

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# Task functions.  Defined in __main__, so cloudpickle ships them by value.
# --------------------------------------------------------------------------

def busy(seconds):
    """Spin the CPU for ``seconds`` (pure-Python busy loop)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def sort_work(i, n=1_600_000):
    """~100 ms of real CPU work: sort 1.6 million random floats."""
    rng = np.random.default_rng(i)
    a = np.sort(rng.random(n))
    return float(a[n // 2])


def add(a, b):
    return a + b


def tree_reduce(parts, combine):
    """Pairwise tree reduction of a list of delayed values."""
    while len(parts) > 1:
        nxt = []
        for j in range(0, len(parts) - 1, 2):
            nxt.append(
                dask.delayed(combine, pure=True)(parts[j], parts[j + 1])
            )
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


UNIT_ROWS = 250_000  # rows of a "normal" skewed partition (~100 ms of work)


def load_partition(i, size_units):
    """Generate a partition whose row count is proportional to size_units."""
    n = UNIT_ROWS * size_units
    rng = np.random.default_rng(i)
    return pd.DataFrame({"k": rng.integers(0, 1000, n), "v": rng.random(n)})


def groupby_chunk(df):
    """Per-partition groupby aggregation; cost proportional to len(df)."""
    return df.sort_values("v").groupby("k")["v"].agg(["sum", "count", "max"])


def groupby_combine(a, b):
    s = a.add(b, fill_value=0)
    s["max"] = np.maximum(a["max"].reindex(s.index, fill_value=-np.inf),
                          b["max"].reindex(s.index, fill_value=-np.inf))
    return s


def tiny_f(x):
    return x * x + 1


def small_task(i, j):
    busy(0.005)
    return i * 10 + j


def load_block(i):
    """A 1000x1000 block of random floats (~10 ms)."""
    return np.random.default_rng(i).random((1000, 1000))


def expensive(b):
    """~100+ ms of CPU per 1000x1000 block: four matrix products + tanh."""
    for _ in range(4):
        b = np.tanh(b @ b.T / b.shape[0])
    return b


def block_sum(b):
    return float(b.sum())


def block_max(b):
    return float(b.max())


def maximum(a, b):
    return max(a, b)


# --------------------------------------------------------------------------
# Scenarios.  Each takes the client and returns a short summary string.
# --------------------------------------------------------------------------

def scenario_healthy(client):
    parts = [dask.delayed(sort_work, pure=True)(i) for i in range(24)]
    total = tree_reduce(parts, add)
    return f"result={total.compute():.6f}"


def scenario_skewed(client):
    sizes = [1] * 24
    sizes[7] = 20  # one partition is 20x the others
    chunks = []
    for i, s in enumerate(sizes):
        df = dask.delayed(load_partition, pure=True)(i, s)
        chunks.append(dask.delayed(groupby_chunk, pure=True)(df))
    total = tree_reduce(chunks, groupby_combine)
    res = total.compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


def scenario_tiny(client):
    b = db.from_sequence(range(1500), partition_size=1).map(tiny_f)
    return f"result={b.sum().compute()}"


def scenario_loop(client):
    results = []
    for it in range(30):
        parts = [dask.delayed(small_task, pure=False)(it, j) for j in range(4)]
        results.append(sum(dask.compute(*parts)))
        busy(0.020)  # client-side Python work between computes
    return f"iterations={len(results)}, last={results[-1]}"


SPILL_CHUNK = 25 * 2**20 // 8  # float64 elements in a 25 MiB chunk
SPILL_NCHUNKS = 40


def _spill_stats(dask_worker):
    data = dask_worker.data
    out = {"type": type(data).__name__}
    if hasattr(data, "spilled_total"):
        st = data.spilled_total
        out.update(
            keys_in_memory=len(data.fast),
            keys_on_disk=len(data.slow),
            spilled_memory_bytes=int(st.memory),
            spilled_disk_bytes=int(st.disk),
        )
    return out


def scenario_spill(client):
    x = da.random.default_rng(0).random(
        SPILL_NCHUNKS * SPILL_CHUNK, chunks=SPILL_CHUNK
    )  # 40 chunks x 25 MiB = 1000 MiB
    x = x.persist()
    wait(x)
    stats_after_persist = client.run(_spill_stats)
    total = (x * 2).sum().compute()
    stats_after_reduce = client.run(_spill_stats)
    del x
    print("  spill stats after persist:", stats_after_persist)
    print("  spill stats after reduce: ", stats_after_reduce)
    on_disk = sum(s.get("keys_on_disk", 0) for s in stats_after_persist.values())
    return f"result={total:.3f}, keys on disk after persist={on_disk}"


def scenario_rechunk(client):
    x = da.random.default_rng(0).random((8000, 8000), chunks=(500, 8000))
    # method="tasks": with a distributed client the default may choose P2P,
    # which hides the transfers inside shuffle-barrier tasks.
    y = x.rechunk((8000, 500), method="tasks")
    return f"result={y.sum().compute():.3f}"


def scenario_recompute(client):
    # The expensive intermediate: 16 blocks, load -> expensive.  dask.delayed
    # graphs are not fused, so the intermediate keys are identical in both
    # computes (dask.array would fuse them into differently named tasks).
    y = [dask.delayed(expensive, pure=True)(dask.delayed(load_block, pure=True)(i))
         for i in range(16)]
    total = tree_reduce([dask.delayed(block_sum, pure=True)(b) for b in y], add)
    peak = tree_reduce([dask.delayed(block_max, pure=True)(b) for b in y], maximum)
    a = total.compute()  # first compute of y's keys
    b = peak.compute()   # y was not persisted -> recomputed from scratch
    return f"sum={a:.3f}, max={b:.6f}"


SCENARIOS = {
    "healthy": (scenario_healthy, "2GiB"),
    "skewed": (scenario_skewed, "2GiB"),
    "tiny": (scenario_tiny, "2GiB"),
    "loop": (scenario_loop, "2GiB"),
    "spill": (scenario_spill, "400MiB"),
    "rechunk": (scenario_rechunk, "2GiB"),
    "recompute": (scenario_recompute, "2GiB"),
}


def record(name):
    fn, memory_limit = SCENARIOS[name]
    out = os.path.join(HERE, f"{name}.json")
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit=memory_limit,
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        t0 = time.time()
        with get_task_stream() as ts:
            summary = fn(client)
        elapsed = time.time() - t0

        records = []
        for rec in ts.data:
            rec = dict(rec)
            rec.pop("type", None)  # pickled bytes; not JSON-serializable
            records.append(rec)

    with open(out, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")

    print(
        f"{name}: dask {dask.__version__}, distributed {distributed.__version__}, "
        f"numpy {np.__version__}, pandas {pd.__version__}; {summary}; "
        f"{elapsed:.2f}s; wrote {len(records)} records "
        f"({os.path.getsize(out)} bytes) to {out}"
    )


def main(argv):
    names = argv[1:]
    if not names or any(n not in SCENARIOS and n != "all" for n in names):
        sys.exit(f"usage: {argv[0]} all|" + "|".join(SCENARIOS) + " ...")
    if "all" in names:
        names = list(SCENARIOS)
    for name in names:
        record(name)


if __name__ == "__main__":
    main(sys.argv)
