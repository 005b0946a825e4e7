"""How many bytes of a task's spec are inline arguments: literal values shipped with the task
(what ``client.scatter`` would send once), as opposed to references to other tasks' results.

Estimated with ``dask.sizeof`` (numpy arrays and pandas objects report their buffers; lists and
dicts are sampled), walking at most :data:`MAX_NODES` values per task so a fused subgraph or a
long literal list costs a bounded time.
"""
from __future__ import annotations

from typing import Any

from dask.sizeof import sizeof

try:  # dask >= 2024.12: task specs are GraphNode objects
    from dask._task_spec import Alias, DataNode, GraphNode, Task, TaskRef
except ImportError:  # pragma: no cover - older dask: tuples, estimated as a whole
    Alias = DataNode = GraphNode = Task = TaskRef = None  # type: ignore[assignment,misc]

#: Values visited per task at most.
MAX_NODES = 256

# sys.getsizeof of common scalars (CPython 3.11, 64-bit): no dispatch for the usual case.
_SCALAR_SIZES = {int: 28, float: 24, bool: 28, type(None): 16}


def inline_bytes(spec: Any) -> int:
    if spec is None:
        return 0
    if GraphNode is None:  # pragma: no cover
        try:
            return int(sizeof(spec))
        except Exception:
            return 0
    total = 0
    budget = MAX_NODES
    stack = [spec]
    while stack and budget > 0:
        value = stack.pop()
        budget -= 1
        cls = type(value)
        size = _SCALAR_SIZES.get(cls)
        if size is not None:
            total += size
        elif cls is TaskRef or cls is Alias:
            continue
        elif isinstance(value, Task):
            stack.extend(value.args)
            if value.kwargs:
                stack.extend(value.kwargs.values())
        elif isinstance(value, DataNode):
            stack.append(value.value)
        elif isinstance(value, GraphNode):
            continue
        elif cls is tuple or cls is list:
            # Containers of references (a reduction's inputs) hold no data of their own.
            if value and len(value) <= budget:
                stack.extend(value)
            elif value:
                total += _sizeof(value)
        elif cls is dict:
            if value and len(value) <= budget:
                stack.extend(value.values())
            elif value:
                total += _sizeof(value)
        else:
            total += _sizeof(value)
    return total


def _sizeof(value: Any) -> int:
    try:
        return int(sizeof(value))
    except Exception:
        return 0
