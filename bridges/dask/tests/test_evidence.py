"""Format 1.1 evidence: worker CPU, Dask's fine performance metrics per group, Dask's own
warnings (scheduler and workers), and the real exception of retried attempts."""
from __future__ import annotations

import json
import time

import psutil

from conftest import cluster, info, read_trace

from taskscope_dask import TaskscopePlugin

# Memory a worker leaks on purpose (test_worker_warnings): module-level, so it outlives the task.
LEAK: list[bytes] = []


def busy(cpu_seconds):
    """A pure-Python loop until this thread has used ``cpu_seconds`` of CPU: one core busy, for
    longer on a loaded machine. Returns (CPU seconds used, wall seconds taken), as measured
    here, to hold the recorded figures against."""
    t0, c0 = time.perf_counter(), time.thread_time()
    n = 0
    while time.thread_time() - c0 < cpu_seconds:
        for _ in range(10_000):
            n += 1
    return time.thread_time() - c0, time.perf_counter() - t0


def sleepy(seconds):
    time.sleep(seconds)
    return seconds


def needs_module(x):
    import taskscope_no_such_module  # noqa: F401

    return x


def leak(fraction, limit):
    """Grows the worker's unmanaged memory to ``fraction`` of ``limit``, then holds it."""
    proc = psutil.Process()
    while proc.memory_info().rss < fraction * limit:
        LEAK.append(b"\x01" * (4 << 20))
    time.sleep(3)
    return len(LEAK)


