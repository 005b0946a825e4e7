#!/usr/bin/env python3
"""Record a real Dask task-stream fixture for taskscope's tests.

Starts a 2-worker (2 threads each) process-based LocalCluster, runs a small
dask.array computation (tuple keys, inter-worker transfers) plus a handful of
client.submit futures (string keys like ``inc-<token>``), all inside
``get_task_stream()``, and writes ``ts.data`` as JSON.

The only changes made to the records Dask returns are those needed for JSON:
the ``type`` field (pickled bytes) is dropped, and tuple values (tuple keys,
the ``startstops`` container) become JSON arrays via ``json``'s default
handling.  Nothing else is altered.

Usage:
    python record_dask_task_stream.py [OUTPUT_PATH]

OUTPUT_PATH defaults to ``dask_task_stream.json`` next to this script.
One record per line, for readable diffs.
"""
import json
import os
import sys

import numpy as np

import dask
import dask.array as da
import distributed
from distributed import Client, LocalCluster, get_task_stream


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def total(xs):
    return sum(xs)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out = argv[1] if len(argv) > 1 else os.path.join(here, "dask_task_stream.json")

    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        with get_task_stream() as ts:
            # Array part: tuple keys, and x.T / reductions force data to move
            # between the two workers.
            rs = da.random.RandomState(42)
            x = rs.random_sample((2000, 2000), chunks=(500, 500))
            result = (x + x.T).mean(axis=0).sum().compute()

            # Futures part: string keys such as "inc-<token>", "add-<token>".
            incs = [client.submit(inc, i) for i in range(8)]
            adds = [client.submit(add, a, b) for a, b in zip(incs[::2], incs[1::2])]
            tot = client.submit(total, adds)
            futures_result = tot.result()

        records = []
        for rec in ts.data:
            rec = dict(rec)
            rec.pop("type", None)  # pickled bytes; not JSON-serializable
            records.append(rec)

    with open(out, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")

    print(
        f"dask {dask.__version__}, distributed {distributed.__version__}, "
        f"numpy {np.__version__}: array result={result:.6f}, "
        f"futures result={futures_result}; wrote {len(records)} records to {out}"
    )


if __name__ == "__main__":
    main(sys.argv)
