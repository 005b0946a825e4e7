"""The trace writer on its own: the header line, batched flushes, zstd."""
from __future__ import annotations

import json

import pytest

from conftest import info

from taskscope_dask.tracefile import TraceFile, encode

HEADER = {
    "kind": "header",
    "format": "taskscope-trace",
    "version": "1.0",
    "producer": "test",
    "origin_unix_ns": 1_700_000_000_000_000_000,
    "cluster": {
        "workers": [{"id": 0, "name": "tcp://127.0.0.1:1", "threads": 1}],
        "memory": {"target": 0.6, "spill": 0.7, "pause": 0.8, "terminate": 0.95},
    },
}


def task(i: int) -> dict:
    return {
        "kind": "task",
        "key": ("x-1f2e", i),
        "group": "x",
        "worker": 0,
        "thread": 0,
        "status": "ok",
        "nbytes": 8,
        "phases": [{"action": "compute", "start": i * 10, "stop": i * 10 + 5}],
    }


def test_lines_are_compact_and_kind_first():
    line = encode(task(3))
    assert line.startswith('{"kind":"task",')  # the reader's fast path
    assert json.loads(line)["key"] == ["x-1f2e", 3]
    assert encode({"kind": "task", "key": b"bytes-key"}) == '{"kind":"task","key":"bytes-key"}'


def test_records_reach_the_file_in_batches(tmp_path):
    path = tmp_path / "run.ndjson"
    trace = TraceFile(str(path), HEADER, flush_lines=10)
    assert path.read_text().count("\n") == 1  # the header at once
    for i in range(9):
        trace.write(task(i))
    assert path.read_text().count("\n") == 1
    trace.write(task(9))  # the 10th line flushes
    assert path.read_text().count("\n") == 11
    trace.write(task(10))
    trace.flush()
    assert info(path)["tasks"]["records"] == 11  # readable while being written
    trace.close()
    assert path.read_text().endswith("\n")


def test_zstd(tmp_path):
    pytest.importorskip("zstandard")
    path = tmp_path / "run.ndjson.zst"
    trace = TraceFile(str(path), HEADER)
    for i in range(100):
        trace.write(task(i))
    trace.flush()
    assert info(path)["tasks"]["records"] == 100  # each flush ends a zstd block
    for i in range(100, 150):
        trace.write(task(i))
    trace.close()
    assert info(path)["tasks"]["records"] == 150
