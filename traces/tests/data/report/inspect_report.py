#!/usr/bin/env python3
"""Extract the task-stream columns from a Dask performance report (bokeh 3.x).

Mirrors what a Rust parser has to do (see FORMAT.md):

1. find ``<script type="application/json" id="...">`` and take its text;
2. undo bokeh's HTML escaping (``&lt;`` ``&gt;`` ``&amp;`` only);
3. ``json.loads`` -> ``{<docid>: {"version", "title", "config", "roots"}}``;
4. walk everything, find the ``{"type":"object","name":"ColumnDataSource"}``
   whose ``attributes.data`` map has the task-stream column names;
5. decode each column (plain JSON list; ndarray/number reps handled too).

With a task_stream.json next to it, also cross-checks each report row
against the flattened (record, startstop) pairs and prints the facts quoted
in FORMAT.md.

Usage:
    python inspect_report.py [REPORT_HTML [TASK_STREAM_JSON]]

Defaults: report.html and task_stream.json next to this script.
Standard library only.
"""
import base64
import collections
import json
import os
import re
import struct
import sys

TASK_STREAM_COLUMNS = {
    "start", "duration", "key", "name", "color", "duration_text",
    "worker", "y", "worker_thread", "alpha",
}

SCRIPT_RE = re.compile(
    r'<script type="application/json" id="([^"]*)">(.*?)</script>', re.S
)

# distributed.diagnostics.task_stream.prefix, inverted
PREFIX_TO_ACTION = [
    ("transfer-", "transfer"),
    ("disk-write-", "disk-write"),
    ("disk-read-", "disk-read"),
    ("deserialize-", "deserialize"),
]


def html_unescape_bokeh(text):
    # bokeh: html.escape(serialize_json(docs_json), quote=False), i.e. only
    # & -> &amp;, < -> &lt;, > -> &gt;.  Undo in reverse order (&amp; last).
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def load_docs_json(html_text):
    m = SCRIPT_RE.search(html_text)
    if m is None:
        raise ValueError("no <script type=\"application/json\"> tag found")
    return m.group(1), json.loads(html_unescape_bokeh(m.group(2)))


def map_entries(data):
    """bokeh 3 MapRep {"type":"map","entries":[[k,v],...]} (or a plain dict)."""
    if isinstance(data, dict) and data.get("type") == "map":
        return [tuple(e) for e in data.get("entries", [])]
    if isinstance(data, dict):
        return list(data.items())
    raise TypeError(f"unexpected data encoding: {type(data)}")


def decode_value(v):
    if isinstance(v, dict):
        t = v.get("type")
        if t == "number":  # NaN / +-inf
            return {"nan": float("nan"), "+inf": float("inf"), "-inf": float("-inf")}.get(
                v["value"], v["value"]
            )
        if t == "ndarray":
            return decode_ndarray(v)
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


def decode_ndarray(v):
    arr = v["array"]
    if isinstance(arr, list):
        return [decode_value(x) for x in arr]
    if isinstance(arr, dict) and arr.get("type") == "bytes":
        raw = base64.b64decode(arr["data"])
        fmt = {
            "float64": "d", "float32": "f", "int32": "i", "uint32": "I",
            "int16": "h", "uint16": "H", "int8": "b", "uint8": "B", "bool": "?",
        }[v["dtype"]]
        endian = "<" if v.get("order", "little") == "little" else ">"
        n = len(raw) // struct.calcsize(fmt)
        return list(struct.unpack(f"{endian}{n}{fmt}", raw))
    raise TypeError(f"unexpected ndarray payload: {arr!r:.80}")


