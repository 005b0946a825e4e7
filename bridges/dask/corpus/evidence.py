#!/usr/bin/env python3
"""What a recording shows, measured from the data itself (not from the analyzer): used by
record.py for facts.json, and on its own to check that a fixture reproduces its pathology.

    python evidence.py [CORPUS_DIR] [SCENARIO ...]     # prints one line of evidence per fixture
"""
from __future__ import annotations

import io
import json
import os
import statistics
import sys
from collections import Counter, defaultdict


def _key_split(key):
    from dask.utils import key_split

    return key_split(tuple(key) if isinstance(key, list) else key)


def _union(intervals):
    total = 0.0
    end = None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def stream_evidence(records: list[dict]) -> dict:
    if not records:
        return {"stream_tasks": 0}
    groups = defaultdict(list)
    per_worker = defaultdict(list)
    threads = defaultdict(set)
    all_iv = []
    transfer = 0.0
    transfers = 0
    actions = Counter()
    keys = Counter()
    status = Counter()
    for r in records:
        keys[json.dumps(r["key"])] += 1
        status[r.get("status")] += 1
        threads[r["worker"]].add(r.get("thread"))
        comp = 0.0
        for ss in r["startstops"]:
            actions[ss["action"]] += 1
            all_iv.append((ss["start"], ss["stop"]))
            if ss["action"] == "compute":
                comp += ss["stop"] - ss["start"]
                per_worker[r["worker"]].append((ss["start"], ss["stop"]))
            elif ss["action"] == "transfer":
                transfer += ss["stop"] - ss["start"]
                transfers += 1
        groups[_key_split(r["key"])].append(comp)
    t0 = min(a for a, _ in all_iv)
    t1 = max(b for _, b in all_iv)
    span = max(t1 - t0, 1e-9)
    busy = _union(all_iv)
    workers = {}
    for i, (w, iv) in enumerate(sorted(per_worker.items())):
        workers[f"w{i}"] = {
            "threads_seen": len(threads[w]),
            "tasks": len(iv),
            "compute_s": round(sum(b - a for a, b in iv), 3),
            "busy_share_of_span": round(_union(iv) / span, 3),
            "mean_concurrency": round(sum(b - a for a, b in iv) / max(_union(iv), 1e-9), 2),
        }
    gstats = {}
    for g, d in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        med = statistics.median(d)
        gstats[g] = {
            "tasks": len(d),
            "total_s": round(sum(d), 3),
            "median_ms": round(med * 1e3, 2),
            "max_ms": round(max(d) * 1e3, 2),
            "max_over_median": round(max(d) / med, 1) if med > 0 else None,
        }
    total_compute = sum(sum(d) for d in groups.values())
    return {
        "stream_tasks": len(records),
        "stream_status": dict(status),
        "span_s": round(span, 3),
        "idle_share_of_span": round(1 - busy / span, 3),
        "total_compute_s": round(total_compute, 3),
        "median_task_ms": round(
            statistics.median([c for d in groups.values() for c in d]) * 1e3, 2
        ),
        "transfer_s": round(transfer, 3),
        "transfers": transfers,
        "phase_counts": dict(actions),
        "repeated_keys": sum(1 for c in keys.values() if c > 1),
        "workers": workers,
        "groups": dict(list(gstats.items())[:12]),
        "groups_total": len(gstats),
    }


def plugin_evidence(path: str) -> dict:
    if path.endswith(".zst"):
        import zstandard

        with open(path, "rb") as f:
            text = zstandard.ZstdDecompressor().stream_reader(f).read().decode()
    else:
        with open(path) as f:
            text = f.read()
    lines = [json.loads(line) for line in io.StringIO(text) if line.strip()]
    header = lines[0]
    limits = {w["id"]: w.get("memory_limit") for w in header["cluster"]["workers"]}
    tasks = [r for r in lines[1:] if r.get("kind") == "task"]
    events = Counter()
    peak = {}
    for r in lines[1:]:
        if r.get("kind") == "event":
            events[r["type"]] += 1
            if r["type"] == "worker-added":
                limits[r["worker"]["id"]] = r["worker"].get("memory_limit")
        elif r.get("kind") == "memory":
            p = peak.setdefault(r["worker"], {"managed": 0, "unmanaged": 0, "spilled": 0,
                                              "process": 0})
            p["managed"] = max(p["managed"], r["managed"])
            p["unmanaged"] = max(p["unmanaged"], r["unmanaged"])
            p["spilled"] = max(p["spilled"], r["spilled"])
            p["process"] = max(p["process"], r["managed"] + r["unmanaged"])
    mem = {}
    for w, p in sorted(peak.items()):
        lim = limits.get(w)
        mem[f"w{w}"] = {
            "peak_managed_mib": round(p["managed"] / 2**20),
            "peak_unmanaged_mib": round(p["unmanaged"] / 2**20),
            "peak_spilled_mib": round(p["spilled"] / 2**20),
            "peak_process_share_of_limit": round(p["process"] / lim, 2) if lim else None,
        }
    inline = [t.get("inline_bytes", 0) for t in tasks]
    status = Counter(t["status"] for t in tasks)
    return {
        "plugin_tasks": len(tasks),
        "plugin_status": dict(status),
        "plugin_retried_attempts": sum(1 for t in tasks if t.get("attempt", 1) > 1),
        "plugin_tasks_with_deps": sum(1 for t in tasks if t.get("deps")),
        "plugin_max_inline_bytes": max(inline, default=0),
        "plugin_inline_bytes_total": sum(inline),
        "plugin_events": dict(events),
        "plugin_memory_peaks": mem,
        "plugin_producer": header.get("producer"),
    }


def measure(trace_path: str, records: list[dict]) -> dict:
    out = stream_evidence(records)
    try:
        out.update(plugin_evidence(trace_path))
    except Exception as e:  # keep the recording; say what failed
        out["plugin_evidence_error"] = repr(e)
    return out


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    root = argv[1] if len(argv) > 1 else os.path.join(here, "..", "..", "..", "analyzer",
                                                       "tests", "corpus")
    names = argv[2:] or sorted(os.listdir(root))
    for name in names:
        facts = os.path.join(root, name, "facts.json")
        if not os.path.exists(facts):
            continue
        with open(facts) as f:
            fa = json.load(f)
        top = list(fa.get("groups", {}).items())[:3]
        print(f"== {name} ({fa['cluster']['n_workers']}x{fa['cluster']['threads_per_worker']}) "
              f"wall {fa['wall_seconds']}s span {fa.get('span_s')}s idle "
              f"{fa.get('idle_share_of_span')} transfer {fa.get('transfer_s')}s repeated "
              f"{fa.get('repeated_keys')} status {fa.get('stream_status')} "
              f"plugin {fa.get('plugin_status')} retried {fa.get('plugin_retried_attempts')} "
              f"inline max {fa.get('plugin_max_inline_bytes')} events {fa.get('plugin_events')}")
        print(f"   workers {fa.get('workers')}")
        print(f"   memory {fa.get('plugin_memory_peaks')}")
        for g, st in top:
            print(f"   {g}: {st}")


if __name__ == "__main__":
    main(sys.argv)
