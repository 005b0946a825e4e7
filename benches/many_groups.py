#!/usr/bin/env python3
"""Writes traces with many distinct task groups, to measure memory per group (issue 11).

    python3 benches/many_groups.py DIR [GROUPS]

DIR/groups.ndjson: a native trace of GROUPS groups (default 100,000) of two tasks each on 4
workers x 2 threads, each task with a queued, a transfer and a compute phase and one dependency.
DIR/groups-stream.json: the same tasks as a Dask task stream (`get_task_stream()` records).
DIR/groups-report.html: the same tasks as a performance report's Bokeh task-stream source.
"""

import json
import os
import sys

WORKERS, THREADS = 4, 2


def tasks(groups):
    lanes = WORKERS * THREADS
    clock = [0] * lanes
    for g in range(groups):
        group = f"group-{g:06d}-{(g * 2654435761) % 2**32:08x}"
        for i in range(2):
            n = 2 * g + i
            lane = n % lanes
            start = clock[lane]
            compute = 500_000 + (n * 7919) % 400_000
            clock[lane] = start + 50_000 + compute + 20_000
            yield {
                "group": group,
                "key": [group, i],
                "worker": lane // THREADS,
                "thread": lane % THREADS,
                "start": start,
                "compute": compute,
                "nbytes": 1_000 + n % 5_000,
            }


def native(path, groups):
    with open(path, "w") as out:
        header = {
            "kind": "header", "format": "taskscope-trace", "version": "1.0",
            "producer": "benches/many_groups.py", "origin_unix_ns": 0,
            "cluster": {"workers": [
                {"id": w, "name": f"tcp://127.0.0.1:{40000 + w}", "threads": THREADS}
                for w in range(WORKERS)
            ]},
        }
        out.write(json.dumps(header, separators=(",", ":")) + "\n")
        previous = None
        for t in tasks(groups):
            s = t["start"]
            record = {
                "kind": "task", "key": t["key"], "group": t["group"], "worker": t["worker"],
                "thread": t["thread"], "status": "ok", "nbytes": t["nbytes"],
                "deps": [previous] if previous else [],
                "phases": [
                    {"action": "queued", "start": s, "stop": s + 20_000},
                    {"action": "transfer", "start": s + 20_000, "stop": s + 50_000,
                     "bytes": 4096, "peer": (t["worker"] + 1) % WORKERS},
                    {"action": "compute", "start": s + 50_000, "stop": s + 50_000 + t["compute"]},
                ],
            }
            previous = t["key"]
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


def stream(path, groups):
    origin = 1_795_000_000.0
    with open(path, "w") as out:
        out.write("[")
        for n, t in enumerate(tasks(groups)):
            s = origin + t["start"] / 1e9
            record = {
                "key": t["key"] if n % 2 else f"('{t['group']}', {t['key'][1]})",
                "worker": f"tcp://127.0.0.1:{40000 + t['worker']}",
                "thread": 140_000 + t["thread"], "status": "OK", "nbytes": t["nbytes"],
                "startstops": [
                    {"action": "transfer", "start": s, "stop": s + 30e-6,
                     "source": f"tcp://127.0.0.1:{40000 + (t['worker'] + 1) % WORKERS}"},
                    {"action": "compute", "start": s + 50e-6, "stop": s + 50e-6 + t["compute"] / 1e9},
                ],
            }
            out.write(("," if n else "") + "\n" + json.dumps(record, separators=(",", ":")))
        out.write("\n]\n")


def report(path, groups):
    columns = {c: [] for c in ["start", "duration", "key", "name", "color", "worker", "worker_thread"]}
    origin_ms = 1_795_000_000_000.0
    for t in tasks(groups):
        s = origin_ms + t["start"] / 1e6
        worker = f"tcp://127.0.0.1:{40000 + t['worker']}"
        key = f"('{t['group']}', {t['key'][1]})"
        for name, start, duration in [
            (f"transfer-{t['group']}", s, 0.03),
            (t["group"], s + 0.05, t["compute"] / 1e6),
        ]:
            columns["start"].append(start + duration / 2)
            columns["duration"].append(duration)
            columns["key"].append(key)
            columns["name"].append(name)
            columns["color"].append("red" if name.startswith("transfer") else "blue")
            columns["worker"].append(worker)
            columns["worker_thread"].append(f"{worker}-{140_000 + t['thread']}")
    docs = {"doc-id": {"roots": [{"type": "object", "name": "Figure", "id": "p1", "attributes": {
        "renderers": [{"type": "object", "name": "GlyphRenderer", "id": "p2", "attributes": {
            "data_source": {"type": "object", "name": "ColumnDataSource", "id": "p3",
                            "attributes": {"data": {"type": "map", "entries": [
                                [name, values] for name, values in columns.items()]}}}}}]}}]}}
    text = json.dumps(docs, separators=(",", ":"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    with open(path, "w") as out:
        out.write("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\n"
                  "<title>Dask Performance Report</title></head>\n<body>\n")
        out.write('<script type="application/json" id="p9">\n')
        out.write(text)
        out.write("\n</script>\n</body>\n</html>\n")


def main():
    directory = sys.argv[1]
    groups = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    os.makedirs(directory, exist_ok=True)
    native(os.path.join(directory, "groups.ndjson"), groups)
    stream(os.path.join(directory, "groups-stream.json"), groups)
    report(os.path.join(directory, "groups-report.html"), groups)


if __name__ == "__main__":
    main()
