#!/usr/bin/env python3
"""Scheduling overhead of a real Dask LocalCluster on no-op task graphs.

Mirrors `taskscope bench engine` (engine/src/workloads/shapes.rs):

* map:  N independent no-op tasks, keys ("noop-<token>", i); every key is fetched.
* tree: 7N/8 no-op leaves ("leaf-<token>", i) reduced 8 at a time by no-op tasks
        ("combine-<token>", i), numbered consecutively across levels, until one is
        left; only the final key is fetched.

Graphs are raw low-level Dask graph dicts ``{key: (noop, *dep_keys)}``, submitted with
``client.get(dsk, keys)`` on ``LocalCluster(n_workers=2, threads_per_worker=1,
processes=True)``. The timed span is submission to results in the client (graph
conversion and upload included, graph construction in Python excluded), after a
warm-up run of each shape on the same cluster.

Prints one JSON line per shape:
{"engine": "dask", "shape": ..., "tasks": ..., "seconds": ..., "us_per_task": ...}
"""

import argparse
import json
import logging
import sys
import time
import uuid


def noop(*args):
    return None


FAN_IN = 8


def map_graph(tasks):
    """`tasks` independent no-op tasks; returns (graph, keys to fetch)."""
    name = f"noop-{uuid.uuid4().hex}"
    dsk = {(name, i): (noop,) for i in range(tasks)}
    return dsk, list(dsk)


def tree_graph(tasks):
    """max(7*tasks/8, 1) leaves reduced FAN_IN at a time; returns (graph, [root key])."""
    token = uuid.uuid4().hex
    leaf, combine = f"leaf-{token}", f"combine-{token}"
    leaves = max(tasks * 7 // 8, 1)
    dsk = {}
    inputs = []
    for i in range(leaves):
        key = (leaf, i)
        dsk[key] = (noop,)
        inputs.append(key)
    # Same as taskscope's tree_reduce: always at least one combine level, even for 1 input.
    n = 0
    while True:
        level = []
        for start in range(0, len(inputs), FAN_IN):
            key = (combine, n)
            n += 1
            dsk[key] = (noop, *inputs[start : start + FAN_IN])
            level.append(key)
        if len(level) == 1:
            return dsk, level
        inputs = level


SHAPES = {"map": map_graph, "tree": tree_graph}


def run(client, shape, tasks):
    dsk, keys = SHAPES[shape](tasks)
    started = time.perf_counter()
    results = client.get(dsk, keys)
    seconds = time.perf_counter() - started
    if len(results) != len(keys):
        raise RuntimeError(f"{shape}: got {len(results)} results for {len(keys)} keys")
    return len(dsk), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50_000, help="tasks per graph (default 50000)")
    parser.add_argument("--warmup", type=int, default=1_000, help="tasks per warm-up graph (default 1000)")
    parser.add_argument(
        "--shapes", default="map,tree", help="comma-separated shapes to run (default map,tree)"
    )
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or args.tasks < 1 or args.warmup < 0:
        parser.error(f"unknown shapes {unknown}" if unknown else "--tasks must be >= 1, --warmup >= 0")

    # Keep the JSON lines on stdout clean; Dask logs to stderr, and only warnings matter here.
    logging.getLogger("distributed").setLevel(logging.WARNING)

    import dask
    import distributed
    from distributed import Client, LocalCluster

    print(
        f"dask {dask.__version__}, distributed {distributed.__version__}, python "
        f"{sys.version.split()[0]}: LocalCluster 2 worker processes x 1 thread",
        file=sys.stderr,
    )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        for shape in shapes:
            if args.warmup:
                n, secs = run(client, shape, args.warmup)
                print(f"warm-up {shape}: {n} tasks in {secs:.3f} s", file=sys.stderr)
        for shape in shapes:
            n, secs = run(client, shape, args.tasks)
            print(
                json.dumps(
                    {
                        "engine": "dask",
                        "shape": shape,
                        "tasks": n,
                        "seconds": round(secs, 6),
                        "us_per_task": round(secs / n * 1e6, 3),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
