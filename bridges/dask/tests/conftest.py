"""Shared helpers: the taskscope binary, and Dask clusters recorded by the plugin."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def taskscope_bin() -> str:
    """``$TASKSCOPE_BIN``, else ``taskscope`` on PATH."""
    found = os.environ.get("TASKSCOPE_BIN") or shutil.which("taskscope")
    if not found or not (os.path.exists(found) or shutil.which(found)):
        pytest.fail(
            "the taskscope binary is needed: set TASKSCOPE_BIN=/path/to/taskscope "
            "(cargo build; target/debug/taskscope) or put taskscope on PATH"
        )
    return found


def taskscope(*args: str) -> str:
    """Runs ``taskscope ARGS`` and returns its stdout; fails the test on a non-zero exit."""
    proc = subprocess.run(
        [taskscope_bin(), *map(str, args)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        pytest.fail(
            f"taskscope {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}"
        )
    return proc.stdout


def analyze(path) -> dict:
    return json.loads(taskscope("analyze", path, "--format", "json"))


def info(path) -> dict:
    return json.loads(taskscope("info", path, "--format", "json"))


def read_trace(path) -> tuple[dict, list[dict]]:
    """The header and the records of a plain native trace."""
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[0], lines[1:]


@contextlib.contextmanager
def cluster(n_workers=2, threads=1, memory_limit="2GiB", processes=True, **kwargs):
    """A LocalCluster like the analyzer's fixtures (2 process workers × 1 thread) and a client."""
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Port 8787 is already in use", large graphs
        with LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=processes,
            dashboard_address=":0",
            memory_limit=memory_limit,
            **kwargs,
        ) as c, Client(c) as client:
            if n_workers:
                client.wait_for_workers(n_workers)
            yield c, client
