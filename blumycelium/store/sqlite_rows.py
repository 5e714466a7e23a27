"""How the SQLite mycelium turns documents into rows.

Rows are made before a write transaction takes the lock, so that the lock is
held only while SQLite inserts them; each object is turned into JSON once per
write (the jobs of a loop share their call site, and their texts).
"""

from __future__ import annotations

from ..values import dumps
from .base import RunDocument, order_key


def run_row(run: RunDocument, now: float) -> tuple:
    finished = not run.jobs
    return (
        run.flow,
        run.flow_revision,
        run.run_key,
        dumps(run.arguments),
        dumps(run.result),
        dumps(sorted(run.result_dependencies)),
        "done" if finished else "running",
        len(run.jobs),
        len(run.jobs),
        now,
        now if finished else None,
        len(run.jobs),
    )


def job_rows(jobs, now: float, states: dict | None = None) -> list[tuple]:
    """The rows of ``jobs`` but their id and run id; ``states`` overrides, by
    job index, (status, unfinished dependencies, skipped dependencies). The
    jobs of a loop share their call site: each site is written once."""
    texts = JsonTexts()
    states = states or {}
    rows = []
    for job in jobs:
        dependencies = len(job.dependencies)
        status, unfinished, skipped = states.get(
            job.index, ("pending" if dependencies else "ready", dependencies, 0)
        )
        rows.append(
            (
                job.index,
                job.elf_uid,
                job.task,
                job.task_revision,
                texts.text(job.site),
                status,
                unfinished,
                now,
                job.max_attempts,
                None if job.guard is None else texts.text(job.guard),
                int(job.guard is None and skipped == 0),
                dependencies,
                skipped,
                job.order or order_key(job.index),
            )
        )
    return rows


def parameter_rows(jobs) -> list[tuple]:
    """(job's number in ``jobs``, position, name, JSON text, has_refs)."""
    texts = JsonTexts()
    return [
        (number, position, p.name, texts.text(p.value), int(p.has_refs))
        for number, job in enumerate(jobs)
        for position, p in enumerate(job.parameters)
    ]


class JsonTexts:
    """JSON texts of the documents of one write, each object written once
    (the objects stay alive for the whole write, so their ids are theirs)."""

    def __init__(self):
        self.known: dict[int, str] = {}

    def text(self, document) -> str:
        key = id(document)
        text = self.known.get(key)
        if text is None:
            text = self.known[key] = dumps(document)
        return text
