#!/usr/bin/env python3
"""What recording costs a Dask run: the taskscope-dask plugin's overhead on tiny tasks.

Runs N no-op tasks (default 50,000: `client.map` over a range, submit to gather) on one
process-based LocalCluster (2 workers × 1 thread, like the analyzer's Dask fixtures), with and
without the plugin registered, alternating (without, with, with, without, …) so drift on a
shared machine hits both alike. Tiny tasks are the worst case: per-task scheduler work is all
there is, and the plugin adds to it. Prints each repetition, the medians and their ratios.

Wall time on a shared machine moves by ±10 % between identical runs; the CPU time of the
process holding the client and the scheduler (where the plugin runs) is the steadier figure.

Usage (with taskscope-dask installed):
    python benches/dask_plugin_overhead.py [--tasks 50000] [--pairs 3] [--serve]

--serve also serves the Observe gRPC (nobody watching). The trace goes to a temporary
directory and is deleted.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

# Quiet: workers' "Failed to communicate with scheduler during heartbeat" at shutdown.
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")

import distributed  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

from taskscope_dask import TaskscopePlugin  # noqa: E402


def noop(x):
    return x


class TimedPlugin(TaskscopePlugin):
    """The plugin, timing its own hooks: the cost that machine load does not blur."""

    async def start(self, scheduler):
        self.hook_seconds = 0.0
        await super().start(scheduler)

    def _timed(name):
        def hook(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return getattr(TaskscopePlugin, name)(self, *args, **kwargs)
            finally:
                self.hook_seconds += time.perf_counter() - start

        return hook

    transition = _timed("transition")
    update_graph = _timed("update_graph")
    log_event = _timed("log_event")
    _sample = _timed("_sample")
    del _timed


def hook_seconds(dask_scheduler):
    return dask_scheduler.plugins[TaskscopePlugin.name].hook_seconds


async def unregister(dask_scheduler):
    """Removes the plugin and closes it (Dask's unregister does not call `close`)."""
    plugin = dask_scheduler.plugins.pop(TaskscopePlugin.name)
    await plugin.close()


def run_once(client, tasks, label):
    """Wall seconds, and CPU seconds of this process (the client and the scheduler: a
    LocalCluster's scheduler runs here; the workers are other processes)."""
    keys = [f"noop-{label}-{i}" for i in range(tasks)]
    start, cpu = time.perf_counter(), time.process_time()
    futures = client.map(noop, range(tasks), key=keys)
    wait(futures)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    del futures
    # Let the scheduler forget the keys before the next run.
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        time.sleep(0.05)
    return elapsed, cpu


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args(argv[1:])

    warnings.simplefilter("ignore")
    times = {"without": [], "with": []}
    cpus = {"without": [], "with": []}
    hooks = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        run_once(client, 2000, "warmup")
        order = []
        for i in range(args.pairs):
            order += ["without", "with"] if i % 2 == 0 else ["with", "without"]
        for n, mode in enumerate(order):
            trace = None
            if mode == "with":
                trace = os.path.join(tmp, f"run-{n}.ndjson")
                client.register_plugin(
                    TimedPlugin(path=trace, serve="127.0.0.1:0" if args.serve else None)
                )
            elapsed, cpu = run_once(client, args.tasks, n)
            if mode == "with":
                hooks.append(client.run_on_scheduler(hook_seconds))
                client.run_on_scheduler(unregister)
                size = os.path.getsize(trace)
            times[mode].append(elapsed)
            cpus[mode].append(cpu)
            note = f", {hooks[-1]:5.2f} s in hooks, trace {size / 2**20:.1f} MiB" if trace else ""
            print(
                f"  {mode:>7} plugin: {elapsed:7.2f} s wall "
                f"({elapsed / args.tasks * 1e6:5.0f} µs/task), "
                f"{cpu:7.2f} s CPU in the client+scheduler process{note}",
                flush=True,
            )
    print(
        f"dask {distributed.__version__}, {args.tasks:,} no-op tasks, 2 workers × 1 thread, "
        f"{args.pairs} runs each{' (serving gRPC)' if args.serve else ''}; "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; medians:"
    )
    for what, values in (("wall", times), ("CPU", cpus)):
        without = statistics.median(values["without"])
        with_ = statistics.median(values["with"])
        print(
            f"  {what:>4}: without plugin {without:6.2f} s, with plugin {with_:6.2f} s, "
            f"ratio {with_ / without:.3f} ({(with_ / without - 1) * 100:+.1f} %)"
        )
    hook = statistics.median(hooks)
    without = statistics.median(times["without"])
    print(
        f"  time in the plugin's hooks (on the scheduler's event loop): {hook:.2f} s, "
        f"{hook / args.tasks * 1e6:.1f} µs/task, {hook / without * 100:.1f} % of the "
        f"wall time without the plugin"
    )


if __name__ == "__main__":
    main(sys.argv)
