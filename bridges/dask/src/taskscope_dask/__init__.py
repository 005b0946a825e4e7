"""taskscope-dask: record a Dask cluster in taskscope's native trace format, analyze it with the
``taskscope`` binary installed alongside, and watch it live over taskscope's Observe gRPC.

In a notebook or a script::

    import taskscope_dask
    with taskscope_dask.trace("run.ndjson") as t:
        result = big_computation.compute()
    t.analyze()      # findings ranked by the time their fix would save

On any cluster, or at scheduler start::

    client.register_plugin(TaskscopePlugin(path="run.ndjson", serve=True))

    dask scheduler --preload taskscope_dask --taskscope-trace run.ndjson --taskscope-serve

See bridges/dask/README.md.
"""

__version__ = "0.1.0"

from .binary import TaskscopeError, TaskscopeNotFound, find_taskscope_bin
from .plugin import TaskscopePlugin
from .preload import dask_setup
from .report import CriticalPath, Finding, Report, Scope, SimulatedFix, Summary
from .session import Trace, trace
from .simulation import Prediction, Simulation

__all__ = [
    "CriticalPath",
    "Finding",
    "Prediction",
    "Report",
    "Scope",
    "SimulatedFix",
    "Simulation",
    "Summary",
    "TaskscopeError",
    "TaskscopeNotFound",
    "TaskscopePlugin",
    "Trace",
    "__version__",
    "dask_setup",
    "find_taskscope_bin",
    "trace",
]
