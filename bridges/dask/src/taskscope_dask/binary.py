"""Finding and running the ``taskscope`` binary.

The ``taskscope`` wheel carries the binary in its scripts directory (maturin, ``bindings =
"bin"``), so after ``pip install`` it sits in the environment's ``bin/`` next to ``python``.
Everything taskscope says about a trace comes from that binary: this package runs it
(``analyze --format json``, ``flamegraph``, …) and never re-implements a rule in Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

#: The environment variable naming a binary, checked after the package's own.
ENV_VAR = "TASKSCOPE_BIN"
_EXE = "taskscope.exe" if sys.platform == "win32" else "taskscope"


class TaskscopeNotFound(FileNotFoundError):
    """No ``taskscope`` binary in any of the places :func:`find_taskscope_bin` looks."""


class TaskscopeError(RuntimeError):
    """``taskscope`` exited with an error; ``stderr`` holds what it said."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr
        said = stderr.strip() or "(nothing on stderr)"
        super().__init__(f"{' '.join(args)} exited with {returncode}: {said}")


def _package_scripts_dirs() -> list[Path]:
    """Where an installer puts the wheel's scripts, for the installation this module is in."""
    dirs = [Path(sysconfig.get_path("scripts"))]
    user_scheme = "nt_user" if os.name == "nt" else "posix_user"
    with contextlib.suppress(KeyError):
        dirs.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)))
    # `pip install --prefix P` / `--target T`: the scripts go to P/bin or T/bin, the package to
    # P/lib/pythonX.Y/site-packages or T: look beside the package's own site directory.
    site = Path(__file__).resolve().parent.parent
    dirs.append(site / "bin")
    dirs.extend(parent / "bin" for parent in site.parents[:3])
    return dirs


def find_taskscope_bin() -> str:
    """The ``taskscope`` binary: the one installed with this package (the environment's scripts
    directory), else ``$TASKSCOPE_BIN``, else ``taskscope`` on ``PATH``.

    Raises :class:`TaskscopeNotFound`, naming the three places, when none has it.
    """
    searched = []
    for directory in _package_scripts_dirs():
        candidate = directory / _EXE
        searched.append(str(candidate))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    env = os.environ.get(ENV_VAR)
    if env:
        found = shutil.which(env)
        if found:
            return found
    on_path = shutil.which(_EXE)
    if on_path:
        return on_path
    env_said = f"${ENV_VAR}={env!r} is not an executable" if env else f"${ENV_VAR} is not set"
    raise TaskscopeNotFound(
        "the taskscope binary was not found: not next to the taskscope_dask package "
        f"({', '.join(dict.fromkeys(searched))}), {env_said}, and no `taskscope` on PATH. "
        "Install the wheel (`pip install taskscope`, or `pip install .` in the repository), "
        f"or point ${ENV_VAR} at a binary built with `cargo build --release`."
    )


def run_taskscope(*args: str | os.PathLike[str], timeout: float | None = None) -> str:
    """Runs ``taskscope ARGS`` and returns its stdout; :class:`TaskscopeError` on a non-zero
    exit (``--fail-on``'s exit code 3 included)."""
    argv = [find_taskscope_bin(), *(os.fspath(a) for a in args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise TaskscopeError(["taskscope", *argv[1:]], proc.returncode, proc.stderr)
    return proc.stdout


def run_json(*args: str | os.PathLike[str], timeout: float | None = None) -> Any:
    """``taskscope ARGS --format json``, parsed."""
    return json.loads(run_taskscope(*args, "--format", "json", timeout=timeout))
