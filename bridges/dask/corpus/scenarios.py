"""Dask workloads for taskscope's corpus: one function per scenario plus a registry saying how to
run it (cluster shape, Dask config) and what the analyzer is expected to find in its recording.

Every workload takes a ``distributed.Client`` and returns a short summary string. Task functions
live at module level in this module and are pickled *by reference* (``scenarios.<name>``), so the
worker processes must be able to ``import scenarios``: put this directory on ``PYTHONPATH``
before the cluster starts (``record.py`` does; ``cluster_kwargs`` + ``python_path()`` help other
recorders). Pickling by reference matters for one scenario (``unmanaged-leak`` keeps state on the
worker between tasks) and keeps task payloads small for all.

Sizes and durations are chosen so that each pathology survives a 2x slowdown of the machine (the
recording machine has 2 cores shared with compilers): ratios of 8x and more, idle shares of half
the wall time and more, never thresholds that a noisy scheduler could cross by chance.

``SCENARIOS`` (name -> ``Scenario``) is the registry; ``healthy()`` / ``pathologies()`` split it.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

FORMATS = ("plugin", "stream", "report")


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable  # run(client) -> summary str
    expect: str  # a rule id, or "healthy" (nothing moderate or worse)
    api: str  # delayed, futures, bag, array, dataframe (what the workload mainly uses)
    description: str
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "2GiB"
    processes: bool = True
    config: dict = field(default_factory=dict)  # dask.config.set(...) around the whole cluster
    formats: dict = field(default_factory=dict)  # format -> rule id or "quiet" (overrides expect)
    worker_resources: dict = field(default_factory=dict)  # worker index -> {resource: amount}

    def expected(self, fmt: str) -> str:
        return self.formats.get(fmt, self.expect)

    def shape(self) -> str:
        return f"{self.n_workers}x{self.threads_per_worker} {self.memory_limit}"


def python_path() -> str:
    """A PYTHONPATH value with this directory first, for worker processes."""
    old = os.environ.get("PYTHONPATH")
    return HERE + (os.pathsep + old if old else "")


def cluster_kwargs(s: Scenario) -> dict:
    """Keyword arguments for ``LocalCluster`` (without the dashboard address)."""
    return dict(
        n_workers=s.n_workers,
        threads_per_worker=s.threads_per_worker,
        memory_limit=s.memory_limit,
        processes=s.processes,
    )


# =================================================================================================
# Task functions (module level: pickled by reference)
# =================================================================================================


def py_work(n):
    """Pure-Python CPU work holding the GIL: a fixed amount of work (not a fixed time), so that a
    task sharing the interpreter with others takes longer. 2M iterations ~ 0.12 s here."""
    t = 0
    for i in range(n):
        t += i * i % 7
    return t


def sort_work(i, n=8_000_000):
    """~80-100 ms of numpy CPU work here (the sort releases the GIL)."""
    rng = np.random.default_rng(i)
    a = np.sort(rng.random(n))
    return float(a[n // 2])


def matrix_work(i, n=700, rounds=4):
    """~100-200 ms of BLAS work (GIL released), fixed amount."""
    m = np.random.default_rng(i).random((n, n))
    for _ in range(rounds):
        m = np.tanh(m @ m.T / n)
    return float(m.sum())


def add(a, b):
    return a + b


def total(xs):
    return sum(xs)


def tree_reduce(parts, combine):
    """Pairwise tree reduction of a list of delayed values."""
    import dask

    while len(parts) > 1:
        nxt = [
            dask.delayed(combine, pure=True)(parts[j], parts[j + 1])
            for j in range(0, len(parts) - 1, 2)
        ]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def sleep_io(i, seconds=0.15):
    """Stands for an I/O call (HTTP fetch, object-store read): waits without using the CPU."""
    time.sleep(seconds)
    return i


def events_frame(i, rows=500_000, hot_share=0.0, seed=0):
    """A partition of click events: user, ts, value. ``hot_share`` of the rows go to user 0."""
    import pandas as pd

    rng = np.random.default_rng(seed * 1000 + i)
    users = rng.integers(1, 5000, rows)
    if hot_share:
        users[: int(rows * hot_share)] = 0
    return pd.DataFrame(
        {
            "user": users,
            "ts": rng.integers(0, 86_400 * 10**6, rows),  # microseconds in a day
            "value": rng.random(rows),
            "cat": rng.integers(0, 50, rows),
        }
    )


def orders_frame(i, rows=600_000):
    import pandas as pd

    rng = np.random.default_rng(10_000 + i)
    return pd.DataFrame(
        {
            "order_id": np.arange(i * rows, (i + 1) * rows),
            "customer": rng.integers(0, 200_000, rows),
            "amount": rng.random(rows) * 100,
        }
    )


def customers_frame(i, rows=50_000):
    import pandas as pd

    rng = np.random.default_rng(20_000 + i)
    return pd.DataFrame(
        {
            "customer": np.arange(i * rows, (i + 1) * rows),
            "region": rng.integers(0, 20, rows),
            "score": rng.random(rows),
        }
    )


def enrich(df):
    """Per-partition feature work, ~100 ms on a 500k-row partition."""
    df = df.assign(
        hour=(df["ts"] // 3_600_000_000) % 24,
        value2=np.log1p(df["value"]) * np.sqrt(df["value"]),
    )
    df = df.sort_values("ts")
    df["roll"] = df["value"].rolling(64, min_periods=1).mean().to_numpy()
    return df


def user_features(df):
    """Per-user rolling features of a partition: ~120 ms on 60k rows."""
    df = df.sort_values(["user", "ts"])
    g = df.groupby("user")["value"]
    return df.assign(
        r8=g.rolling(8, min_periods=1).mean().to_numpy(), cs=g.cumsum(), rk=g.rank(pct=True)
    )


def sessionize(g):
    """Per-user session features: a sort and windowed statistics, cost ~ rows x window."""
    g = g.sort_values("ts")
    v = g["value"].to_numpy()
    smooth = v
    for w in (32, 128, 512, 2048):
        if len(v) >= w:
            smooth = np.convolve(v, np.ones(w) / w, mode="same")
    return g.assign(smooth=smooth, rank=g["value"].rank(), n=len(g))


# =================================================================================================
# Healthy workloads: what a competent user writes
# =================================================================================================


def healthy_df_from_pandas(client):
    import dask.dataframe as dd

    # An in-memory frame of 280k rows (9 MB: under Dask's 10 MB large-graph line), 8 partitions
    # of ~1 MB, per-user rolling features (~70 ms a partition), then a groupby-agg.
    pdf = events_frame(0, rows=280_000)
    ddf = dd.from_pandas(pdf, npartitions=8)
    out = ddf.map_partitions(user_features).groupby("cat").agg({"r8": "mean", "rk": "max"})
    res = out.compute()
    return f"groups={len(res)}"


def healthy_df_from_map(client):
    import dask.dataframe as dd

    ddf = dd.from_map(events_frame, range(16))  # 16 partitions of 200k rows, made on the workers
    ddf = ddf.map_partitions(enrich)
    res = ddf.groupby("cat")["value2"].agg(["mean", "sum", "count"]).compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


def healthy_parquet(client):
    import shutil
    import tempfile
    import dask.dataframe as dd

    tmp = tempfile.mkdtemp(prefix="taskscope-corpus-parquet-")
    try:
        ddf = dd.from_map(events_frame, range(12)).map_partitions(enrich)
        ddf.to_parquet(tmp, engine="pyarrow", compression="snappy", write_index=False)
        back = dd.read_parquet(tmp, engine="pyarrow")
        res = back.groupby("hour")["value2"].mean().compute()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"groups={len(res)}"


def healthy_array_transpose(client):
    import dask.array as da

    x = da.random.default_rng(42).random((10_000, 10_000), chunks=(2500, 2500))  # 16 x 50 MB
    y = da.sin(x) ** 2
    res = (y + y.T).mean(axis=0).sum().compute()
    return f"result={res:.6f}"


def healthy_broadcast_join(client):
    import pandas as pd
    import dask.dataframe as dd

    orders = dd.from_map(orders_frame, range(12))
    regions = pd.DataFrame({"region": np.arange(20), "name": [f"r{i}" for i in range(20)],
                            "tax": np.linspace(0.0, 0.2, 20)})
    customers = pd.concat([customers_frame(i) for i in range(4)], ignore_index=True)
    small = customers.merge(regions, on="region")  # 200k rows: a few MB, fine to broadcast
    joined = orders.merge(small, on="customer", how="left", broadcast=True)
    res = joined.assign(net=joined["amount"] * (1 - joined["tax"])).groupby("name")["net"].sum()
    out = res.compute()
    return f"groups={len(out)}"


ALIGNED_ROWS = 1_500_000


def left_part(i):
    import pandas as pd

    rng = np.random.default_rng(i)
    idx = np.arange(i * ALIGNED_ROWS, (i + 1) * ALIGNED_ROWS)
    return pd.DataFrame(
        {"a": rng.random(ALIGNED_ROWS), "b": rng.integers(0, 100, ALIGNED_ROWS)}, index=idx
    )


def right_part(i):
    import pandas as pd

    rng = np.random.default_rng(1000 + i)
    idx = np.arange(i * ALIGNED_ROWS, (i + 1) * ALIGNED_ROWS)
    return pd.DataFrame({"c": rng.random(ALIGNED_ROWS)}, index=idx)


def healthy_aligned_join(client):
    import dask.dataframe as dd

    # Both sides sorted on the same index with the same known divisions: the join is
    # partition-wise (blockwise), no shuffle.
    n = 12
    divisions = [i * ALIGNED_ROWS for i in range(n)] + [n * ALIGNED_ROWS - 1]
    l = dd.from_map(left_part, range(n), divisions=divisions)
    r = dd.from_map(right_part, range(n), divisions=divisions)
    assert l.known_divisions and r.known_divisions
    j = l.join(r, how="inner")
    res = j.assign(d=j["a"] * j["c"]).groupby("b")["d"].sum().compute()
    return f"groups={len(res)}"


def healthy_numpy_threads(client):
    futs = client.map(matrix_work, range(40), n=800, pure=False)
    return f"result={sum(client.gather(futs)):.3f}"


def healthy_io_threads(client):
    futs = client.map(sleep_io, range(96), pure=False)
    return f"result={sum(client.gather(futs))}"


def healthy_delayed_tree(client):
    import dask

    parts = [dask.delayed(sort_work, pure=True)(i) for i in range(24)]
    return f"result={tree_reduce(parts, add).compute():.6f}"


def healthy_futures_map(client):
    futs = client.map(sort_work, range(32))
    tot = client.submit(total, futs)
    return f"result={tot.result():.6f}"


def make_log_lines(i, n=30_000):
    """A partition of JSON log lines (what db.read_text would give)."""
    import json

    rng = random.Random(i)
    levels = ["INFO"] * 8 + ["WARN", "ERROR"]
    return [
        json.dumps({"ts": i * n + k, "level": rng.choice(levels), "user": rng.randrange(5000),
                    "ms": rng.random() * 100})
        for k in range(n)
    ]


def parse_line(line):
    import json

    return json.loads(line)


def healthy_bag(client):
    import dask
    import dask.bag as db

    # 24 partitions of 30k JSON lines: parse, filter, count per level (~250 ms each).
    lines = db.from_delayed([dask.delayed(make_log_lines)(i) for i in range(24)])
    recs = lines.map(parse_line).filter(lambda r: r["ms"] > 5)
    levels = recs.pluck("level").frequencies()
    slow = recs.filter(lambda r: r["ms"] > 99).count()
    lv, sl = dask.compute(levels, slow)
    return f"levels={dict(lv)}, slow={sl}"


# =================================================================================================
# skew
# =================================================================================================


def skew_hot_key(client):
    import dask.dataframe as dd

    # 12 partitions of 200k events; in each, 60 % of the rows belong to user 0 (a bot).
    ddf = dd.from_map(events_frame, range(12), rows=200_000, hot_share=0.6)
    # pandas >= 3 passes each group without its key column
    meta = ddf._meta.drop(columns="user").assign(smooth=0.0, rank=0.0, n=0)
    out = ddf.groupby("user").apply(sessionize, meta=meta)
    res = out.groupby("cat")["smooth"].mean().compute()
    return f"groups={len(res)}"


UNIT_ROWS = 200_000


def load_partition(i, size_units):
    import pandas as pd

    n = UNIT_ROWS * size_units
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


def skew_delayed_partition(client):
    import dask

    sizes = [1] * 16
    sizes[5] = 24  # one input file is 24x the others
    chunks = [
        dask.delayed(groupby_chunk, pure=True)(dask.delayed(load_partition, pure=True)(i, s))
        for i, s in enumerate(sizes)
    ]
    res = tree_reduce(chunks, groupby_combine).compute()
    return f"groups={len(res)}, rows={int(res['count'].sum())}"


def sort_columns(b):
    return np.sort(b, axis=0)


def skew_array_chunk(client):
    import dask.array as da

    # Rows chunked irregularly: one chunk of 32,000 rows, fifteen of 1,600.
    rows = (32_000,) + (1_600,) * 15
    x = da.random.default_rng(1).random((sum(rows), 1000), chunks=(rows, 1000))
    y = x.map_blocks(sort_columns, dtype=x.dtype)
    res = y[::100].sum().compute()
    return f"result={res:.3f}"


# =================================================================================================
# tiny-partitions
# =================================================================================================


def tiny_f(x):
    return x * x + 1


def tiny_bag(client, n=1200):
    import dask.bag as db

    b = db.from_sequence(range(n), partition_size=1).map(tiny_f)
    return f"result={b.sum().compute()}"


def tiny_dataframe(client):
    import dask.dataframe as dd

    pdf = events_frame(0, rows=300_000)
    ddf = dd.from_pandas(pdf, npartitions=1200)  # 250 rows per partition
    res = ddf["value"].sum().compute()
    return f"result={res:.3f}"


def inc(x):
    return x + 1


def tiny_futures_map(client):
    futs = client.map(inc, range(3000))  # one future per element
    return f"result={sum(client.gather(futs))}"


def tiny_array(client):
    import dask.array as da

    x = da.random.default_rng(0).random((1600, 1600), chunks=(50, 50))  # 1024 chunks of 20 kB
    res = (x * 2 + 1).sum().compute()
    return f"result={res:.3f}"


# =================================================================================================
# oversized-argument
# =================================================================================================


def score_rows(table, i):
    return float(table[i * 1000 : (i + 1) * 1000].mean())


LARGE_ARG_ELEMENTS = 5 * 2**20  # float64: 40 MiB


def large_arg_delayed(client, tasks=16):
    import dask

    table = np.random.default_rng(0).random(LARGE_ARG_ELEMENTS)
    parts = [dask.delayed(score_rows, pure=False)(table, i) for i in range(tasks)]
    return f"result={sum(dask.compute(*parts)):.3f}"


def make_lookup(n=80_000):
    return {f"sku-{i:07d}": (i % 97, f"product {i}", i * 0.01) for i in range(n)}


def lookup_prices(ids, lookup):
    return sum(lookup[f"sku-{i:07d}"][2] for i in ids)


def large_arg_dict_map(client):
    lookup = make_lookup()  # ~3.4 MB pickled (80k entries), inlined into every task
    batches = [list(range(i * 1000, i * 1000 + 1000)) for i in range(24)]
    # pure=False: no tokenizing of the dict per call (the user's code would not either)
    futs = [client.submit(lookup_prices, b, lookup, pure=False) for b in batches]
    return f"result={sum(client.gather(futs)):.3f}"


def large_graph(client):
    import dask.array as da

    data = np.random.default_rng(5).random((12_000, 1000))  # 96 MB embedded in the graph
    x = da.from_array(data, chunks=(500, 1000))  # 24 chunks of 4 MB, each inline in a task
    res = (np.sqrt(x) + x**2).sum().compute()
    return f"result={res:.3f}"


# =================================================================================================
# idle-gaps
# =================================================================================================


def small_task(i, j):
    return sort_work(i * 10 + j, n=200_000)


def client_side_work(seconds):
    """What the user's loop does on the client between computes (plotting, logging, pandas)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def idle_compute_loop(client, iterations=30):
    import dask

    results = []
    for it in range(iterations):
        parts = [dask.delayed(small_task, pure=False)(it, j) for j in range(4)]
        results.append(sum(dask.compute(*parts)))
        client_side_work(0.08)
    return f"iterations={len(results)}"