def leak_until(marker):
    """Leaks memory until the nanny kills the worker, unless ``marker`` exists."""
    import os

    while not os.path.exists(marker):
        LEAK.append(b"\x01" * (8 << 20))
        time.sleep(0.01)
    return len(LEAK)


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def records_so_far(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out[1:]


def compute_seconds(tasks, group):
    return sum(
        (p["stop"] - p["start"]) / 1e9
        for t in tasks
        if t["group"] == group
        for p in t["phases"]
        if p["action"] == "compute"
    )


def test_cpu_and_group_metrics(tmp_path):
    path = tmp_path / "run.ndjson"
    with cluster(n_workers=1) as (_, client):
        # Work done before the plugin starts is not the trace's.
        assert client.submit(busy, 0.5, pure=False).result()[0] >= 0.5
        assert client.submit(sleepy, 0.2, pure=False).result() == 0.2

        def seen(dask_scheduler):
            m = dask_scheduler.cumulative_worker_metrics
            return all(
                m.get(("execute", g, "thread-noncpu", "seconds"), 0) > 0
                for g in ("busy", "sleepy")
            )

        wait_for(lambda: client.run_on_scheduler(seen), what="the first heartbeat's metrics")
        client.register_plugin(TaskscopePlugin(path=str(path), interval=0.1))
        own_cpu, own_wall = client.submit(busy, 1.5, pure=False).result()
        assert client.submit(sleepy, 2.5, pure=False).result() == 2.5
    header, records = read_trace(path)
    assert header["version"] == "1.3"
    tasks = [r for r in records if r["kind"] == "task"]
    assert sorted(t["group"] for t in tasks) == ["busy", "sleepy"]

    def window(group):
        (t,) = [t for t in tasks if t["group"] == group]
        (p,) = [p for p in t["phases"] if p["action"] == "compute"]
        return p["start"], p["stop"]

    memory = [r for r in records if r["kind"] == "memory"]
    assert memory and all("cpu" in m for m in memory)
    # The heartbeat's CPU figure is psutil's over the previous system-monitor interval
    # (0.5 s), up to a heartbeat (0.5 s) late: look at the samples from 0.8 s in to 0.6 s after.
    # Above 0.5 cores — or, on a machine so loaded that the loop itself got less than that,
    # most of what it got.
    b0, b1 = window("busy")
    busy_cpu = [m["cpu"] for m in memory if b0 + 0.8e9 <= m["time"] <= b1 + 0.6e9]
    got = own_cpu / own_wall
    assert busy_cpu and max(busy_cpu) > min(0.5, 0.7 * got), (busy_cpu, got)
    s0, s1 = window("sleepy")
    sleep_cpu = [m["cpu"] for m in memory if s0 + 1.2e9 <= m["time"] <= s1]
    assert sleep_cpu and min(sleep_cpu) < 0.2, sleep_cpu

    metrics = {}
    for r in records:
        if r["kind"] == "group-metrics":
            assert isinstance(r["time"], int) and isinstance(r["metrics"], dict)
            metrics[r["group"]] = r["metrics"]  # a later record supersedes an earlier one
    busy_m, sleepy_m = metrics["busy"], metrics["sleepy"]
    busy_s, sleepy_s = compute_seconds(tasks, "busy"), compute_seconds(tasks, "sleepy")
    cpu = busy_m["execute/thread-cpu/seconds"]
    noncpu = busy_m["execute/thread-noncpu/seconds"]
    # The busy loop's CPU time as it measured it itself (all of its compute time on an idle
    # machine), not counting the 0.5 s done before the plugin started; CPU and non-CPU time
    # add up to the compute phase.
    assert 0.9 * own_cpu - 0.05 < cpu < 1.1 * own_cpu + 0.05, (cpu, own_cpu, busy_m)
    assert abs(cpu + noncpu - busy_s) < 0.1 * busy_s + 0.05, (busy_s, busy_m)
    noncpu = sleepy_m["execute/thread-noncpu/seconds"]
    assert 0.8 * sleepy_s < noncpu <= sleepy_s + 0.1, (noncpu, sleepy_s, sleepy_m)
    assert sleepy_m.get("execute/thread-cpu/seconds", 0) < 0.2 * sleepy_s
    assert all(name.startswith("execute/") for name in busy_m)
    summary = info(path)
    assert summary["tasks"]["ok"] == 2


def test_worker_and_scheduler_warnings(tmp_path):
    path = tmp_path / "run.ndjson"
    limit = 400 * 2**20
    with cluster(n_workers=1, memory_limit=limit) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path), interval=0.1))
        (address,) = client.scheduler_info()["workers"]
        # A scheduler-side warning: a key resubmitted with other dependencies while the
        # scheduler still holds the first ("Detected different `run_spec`").
        held = client.submit(sleepy, 0.01, key="taskscope-dup")
        held.result(timeout=60)
        other = client.get(
            {
                "first": (sleepy, 0.01),
                "taskscope-dup": (sleepy, "first"),
                "other": (sleepy, "taskscope-dup"),
            },
            "other", sync=False,
        )
        wait_for(
            lambda: any(
                r["kind"] == "event" and r["type"] == "warning"
                and r.get("source") == "distributed.scheduler"
                for r in records_so_far(path)
            ),
            what="the scheduler's warning",
        )
        del other
        # Past spill (0.7: nothing managed to spill, so "Unmanaged memory use is high") and
        # pause (0.8), short of terminate (0.95). The worker stays paused afterwards.
        future = client.submit(leak, 0.86, limit, pure=False)

        def from_worker():
            return [
                r for r in records_so_far(path)
                if r["kind"] == "event" and r["type"] == "warning" and "worker" in r
            ]

        wait_for(
            lambda: {r["source"] for r in from_worker()} >= {"distributed.worker.memory"}
            and any("Pausing worker" in r["message"] for r in from_worker()),
            what="the worker's memory warnings",
        )
        del future
    header, records = read_trace(path)
    ids = {w["name"]: w["id"] for w in header["cluster"]["workers"]}
    warnings = [r for r in records if r["kind"] == "event" and r["type"] == "warning"]
    worker_side = [w for w in warnings if "worker" in w]
    assert worker_side and all(w["worker"] == ids[address] for w in worker_side)
    assert all(w["source"].startswith("distributed.") for w in worker_side)
    unmanaged = [w for w in worker_side if "Unmanaged memory use is high" in w["message"]]
    assert unmanaged, worker_side
    assert any("Pausing worker" in w["message"] for w in worker_side)
    scheduler_side = [w for w in warnings if w.get("source") == "distributed.scheduler"]
    assert any("run_spec" in w["message"] for w in scheduler_side), scheduler_side
    assert not any(w.get("source", "").startswith("distributed.taskscope") for w in warnings)
    info(path)  # readable


