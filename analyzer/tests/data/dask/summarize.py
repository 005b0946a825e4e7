#!/usr/bin/env python3
"""Compute the facts quoted in README.md from the saved fixture JSON files.

Usage:
    python summarize.py [NAME.json ...]     (default: every *.json here)

Prints Markdown: one section per fixture with
  * number of records, distinct keys, keys appearing more than once;
  * total span (min start .. max stop over all startstops);
  * cluster-idle time: the sum of gaps inside the span not covered by the
    union of all startstops intervals (any action, any worker);
  * phases counted by action, with total seconds, and how many transfer
    phases carry a ``source``;
  * per group (dask.utils.key_split of the key; list keys -> tuples): task
    count, max and median compute duration (sum of the record's ``compute``
    phases).
"""
import glob
import json
import os
import statistics
import sys
from collections import Counter, defaultdict

from dask.utils import key_split

HERE = os.path.dirname(os.path.abspath(__file__))


def to_key(k):
    return tuple(to_key(x) for x in k) if isinstance(k, list) else k


def union_gaps(intervals):
    """Return (covered, gaps) seconds of the union of [start, stop] intervals
    between the earliest start and latest stop."""
    intervals = sorted(intervals)
    covered = gaps = 0.0
    cur_s, cur_e = intervals[0]
    for s, e in intervals[1:]:
        if s > cur_e:
            covered += cur_e - cur_s
            gaps += s - cur_e
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    covered += cur_e - cur_s
    return covered, gaps


def ms(x):
    return f"{x * 1e3:.2f}"


def summarize(path):
    with open(path) as f:
        recs = json.load(f)
    name = os.path.basename(path)
    keys = Counter(to_key(r["key"]) for r in recs)
    dup_keys = sum(1 for c in keys.values() if c > 1)

    phases = Counter()
    phase_secs = Counter()
    transfer_with_source = 0
    intervals = []
    groups = defaultdict(list)
    workers = set()
    for r in recs:
        workers.add(r["worker"])
        comp = 0.0
        for ss in r["startstops"]:
            a = ss["action"]
            phases[a] += 1
            phase_secs[a] += ss["stop"] - ss["start"]
            intervals.append((ss["start"], ss["stop"]))
            if a == "compute":
                comp += ss["stop"] - ss["start"]
            if a == "transfer" and ss.get("source"):
                transfer_with_source += 1
        groups[key_split(to_key(r["key"]))].append(comp)

    start = min(s for s, _ in intervals)
    stop = max(e for _, e in intervals)
    covered, idle = union_gaps(intervals)

    out = [f"### `{name}`", ""]
    out.append("| fact | value |")
    out.append("|---|---|")
    out.append(f"| records | {len(recs)} |")
    out.append(f"| distinct keys | {len(keys)} |")
    out.append(f"| keys appearing more than once | {dup_keys} |")
    out.append(f"| workers | {len(workers)} |")
    out.append(f"| total span (first start .. last stop) | {stop - start:.3f} s |")
    out.append(f"| cluster idle (gaps in union of all startstops) | {idle:.3f} s "
               f"({100 * idle / (stop - start):.1f}% of span) |")
    out.append(f"| busy (union of all startstops) | {covered:.3f} s |")
    for a in sorted(phases):
        extra = ""
        if a == "transfer":
            extra = f", {transfer_with_source} with `source`"
        out.append(f"| `{a}` phases | {phases[a]} ({phase_secs[a]:.3f} s total{extra}) |")
    out.append("")
    out.append("| group (key_split) | tasks | max compute (ms) | median compute (ms) |")
    out.append("|---|---:|---:|---:|")
    for g, durs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"| `{g}` | {len(durs)} | {ms(max(durs))} | {ms(statistics.median(durs))} |")
    out.append("")
    return "\n".join(out)


def main(argv):
    paths = argv[1:] or sorted(glob.glob(os.path.join(HERE, "*.json")))
    print("\n".join(summarize(p) for p in paths))


if __name__ == "__main__":
    main(sys.argv)