def idle_partitions_loop(client):
    import dask.dataframe as dd

    ddf = dd.from_map(events_frame, range(24), rows=60_000).map_partitions(enrich)
    total_rows = 0
    for i in range(ddf.npartitions):
        part = ddf.partitions[i].compute()  # one partition at a time, back to the client
        total_rows += len(part)
        part.describe()  # client-side pandas work
        client_side_work(0.05)
    return f"rows={total_rows}"


def step(prev, i):
    return (prev or 0) + sort_work(i, n=300_000)


def idle_futures_result(client):
    value = 0.0
    for i in range(40):
        value = client.submit(step, value, i, pure=False).result()  # wait for each one
        client_side_work(0.06)
    return f"value={value:.3f}"


def idle_list_itertuples(client):
    import dask.dataframe as dd

    ddf = dd.from_map(events_frame, range(16), rows=40_000).map_partitions(enrich)
    # list() over a Dask collection: iterates partition by partition, one compute each.
    rows = list(ddf[["user", "value2"]].itertuples())
    acc = 0.0
    for r in rows[::50]:
        acc += r.value2
    return f"rows={len(rows)}"


# =================================================================================================
# memory-pressure
# =================================================================================================


def spill(client):
    import dask.array as da
    from distributed import wait

    chunk = 25 * 2**20 // 8
    x = da.random.default_rng(0).random(40 * chunk, chunks=chunk)  # 1000 MiB in 25 MiB chunks
    x = x.persist()
    wait(x)
    res = (x * 2).sum().compute()
    del x
    return f"result={res:.3f}"


