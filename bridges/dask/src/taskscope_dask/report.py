"""``taskscope analyze --format json`` as typed Python, with a rich view for Jupyter.

The schema is the analyzer's (``analyzer/src/report/json.rs``, ``analyzer/src/lib.rs``,
``analyzer/src/finding.rs``): ``{"summary": {...}, "findings": [...], "critical_path": {...} |
null, "warnings": [...]?}``. Nothing here judges a run: the findings are the binary's; this
module only reads them and shows them.
"""

from __future__ import annotations

import copy
import html
import os
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .binary import run_json, run_taskscope

Severity = Literal["none", "low", "moderate", "severe", "critical"]
ImpactSource = Literal["estimate", "simulation"]
#: Dr. Elephant's scale, in increasing order (``analyzer/src/finding.rs``).
SEVERITIES: tuple[Severity, ...] = ("none", "low", "moderate", "severe", "critical")

#: Background and text colours per severity in the HTML view: the terminal report's (grey,
#: cyan, yellow, red, white on red), in tones readable on a light or a dark notebook theme.
SEVERITY_COLOURS: dict[Severity, tuple[str, str]] = {
    "none": ("#e5e7eb", "#374151"),
    "low": ("#cffafe", "#155e75"),
    "moderate": ("#fef3c7", "#92400e"),
    "severe": ("#fee2e2", "#991b1b"),
    "critical": ("#b91c1c", "#ffffff"),
}


def severity_rank(severity: str) -> int:
    """Position on the scale (``none`` = 0); an unknown severity ranks below ``none``."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True)
class Scope:
    """Where a finding applies."""

    group: str | None = None
    worker: str | None = None
    #: Seconds since the trace origin.
    time_range: tuple[float, float] | None = None
    #: Example task keys.
    keys: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scope:
        tr = d.get("time_range")
        return cls(
            group=d.get("group"),
            worker=d.get("worker"),
            time_range=(float(tr[0]), float(tr[1])) if tr is not None else None,
            keys=[str(k) for k in d.get("keys", [])],
        )


@dataclass(frozen=True)
class SimulatedFix:
    """What replaying the run with the finding's fix predicts (``taskscope simulate --fix``)."""

    #: Wall-clock seconds the fix saves in the replay.
    saves_seconds: float
    #: The replayed wall time with the fix.
    fixed_wall_seconds: float
    #: The replay of the run as recorded.
    replayed_wall_seconds: float
    #: How far that replay is from the recorded wall time (0.05: 5 % longer).
    calibration_error: float

    def error_seconds(self) -> float:
        """How far, in seconds, the replay of the run as recorded is from the recorded run
        (when it is more than the saving, the saving is not taken as the impact)."""
        recorded = self.replayed_wall_seconds / max(1.0 + self.calibration_error, 1e-9)
        return abs(self.replayed_wall_seconds - recorded)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulatedFix:
        return cls(
            saves_seconds=float(d["saves_seconds"]),
            fixed_wall_seconds=float(d["fixed_wall_seconds"]),
            replayed_wall_seconds=float(d["replayed_wall_seconds"]),
            calibration_error=float(d["calibration_error"]),
        )



@dataclass(frozen=True)
class Finding:
    """One problem, with its numbers and its fix."""

    #: Rule id: ``skew``, ``tiny-partitions``, …
    rule: str
    severity: Severity
    #: Wall-clock seconds the fix would save: the rule's estimate, or the replay's figure
    #: where the fix can be simulated (``impact_from`` says which). Findings are ranked by
    #: severity, then by it.
    impact_seconds: float
    #: One sentence: what is wrong, with the measured numbers.
    title: str
    scope: Scope
    #: Named numbers behind the finding, in the analyzer's order.
    evidence: dict[str, float]
    #: The fix, in Dask's vocabulary, with concrete parameters.
    advice: str
    #: What replaying the run with the fix predicts, when the fix can be simulated.
    simulated: SimulatedFix | None = None
    #: ``"estimate"`` (the rule's, from the recorded ratios) or ``"simulation"`` (the replay's
    #: saving; the rule's estimate is then ``evidence["estimated_impact_seconds"]``).
    impact_from: ImpactSource = "estimate"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            rule=str(d["rule"]),
            severity=cast(Severity, d["severity"]),
            impact_seconds=float(d["impact_seconds"]),
            impact_from=cast(ImpactSource, d.get("impact_from", "estimate")),
            title=str(d["title"]),
            scope=Scope.from_dict(d.get("scope", {})),
            evidence={str(k): float(v) for k, v in d.get("evidence", {}).items()},
            advice=str(d.get("advice", "")),
            simulated=SimulatedFix.from_dict(d["simulated"]) if d.get("simulated") else None,
        )

    def impact_label(self) -> str:
        """``1.45 s``, or ``0.40 s simulated`` (the binary's label)."""
        suffix = " simulated" if self.impact_from == "simulation" else ""
        return f"{self.impact_seconds:.2f} s{suffix}"

    def simulated_sentence(self) -> str | None:
        """The binary's sentence for the replay's figure (``analyze``'s text, Markdown and
        HTML), with the rule's estimate it replaced, or why it did not."""
        sim = self.simulated
        if sim is None:
            return None
        estimate = self.evidence.get("estimated_impact_seconds")
        if self.impact_from == "estimate":
            also = (
                f", {sim.error_seconds():.2f} s: more than the saving, so the rule's estimate "
                "stands"
            )
        elif estimate is not None:
            also = f"; the rule's estimate was {estimate:.2f} s"
        else:
            also = ""
        return (
            f"replayed with the fix, the run takes {sim.fixed_wall_seconds:.2f} s instead of "
            f"{sim.replayed_wall_seconds:.2f} s: {sim.saves_seconds:.2f} s saved "
            f"(the replay is {sim.calibration_error * 100:+.0f} % off the recorded run{also})"
        )

    def at_least(self, severity: Severity) -> bool:
        """Whether this finding is at or above ``severity``."""
        return severity_rank(self.severity) >= severity_rank(severity)


