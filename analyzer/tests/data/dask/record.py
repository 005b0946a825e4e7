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

import cloudpickle
import numpy as np
import pandas as pd

import dask
import distributed
from distributed import Client, LocalCluster, get_task_stream

HERE = os.path.dirname(os.path.abspath(__file__))
# The workloads are the Dask bridge's test workloads (one module for both), with the sizes
# these fixtures were recorded with.
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "bridges", "dask", "tests"))
import workloads  # noqa: E402

# Shipped to the workers by value, as functions defined in __main__ were.
cloudpickle.register_pickle_by_value(workloads)


# --------------------------------------------------------------------------
# Scenarios.  Each takes the client and returns a short summary string.
# --------------------------------------------------------------------------

SCENARIOS = {
    "healthy": (lambda c: workloads.healthy(c, parts=24, rows=1_600_000), "2GiB"),
    # hot_last=False: the fixture was recorded before the hot partition got a low priority.
    "skewed": (
        lambda c: workloads.skewed(c, parts=24, hot=7, unit_rows=250_000, hot_last=False),
        "2GiB",
    ),
    "tiny": (lambda c: workloads.tiny(c, n=1500), "2GiB"),
    "loop": (lambda c: workloads.loop(c, iterations=30), "2GiB"),
    "spill": (lambda c: workloads.spill(c, stats=True), "400MiB"),
    "rechunk": (workloads.rechunk, "2GiB"),
    "recompute": (workloads.recompute, "2GiB"),
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
