"""The mycelium's interface: what every store backend does, and guarantees.

A backend stores *documents*: the dataclasses below, whose values are
JSON-ready structures produced by ``blumycelium.values`` (a backend stores
them as they are and never interprets them). It keeps:

- elves (uid, class, documentation) and their revisions by class source hash;
- task revisions (source, documentation, signature, result keys);
- flow revisions (name, file, source) and runs (flow, arguments, status, the
  return value as a template over job results);
- jobs (run, index in the run, elf uid, task, task revision, call site,
  status, count of unfinished dependencies, attempts, timestamps), their
  parameters (one per argument, a template that may hold references and
  expression nodes), job-to-job edges, results, and failures (exception type,
  message, traceback, deduplicated by a hash of the traceback, linked to the
  job and the attempt).

Job statuses: ``pending`` (waiting for dependencies), ``ready``, ``running``,
``done``, ``failed``, ``upstream_failed``, ``skipped``, ``cancelled``. Run
statuses: ``running``, ``done``, ``failed``, ``cancelled``.

Every backend keeps these rules, and the conformance suite checks them:

1. :meth:`submit_run` writes a whole run in one transaction: a crash leaves
   all of it or none of it.
2. Readiness is pushed: :meth:`complete_job` stores the result, marks the job
   ``done``, decrements its dependents' counters and makes those that reach
   zero ``ready``, and counts the run down, in one transaction.
3. :meth:`claim_job` is atomic: a ready job is handed to one caller only, and
   the ready jobs of an elf are handed out oldest run first, and within a run
   in program order (:func:`order_key`).
   A job with a guard, or with a skipped dependency, is not claimable until
   :meth:`decide_job` has decided it; a skipped job releases its dependents
   like a completed one, without a result.
4. :meth:`fail_job` marks the job ``failed`` and every job downstream of it,
   transitively, ``upstream_failed``, with the failure linked, in one
   transaction; or, given ``retry_at``, records the failed attempt and makes
   the job ``ready`` again, claimable from that time on.
5. Every claim is an *attempt* with a *lease*: the attempt number fences
   completion, failure, release and renewal, so that a worker whose lease
   expired and whose job was handed to another cannot store an outcome.
   :meth:`reap_expired_leases` gives expired jobs back (or fails them when
   their attempts are spent), recording a failure for the lost attempt.
6. :meth:`expand_job` adds the copies of a loop's template to a run in the
   transaction that completes the expand job, so a fan-out happens once.
7. :meth:`cancel_run` cancels every job of the run not yet started, in one
   transaction; :meth:`retry_jobs` makes failed jobs ready and their
   ``upstream_failed`` downstream pending again, keeping every result.

Workers go through the batch methods at the end of the class
(:meth:`complete_and_claim`, :meth:`release_jobs`, :meth:`current_claims`)
and runs are polled through :meth:`run_progress`. Each has a default built
from the methods above, one job at a time, so a backend only overrides them
to save round trips; SQLite completes a worker's finished jobs and claims its
next batch in one transaction.

Ids of runs and jobs are strings chosen by the backend.
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

from ..errors import StoreError

JOB_STATUSES = (
    "pending",
    "ready",
    "running",
    "done",
    "failed",
    "upstream_failed",
    "skipped",
    "cancelled",
)
FINISHED_JOB_STATUSES = frozenset(
    {"done", "failed", "upstream_failed", "skipped", "cancelled"}
)
RUN_STATUSES = ("running", "done", "failed", "cancelled")
FINISHED_RUN_STATUSES = frozenset({"done", "failed", "cancelled"})


@dataclass
class ElfDocument:
    uid: str
    class_name: str
    module: str
    documentation: str | None
    revision: str
    source: str | None


@dataclass
class TaskDocument:
    revision: str
    elf_class: str
    name: str
    source: str | None
    documentation: str | None
    signature: str
    result_keys: list | None


def cancelled_run_not_retried(run_id: str) -> StoreError:
    """What retry_jobs raises for a cancelled run (every backend)."""
    return StoreError(
        "run %s was cancelled; submit it again instead of retrying it" % run_id
    )


def order_key(*numbers: int) -> str:
    """A text key that sorts as the tuple of ``numbers`` does: each number is
    its digit count (as a letter) then its digits. A job's key is its index in
    the run; a copy made by a fan-out extends its expand job's key with the
    element's number and the job's index in the loop's template, so that
    sorting by key lists a run's jobs in the order the eager flow makes the
    calls, and workers claim a run's ready jobs in that order."""
    return "".join([index_key(number) for number in numbers])