@dataclass(frozen=True)
class Summary:
    format: str
    producer: str
    tasks: int
    failed_tasks: int
    lost_tasks: int
    groups: int
    workers: int
    threads: int
    wall_seconds: float
    #: Thread-occupying task time.
    busy_seconds: float
    #: Sparklens' ideal time: task time / threads.
    ideal_seconds: float
    #: ``ideal / wall``: 1.0 is every thread busy all the time.
    efficiency: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        return cls(
            format=str(d["format"]),
            producer=str(d["producer"]),
            tasks=int(d["tasks"]),
            failed_tasks=int(d["failed_tasks"]),
            lost_tasks=int(d["lost_tasks"]),
            groups=int(d["groups"]),
            workers=int(d["workers"]),
            threads=int(d["threads"]),
            wall_seconds=float(d["wall_seconds"]),
            busy_seconds=float(d["busy_seconds"]),
            ideal_seconds=float(d["ideal_seconds"]),
            efficiency=float(d["efficiency"]),
        )

    def line(self) -> str:
        """One sentence, as the text report opens."""
        return (
            f"{self.tasks} tasks in {self.groups} groups on {self.workers} workers "
            f"({self.threads} threads), wall {self.wall_seconds:.2f} s; ideal "
            f"{self.ideal_seconds:.2f} s (task time / threads): "
            f"{self.efficiency * 100:.0f}% efficient"
        )


@dataclass(frozen=True)
class CriticalPath:
    """The chain of last-arriving inputs that ended the job."""

    tasks: int
    length_seconds: float
    compute_seconds: float
    transfer_seconds: float
    wait_seconds: float
    #: Tasks on the path per group, from the first to the last.
    groups: list[tuple[str, int]]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticalPath:
        return cls(
            tasks=int(d["tasks"]),
            length_seconds=float(d["length_seconds"]),
            compute_seconds=float(d["compute_seconds"]),
            transfer_seconds=float(d["transfer_seconds"]),
            wait_seconds=float(d["wait_seconds"]),
            groups=[(str(g), int(n)) for g, n in d.get("groups", [])],
        )

    def line(self) -> str:
        chain = " -> ".join(g if n == 1 else f"{g} x{n}" for g, n in self.groups)
        return (
            f"critical path: {self.tasks} tasks, {self.length_seconds:.2f} s = "
            f"{self.compute_seconds:.2f} s compute + {self.transfer_seconds:.2f} s transfer + "
            f"{self.wait_seconds:.2f} s waiting ({chain})"
        )