def hog(i, mib=700, step=35):
    """Loads a 'file' too big for the worker in 35 MiB pieces, 0.1 s apart, past the worker's
    whole memory limit: the nanny kills the worker at 95 % (~1 s in)."""
    pieces = []
    for _ in range(mib // step):
        pieces.append(np.ones(step * 2**20 // 8))
        time.sleep(0.1)
    return float(sum(p[0] for p in pieces)) + i


def killed_worker(client):
    from distributed import KilledWorker

    warm = client.map(sort_work, range(8))
    client.gather(warm)
    del warm  # released: a killed worker loses nothing the client still holds
    fut = client.submit(hog, 0, pure=False)
    try:
        fut.result()
        outcome = "no error (the worker survived?)"
    except KilledWorker as e:
        outcome = f"KilledWorker: {str(e)[:60]}"
    more = client.map(sort_work, range(100, 104))
    client.gather(more)
    del more
    return outcome


# =================================================================================================
# recomputation
# =================================================================================================


def load_block(i):
    return np.random.default_rng(i).random((700, 700))


def expensive(b):
    for _ in range(4):
        b = np.tanh(b @ b.T / b.shape[0])
    return b


def block_sum(b):
    return float(b.sum())


def block_max(b):
    return float(b.max())


def maximum(a, b):
    return max(a, b)


def recompute_delayed(client):
    import dask

    y = [dask.delayed(expensive, pure=True)(dask.delayed(load_block, pure=True)(i))
         for i in range(16)]
    s = tree_reduce([dask.delayed(block_sum, pure=True)(b) for b in y], add)
    m = tree_reduce([dask.delayed(block_max, pure=True)(b) for b in y], maximum)
    a = s.compute()  # computes y
    b = m.compute()  # y was not persisted: computed again, same keys
    return f"sum={a:.3f}, max={b:.6f}"


def recompute_dataframe(client):
    import dask.dataframe as dd

    ddf = dd.from_map(events_frame, range(8))
    # The shared intermediate: a shuffle-free but expensive clean + a sort within partitions.
    clean = ddf.map_partitions(enrich)
    clean = clean[clean["value2"] > 0.1]
    a = clean["value2"].sum().compute()  # computes clean
    b = clean.groupby("hour")["roll"].mean().compute()  # computes clean again
    c = len(clean)  # and a third time
    return f"sum={a:.3f}, groups={len(b)}, rows={c}"


# =================================================================================================
# communication
# =================================================================================================


def comm_rechunk(client):
    import dask.array as da

    x = da.random.default_rng(0).random((6000, 6000), chunks=(375, 6000))  # row blocks
    y = x.rechunk((6000, 375), method="tasks")  # to column blocks: all-to-all
    return f"result={y.sum().compute():.3f}"


def comm_merge_p2p(client):
    import dask.dataframe as dd

    orders = dd.from_map(orders_frame, range(12))
    customers = dd.from_map(customers_frame, range(4))
    # Both large enough not to broadcast; joined on a non-index column: a P2P hash join.
    j = orders.merge(customers, on="customer", how="inner")
    res = j.groupby("region")["amount"].sum().compute()
    return f"groups={len(res)}"


def comm_set_index(client):
    import dask.dataframe as dd

    ddf = dd.from_map(events_frame, range(12), rows=400_000)
    s = ddf.set_index("ts")  # a full shuffle by a random column
    res = s.map_partitions(len).compute()
    return f"partitions={len(res)}, rows={int(res.sum())}"


# =================================================================================================
# straggler-worker (pinned data, restrictions)
# =================================================================================================


def signal_stats(a):
    """~100 ms of numpy on a 3M-sample signal: sort, FFT, cumulative sum."""
    s = np.sort(a)
    f = np.abs(np.fft.rfft(a))
    c = np.cumsum(a)
    return float(s[len(s) // 2] + f[1:100].sum() + c[-1])


def straggler_scatter(client):
    workers = sorted(client.scheduler_info()["workers"])
    rng = np.random.default_rng(0)
    data = [rng.random(3_000_000) for _ in range(16)]  # 16 x 24 MB
    # All inputs scattered to one worker: tasks follow their data there (moving 24 MB costs
    # more than the ~100 ms of work, so work stealing moves few).
    futs = client.scatter(data, workers=[workers[0]])
    res = client.map(signal_stats, futs)
    return f"result={sum(client.gather(res)):.3f}"


def straggler_restricted(client):
    workers = sorted(client.scheduler_info()["workers"])
    futs = client.map(sort_work, range(24), workers=[workers[0]], allow_other_workers=False)
    light = client.map(sort_work, range(100, 104))
    return f"result={sum(client.gather(futs)) + sum(client.gather(light)):.3f}"


def straggler_resources(client):
    # Only the first worker has a "GPU" (see worker_resources): everything asking for it queues
    # there while the other worker does the few unrestricted tasks.
    futs = client.map(matrix_work, range(24), resources={"GPU": 1})
    other = client.map(sort_work, range(2), n=2_000_000)
    return f"result={sum(client.gather(futs)) + sum(client.gather(other)):.3f}"


# =================================================================================================
# gil-contention
# =================================================================================================


def gil_tasks(client):
    # One task alone first (the user trying it out): its duration is the solo baseline the
    # concurrent ones are compared with.
    client.submit(py_work, 2_500_000, pure=False).result()
    futs = client.map(py_work, [2_500_000] * 32, pure=False)
    return f"result={sum(client.gather(futs))}"


# =================================================================================================
# task-failures
# =================================================================================================


def uses_missing_module(i):
    import taskscope_corpus_not_installed  # noqa: F401  (not installed on the workers)

    return i


def failures_missing_module(client):
    ok = client.map(sort_work, range(12))
    bad = client.map(uses_missing_module, range(8), retries=2)
    client.gather(ok)
    errors = 0
    for f in bad:
        try:
            f.result()
        except ModuleNotFoundError:
            errors += 1
    return f"errors={errors}"


def flaky_fetch(i):
    sort_work(i, n=3_000_000)  # CPU work (~40 ms), then the flaky part
    if random.random() < 0.3:
        raise ConnectionError(f"transient: connection reset while fetching part {i}")
    return i


def failures_transient(client):
    futs = client.map(flaky_fetch, range(40), retries=6, pure=False)
    out = client.gather(futs)
    return f"result={sum(out)}"


# =================================================================================================
# unmanaged-memory
# =================================================================================================


def leaky_parse(i, mib=24):
    """Parses a batch and (by mistake) keeps its raw buffer in a worker-global cache."""
    from distributed import get_worker

    w = get_worker()
    cache = getattr(w, "_corpus_leak", None)
    if cache is None:
        cache = w._corpus_leak = []
    buf = bytearray(mib * 2**20)
    buf[:: 4096] = b"x" * len(buf[:: 4096])  # touch every page
    cache.append(buf)
    time.sleep(0.05)
    return i


def unmanaged_leak(client):
    # 2 workers x 1 GiB: 2 x 28 x 24 MiB ~ 672 MiB leaked per worker (~65-75 % of the limit with
    # the interpreter), managed memory ~0: below pause (80 %).
    workers = sorted(client.scheduler_info()["workers"])
    futs = []
    for k, w in enumerate(workers):
        futs += client.map(leaky_parse, range(k * 100, k * 100 + 26), workers=[w], pure=False)
    client.gather(futs)
    # Then the job goes on at that level for a while (heartbeats carry the memory).
    more = client.map(sleep_io, range(16), seconds=0.4, pure=False)
    client.gather(more)
    mem = client.run(lambda dask_worker: len(getattr(dask_worker, "_corpus_leak", [])))
    return f"leaked buffers per worker={sorted(mem.values())}"


# =================================================================================================
# threads-per-worker
# =================================================================================================


def threads_io_sleep(client):
    futs = client.map(sleep_io, range(60), pure=False)
    return f"result={sum(client.gather(futs))}"


def fetch_page(url):
    time.sleep(0.1)  # the HTTP round trip
    return {"url": url, "len": len(url) * 100}


def threads_io_bag(client):
    import dask.bag as db

    urls = [f"https://example.invalid/page/{i}" for i in range(64)]
    b = db.from_sequence(urls, npartitions=32).map(fetch_page).pluck("len")
    return f"result={b.sum().compute()}"


# =================================================================================================
# serialization
# =================================================================================================


def make_records(i, n=10_000):
    """A list of Python dicts (JSON-ish records): expensive to pickle and unpickle."""
    rng = random.Random(i)
    return [
        {"id": i * n + k, "name": f"user-{rng.randrange(10**6)}", "tags": [k % 7, k % 11],
         "score": rng.random()}
        for k in range(n)
    ]


def merge_records(a, b):
    return a + b


def count_records(recs):
    return len(recs)


def serialization_objects(client):
    import dask

    parts = [dask.delayed(make_records, pure=True)(i) for i in range(8)]
    merged = tree_reduce(parts, merge_records)  # big object lists move between the workers
    return f"records={dask.delayed(count_records)(merged).compute()}"


# =================================================================================================
# Registry
# =================================================================================================

_STREAM_NO_MEMORY = (
    "Task streams and performance reports carry no memory samples, so there the run must look "
    "quiet."
)

SCENARIOS_LIST = [
    # ---------------------------------------------------------------- healthy
    Scenario(
        "healthy-df-from-pandas", healthy_df_from_pandas, "healthy", "dataframe",
        "A 9 MB pandas frame (280k rows) loaded with from_pandas into 8 partitions (each ~1 MB "
        "inline in its task, once), per-user rolling features per partition (~70 ms), then a "
        "groupby-agg: nothing pathological.",
    ),
    Scenario(
        "healthy-df-from-map", healthy_df_from_map, "healthy", "dataframe",
        "ETL with from_map: 16 partitions of 200k rows generated on the workers, enriched per "
        "partition, reduced with a groupby-agg. Balanced tasks of ~100 ms.",
    ),
    Scenario(
        "healthy-parquet", healthy_parquet, "healthy", "dataframe",
        "Writes 12 partitions to parquet (pyarrow, snappy), reads them back and does a groupby "
        "mean: the common read/transform/aggregate pipeline with decently sized partitions.",
    ),
    Scenario(
        "healthy-array-transpose", healthy_array_transpose, "healthy", "array",
        "y = sin(x)**2; (y + y.T).mean(axis=0).sum() over a 10000x10000 array in 2500x2500 "
        "chunks (50 MB): "
        "the transpose moves some chunks between the 2 workers, but compute dominates.",
    ),
    Scenario(
        "healthy-broadcast-join", healthy_broadcast_join, "healthy", "dataframe",
        "12 partitions of orders joined with a small (200k-row) customer table with "
        "broadcast=True: the small side goes to every partition once, no shuffle of the big "
        "side.",
    ),
    Scenario(
        "healthy-aligned-join", healthy_aligned_join, "healthy", "dataframe",
        "Two frames of 12 x 1.5M rows built with from_map on the same sorted index with known, "
        "equal divisions, joined on the index: partition-wise, no shuffle, then a groupby-sum.",
    ),
    Scenario(
        "healthy-numpy-threads", healthy_numpy_threads, "healthy", "futures",
        "40 BLAS-heavy tasks (matmul + tanh, GIL released) on 1 worker x 2 threads: threads are "
        "the right choice for numpy work, both threads run at full speed.",
        n_workers=1, threads_per_worker=2, memory_limit="4GiB",
    ),
    Scenario(
        "healthy-io-threads", healthy_io_threads, "healthy", "futures",
        "96 I/O-bound tasks (150 ms waits, no CPU) on 1 worker x 8 threads: many threads for "
        "I/O, as the guide says; 8 waits overlap.",
        n_workers=1, threads_per_worker=8, memory_limit="4GiB",
    ),
    Scenario(
        "healthy-delayed-tree", healthy_delayed_tree, "healthy", "delayed",
        "24 delayed numpy sorts of ~100 ms and a pairwise tree reduction: the baseline.",
    ),
    Scenario(
        "healthy-futures-map", healthy_futures_map, "healthy", "futures",
        "client.map over 32 numpy sorts of ~100 ms, summed by one submit on the futures "
        "(no round trip through the client).",
    ),
    Scenario(
        "healthy-bag", healthy_bag, "healthy", "bag",
        "Log analytics with dask.bag: 24 partitions of 30k JSON lines parsed, filtered and "
        "counted (frequencies, count) in one dask.compute: partitions of a sensible size, "
        "one pass.",
    ),
    # ---------------------------------------------------------------- skew
    Scenario(
        "skew-hot-key", skew_hot_key, "skew", "dataframe",
        "groupby('user').apply(sessionize) where 60 % of all events belong to one user (a bot): "
        "after the shuffle by user, one output partition holds the hot key and its apply task "
        "runs many times longer than the others while the rest of the cluster waits.",
    ),
    Scenario(
        "skew-delayed-partition", skew_delayed_partition, "skew", "delayed",
        "A groupby-like delayed job over 16 inputs, one of them 24x larger (an unsplit big file): "
        "its load and groupby tasks take ~20x the median and the job waits for them.",
    ),
    Scenario(
        "skew-array-chunk", skew_array_chunk, "skew", "array",
        "An array chunked irregularly along rows (one 32,000-row chunk, fifteen of 1,600) and "
        "sorted per block: the big chunk's tasks take ~20x the others (should have been "
        "rechunked).",
    ),
    # ---------------------------------------------------------------- tiny-partitions
    Scenario(
        "tiny-bag", tiny_bag, "tiny-partitions", "bag",
        "db.from_sequence(range(1200), partition_size=1).map(f).sum(): one partition per "
        "element, ~2,400 sub-millisecond tasks; scheduling overhead dwarfs the work.",
    ),
    Scenario(
        "tiny-dataframe", tiny_dataframe, "tiny-partitions", "dataframe",
        "300k rows split into 1,200 partitions of 250 rows (the guide's 'too many partitions'): "
        "thousands of sub-millisecond tasks for a trivial column sum.",
    ),
    Scenario(
        "tiny-array", tiny_array, "tiny-partitions", "array",
        "A 1600x1600 array in 50x50 chunks (20 kB each, 1,024 chunks) for an elementwise op "
        "and a sum: per-task overhead dominates.",
    ),
    Scenario(
        "tiny-futures-map", tiny_futures_map, "tiny-partitions", "futures",
        "client.map(inc, range(3000)): one future per element, 3,000 microsecond tasks each "
        "paying the scheduler's per-task overhead (should have been batched).",
    ),
    # ---------------------------------------------------------------- oversized-argument
    Scenario(
        "large-arg-delayed", large_arg_delayed, "oversized-argument", "delayed",
        "A 40 MB numpy array passed directly to 16 delayed calls (not scattered, not wrapped in "
        "delayed): it is embedded in every task, shipped and unpickled per task. Only the "
        "plugin sees inline argument sizes. Stream and report see only what it causes: "
        "sub-millisecond tasks with the workers idle > 95 % of the span while the arguments "
        "travel, so idle-gaps there.",
        formats={"stream": "idle-gaps", "report": "idle-gaps"},
    ),
    Scenario(
        "large-arg-dict-map", large_arg_dict_map, "oversized-argument", "futures",
        "A ~3.4 MB (80k-entry) lookup dict passed to client.submit for each of 24 batches instead of "
        "client.scatter(lookup, broadcast=True): the dict is pickled with each submit and "
        "travels inline with each task. Stream and report carry no argument sizes; they "
        "show sub-millisecond tasks with the workers idle > 95 % of the span, waiting on the "
        "client: idle-gaps there.",
        formats={"stream": "idle-gaps", "report": "idle-gaps"},
    ),
    Scenario(
        "large-graph", large_graph, "oversized-argument", "array",
        "da.from_array on a 96 MB in-memory numpy array: the data is embedded in the graph "
        "(> 10 MB sent to the scheduler, 4 MB inline in each of 24 tasks); the time goes into "
        "shipping the graph before the first task starts. Stream and report: quiet, they have "
        "no argument sizes and the cost falls before their first record.",
        formats={"stream": "quiet", "report": "quiet"},
    ),
    # ---------------------------------------------------------------- idle-gaps
    Scenario(
        "idle-compute-loop", idle_compute_loop, "idle-gaps", "delayed",
        "30 x dask.compute() of 4 small tasks with ~80 ms of client-side work between them: "
        "the workers are idle most of the wall time waiting for the client.",
    ),
    Scenario(
        "idle-partitions-loop", idle_partitions_loop, "idle-gaps", "dataframe",
        "for i in range(npartitions): ddf.partitions[i].compute() then client-side pandas on "
        "each: one partition at a time, the cluster idles between them.",
    ),
    Scenario(
        "idle-futures-result", idle_futures_result, "idle-gaps", "futures",
        "40 client.submit(...).result() calls in a loop, each waiting for the previous result "
        "plus client work: one short task in flight at a time, long gaps.",
    ),
    Scenario(
        "idle-list-itertuples", idle_list_itertuples, "idle-gaps", "dataframe",
        "list(ddf.itertuples()) (the guide's 'list(dask_collection)'): Dask computes the "
        "partitions one by one and pulls each to the client, workers idle between them.",
    ),
    # ---------------------------------------------------------------- memory-pressure
    Scenario(
        "memory-spill", spill, "memory-pressure", "array",
        "1000 MiB of array chunks persisted on 2 workers of 400 MiB (target 0.6): most chunks "
        "are spilled to disk, the sum reads them back (disk-read phases). The plugin has the "
        "memory samples; stream and report only the disk-read phases.",
        memory_limit="400MiB",
    ),
    Scenario(
        "memory-killed-worker", killed_worker, "memory-pressure", "futures",
        "A task loading 700 MiB in 35 MiB pieces on workers limited to 500 MiB: the worker "
        "pauses at 80 %, the nanny kills it at 95 %, the task is retried on the other worker, "
        "killed again and fails with KilledWorker "
        "(allowed-failures=1). Stream and report do not have the killed attempts or the "
        "worker events, but they do show the cause's mark: the workers replaced mid-run (new "
        "addresses) while the cluster idles for the seconds the hog ran, so memory-pressure "
        "is expected there too.",
        memory_limit="500MiB",
        config={"distributed.scheduler.allowed-failures": 1},
    ),
    # ---------------------------------------------------------------- recomputation
    Scenario(
        "recompute-delayed", recompute_delayed, "recomputation", "delayed",
        "An expensive delayed intermediate (16 blocks of matmul work) used by two separate "
        ".compute() calls without persist: the same keys are computed twice.",
    ),
    Scenario(
        "recompute-dataframe", recompute_dataframe, "recomputation", "dataframe",
        "A cleaned dataframe (from_map + enrich + filter) used by three separate computes "
        "(sum, groupby-mean, len) without persist: the partitions are rebuilt each time.",
    ),
    # ---------------------------------------------------------------- communication
    Scenario(
        "comm-rechunk", comm_rechunk, "communication", "array",
        "A 6000x6000 array rechunked from row blocks to column blocks with method='tasks': "
        "every output chunk needs a piece of every input chunk, transfers dominate.",
    ),
    Scenario(
        "comm-merge-p2p", comm_merge_p2p, "communication", "dataframe",
        "A merge of two dataframes on a non-index column with Dask's default P2P shuffle: the "
        "data moves inside hash-join-transfer / unpack tasks' compute.",
    ),
    Scenario(
        "comm-set-index", comm_set_index, "communication", "dataframe",
        "set_index on a random column: a full P2P shuffle (shuffle-transfer, barrier, unpack) "
        "of all rows for a trivial per-partition len.",
    ),
    # ---------------------------------------------------------------- straggler-worker
    Scenario(
        "straggler-scatter", straggler_scatter, "straggler-worker", "futures",
        "16 x 24 MB signals scattered to one worker (client.scatter(..., workers=[one])), then "
        "~100 ms of numpy (sort, FFT) on each: the tasks follow their data, that worker does "
        "most of the work while the other idles (work stealing moves only a few).",
    ),
    Scenario(
        "straggler-restricted", straggler_restricted, "straggler-worker", "futures",
        "client.map(..., workers=[one], allow_other_workers=False) for 24 of 28 tasks: one "
        "worker runs them all back to back, the other is mostly idle.",
    ),
    Scenario(
        "straggler-resources", straggler_resources, "straggler-worker", "futures",
        "24 tasks require resources={'GPU': 1} which only the first worker has: they serialize "
        "on it while the second worker finishes its 2 tasks and idles.",
        worker_resources={0: {"GPU": 1}},
    ),
    # ---------------------------------------------------------------- gil-contention
    Scenario(
        "gil-1x4", gil_tasks, "gil-contention", "futures",
        "32 pure-Python CPU tasks (a fixed loop, GIL held) on 1 worker x 4 threads: the threads "
        "take turns on the GIL, so each task runs ~4x longer than alone and the worker uses "
        "one core.",
        n_workers=1, threads_per_worker=4, memory_limit="4GiB",
    ),
    Scenario(
        "gil-2x2", gil_tasks, "gil-contention", "futures",
        "The same pure-Python tasks on 2 workers x 2 threads: each process's two threads share "
        "one GIL, tasks take ~2x their solo time.",
        n_workers=2, threads_per_worker=2,
    ),
    # ---------------------------------------------------------------- task-failures
    Scenario(
        "failures-missing-module", failures_missing_module, "task-failures", "futures",
        "8 tasks import a module not installed on the workers (the guide's 'zombie worker'): "
        "ModuleNotFoundError on every attempt, retries=2, so 3 failed attempts each; 12 healthy "
        "tasks alongside. The stream and the report keep only the final failed attempt.",
    ),
    Scenario(
        "failures-transient", failures_transient, "task-failures", "futures",
        "40 CPU tasks (parse-like) that fail ~30 % of the time with a ConnectionError and succeed on "
        "retry (retries=6): wasted attempts. Dask's task stream (and so the report) records "
        "only attempts that end in memory or erred, never the retried failures: quiet there.",
        formats={"stream": "quiet", "report": "quiet"},
    ),
    # ---------------------------------------------------------------- unmanaged-memory
    Scenario(
        "unmanaged-leak", unmanaged_leak, "unmanaged-memory", "futures",
        "Tasks that keep 24 MiB buffers in a worker-global cache (a leak) and return small "
        "ints: each 1 GiB worker sits at ~75 % in unmanaged memory with managed ~0, "
        "below pause. " + _STREAM_NO_MEMORY,
        memory_limit="1GiB",
        formats={"stream": "quiet", "report": "quiet"},
    ),
    # ---------------------------------------------------------------- threads-per-worker
    Scenario(
        "threads-io-sleep", threads_io_sleep, "threads-per-worker", "futures",
        "60 I/O-bound tasks (150 ms waits) on 2 workers x 1 thread: the CPU is idle while the "
        "tasks wait; more threads per worker would overlap the waits. Stream and report have "
        "no CPU time, so a wait looks like work: quiet there.",
        formats={"stream": "quiet", "report": "quiet"},
    ),
    Scenario(
        "threads-io-bag", threads_io_bag, "threads-per-worker", "bag",
        "A bag of 64 URLs 'fetched' (100 ms waits) on 2 workers x 1 thread: I/O-bound, one "
        "request in flight per process. Stream and report have no CPU time: quiet there.",
        formats={"stream": "quiet", "report": "quiet"},
    ),
    # ---------------------------------------------------------------- serialization
    Scenario(
        "serialization-objects", serialization_objects, "serialization", "delayed",
        "8 tasks build lists of 10k Python dicts, merged pairwise across the workers: moving "
        "them means pickling and unpickling millions of small objects, so transfers are slow "
        "for their size compared with numpy data. Only the plugin records Dask's transfer "
        "metrics (time pickling against time on the network); stream and report show the "
        "slow transfers themselves: communication there.",
        formats={"stream": "communication", "report": "communication"},
    ),
]

SCENARIOS = {s.name: s for s in SCENARIOS_LIST}

# The older recorders' workload names -> the scenario that replaces each (same pathology, same
# shape 2 x 1; sizes differ, so switching means re-recording their fixtures):
# analyzer/tests/data/dask/record.py, bridges/dask/tests/workloads.py,
# traces/tests/data/record_dask_task_stream.py and report/record_report.py (an array transpose).
LEGACY = {
    "healthy": "healthy-delayed-tree",
    "skewed": "skew-delayed-partition",
    "tiny": "tiny-bag",
    "loop": "idle-compute-loop",
    "spill": "memory-spill",
    "rechunk": "comm-rechunk",
    "recompute": "recompute-delayed",
    "large_argument": "large-arg-delayed",
    "transpose": "healthy-array-transpose",
}


def run(name: str, client, **kwargs) -> str:
    """Runs scenario ``name`` (or a LEGACY name) on ``client``; returns its summary."""
    return SCENARIOS[LEGACY.get(name, name)].run(client, **kwargs)
assert len(SCENARIOS) == len(SCENARIOS_LIST), "duplicate scenario names"


def healthy():
    return [s for s in SCENARIOS_LIST if s.expect == "healthy"]


def pathologies():
    return [s for s in SCENARIOS_LIST if s.expect != "healthy"]


# Table text where the description's first sentence is too long or cut badly.
SHORT = {
    "healthy-df-from-pandas": "a 9 MB frame via from_pandas (8 partitions), per-user rolling "
    "features, groupby-agg",
    "healthy-df-from-map": "ETL with from_map: 16 x 500k rows, enrich, groupby-agg",
    "tiny-bag": "bag with partition_size=1: ~2,400 sub-ms tasks",
    "idle-partitions-loop": "ddf.partitions[i].compute() in a loop with client work",
    "large-graph": "da.from_array on a 96 MB numpy array: > 10 MB graph, 4 MB inline per task",
    "comm-set-index": "set_index on a random column: full P2P shuffle",
    "straggler-resources": "24 tasks need resources={'GPU': 1}, which only worker 0 has",
    "large-arg-dict-map": "a 3.4 MB lookup dict passed to 24 client.submit calls (no scatter)",
}


def markdown_table() -> str:
    """The README's scenario table, from the registry."""
    rows = ["| scenario | API | shape | pathology | plugin | stream | report |",
            "|---|---|---|---|---|---|---|"]
    for s in SCENARIOS_LIST:
        extra = ""
        if s.config:
            extra = ", " + ", ".join(f"`{k.rsplit('.', 1)[-1]}={v}`" for k, v in s.config.items())
        if s.worker_resources:
            extra += ", resources " + ", ".join(
                f"w{i}: {r}" for i, r in s.worker_resources.items())
        cells = [s.expected(f) for f in FORMATS]
        first = SHORT.get(s.name) or s.description.split(": ")[0].split(". ")[0]
        first = first.replace("|", "/")
        rows.append(
            f"| `{s.name}` | {s.api} | {s.shape()}{extra} | {first} | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--table"]:
        print(markdown_table())
    else:
        for s in SCENARIOS_LIST:
            print(f"{s.name:28} {s.expect:20} {s.shape():16} {s.api}")
