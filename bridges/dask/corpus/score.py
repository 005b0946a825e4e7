#!/usr/bin/env python3
"""Scores taskscope's analyzer on the recorded corpus, for humans (a Rust test does the real
scoring from the same expected.toml files).

    python score.py [--corpus DIR] [--bin PATH] [SCENARIO ...]

For every fixture and format (plugin, stream, report) it runs ``taskscope analyze FILE --format
json`` and prints the top finding of severity moderate or worse (rule, severity) and whether it
matches expected.toml:

* expected a rule id: ✓ when the top moderate-or-worse finding has that rule (other findings
  below it are allowed);
* expected "healthy" or "quiet": ✓ when no finding is moderate or worse.

Columns show ``rule/severity`` of the top finding (``-`` when nothing is moderate or worse), then
✓ or ✗, and, after a ✗, what was expected. Exit code 0 always (for humans); ``--strict`` makes a
mismatch exit 1.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FILES = {"plugin": "plugin.ndjson.zst", "stream": "stream.json.zst", "report": "report.html.zst"}
SEVERITIES = ["none", "low", "moderate", "severe", "critical"]
SHORT = {"moderate": "mod", "severe": "sev", "critical": "crit", "low": "low", "none": "none"}


def find_bin(given: str | None) -> str:
    for cand in (given, os.environ.get("TASKSCOPE_BIN"),
                 os.path.join(REPO, "target", "debug", "taskscope"), shutil.which("taskscope")):
        if cand and os.path.exists(cand):
            return cand
    sys.exit("taskscope binary not found: cargo build --bin taskscope, or pass --bin")


def analyze(binary: str, path: str):
    proc = subprocess.run([binary, "analyze", path, "--format", "json"], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode not in (0, 3):
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return json.loads(proc.stdout), None


def top_finding(result: dict):
    """The highest-impact finding of severity moderate or worse (findings come ranked)."""
    for f in result.get("findings", []):
        if SEVERITIES.index(f.get("severity", "none")) >= SEVERITIES.index("moderate"):
            return f
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=os.path.join(REPO, "analyzer", "tests", "corpus"))
    p.add_argument("--bin", default=None)
    p.add_argument("--strict", action="store_true")
    p.add_argument("names", nargs="*")
    args = p.parse_args(argv)
    binary = find_bin(args.bin)
    names = args.names or sorted(
        d for d in os.listdir(args.corpus)
        if os.path.exists(os.path.join(args.corpus, d, "expected.toml"))
    )
    width = max(len(n) for n in names) + 2
    col = 34
    print("scenario".ljust(width) + "expect".ljust(20)
          + "".join(fmt.ljust(col) for fmt in FILES))
    ok = total = 0
    per_format = {fmt: [0, 0] for fmt in FILES}
    for name in names:
        with open(os.path.join(args.corpus, name, "expected.toml"), "rb") as f:
            exp = tomllib.load(f)
        cells = []
        for fmt, file in FILES.items():
            want = exp.get("formats", {}).get(fmt, exp["expect"])
            path = os.path.join(args.corpus, name, file)
            if not os.path.exists(path):
                cells.append("(missing)")
                continue
            result, err = analyze(binary, path)
            total += 1
            per_format[fmt][1] += 1
            if result is None:
                cells.append(f"ERROR {err[:col - 7]}")
                continue
            top = top_finding(result)
            shown = f"{top['rule']}/{SHORT.get(top['severity'], top['severity'])}" if top else "-"
            if want in ("healthy", "quiet"):
                good = top is None
            else:
                good = top is not None and top["rule"] == want
            ok += good
            per_format[fmt][0] += good
            cells.append(f"{shown} {'✓' if good else '✗ want ' + want}")
        print(name.ljust(width) + exp["expect"][:19].ljust(20)
              + "".join(c[: col - 1].ljust(col) for c in cells))
    print()
    print(f"{ok}/{total} judgements right; " + ", ".join(
        f"{fmt} {a}/{b}" for fmt, (a, b) in per_format.items()))
    return 1 if args.strict and ok != total else 0


if __name__ == "__main__":
    sys.exit(main())
