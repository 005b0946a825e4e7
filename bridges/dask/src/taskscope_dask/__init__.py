"""taskscope-dask: record a Dask cluster in taskscope's native trace format, and watch it live
over taskscope's Observe gRPC.

Two ways in::

    client.register_plugin(TaskscopePlugin(path="run.ndjson", serve=True))

    dask scheduler --preload taskscope_dask --taskscope-trace run.ndjson --taskscope-serve

then ``taskscope analyze run.ndjson``. See bridges/dask/README.md.
"""
__version__ = "0.1.0"

from .plugin import TaskscopePlugin  # noqa: E402
from .preload import dask_setup  # noqa: E402

__all__ = ["TaskscopePlugin", "dask_setup", "__version__"]
