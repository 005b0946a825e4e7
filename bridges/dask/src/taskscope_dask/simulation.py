"""``taskscope simulate --format json`` as typed Python: what the recorded run would take on
other cluster shapes, predicted by replaying it with the engine's scheduler in virtual time.

The schema is the binary's (``src/simulate.rs``): ``{"recorded": {...}, "model": {...}, "fix":
{...} | null, "predictions": [...], "critical_path_seconds": ...}``. Nothing here predicts: the
numbers are the binary's; this module reads them and shows them.
"""

from __future__ import annotations

import copy
import html
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .binary import run_json

#: The multiplication sign the binary writes shapes and ratios with (2x1, 0.50x).
TIMES = "\u00d7"


@dataclass(frozen=True)
class Prediction:
    """One cluster shape's predicted run."""

    workers: int
    threads: int
    wall_seconds: float
    #: Busy thread time over the thread-slots' time (0-1).
    utilisation: float
    transferred_bytes: int
    spilled_bytes: int
    workers_killed: int
    #: With ``fix=``: the wall time with the fix applied on this shape.
    fixed_wall_seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        fixed = d.get("fixed_wall_seconds")
        return cls(
            workers=int(d["workers"]),
            threads=int(d["threads"]),
            wall_seconds=float(d["wall_seconds"]),
            utilisation=float(d["utilisation"]),
            transferred_bytes=int(d.get("transferred_bytes", 0)),
            spilled_bytes=int(d.get("spilled_bytes", 0)),
            workers_killed=int(d.get("workers_killed", 0)),
            fixed_wall_seconds=float(fixed) if fixed is not None else None,
        )

    @property
    def shape(self) -> str:
        """``4x1`` as the binary writes it (with a multiplication sign): workers, threads per
        worker."""
        return f"{self.workers}{TIMES}{self.threads}"


