"""Dask workloads with known pathologies: the one module shared by this test suite, the
task-stream fixture recorder (analyzer/tests/data/dask/record.py, which passes the sizes its
fixtures were recorded with) and the example notebook's shape (``skewed_sort``).

Each takes a ``Client`` and returns a short summary. Tasks refer to these functions by module
name: LocalCluster's worker processes inherit the tests' sys.path; processes started otherwise
need this directory on PYTHONPATH (or ``cloudpickle.register_pickle_by_value``, as record.py
does).
"""
from __future__ import annotations

import time

import numpy as np

import dask
import dask.array as da
import dask.bag as db
from distributed import wait


def busy(seconds):
    """Spin the CPU for ``seconds`` (pure-Python busy loop)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def add(a, b):
    return a + b


def tree_reduce(parts, combine):
    while len(parts) > 1:
        nxt = [
            dask.delayed(combine, pure=True)(parts[j], parts[j + 1])
            for j in range(0, len(parts) - 1, 2)
        ]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


# --- healthy: 16 equal ~100 ms tasks and a tree reduction --------------------------------------


def sort_work(i, n=1_000_000):
    """~70 ms of real CPU work: sort a million random floats."""
    rng = np.random.default_rng(i)
    a = np.sort(rng.random(n))
    return float(a[n // 2])


def healthy(client, parts=16, rows=1_000_000):
    sorts = [dask.delayed(sort_work, pure=True)(i, rows) for i in range(parts)]
    return f"result={tree_reduce(sorts, add).compute():.6f}"


# --- skewed: one partition 20x the others ------------------------------------------------------

UNIT_ROWS = 150_000


def load_partition(i, size_units, unit_rows=UNIT_ROWS):
    """A partition whose row count is proportional to ``size_units``."""
    import pandas as pd

    n = unit_rows * size_units
    rng = np.random.default_rng(i)
    return pd.DataFrame({"k": rng.integers(0, 1000, n), "v": rng.random(n)})


def groupby_chunk(df):
    return df.sort_values("v").groupby("k")["v"].agg(["sum", "count", "max"])


def groupby_combine(a, b):
    s = a.add(b, fill_value=0)
    s["max"] = np.maximum(
        a["max"].reindex(s.index, fill_value=-np.inf),
        b["max"].reindex(s.index, fill_value=-np.inf),
    )
    return s


def skewed(client, parts=16, hot=5, unit_rows=UNIT_ROWS, hot_last=True):
    """A groupby-like job: partition ``hot`` is 20x the others. ``hot_last``: it runs last
    (lowest priority), so it is never a worker's first task of its group, which the skew rule
    looks past as warm-up (without it, Dask sometimes runs it first on a worker)."""
    sizes = [1] * parts
    sizes[hot] = 20
    chunks = []
    for i, s in enumerate(sizes):
        with dask.annotate(priority=-1 if s > 1 and hot_last else 0):
            df = dask.delayed(load_partition, pure=True)(i, s, unit_rows)
            chunks.append(dask.delayed(groupby_chunk, pure=True)(df))
    res = tree_reduce(chunks, groupby_combine).compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


# --- skewed-sort: the notebook's workload (examples/notebook.ipynb), long enough to rank on a
# loaded machine: 16 sorts of 1M floats (~70 ms), one of 20M (~1.5 s) --------------------------

SORT_ROWS = 1_000_000


def sort_partition(i, size_units):
    return np.random.default_rng(i).random(SORT_ROWS * size_units)


def sort_median(part):
    return float(np.sort(part)[len(part) // 2])


def skewed_sort(client):
    sizes = [1] * 16
    sizes[5] = 20
    medians = []
    for i, s in enumerate(sizes):
        # The hot partition runs last (lowest priority), never a worker's first task of its
        # group: the skew rule looks past those (imports, warm-up).
        with dask.annotate(priority=-1 if s > 1 else 0):
            part = dask.delayed(sort_partition)(i, s, dask_key_name=("sort_partition", i))
            medians.append(dask.delayed(sort_median)(part, dask_key_name=("sort_median", i)))
    return f"result={dask.delayed(sum)(medians).compute():.6f}"


# --- tiny: thousands of sub-millisecond tasks --------------------------------------------------


def tiny_f(x):
    return x * x + 1


def tiny(client, n=1500):
    b = db.from_sequence(range(n), partition_size=1).map(tiny_f)
    return f"result={b.sum().compute()}"


# --- loop: compute() in a Python loop with client work between ---------------------------------


def small_task(i, j):
    busy(0.005)
    return i * 10 + j


def loop(client, iterations=30):
    results = []
    for it in range(iterations):
        parts = [dask.delayed(small_task, pure=False)(it, j) for j in range(4)]
        results.append(sum(dask.compute(*parts)))
        busy(0.020)  # client-side work between computes
    return f"iterations={len(results)}, last={results[-1]}"


# --- large-argument: the same 16 MiB array inlined into many tasks -----------------------------

LARGE_ELEMENTS = 2 * 2**20  # float64: 16 MiB


def use_table(table, i):
    return float(table[i % len(table)]) + i


def large_argument(client, tasks=48):
    table = np.random.default_rng(0).random(LARGE_ELEMENTS)
    parts = [dask.delayed(use_table, pure=False)(table, i) for i in range(tasks)]
    return f"result={sum(dask.compute(*parts)):.3f}"


# --- spill: ~1 GiB held under a 400 MiB memory limit -------------------------------------------

SPILL_CHUNK = 25 * 2**20 // 8
SPILL_NCHUNKS = 40


def spill(client, stats=False):
    """40 chunks x 25 MiB = 1000 MiB persisted; ``stats``: the workers' spill counts after the
    persist and after the reduction go in the summary."""
    x = da.random.default_rng(0).random(SPILL_NCHUNKS * SPILL_CHUNK, chunks=SPILL_CHUNK)
    x = x.persist()
    wait(x)
    after_persist = client.run(spill_stats) if stats else {}
    total = (x * 2).sum().compute()
    after_reduce = client.run(spill_stats) if stats else {}
    del x
    if not stats:
        return f"result={total:.3f}"
    on_disk = sum(s.get("keys_on_disk", 0) for s in after_persist.values())
    return (
        f"result={total:.3f}, keys on disk after persist={on_disk}; spill stats after persist: "
        f"{after_persist}, after reduce: {after_reduce}"
    )


def spill_stats(dask_worker):
    """Run on each worker (``client.run``): what its memory manager holds and has spilled."""
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


# --- rechunk: row chunks to column chunks (all-to-all transfers) -------------------------------


def rechunk(client):
    x = da.random.default_rng(0).random((8000, 8000), chunks=(500, 8000))
    # method="tasks": with a distributed client the default may choose P2P, which hides the
    # transfers inside shuffle-barrier tasks.
    y = x.rechunk((8000, 500), method="tasks")
    return f"result={y.sum().compute():.3f}"


# --- recompute: the same expensive intermediate computed twice without persist -----------------


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


def recompute(client):
    # 16 blocks, load -> expensive. dask.delayed graphs are not fused, so the intermediate keys
    # are identical in both computes (dask.array would fuse them into differently named tasks).
    y = [
        dask.delayed(expensive, pure=True)(dask.delayed(load_block, pure=True)(i))
        for i in range(16)
    ]
    total = tree_reduce([dask.delayed(block_sum, pure=True)(b) for b in y], add)
    peak = tree_reduce([dask.delayed(block_max, pure=True)(b) for b in y], maximum)
    a = total.compute()  # first compute of y's keys
    b = peak.compute()  # y was not persisted: recomputed from scratch
    return f"sum={a:.3f}, max={b:.6f}"
