#!/usr/bin/env python3
"""Compute facts from dask_task_stream.json -> dask_task_stream.expected.txt.

Independent of taskscope; used to write Rust test assertions.
Usage: python compute_expected.py [JSON_PATH] [OUT_PATH]
"""
import inspect
import json
import os
import sys
from collections import Counter, defaultdict

import dask
import dask.utils
import distributed
from dask.utils import key_split


def as_key(k):
    return tuple(as_key(x) for x in k) if isinstance(k, list) else k


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) > 1 else os.path.join(here, "dask_task_stream.json")
    dst = argv[2] if len(argv) > 2 else os.path.join(here, "dask_task_stream.expected.txt")
    with open(src) as f:
        records = json.load(f)

    out = []
    p = out.append
    p(f"# Facts computed by compute_expected.py from {os.path.basename(src)}")
    p(f"# dask {dask.__version__}, distributed {distributed.__version__}, "
      f"python {sys.version.split()[0]}")
    p("")
    p(f"records: {len(records)}")
    keys = [as_key(r["key"]) for r in records]
    p(f"distinct keys: {len(set(keys))}")
    p(f"tuple keys (JSON arrays): {sum(isinstance(k, tuple) for k in keys)}")
    p(f"string keys: {sum(isinstance(k, str) for k in keys)}")

    workers = defaultdict(set)
    per_worker_records = Counter()
    for r in records:
        workers[r["worker"]].add(r["thread"])
        per_worker_records[r["worker"]] += 1
    p(f"distinct workers: {len(workers)}")
    for w in sorted(workers):
        p(f"  worker {w}: records={per_worker_records[w]} "
          f"distinct_threads={len(workers[w])} threads={sorted(workers[w])}")
    p(f"distinct (worker, thread) pairs: {sum(len(t) for t in workers.values())}")

    actions = Counter()
    transfers_with_source = 0
    records_with_transfer = 0
    transfer_sources = Counter()
    starts, stops = [], []
    for r in records:
        has_t = False
        for ss in r["startstops"]:
            actions[ss["action"]] += 1
            starts.append(ss["start"])
            stops.append(ss["stop"])
            if ss["action"] == "transfer":
                has_t = True
                if "source" in ss:
                    transfers_with_source += 1
                    transfer_sources[(ss["source"], r["worker"])] += 1
        records_with_transfer += has_t
    p(f"total startstops (phases): {sum(actions.values())}")
    p("phases by action:")
    for a in sorted(actions):
        p(f"  {a}: {actions[a]}")
    p(f"records with >=1 transfer phase: {records_with_transfer}")
    p(f"transfer phases with 'source': {transfers_with_source}")
    p("transfer phases by (source -> destination worker):")
    for (s, d), n in sorted(transfer_sources.items()):
        p(f"  {s} -> {d}: {n}")
    p(f"sum nbytes: {sum(r.get('nbytes', 0) for r in records)}")
    p(f"min start (all startstops): {min(starts)!r}")
    p(f"max stop (all startstops): {max(stops)!r}")
    p(f"span seconds: {max(stops) - min(starts)!r}")

    groups = Counter(key_split(k) for k in keys)
    p("records per group (key_split):")
    for g in sorted(groups):
        p(f"  {g}: {groups[g]}")

    p(f"'type' field present: {any('type' in r for r in records)}")
    fields = sorted(set().union(*(r.keys() for r in records)))
    p(f"top-level fields: {fields}")
    ssfields = sorted(set().union(*(ss.keys() for r in records for ss in r["startstops"])))
    p(f"startstop fields: {ssfields}")
    p(f"statuses: {sorted(Counter(r['status'] for r in records).items())}")
    p(f"typenames: {sorted(Counter(r.get('typename') for r in records).items())}")
    p(f"metadata values seen: {sorted({json.dumps(r.get('metadata')) for r in records})}")

    p("")
    p("example keys from the fixture (key -> key_split):")
    seen_groups, examples = set(), []
    for k in keys:  # one per group first, then fill
        g = key_split(k)
        if g not in seen_groups:
            seen_groups.add(g)
            examples.append(k)
    for k in keys:
        if len(examples) >= 10:
            break
        if k not in examples:
            examples.append(k)
    for k in examples[:10]:
        p(f"  {k!r} -> {key_split(k)!r}")

    p("")
    p("key_split on extra test inputs (input repr -> result repr):")
    extras = [
        "x", "x-1", "x-abcdef0123456789abcdef0123456789",
        "part-be792a3c-d67c-4340-b6ab-d67ccf9d8423",
        "read-parquet-9f3a2b1c4d5e6f708192a3b4c5d6e7f8", "hello-world-1", "_(x)",
        "random_sample-7373748e7a8c9d0e1f2a3b4c5d6e7f80", ("x", 1), ("a-b-c", 0, 1),
        "finalize-abcd", "inc-1234567", "inc-12345678", "AAA-12345678", "f-x",
        "<lambda>-1234", b"bytes-key", "sum-aggregate-abc123", "data-frame-abcdef12",
        "a_b-c.d-12",
    ]
    for e in extras:
        p(f"  {e!r} -> {key_split(e)!r}")

    p("")
    p("key_split on additional edge cases (not from the brief; note hex_pattern.match is a")
    p("PREFIX match, so any 8-char all-alpha word starting with a-f ends the name):")
    edge = [
        "x-abcdefgh", "x-deadbeef", "x-finalize", "x-zzzzzzzz", "x-Abcdefgh",
        "x-abcdefg", "x-abcdefghi", "x-y-1-z", "1-2", "", "-x", None,
        "('x-2', 1)", "(x, 1)", "ae05086432ca935f6eba409a8ecd4896",
        "AE05086432CA935F6EBA409A8ECD4896", "<module.submodule.myclass object at 0xdaf372",
        "café-x", "x-café", ("inc-1234",), (("x", 1), 2),
    ]
    for e in edge:
        p(f"  {e!r} -> {key_split(e)!r}")

    p("")
    p("=" * 72)
    p(f"Source of dask.utils.key_split (dask {dask.__version__}), verbatim:")
    p("=" * 72)
    p(inspect.getsource(key_split.__wrapped__ if hasattr(key_split, "__wrapped__") else key_split).rstrip())
    p("")
    p("# Module-level regex it uses (dask/utils.py), verbatim:")
    module_src = inspect.getsource(dask.utils)
    for line in module_src.splitlines():
        if line.startswith("hex_pattern"):
            p(line)
    p("# (key_split also calls re.match(r\"[a-f0-9]{32}\", result) inline, and sys.intern)")

    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv)
