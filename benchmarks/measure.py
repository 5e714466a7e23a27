"""Timing, repetition, processes and the result table of the suite."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """Repeated measurements of one quantity."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self) -> str:
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return _number(self.values[0])
        return "%s (%s-%s)" % (
            _number(self.median),
            _number(min(self.values)),
            _number(max(self.values)),
        )


@dataclass
class Row:
    """One line of the table: our figure, the reference's, their ratio.

    ``higher`` says whether more is better for this unit; the ratio is always
    ours over the reference, and ``target`` bounds it (``>= 3`` or ``<= 0.5``).
    """

    workload: str
    unit: str
    ours: Figure
    reference_name: str
    reference: Figure
    target: str = ""
    note: str = ""

    def ratio(self) -> float | None:
        if not self.ours.values or not self.reference.values:
            return None
        if self.reference.median == 0:
            return None
        return self.ours.median / self.reference.median

    def verdict(self) -> str:
        ratio = self.ratio()
        if ratio is None or not self.target:
            return ""
        operator, bound = self.target.split()
        met = ratio >= float(bound) if operator == ">=" else ratio <= float(bound)
        return "met" if met else "MISSED"


def repeat(measure, times: int) -> Figure:
    """``measure()`` (one repetition, returning its figure) ``times`` times."""
    return Figure([measure() for _ in range(times)])


def unavailable(reason: str) -> Figure:
    figure = Figure()
    figure.reason = reason  # type: ignore[attr-defined]
    return figure


class Stopwatch:
    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self.started


def wait_until(predicate, timeout: float, interval: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in %.0fs" % timeout)
        time.sleep(interval)


def spawn(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A child process of the suite in the repository root, its output in
    ``log`` (a pipe nobody reads would stall a chatty consumer)."""
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=output, stderr=output
        )


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resident_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS for process %d" % pid)


PYTHON = sys.executable


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return "%.1f" % value
    if value >= 1:
        return "%.2f" % value
    return "%.3f" % value


def render(rows: list[Row], heading: str, judged: bool = True) -> str:
    """The table; without ``judged`` (a quick run, whose small sizes say
    nothing of the targets) no row is called met or missed."""
    header = ("workload", "unit", "blumycelium", "reference", "reference value")
    table = [
        header + ("ratio", "target", ""),
        *(
            (
                row.workload,
                row.unit,
                row.ours.text(),
                row.reference_name,
                getattr(row.reference, "reason", None) or row.reference.text(),
                "" if row.ratio() is None else "%.2f" % row.ratio(),
                row.target,
                row.verdict() if judged else "",
            )
            for row in rows
        ),
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header) + 3)]
    lines = [heading, ""]
    for number, line in enumerate(table):
        lines.append(
            "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths))
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    notes = [row for row in rows if row.note]
    if notes:
        lines.append("")
        lines += ["%s: %s" % (row.workload, row.note) for row in notes]
    return "\n".join(line.rstrip() for line in lines) + "\n"