def walk(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from walk(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, path + (i,))


def find_task_stream_source(docs):
    found = []
    for path, o in walk(docs):
        if o.get("type") == "object" and o.get("name") == "ColumnDataSource":
            data = o.get("attributes", {}).get("data")
            if data is None:
                continue
            cols = {k for k, _ in map_entries(data)}
            if {"start", "duration", "key", "name", "worker_thread"} <= cols:
                found.append((path, o))
    if len(found) != 1:
        raise ValueError(f"expected exactly one task-stream source, found {len(found)}")
    return found[0]


def extract(html_path):
    with open(html_path, encoding="utf-8") as f:
        html_text = f.read()
    script_id, docs = load_docs_json(html_text)
    path, cds = find_task_stream_source(docs)
    cols = {k: decode_value(v) for k, v in map_entries(cds["attributes"]["data"])}
    return script_id, docs, path, cds, cols


def split_name(name):
    for pre, action in PREFIX_TO_ACTION:
        if name.startswith(pre):
            return action, name[len(pre):]
    return "compute", name


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    html_path = argv[1] if len(argv) > 1 else os.path.join(here, "report.html")
    ts_path = argv[2] if len(argv) > 2 else os.path.join(here, "task_stream.json")

    script_id, docs, path, cds, cols = extract(html_path)
    n = len(cols["start"])
    (docid, doc), = docs.items()
    print(f"script id: {script_id}")
    print(f"docid: {docid}  bokeh version: {doc['version']}")
    print("JSON path to source:", "".join(f"[{p!r}]" for p in (docid,) + path))
    print(f"source id: {cds['id']}")
    print("columns (in order):", [k for k, _ in map_entries(cds["attributes"]["data"])])
    for k, v in cols.items():
        assert len(v) == n, (k, len(v), n)
    print(f"task-stream rows in report: {n}")

    names = collections.Counter(cols["name"])
    print("rows per name:")
    for name, c in sorted(names.items()):
        print(f"  {name}: {c}")
    print("rows per worker:", dict(sorted(collections.Counter(cols["worker"]).items())))
    print("rows per worker_thread / y:",
          dict(sorted(collections.Counter(zip(cols["worker_thread"], cols["y"])).items())))
    print("distinct alpha:", sorted(set(cols["alpha"])),
          " distinct color:", sorted(set(cols["color"])))
    print(f"min start: {min(cols['start'])!r}  max start: {max(cols['start'])!r}")
    print(f"sum duration (ms): {sum(cols['duration'])!r}")

    if not os.path.exists(ts_path):
        return
    with open(ts_path) as f:
        records = json.load(f)
    print(f"records in task_stream.json: {len(records)}")
    flat = [(i, r, ss) for i, r in enumerate(records) for ss in r["startstops"]]
    print(f"startstops in task_stream.json: {len(flat)}")
    print("startstop actions:", dict(collections.Counter(ss["action"] for _, _, ss in flat)))

    # Row i of the report <-> i-th (record, startstop) pair, in order.
    assert len(flat) == n, (len(flat), n)
    max_start_err = max_dur_err = 0.0
    for row, (i, r, ss) in enumerate(flat):
        action, group = split_name(cols["name"][row])
        assert cols["key"][row] == r["key"], row
        assert cols["worker"][row] == r["worker"], row
        assert cols["worker_thread"][row] == f"{r['worker']}-{r['thread']}", row
        assert action == ss["action"], row
        mid_ms = (ss["start"] + ss["stop"]) / 2 * 1000
        dur_ms = (ss["stop"] - ss["start"]) * 1000
        max_start_err = max(max_start_err, abs(cols["start"][row] - mid_ms))
        max_dur_err = max(max_dur_err, abs(cols["duration"][row] - dur_ms))
    print("every row matches flattened (record, startstop) in order: yes")
    print(f"max |start - (ss.start+ss.stop)/2*1000| = {max_start_err!r} ms")
    print(f"max |duration - (ss.stop-ss.start)*1000| = {max_dur_err!r} ms")

    # Example rows: first row, first transfer row and the compute row of the
    # same record right after it, last row.
    first_transfer = next(k for k, (_, _, ss) in enumerate(flat) if ss["action"] == "transfer")
    for row in (0, first_transfer, first_transfer + 1, n - 1):
        i, r, ss = flat[row]
        print(f"--- report row {row} (task_stream.json record {i}) ---")
        for c in ("key", "name", "worker", "worker_thread", "y", "alpha", "color",
                  "start", "duration", "duration_text"):
            print(f"  {c}: {json.dumps(cols[c][row])}")
        print(f"  record startstops: {json.dumps(r['startstops'])}")
        print(f"  matched startstop: {json.dumps(ss)}")
        print(f"  (start+stop)/2*1000 = {(ss['start'] + ss['stop']) / 2 * 1000!r}")
        print(f"  (stop-start)*1000   = {(ss['stop'] - ss['start']) * 1000!r}")


if __name__ == "__main__":
    main(sys.argv)
