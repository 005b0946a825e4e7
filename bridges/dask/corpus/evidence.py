#!/usr/bin/env python3
"""What a recording shows, measured from the data itself (not from the analyzer): used by
record.py for facts.json, and on its own to check that a fixture reproduces its pathology.

    python evidence.py [CORPUS_DIR] [SCENARIO ...]     # prints the evidence per fixture
    python evidence.py --check [CORPUS_DIR] [SCENARIO ...]
        # does each fixture's data show its pathology (healthy: none of the big ones)? exit 1 if not
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
        "group_tasks": {g: st["tasks"] for g, st in gstats.items()},
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


def solo_vs_concurrent(records: list[dict]) -> dict | None:
    """For the largest group: the duration of its first task (run alone) against the median of
    the tasks that overlapped another task on the same worker (GIL contention shows as 2-4x)."""
    groups = defaultdict(list)
    for r in records:
        for ss in r["startstops"]:
            if ss["action"] == "compute":
                groups[_key_split(r["key"])].append((ss["start"], ss["stop"], r["worker"]))
    if not groups:
        return None
    g, iv = max(groups.items(), key=lambda kv: len(kv[1]))
    iv.sort()
    solo = iv[0][1] - iv[0][0]
    concurrent = [
        b - a for a, b, w in iv[1:]
        if any(w2 == w and a2 < b and a < b2 for a2, b2, w2 in iv if (a2, b2) != (a, b))
    ]
    if not concurrent or solo <= 0:
        return None
    return {"group": g, "solo_ms": round(solo * 1e3, 1),
            "concurrent_median_ms": round(statistics.median(concurrent) * 1e3, 1),
            "ratio": round(statistics.median(concurrent) / solo, 2)}


def cpu_share(path: str) -> dict:
    """Per group, from the plugin's last group-metrics: thread-cpu / (cpu + noncpu)."""
    if not os.path.exists(path):
        return {}
    import zstandard

    with open(path, "rb") as f:
        text = zstandard.ZstdDecompressor().stream_reader(f).read().decode()
    last = {}
    for line in text.splitlines():
        if '"group-metrics"' in line:
            r = json.loads(line)
            last[r["group"]] = r["metrics"]
    out = {}
    for g, m in last.items():
        cpu = m.get("execute/thread-cpu/seconds", 0)
        non = m.get("execute/thread-noncpu/seconds", 0)
        if cpu + non > 0.5:
            out[g] = round(cpu / (cpu + non), 2)
    return out


def _max_ratio(fa):
    """The largest max/median ratio of a group whose largest task is >= 20 % of the span (one
    slow task among many on a loaded machine is noise; one that holds up the job is skew)."""
    best = 0.0
    span_ms = (fa.get("span_s") or 0) * 1e3
    for st in fa.get("groups", {}).values():
        if st.get("max_over_median") and st["max_ms"] >= max(300, 0.2 * span_ms):
            best = max(best, st["max_over_median"])
    return best


