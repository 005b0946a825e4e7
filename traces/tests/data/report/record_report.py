#!/usr/bin/env python3
"""Record a real Dask performance report plus the task stream of the same run.

Starts a 2-worker (1 thread each) process-based LocalCluster, and runs a small
dask.array computation (tuple keys, inter-worker transfers) inside BOTH
``performance_report(filename=...)`` and ``get_task_stream()`` (nested, so
both cover exactly the same computation).  Writes:

* ``report.html``       -- the performance report, byte-for-byte as Dask wrote it
* ``task_stream.json``  -- ``ts.data`` as JSON, one record per line in a JSON
                           list (same format as ../record_dask_task_stream.py:
                           the pickled ``type`` field is dropped, tuples become
                           JSON arrays; nothing else is altered).

Requires bokeh (``pip install "bokeh>=3.1"``) for ``performance_report``.

Usage:
    python record_report.py [OUTPUT_DIR]

OUTPUT_DIR defaults to the directory containing this script.
"""
import json
import os
import sys

import numpy as np

import bokeh
import dask
import dask.array as da
import distributed
from distributed import Client, LocalCluster, get_task_stream, performance_report


def make_cluster():
    kwargs = dict(n_workers=2, threads_per_worker=1, processes=True)
    try:
        return LocalCluster(dashboard_address=":0", **kwargs)
    except Exception as e:  # pragma: no cover - fallback only
        print(f"dashboard_address=':0' failed ({e!r}); retrying with default")
        return LocalCluster(**kwargs)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = argv[1] if len(argv) > 1 else here
    report_path = os.path.join(outdir, "report.html")
    stream_path = os.path.join(outdir, "task_stream.json")

    with make_cluster() as cluster, Client(cluster) as client:
        client.wait_for_workers(2)

        rs = da.random.RandomState(42)
        x = rs.random_sample((2000, 2000), chunks=(400, 400))
        expr = (x + x.T).mean(axis=0).sum()

        with performance_report(filename=report_path):
            with get_task_stream() as ts:
                result = expr.compute()

        records = []
        for rec in ts.data:
            rec = dict(rec)
            rec.pop("type", None)  # pickled bytes; not JSON-serializable
            records.append(rec)

    with open(stream_path, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")

    print(
        f"dask {dask.__version__}, distributed {distributed.__version__}, "
        f"bokeh {bokeh.__version__}, numpy {np.__version__}: "
        f"result={result:.6f}; wrote {len(records)} records to {stream_path}; "
        f"report {os.path.getsize(report_path)} bytes at {report_path}"
    )


if __name__ == "__main__":
    main(sys.argv)