def index_key(number: int) -> str:
    """The order key of one number (see order_key)."""
    digits = str(number)
    return _DIGIT_COUNTS[len(digits)] + digits


_DIGIT_COUNTS = " abcdefghijklmnopqrstuvwxyz"  # a number's digit count, as a letter


@dataclass(slots=True)
class ParameterDocument:
    name: str
    value: object
    has_refs: bool
    # a backend's hint: the value holds no tagged dict, so decoding it gives
    # it back unchanged (a worker then skips walking a large value)
    plain: bool = field(default=False, compare=False)


@dataclass(slots=True)
class JobDocument:
    index: int
    elf_uid: str
    task: str
    task_revision: str
    site: dict
    arguments: dict  # the parameters' JSON-ready values by name, in order
    dependencies: list[int]
    max_attempts: int = 1
    guard: object = None  # a template: the job runs only when it is true
    order: str | None = None  # program order (see order_key); None: the index
    references: Collection[str] = ()  # the names of arguments holding references

    @property
    def parameters(self) -> list[ParameterDocument]:
        return [
            ParameterDocument(name, value, name in self.references)
            for name, value in self.arguments.items()
        ]


@dataclass
class RunDocument:
    flow: str
    flow_revision: str
    flow_file: str
    flow_line: int
    flow_source: str
    arguments: dict
    result: object
    result_dependencies: list[int]
    jobs: list[JobDocument]
    run_key: str | None = None


@dataclass
class FailureDocument:
    exception_type: str
    message: str
    traceback: str
    task_revision: str | None


@dataclass
class ClaimedJob:
    """A job handed to a worker, with its parameters (JSON-ready)."""

    id: str
    run_id: str
    index: int
    elf_uid: str
    task: str
    task_revision: str
    attempt: int
    site: dict
    parameters: list[ParameterDocument] = field(default_factory=list)
    problem: str | None = None  # why the parameters could not be read
    attempt_base: int = 0  # attempts made before the last manual retry
    guard: object = None
    order: str = ""


@dataclass
class UndecidedJob:
    """A ready job whose guard (or skipped dependencies) must be decided."""

    id: str
    run_id: str
    index: int
    guard: object
    dependency_count: int
    skipped_dependencies: int
    elf_uid: str = ""


@dataclass
class JobRecord:
    id: str
    run_id: str
    index: int
    elf_uid: str
    task: str
    task_revision: str
    status: str
    site: dict
    attempts: int
    unfinished_dependencies: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    attempt_base: int = 0
    max_attempts: int = 1
    not_before: float | None = None
    order: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunRecord:
    id: str
    flow: str
    flow_revision: str
    status: str
    arguments: dict
    result: object
    result_dependencies: list[int]
    jobs_total: int
    jobs_unfinished: int
    jobs_failed: int
    submitted_at: float
    finished_at: float | None
    run_key: str | None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES


@dataclass
class RunProgress:
    """What following a run needs: its status and counts, without its
    arguments and return value (which may be large)."""

    id: str
    flow: str
    status: str
    jobs_total: int
    jobs_unfinished: int
    jobs_failed: int

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES


@dataclass(frozen=True)
class Completion:
    """A job's attempt that ran to its end, and its result (JSON-ready)."""

    job_id: str
    attempt: int
    result: object


@dataclass
class WorkerDocument:
    id: str
    host: str
    pid: int
    elf_uid: str
    lease: float


@dataclass
class WorkerRecord:
    id: str
    host: str
    pid: int
    elf_uid: str
    lease: float
    started_at: float
    heartbeat_at: float
    job_id: str | None
    stopped_at: float | None

    def is_lost(self, now: float) -> bool:
        """Not stopped, and not heard from within its lease."""
        return self.stopped_at is None and now - self.heartbeat_at > self.lease


@dataclass
class FailureRecord:
    id: str
    job_id: str
    attempt: int
    exception_type: str
    message: str
    traceback: str
    traceback_hash: str
    task_revision: str | None
    created_at: float