def check(fa: dict, root: str) -> tuple[bool, str]:
    """Does the data show the scenario's pathology (or, for healthy, none of the big ones)?"""
    rule = fa["expected"]["plugin"]
    w = fa.get("workers") or {}
    busy = sorted(v["busy_share_of_span"] for v in w.values())
    mem = fa.get("plugin_memory_peaks", {})
    comp = fa.get("total_compute_s") or 1e-9
    p2p = sum(st["total_s"] for g, st in fa.get("groups", {}).items()
              if any(x in g for x in ("transfer", "p2p", "unpack", "barrier")))
    ev = fa.get("plugin_events", {})
    if rule == "skew":
        r = _max_ratio(fa)
        return r >= 8, f"largest task / group median = {r}"
    if rule == "tiny-partitions":
        return (fa["stream_tasks"] >= 1000 and fa["median_task_ms"] < 5,
                f"{fa['stream_tasks']} tasks, median {fa['median_task_ms']} ms")
    if rule == "oversized-argument":
        m = fa.get("plugin_max_inline_bytes", 0)
        return m >= 2**20, f"max inline {m / 2**20:.1f} MiB"
    if rule == "idle-gaps":
        return fa["idle_share_of_span"] >= 0.6, f"idle {fa['idle_share_of_span']:.0%} of span"
    if rule == "memory-pressure":
        spilled = max((v["peak_spilled_mib"] for v in mem.values()), default=0)
        killed = ev.get("worker-killed", 0)
        return spilled > 50 or killed > 0, f"spilled {spilled} MiB, {killed} workers killed"
    if rule == "recomputation":
        return fa["repeated_keys"] > 0, f"{fa['repeated_keys']} keys computed more than once"
    if rule == "communication":
        share = (fa["transfer_s"] + p2p) / comp
        return share >= 0.25, f"(transfer + P2P tasks) / compute = {share:.2f}"
    if rule == "straggler-worker":
        return (len(busy) >= 2 and busy[-1] >= 0.85 and busy[0] <= 0.5,
                f"busy shares {busy}")
    if rule == "gil-contention":
        sc = solo_vs_concurrent_from(root, fa["scenario"])
        return bool(sc and sc["ratio"] >= 1.5), f"solo vs concurrent {sc}"
    if rule == "task-failures":
        st = fa.get("plugin_status", {})
        return st.get("error", 0) > 0, f"plugin attempts {st}, retried {fa.get('plugin_retried_attempts')}"
    if rule == "unmanaged-memory":
        um = [(v["peak_unmanaged_mib"], v["peak_managed_mib"], v["peak_process_share_of_limit"])
              for v in mem.values()]
        ok = any(s >= 0.6 and m < 50 for _, m, s in um)
        return ok, f"(unmanaged MiB, managed MiB, process share) {um}"
    if rule == "threads-per-worker":
        shares = cpu_share(os.path.join(root, fa["scenario"], "plugin.ndjson.zst"))
        threads = {v["threads_seen"] for v in w.values()}
        big = {g: c for g, c in shares.items() if g}
        return (threads == {1} and bool(big) and min(big.values()) < 0.2,
                f"threads {threads}, CPU share by group {big}")
    if rule == "serialization":
        t = fa["transfer_s"]
        return t >= 1.0 and t >= comp, f"transfer {t} s vs compute {comp} s"
    if rule == "healthy":
        r = _max_ratio(fa)
        problems = []
        if fa["idle_share_of_span"] > 0.35:
            problems.append(f"idle {fa['idle_share_of_span']:.0%}")
        if fa["repeated_keys"]:
            problems.append(f"{fa['repeated_keys']} repeated keys")
        if fa.get("plugin_status", {}).get("error"):
            problems.append("errors")
        if r >= 8:
            problems.append(f"skew {r}")
        if fa["median_task_ms"] < 5 and fa["stream_tasks"] >= 1000:
            problems.append("tiny tasks")
        return not problems, ", ".join(problems) or (
            f"idle {fa['idle_share_of_span']:.0%}, median task {fa['median_task_ms']} ms")
    return False, f"no check for {rule}"


def solo_vs_concurrent_from(root: str, name: str):
    import zstandard

    with open(os.path.join(root, name, "stream.json.zst"), "rb") as f:
        records = json.loads(zstandard.ZstdDecompressor().stream_reader(f).read())
    return solo_vs_concurrent(records)


def measure(trace_path: str, records: list[dict]) -> dict:
    out = stream_evidence(records)
    try:
        out.update(plugin_evidence(trace_path))
    except Exception as e:  # keep the recording; say what failed
        out["plugin_evidence_error"] = repr(e)
    return out


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    checking = "--check" in argv
    argv = [a for a in argv if a != "--check"]
    root = argv[1] if len(argv) > 1 else os.path.join(here, "..", "..", "..", "analyzer",
                                                       "tests", "corpus")
    names = argv[2:] or sorted(os.listdir(root))
    if checking:
        bad = 0
        for name in names:
            facts = os.path.join(root, name, "facts.json")
            if not os.path.exists(facts):
                continue
            with open(facts) as f:
                fa = json.load(f)
            ok, why = check(fa, root)
            bad += not ok
            print(f"{'ok ' if ok else 'BAD'} {name:26} {fa['expected']['plugin']:19} {why}")
        return 1 if bad else 0
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
    sys.exit(main(sys.argv))
