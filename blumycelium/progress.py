"""A one-line progress bar for ``run.wait(progress=True)``.

Drawn on a terminal only (nothing at all is written otherwise), redrawn in
place at most ten times a second::

    run 7  [###########---------]  55/100 done  3 running  1 failed  0:04
"""

from __future__ import annotations

import sys
import time

_WIDTH = 24
_SHOWN = ("running", "failed", "upstream_failed", "cancelled", "skipped")


class ProgressBar:
    """Counts of a run's jobs by status, drawn on one terminal line."""

    def __init__(self, run_id: str, stream=None):
        self.run_id = run_id
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last_drawn = 0.0

    @staticmethod
    def wanted(stream=None) -> bool:
        stream = stream or sys.stderr
        return hasattr(stream, "isatty") and stream.isatty()

    def update(self, counts: dict, total: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_drawn < 0.1:
            return
        self.last_drawn = now
        self.stream.write("\r" + self.render(counts, total) + ("\n" if final else ""))
        self.stream.flush()

    def render(self, counts: dict, total: int) -> str:
        done = counts.get("done", 0)
        finished = sum(
            counts.get(s, 0)
            for s in ("done", "failed", "upstream_failed", "cancelled", "skipped")
        )
        filled = _WIDTH * finished // total if total else _WIDTH
        elapsed = int(time.monotonic() - self.started)
        parts = [
            "run %s  [%s%s]  %d/%d done"
            % (self.run_id, "#" * filled, "-" * (_WIDTH - filled), done, total)
        ]
        parts += [
            "%d %s" % (counts[s], s.replace("_", " ")) for s in _SHOWN if counts.get(s)
        ]
        parts.append("%d:%02d" % divmod(elapsed, 60))
        return "  ".join(parts)
