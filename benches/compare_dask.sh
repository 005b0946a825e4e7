#!/usr/bin/env bash
# Scheduling overhead per no-op task: taskscope's built-in engine vs a real Dask LocalCluster,
# both on 2 workers x 1 thread, same graph shapes, same run. See benches/README.md.
#
# Usage: bash benches/compare_dask.sh          (from any directory)
# Environment: TASKS (default 50000), PYTHON (interpreter for the venv, default python3).
set -euo pipefail

BENCHES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCHES/.." && pwd)"
VENV="$BENCHES/.venv"
TASKS="${TASKS:-50000}"
PYTHON="${PYTHON:-python3}"

# (a) A venv with Dask, created once.
if ! "$VENV/bin/python" -c 'import dask, distributed' 2>/dev/null; then
    echo "==> creating $VENV and installing dask[distributed]" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet 'dask[distributed]'
fi

# (b) The taskscope binary.
echo "==> cargo build --release" >&2
(cd "$REPO" && cargo build --release --quiet)
TASKSCOPE="${CARGO_TARGET_DIR:-$REPO/target}/release/taskscope"
case "$TASKSCOPE" in /*) ;; *) TASKSCOPE="$REPO/$TASKSCOPE" ;; esac

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (before the run)"
echo

# (c) taskscope.
echo "==> $TASKSCOPE bench engine --tasks $TASKS"
"$TASKSCOPE" bench engine --tasks "$TASKS" | tee "$OUT/taskscope.txt"
echo

# (d) Dask.
echo "==> $VENV/bin/python benches/dask_overhead.py --tasks $TASKS"
"$VENV/bin/python" "$BENCHES/dask_overhead.py" --tasks "$TASKS" | tee "$OUT/dask.jsonl"
echo

# (e) The comparison.
"$VENV/bin/python" - "$OUT/taskscope.txt" "$OUT/dask.jsonl" <<'PY'
import json
import re
import sys

taskscope_path, dask_path = sys.argv[1:]


def parse_taskscope(text):
    """{(shape, recording): (tasks, us_per_task)} from `taskscope bench engine`'s table.

    Columns are located by the header: a row's value is the token overlapping the header
    label's span (the table is aligned), so added or reordered columns do not break this.
    Falls back to the current column order if no header is found.
    """
    lines = text.splitlines()
    header = next(
        (l for l in lines if re.search(r"\bshape\b", l) and "us/task" in l and "recording" in l),
        None,
    )
    rows = {}
    for line in lines:
        if not re.match(r"\s*(map|tree)\s", line):
            continue
        if header is not None:
            tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", line)]

            def column(label):
                start = header.index(label)
                end = start + len(label)
                hits = [t for s, e, t in tokens if s < end and e > start]
                if len(hits) != 1:
                    raise ValueError(f"column {label!r} is ambiguous in: {line!r}")
                return hits[0]

            shape, tasks = tokens[0][2], column("tasks")
            recording, us = column("recording"), column("us/task")
        else:
            m = re.match(r"\s*(map|tree)\s+([\d,]+)\s+(off|on)\s+[\d.]+\s*s\s+([\d.]+)", line)
            if not m:
                continue
            shape, tasks, recording, us = m.groups()
        rows[(shape, recording)] = (int(tasks.replace(",", "").replace("_", "")), float(us))
    return rows


with open(taskscope_path) as f:
    taskscope_text = f.read()
try:
    ts = parse_taskscope(taskscope_text)
except ValueError as err:
    sys.exit(f"cannot read the taskscope table: {err}")
dask = {}
with open(dask_path) as f:
    for line in f:
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            dask[row["shape"]] = (row["tasks"], row["us_per_task"])

shapes = [s for s in ("map", "tree") if (s, "off") in ts and s in dask]
if not shapes:
    sys.exit("no shape measured by both engines; see the outputs above")

print("comparison: us per no-op task, submit to results, 2 workers x 1 thread")
print(
    f"{'shape':<6}  {'tasks':>7}  {'taskscope off':>13}  {'taskscope on':>12}  "
    f"{'dask':>9}  {'dask/taskscope':>14}  {'dask/taskscope(on)':>18}"
)
for shape in shapes:
    tasks, off = ts[(shape, "off")]
    on = ts.get((shape, "on"), (tasks, float("nan")))[1]
    dask_tasks, dask_us = dask[shape]
    if dask_tasks != tasks:
        print(f"warning: {shape}: taskscope ran {tasks} tasks, dask {dask_tasks}", file=sys.stderr)
    print(
        f"{shape:<6}  {tasks:>7}  {off:>13.3f}  {on:>12.3f}  {dask_us:>9.1f}  "
        f"{dask_us / off:>13.0f}x  {dask_us / on:>17.0f}x"
    )
PY
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) (after the run; above $(nproc) means other processes shared the CPUs)"
