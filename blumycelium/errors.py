"""Every exception blumycelium raises on purpose.

One root, a few subtrees. Messages say what was expected, what was found, and
where (flow file and line, job, parameter). Exceptions from sqlite3 and from
python-arango are turned into these at the store boundary, chained with
``from``.

    BlumyceliumError
    ├── CompileError                 a flow is not valid; carries diagnostics
    ├── ElfDefinitionError           an elf class or task is malformed
    ├── NotStorableError             a value cannot be stored exactly
    ├── StoreError                   the mycelium cannot do what was asked
    │   ├── StoreUnavailableError    cannot open or reach the store
    │   ├── NotFoundError            no such run, job or elf
    │   └── MissingDependencyError   an optional extra is not installed
    └── ExecutionError               something went wrong while running
        ├── ExpressionError          an expression node is refused or fails
        ├── TaskContractError        a task broke its annotations
        ├── TaskTimeoutError         a task ran past its timeout
        ├── WorkerLostError          a worker died with a job in hand
        └── RunFailedError           a run ended with failed jobs

CompileError, ElfDefinitionError and NotStorableError are also TypeErrors, and
NotFoundError a LookupError, TaskTimeoutError a TimeoutError, so code that
catches the built-in kinds keeps working.
"""

from __future__ import annotations

import json


class BlumyceliumError(Exception):
    """The root of every error raised by blumycelium on purpose."""


class CompileError(BlumyceliumError, TypeError):
    """A flow cannot be compiled or submitted as written.

    ``diagnostics`` holds the records (location, message, hint); the message is
    their rendering, one block per record, like a compiler's output.
    """

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class ElfDefinitionError(BlumyceliumError, TypeError):
    """An elf class or one of its tasks is malformed (annotations, names)."""


class NotStorableError(BlumyceliumError, TypeError):
    """A value cannot be stored and read back exactly.

    ``path`` names where it is inside the value, for example
    ``weights[3]["when"]``; ``reason`` says what is wrong there.
    """

    def __init__(self, reason: str, segments=()):
        self.reason = reason
        self.segments = list(segments)
        self.root = "value"
        super().__init__(reason)

    @property
    def path(self) -> str:
        parts = [self.root]
        segments = self.segments
        if len(segments) > 12:
            segments = segments[:6] + [...] + segments[-2:]
        for segment in segments:
            if segment is ...:
                parts.append("...")
                continue
            text = json.dumps(segment) if isinstance(segment, str) else repr(segment)
            parts.append("[%s]" % text)
        return "".join(parts)

    def __str__(self) -> str:
        return "%s: %s" % (self.path, self.reason)


class StoreError(BlumyceliumError):
    """The mycelium could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or reached."""


class NotFoundError(StoreError, LookupError):
    """No run, job or elf with that id exists in the store."""


class MissingDependencyError(StoreError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class RunKeyConflictError(BlumyceliumError, ValueError):
    """A ``run_key`` already names a run of another flow or other arguments."""


class ExecutionError(BlumyceliumError):
    """Something went wrong while a job or a run was executing."""


class ExpressionError(ExecutionError):
    """An expression node was refused by the evaluator or failed to evaluate."""


class TaskContractError(ExecutionError, TypeError):
    """A task received or returned a value its annotations do not allow."""


class TaskTimeoutError(ExecutionError, TimeoutError):
    """A task ran longer than its timeout and was stopped."""


class WorkerLostError(ExecutionError):
    """The worker running a job stopped renewing its lease (it died)."""


class RunFailedError(ExecutionError):
    """A run ended with failed jobs; the message names the first failure."""

    def __init__(self, message: str, run_id=None, job=None, failure=None):
        self.run_id = run_id
        self.job = job
        self.failure = failure
        super().__init__(message)