def test_nanny_memory_kill_is_a_warning_of_the_worker(tmp_path):
    """A worker past the terminate fraction is killed by its nanny: one warning, from
    ``distributed.nanny.memory``, with the killed worker's id (the LocalCluster's nanny logs in
    the scheduler's process and also sends a ``worker-restart-memory`` event: counted once)."""
    path = tmp_path / "run.ndjson"
    marker = tmp_path / "stop"
    with cluster(n_workers=1, memory_limit=300 * 2**20) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path), interval=0.1))
        (address,) = client.scheduler_info()["workers"]
        future = client.submit(leak_until, str(marker), pure=False)

        def kills():
            return [
                r for r in records_so_far(path)
                if r["kind"] == "event" and r["type"] == "warning"
                and r.get("source") == "distributed.nanny.memory"
            ]

        wait_for(kills, what="the nanny's warning")
        marker.write_text("stop")
        wait_for(
            lambda: any(r["kind"] == "event" and r["type"] == "worker-killed"
                        for r in records_so_far(path)),
            what="the worker's death",
        )
        time.sleep(0.5)  # the nanny's event follows its log record
        del future
    header, records = read_trace(path)
    ids = {w["name"]: w["id"] for w in header["cluster"]["workers"]}
    nanny = [r for r in records if r["kind"] == "event" and r["type"] == "warning"
             and r.get("source") == "distributed.nanny.memory"]
    first = [w for w in nanny if w.get("worker") == ids[address]]
    assert len(first) == 1, nanny
    assert "exceeded 95% memory budget" in first[0]["message"]
    killed = [r for r in records if r["kind"] == "event" and r["type"] == "worker-killed"]
    assert killed[0]["worker"] == ids[address]


def test_retried_attempts_carry_their_exception(tmp_path):
    path = tmp_path / "run.ndjson"
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path)))
        future = client.submit(needs_module, 1, retries=2)
        assert isinstance(future.exception(), ModuleNotFoundError)
        key = future.key
    _, records = read_trace(path)
    attempts = [r for r in records if r["kind"] == "task" and r["key"] == key]
    assert [(a["status"], a.get("attempt", 1)) for a in attempts] == [
        ("error", 1), ("error", 2), ("error", 3)
    ]
    for a in attempts:
        first = a["error"].splitlines()[0]
        assert first.startswith("ModuleNotFoundError"), a["error"]
        assert "No module named 'taskscope_no_such_module'" in first
        # The worker's report of a retried attempt carries its phases too.
        assert any(p["action"] == "compute" for p in a["phases"]), a
    assert info(path)["tasks"]["error"] == 3


def test_scheduler_warnings_deduped_and_capped(tmp_path):
    """Records logged from another thread than the scheduler's loop (here, the test's) reach
    the trace; identical ones within a second count once; at most MAX_WARNINGS per trace."""
    import logging

    from taskscope_dask.plugin import MAX_WARNINGS

    path = tmp_path / "run.ndjson"
    log = logging.getLogger("distributed.scheduler")
    with cluster(n_workers=0, processes=False) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path), interval=0.1))
        for _ in range(5):
            log.warning("taskscope test: the same warning")
        logging.getLogger("distributed.taskscope").warning("taskscope test: our own, left out")
        logging.getLogger("distributed.scheduler").info("taskscope test: info, left out")
        for i in range(MAX_WARNINGS + 50):
            log.error("taskscope test: warning %d", i)

        def count():
            return sum(
                r["kind"] == "event" and r["type"] == "warning" for r in records_so_far(path)
            )

        wait_for(lambda: count() >= MAX_WARNINGS + 1, what="the warnings")
    _, records = read_trace(path)
    warnings = [r for r in records if r["kind"] == "event" and r["type"] == "warning"]
    ours = [w for w in warnings if w["message"].startswith("taskscope test")]
    assert [w["message"] for w in ours[:2]] == [
        "taskscope test: the same warning", "taskscope test: warning 0"
    ]
    assert all(w["source"] == "distributed.scheduler" and "worker" not in w for w in ours)
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1]["source"] == "taskscope" and "left out" in warnings[-1]["message"]