@dataclass(frozen=True)
class Report:
    """What ``taskscope analyze`` says about a trace. In Jupyter it shows as a table of
    findings (:meth:`_repr_html_`); :meth:`to_dict` gives the JSON schema back."""

    summary: Summary
    #: Most severe first, then by impact.
    findings: list[Finding]
    #: ``None`` when the trace has no dependencies (Dask task streams).
    critical_path: CriticalPath | None
    #: Problems reading the trace that did not stop the analysis (a truncated last line).
    warnings: list[str]
    _raw: dict[str, Any] = field(repr=False, compare=False)
    #: The trace analyzed, when known: the HTML view is then the binary's own.
    trace_path: str | None = field(default=None, repr=False, compare=False)
    _html: list[str] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], trace_path: str | None = None) -> Report:
        cp = d.get("critical_path")
        return cls(
            summary=Summary.from_dict(d["summary"]),
            findings=[Finding.from_dict(f) for f in d.get("findings", [])],
            critical_path=CriticalPath.from_dict(cp) if cp is not None else None,
            warnings=[str(w) for w in d.get("warnings", [])],
            _raw=copy.deepcopy(d),
            trace_path=trace_path,
        )

    @classmethod
    def from_trace(cls, path: str | os.PathLike[str]) -> Report:
        """Runs ``taskscope analyze PATH --format json`` (any format the binary reads: native
        traces, Dask task streams, Dask performance reports)."""
        return cls.from_dict(run_json("analyze", path), trace_path=os.fspath(path))

    def to_dict(self) -> dict[str, Any]:
        """The report in the JSON schema, as Python data (a copy: fields the binary added that
        this version does not know are kept)."""
        return copy.deepcopy(self._raw)

    def worst(self) -> Severity:
        """The highest severity of any finding (``none`` without findings)."""
        return max(
            (f.severity for f in self.findings), key=severity_rank, default=SEVERITIES[0]
        )

    def __str__(self) -> str:
        lines = [self.summary.line()]
        if self.critical_path is not None:
            lines.append(self.critical_path.line())
        if not self.findings:
            lines.append("no findings: nothing here costs measurable time")
        for i, f in enumerate(self.findings, 1):
            lines.append(f"{i}. [{f.severity}] {f.rule} (~{f.impact_label()}): {f.title}")
            lines.append(f"   fix: {f.advice}")
            sentence = f.simulated_sentence()
            if sentence is not None:
                lines.append(f"   simulated: {sentence}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The findings as HTML for Jupyter: the binary's ``analyze --format html`` fragment
        (the markup of ``taskscope report``'s findings, with its own scoped style; run once,
        then kept) when the trace is known, else :func:`render_html`. Self-contained (no
        script, nothing fetched), every text escaped."""
        if self.trace_path is None:
            return render_html(self)
        if not self._html:
            self._html.append(run_taskscope("analyze", self.trace_path, "--format", "html"))
        return self._html[0]


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(severity: str) -> str:
    bg, fg = SEVERITY_COLOURS.get(cast(Severity, severity), ("#e5e7eb", "#111827"))
    return (
        f'<span class="taskscope-severity taskscope-{_esc(severity)}" style="background:{bg};'
        f"color:{fg};padding:1px 6px;border-radius:3px;font-weight:600;"
        f'white-space:nowrap">{_esc(severity)}</span>'
    )


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def render_html(report: Report) -> str:
    """HTML for a report known only as data (:meth:`Report.from_dict`, e.g. a saved
    ``--format json``): the summary, a table of findings (severity colour, rule, impact, title)
    and each finding's advice and evidence. A trace's report shows the binary's own fragment
    instead."""
    cell = "padding:4px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #d1d5db"
    out = ['<div class="taskscope-report" style="font-family:sans-serif;font-size:13px">']
    out.append(
        f'<p style="margin:4px 0"><b>taskscope</b> · {_esc(report.summary.producer)}<br>'
        f"{_esc(report.summary.line())}</p>"
    )
    if report.critical_path is not None:
        out.append(f'<p style="margin:4px 0">{_esc(report.critical_path.line())}</p>')
    for warning in report.warnings:
        out.append(f'<p style="margin:4px 0;color:#92400e">warning: {_esc(warning)}</p>')
    if not report.findings:
        out.append('<p style="margin:4px 0">No findings: nothing here costs measurable time.</p>')
        out.append("</div>")
        return "".join(out)
    out.append('<table style="border-collapse:collapse;margin-top:6px">')
    out.append(
        "<thead><tr>"
        + "".join(
            f'<th style="{cell}">{h}</th>'
            for h in ("#", "severity", "rule", "saves", "finding")
        )
        + "</tr></thead><tbody>"
    )
    for i, f in enumerate(report.findings, 1):
        out.append(
            f'<tr><td style="{cell}">{i}</td><td style="{cell}">{_badge(f.severity)}</td>'
            f'<td style="{cell}"><code>{_esc(f.rule)}</code></td>'
            f'<td style="{cell};text-align:right;white-space:nowrap">'
            f"~{_esc(f.impact_label())}</td>"
            f'<td style="{cell}">{_esc(f.title)}</td></tr>'
        )
    out.append("</tbody></table>")
    out.append('<ol style="margin:8px 0;padding-left:20px">')
    for f in report.findings:
        evidence = ", ".join(f"{_esc(k)} = {_esc(_number(v))}" for k, v in f.evidence.items())
        scope = [
            f"group <code>{_esc(f.scope.group)}</code>" if f.scope.group else "",
            f"worker <code>{_esc(f.scope.worker)}</code>" if f.scope.worker else "",
        ]
        where = ", ".join(s for s in scope if s)
        out.append(
            f'<li style="margin:4px 0">{_badge(f.severity)} <code>{_esc(f.rule)}</code>'
            + (f" ({where})" if where else "")
            + f"<br><b>fix:</b> {_esc(f.advice)}"
            + (
                f"<br><b>simulated:</b> {_esc(sentence)}"
                if (sentence := f.simulated_sentence()) is not None
                else ""
            )
            + (
                f'<br><span style="color:#6b7280">evidence: {evidence}</span>'
                if evidence
                else ""
            )
            + "</li>"
        )
    out.append("</ol></div>")
    return "".join(out)