class StoreBackend(abc.ABC):
    """One mycelium. Backends convert their own errors into StoreError."""

    url: str

    # -- set-up ---------------------------------------------------------------

    @abc.abstractmethod
    def init(self) -> None:
        """Create the schema if it is missing (idempotent)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store reopens them on next use."""

    @abc.abstractmethod
    def drop_jobs(self) -> None:
        """Delete runs, jobs and all that hangs on them; keep elves."""

    @abc.abstractmethod
    def drop(self) -> None:
        """Delete every document of the mycelium."""

    # -- elves ----------------------------------------------------------------

    @abc.abstractmethod
    def register_elf(self, elf: ElfDocument, tasks: list[TaskDocument]) -> None:
        """Record an elf and its task revisions (idempotent)."""

    @abc.abstractmethod
    def get_elf(self, uid: str) -> dict | None:
        """The elf's record with its revisions, or None."""

    # -- runs -----------------------------------------------------------------

    @abc.abstractmethod
    def submit_run(self, run: RunDocument) -> str:
        """Write a whole run in one transaction; return its id."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """The run; NotFoundError when there is none."""

    # -- the worker's side ----------------------------------------------------

    @abc.abstractmethod
    def claim_job(
        self, elf_uid: str, worker: str, lease: float = 30.0
    ) -> ClaimedJob | None:
        """Atomically take the oldest claimable job of ``elf_uid``, or None.

        The attempt holds a lease of ``lease`` seconds."""

    @abc.abstractmethod
    def fetch_results(self, run_id: str, indices) -> dict[int, object]:
        """Results of the given jobs of a run, by job index."""

    @abc.abstractmethod
    def complete_job(self, job_id: str, attempt: int, result) -> bool:
        """Store the result and push readiness; False unless that attempt runs."""

    @abc.abstractmethod
    def fail_job(
        self,
        job_id: str,
        attempt: int,
        failure: FailureDocument,
        retry_at: float | None = None,
    ) -> bool:
        """Record the failed attempt; fail the job (and its downstream), or
        make it ready again from ``retry_at`` on."""

    @abc.abstractmethod
    def release_job(self, job_id: str, attempt: int) -> None:
        """Give a running job back (its worker stopped before finishing it)."""

    @abc.abstractmethod
    def renew_lease(self, job_id: str, attempt: int, worker: str, lease: float) -> bool:
        """Extend the attempt's lease; False when the job is no longer its."""

    @abc.abstractmethod
    def reserve_indices(self, run_id: str, count: int) -> int:
        """Reserve ``count`` new job indices in a run; return the first."""

    @abc.abstractmethod
    def expand_job(
        self,
        job_id: str,
        attempt: int,
        jobs: list[JobDocument],
        gather_index: int,
        gather_parameters: list[ParameterDocument],
        gather_dependencies: list[int],
    ) -> bool:
        """Complete an expand job: add ``jobs`` to its run, give the gather job
        its parameters and dependencies, in one transaction. False (and
        nothing written) unless that attempt of the expand job is running."""

    @abc.abstractmethod
    def undecided_jobs(self, limit: int = 50) -> list[UndecidedJob]:
        """Ready jobs with a guard, or with skipped dependencies, to decide."""

    @abc.abstractmethod
    def decide_job(self, job_id: str, runs: bool, attempt: int | None = None) -> bool:
        """Let a decided job be claimed, or mark it ``skipped`` and push that to
        its dependents as a completion would (skipped counts as finished).
        ``attempt`` skips a job already claimed."""

    @abc.abstractmethod
    def reap_expired_leases(self) -> int:
        """Requeue (or fail) running jobs whose lease expired; how many."""

    # -- operators' actions ---------------------------------------------------

    @abc.abstractmethod
    def cancel_run(self, run_id: str) -> int:
        """Cancel every job of the run not yet started; how many."""

    @abc.abstractmethod
    def retry_jobs(self, run_id: str, job_id: str | None = None) -> int:
        """Re-run the run's failed jobs (or one) and what they held up."""

    # -- workers --------------------------------------------------------------

    @abc.abstractmethod
    def register_worker(self, worker: WorkerDocument) -> None:
        """Record a worker that starts serving an elf."""

    @abc.abstractmethod
    def worker_heartbeat(self, worker_id: str, job_id: str | None) -> None:
        """The worker is alive, holding ``job_id`` (or nothing)."""

    @abc.abstractmethod
    def stop_worker(self, worker_id: str) -> None:
        """The worker stopped cleanly."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerRecord]:
        """Every worker recorded, newest first."""

    @abc.abstractmethod
    def changes_token(self):
        """A cheap value that changes when another process writes the store."""

    # -- reading --------------------------------------------------------------

    @abc.abstractmethod
    def get_job(self, job_id: str) -> JobRecord:
        """The job; NotFoundError when there is none."""

    @abc.abstractmethod
    def list_jobs(self, elf_uid=None, run_id=None, statuses=None) -> list[JobRecord]:
        """Jobs matching every given filter, in submission order."""

    @abc.abstractmethod
    def count_jobs(self, run_id: str) -> dict[str, int]:
        """How many jobs of the run have each status."""

    @abc.abstractmethod
    def job_parameters(self, job_id: str) -> list[ParameterDocument]:
        """The stored parameters of a job, in signature order."""

    @abc.abstractmethod
    def job_result(self, job_id: str):
        """The stored result of a job (JSON-ready), or None."""

    @abc.abstractmethod
    def list_failures(self, run_id=None, job_id=None) -> list[FailureRecord]:
        """Failures linked to jobs, oldest first."""

    @abc.abstractmethod
    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The most recent runs, newest first."""

    @abc.abstractmethod
    def list_edges(self, run_id: str) -> list[tuple[int, int]]:
        """The run's job-to-job edges, as (from index, to index)."""

    @abc.abstractmethod
    def list_elves(self) -> list[dict]:
        """Every registered elf, as get_elf returns it."""

    @abc.abstractmethod
    def get_task_revision(self, revision: str) -> dict | None:
        """A task revision: elf class, task, source, documentation, signature."""

    @abc.abstractmethod
    def get_flow_revision(self, revision: str) -> dict | None:
        """A flow revision: name, file, first line, source."""

    @abc.abstractmethod
    def purge_runs(self, before: float) -> int:
        """Delete the finished runs that finished before ``before`` (a
        timestamp) and everything that hangs on them; how many runs."""

    # -- batches and polling: defaults from the methods above ----------------

    def complete_and_claim(
        self,
        completions: list[Completion],
        elf_uids: list[str],
        worker: str,
        lease: float = 30.0,
        limit: int = 1,
    ) -> tuple[list[bool], list[ClaimedJob]]:
        """Store ``completions`` as :meth:`complete_job` does (each fenced by
        its attempt), then claim up to ``limit`` jobs: the claimable jobs of
        the first uid of ``elf_uids``, oldest first, then those of the next.

        Every job claimed is an attempt with its own lease, which the caller
        renews until it has run the job or given it back with
        :meth:`release_jobs`; if the caller dies, :meth:`reap_expired_leases`
        gives them back. Only the first job of a batch may have been attempted
        before (a retry, or a job whose worker died), so that a job that kills
        its worker does not spend the attempts of fresh jobs claimed with it.
        Returns whether each completion was stored, and the jobs claimed, in
        the order to run them. This default claims one job at a time."""
        stored = [self.complete_job(c.job_id, c.attempt, c.result) for c in completions]
        for uid in elf_uids if limit > 0 else ():
            job = self.claim_job(uid, worker, lease)
            if job is not None:
                return stored, [job]
        return stored, []

    def release_jobs(self, jobs: list[tuple[str, int]]) -> None:
        """Give back jobs claimed and not started, as (job id, attempt)."""
        for job_id, attempt in jobs:
            self.release_job(job_id, attempt)

    def current_claims(self, jobs: list[tuple[str, int]]) -> set[str]:
        """The ids of those jobs, given as (job id, attempt), that their
        attempt still holds, in a run still running: a worker checks the jobs
        of its batch before it starts them, when another process wrote
        meanwhile (it may have cancelled their run)."""
        current = set()
        for job_id, attempt in jobs:
            job = self.get_job(job_id)
            if (
                job.status == "running"
                and job.attempts == attempt
                and self.run_progress(job.run_id).status == "running"
            ):
                current.add(job_id)
        return current

    def run_progress(self, run_id: str) -> RunProgress:
        """The run's status and counts; NotFoundError when there is none."""
        run = self.get_run(run_id)
        return RunProgress(
            run.id,
            run.flow,
            run.status,
            run.jobs_total,
            run.jobs_unfinished,
            run.jobs_failed,
        )

    def run_result(self, run_id: str):
        """The run's return value as stored: a template over job results."""
        return self.get_run(run_id).result