@dataclass(frozen=True)
class Simulation:
    """A run replayed on several cluster shapes. ``calibration_error`` says how far the replay
    of the recorded shape is from the recorded wall time (+0.05: 5 % long): the predictions are
    as good as that, and the notes of ``taskscope simulate`` say what the replay leaves out."""

    recorded_workers: int
    recorded_threads: int
    recorded_wall_seconds: float
    replayed_wall_seconds: float
    calibration_error: float
    #: The wall time no number of workers can beat (unlimited workers, free transfers).
    critical_path_seconds: float
    #: In the order asked for (by default the recorded shape, then 2, 4 and 8 times as many
    #: workers).
    predictions: list[Prediction]
    #: The rule whose fix ``fixed_wall_seconds`` applies, and whether it changed the trace.
    fix: str | None = None
    fix_changes_the_trace: bool = False
    #: Per recorded host, the cores its tasks share (tasks beyond them slow each other
    #: down); ``None`` when the replay does not model CPU (no CPU times or cores recorded).
    host_cores: list[int] | None = None
    _raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Simulation:
        recorded = d["recorded"]
        fix = d.get("fix")
        cores = d.get("model", {}).get("host_cores")
        return cls(
            recorded_workers=int(recorded["workers"]),
            recorded_threads=int(recorded["threads"]),
            recorded_wall_seconds=float(recorded["wall_seconds"]),
            replayed_wall_seconds=float(recorded["replayed_wall_seconds"]),
            calibration_error=float(recorded["error"]),
            critical_path_seconds=float(d["critical_path_seconds"]),
            predictions=[Prediction.from_dict(p) for p in d.get("predictions", [])],
            fix=str(fix["rule"]) if fix else None,
            fix_changes_the_trace=bool(fix and fix.get("changes_the_trace")),
            host_cores=[int(c) for c in cores] if cores is not None else None,
            _raw=copy.deepcopy(d),
        )

    @classmethod
    def from_trace(
        cls,
        path: str | os.PathLike[str],
        workers: Iterable[int] | None = None,
        threads: Iterable[int] | None = None,
        fix: str | None = None,
        memory_limit: str | int | None = None,
        bandwidth: str | None = None,
        latency: str | None = None,
        cores: int | None = None,
    ) -> Simulation:
        """Runs ``taskscope simulate PATH --format json`` with the given shapes (``workers=[2,
        4, 8]``, ``threads=[1, 2]``: their cross product), ``fix`` (``"skew"``,
        ``"tiny-partitions"``, ``"oversized-argument"``, ``"idle-gaps"``,
        ``"recomputation"``) and machine (``memory_limit="4GiB"``, ``bandwidth="1GB/s"``,
        ``latency="1ms"``, ``cores=16`` per host; by default the recorded ones)."""
        args: list[str | os.PathLike[str]] = ["simulate", path]
        if workers is not None:
            args += ["--workers", ",".join(str(int(w)) for w in workers)]
        if threads is not None:
            args += ["--threads", ",".join(str(int(t)) for t in threads)]
        for flag, value in (
            ("--fix", fix),
            ("--memory-limit", memory_limit),
            ("--bandwidth", bandwidth),
            ("--latency", latency),
            ("--cores", cores),
        ):
            if value is not None:
                args += [flag, str(value)]
        return cls.from_dict(run_json(*args))

    def to_dict(self) -> dict[str, Any]:
        """The binary's JSON, as Python data (a copy)."""
        return copy.deepcopy(self._raw)

    def fastest(self) -> Prediction | None:
        """The shape predicted to finish first (with the fix, when one was asked for and
        changes the trace); ``None`` without predictions."""
        return min(self.predictions, key=self._wall, default=None)

    def _wall(self, p: Prediction) -> float:
        if self.fix_changes_the_trace and p.fixed_wall_seconds is not None:
            return p.fixed_wall_seconds
        return p.wall_seconds

    def _ratio(self, p: Prediction) -> float:
        """A shape's wall time over the replayed recorded shape's."""
        if self.replayed_wall_seconds <= 0:
            return 0.0
        return p.wall_seconds / self.replayed_wall_seconds

    def calibration(self) -> str:
        """The binary's first line, in short: the replay of the recorded shape against the
        recorded run."""
        return (
            f"replayed on its own shape ({self.recorded_workers}{TIMES}{self.recorded_threads}), "
            f"the model gives {self.replayed_wall_seconds:.2f} s for a recorded "
            f"{self.recorded_wall_seconds:.2f} s ({self.calibration_error * 100:+.1f} %)"
        )

    def cpu(self) -> str:
        """Whether the added workers share the recorded hosts' cores, as ``simulate`` says it."""
        if not self.host_cores:
            return "not modelled: each added worker is taken to bring its own cores"
        known = [c for c in self.host_cores if c > 0]
        lo, hi = min(known, default=0), max(known, default=0)
        cores = f"{hi} core{'s' if hi != 1 else ''}" if lo == hi else f"{lo}\u2013{hi} cores"
        return f"tasks computing on one host share its {cores}"

    def __str__(self) -> str:
        lines = [f"calibration: {self.calibration()}", f"cpu: {self.cpu()}"]
        for p in self.predictions:
            line = (
                f"{p.shape:>7}  {p.wall_seconds:8.2f} s  {self._ratio(p):5.2f}{TIMES}"
                f"  {p.utilisation * 100:4.0f} % busy"
            )
            if self.fix and p.fixed_wall_seconds is not None:
                line += f"  with --fix {self.fix}: {p.fixed_wall_seconds:.2f} s"
            lines.append(line)
        lines.append(f"critical path: {self.critical_path_seconds:.2f} s")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A table for Jupyter: self-contained, every text escaped."""
        esc = _esc
        fix_head = f"<th>with --fix {esc(self.fix)}</th>" if self.fix else ""
        rows = []
        for p in self.predictions:
            fixed = ""
            if self.fix:
                fixed = (
                    f"<td>{p.fixed_wall_seconds:.2f} s</td>"
                    if p.fixed_wall_seconds is not None
                    else "<td></td>"
                )
            rows.append(
                f"<tr><td>{esc(p.shape)}</td><td>{p.wall_seconds:.2f} s</td>"
                f"<td>{self._ratio(p):.2f}{TIMES}</td><td>{p.utilisation * 100:.0f} %</td>"
                f"{fixed}</tr>"
            )
        return (
            '<div class="taskscope-simulation">'
            f"<p>{esc(self.calibration())}</p>"
            f"<p>cpu: {esc(self.cpu())}</p>"
            '<table><thead><tr><th>shape</th><th>wall</th><th>vs recorded</th>'
            f"<th>utilisation</th>{fix_head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>critical path (unlimited workers, free transfers): "
            f"{self.critical_path_seconds:.2f} s</p></div>"
        )


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