def test_close_is_fresh_and_leaves_nothing_behind(tmp_path):
    """Closing the plugin while the workers run asks them for a last heartbeat, so the final
    group metrics count a task that finished just before; the worker plugin, the log handler
    and the task-erred wrapper go away."""
    import logging

    path = tmp_path / "run.ndjson"
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path), interval=60))
        own_cpu, _ = client.submit(busy, 1.0, pure=False).result()

        async def close(dask_scheduler):
            await dask_scheduler.plugins["taskscope"].close()
            handlers = logging.getLogger("distributed").handlers
            return (
                sorted(dask_scheduler.worker_plugins),
                [type(h).__name__ for h in handlers],
                dask_scheduler.stream_handlers["task-erred"] == dask_scheduler.handle_task_erred,
            )

        worker_plugins, handlers, restored = client.run_on_scheduler(close)
        assert "taskscope-warnings" not in worker_plugins
        assert "_SchedulerLogHandler" not in handlers
        assert restored

        def worker_side(dask_worker):
            return (
                sorted(dask_worker.plugins),
                [type(h).__name__ for h in logging.getLogger("distributed").handlers],
            )

        ((plugins, handlers),) = client.run(worker_side).values()
        assert "taskscope-warnings" not in plugins and "_Handler" not in handlers
    _, records = read_trace(path)
    metrics = [r for r in records if r["kind"] == "group-metrics" and r["group"] == "busy"]
    assert metrics, records
    cpu = metrics[-1]["metrics"]["execute/thread-cpu/seconds"]
    assert 0.9 * own_cpu - 0.05 < cpu < 1.1 * own_cpu + 0.05, (own_cpu, metrics)


def test_worker_side_needs_no_taskscope_on_workers():
    """The worker plugin and the heartbeat function travel by value: they load in a Python
    that cannot import taskscope_dask."""
    import os
    import subprocess
    import sys

    import cloudpickle

    from taskscope_dask import _worker_side

    cloudpickle.register_pickle_by_value(_worker_side)
    payload = cloudpickle.dumps(
        (_worker_side.WarningForwarder(os.getpid()), _worker_side.heartbeat)
    )
    code = (
        "import sys, pickle\n"
        "sys.modules['taskscope_dask'] = None\n"
        "plugin, heartbeat = pickle.loads(sys.stdin.buffer.read())\n"
        "print(type(plugin).__name__, plugin.name, heartbeat.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["WarningForwarder", "taskscope-warnings", "heartbeat"]


def test_a_workers_host_and_its_cores_even_for_an_address_the_scheduler_forgot():
    from dask.system import CPU_COUNT

    from taskscope_dask.plugin import _host_cores, _UnknownWorker, _Worker

    class Scheduler:
        address = "tcp://127.0.0.1:8786"

    # A result arriving from a removed worker: its spec still names its host.
    gone = _UnknownWorker("tcp://127.0.0.1:40001")
    spec = _Worker(3, gone, _host_cores(Scheduler(), gone)).spec()
    assert spec == {
        "id": 3, "name": "tcp://127.0.0.1:40001", "threads": 0, "host": "127.0.0.1",
        "host_cores": CPU_COUNT,
    }
    # Another machine's cores are not the scheduler's to tell; an address without a host has
    # none.
    remote = _UnknownWorker("tcp://10.1.2.3:40001")
    assert _host_cores(Scheduler(), remote) is None
    assert _Worker(4, remote, None).spec()["host"] == "10.1.2.3"
    odd = _UnknownWorker("not an address")
    assert _host_cores(Scheduler(), odd) is None
    assert "host" not in _Worker(5, odd, None).spec()
