"""How the SQLite mycelium turns documents into rows.

Rows are made before a write transaction takes the lock, so that the lock is
held only while SQLite inserts them; each object is turned into JSON once per
write (the jobs of a loop share their call site, and their texts).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..values import dumps
from .base import RunDocument, index_key


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


# A job's parameters are stored in its own row when their JSON texts add up to
# at most this many characters: one row per job to insert, read with its claim.
# Longer ones go to the parameters table, which keeps job rows small to scan,
# and a large value out of the rows a status change rewrites.
INLINE_PARAMETERS = 1024


# The columns of a job's row a write gives after its id and run id. A job
# ready at once (no dependency, no guard) leaves those of its state to their
# defaults: most jobs of a large run are such, and bind fewer values.
READY_COLUMNS = (
    "idx",
    "elf_uid",
    "task",
    "task_revision",
    "site",
    "max_attempts",
    "position",
    "parameters",
)
STATE_COLUMNS = (
    "status",
    "unfinished_dependencies",
    "guard",
    "decided",
    "dependency_count",
    "skipped_dependencies",
)


def insert_statement(columns: tuple, first: int, run_id: int, created_at: float) -> str:
    """The INSERT of job rows with ``columns`` (after the number, see
    JobRows): the id, run id and creation time, the same expression for
    every row, are in the statement rather than in the rows."""
    return "INSERT INTO jobs (id, run_id, created_at, %s) VALUES (%d + ?, %d, %r%s)" % (
        ", ".join(columns),
        first,
        run_id,
        created_at,
        ", ?" * len(columns),
    )


@dataclass
class JobRows:
    """The rows of one write's jobs, each beginning with the job's number in
    the write (its id is the first id plus that number); see
    ``insert_statement``."""

    created_at: float
    ready: list  # the number, then READY_COLUMNS
    waiting: list  # the number, then READY_COLUMNS and STATE_COLUMNS
    parameters: list  # the number, then the parameters table's other columns


def job_rows(jobs, now: float, states: dict | None = None) -> JobRows:
    """The rows of ``jobs`` (parameters as ``stored_parameters`` says).
    ``states`` overrides, by job index, (status, unfinished dependencies,
    skipped dependencies). The jobs of a loop share their call site: each
    site is written once."""
    texts = JsonTexts()
    rows = JobRows(now, [], [], [])
    for number, job in enumerate(jobs):
        inline, table = stored_parameters(job.arguments, job.references, texts)
        if table:
            rows.parameters += [(number, *row) for row in table]
        row = (
            number,
            job.index,
            job.elf_uid,
            job.task,
            job.task_revision,
            texts.text(job.site),
            job.max_attempts,
            job.order or index_key(job.index),
            inline,
        )
        state = _state(job, states)
        if state is None:
            rows.ready.append(row)
        else:
            rows.waiting.append(row + state)
    return rows


def _state(job, states: dict | None) -> tuple | None:
    """The STATE_COLUMNS of a job, None when they are the defaults (ready)."""
    dependencies = len(job.dependencies)
    if states is None:
        if not dependencies and job.guard is None:
            return None
        status, unfinished, skipped = (
            "pending" if dependencies else "ready",
            dependencies,
            0,
        )
    else:
        status, unfinished, skipped = states[job.index]
        if status == "ready" and not dependencies and job.guard is None:
            return None
    return (
        status,
        unfinished,
        None if job.guard is None else dumps(job.guard),
        int(job.guard is None and skipped == 0),
        dependencies,
        skipped,
    )


def stored_parameters(
    arguments: dict, references, texts: JsonTexts
) -> tuple[str | None, list]:
    """How a job's parameters (values by name, and the names of those
    holding references) are stored: the JSON text of [values by name, names
    holding references] for its row, or None and their rows for the
    parameters table (position, name, JSON text, has_refs)."""
    for value in arguments.values():
        kind = type(value)
        if not (
            kind is int
            or (kind is str and len(value) <= 64)
            or value is None
            or kind is float
            or kind is bool
        ):  # values whose JSON text is short: no text of their own needed
            break
    else:
        text = _inline(arguments, references)
        if len(text) <= INLINE_PARAMETERS:
            return text, []
    values = [texts.text(value) for value in arguments.values()]
    if sum(map(len, values)) <= INLINE_PARAMETERS:
        return _inline(arguments, references), []
    return None, [
        (position, name, value, int(name in references))
        for position, (name, value) in enumerate(zip(arguments, values))
    ]


def _inline(arguments: dict, references) -> str:
    """The JSON text of a job row's parameters."""
    return dumps([arguments, sorted(references) if references else ()])


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
