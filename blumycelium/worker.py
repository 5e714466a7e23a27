"""The worker loop: how an elf runs its jobs.

A worker serves one elf (one uid) in one process. It reads the claimable
jobs of that uid (``ready``, and past their retry delay), claimed atomically
and oldest first; their parameters; and the results those parameters
reference. It writes each attempt's result or failure through the store,
which pushes readiness to the dependents in the same transaction.

Jobs are claimed in *batches*: the worker hands in the results of the jobs it
finished and claims its next ones in one store call (``complete_and_claim``,
one SQLite transaction) instead of two transactions a job. A batch holds
about ``BATCH_SECONDS`` of work, judged from how long this worker's jobs
took (one job at first, and after a slow one), at most ``MAX_BATCH`` jobs:
fast jobs go in bulk, slow ones one at a time, the rest left to other
workers. A result waits in the worker until the batch is used up, at most
``HOLD_SECONDS`` (then the heartbeat thread stores it, while a task that
turned out slow runs). The heartbeat renews the lease of every job held.
When another process wrote since the claim, the jobs of a batch are checked
before they start (their run may have been cancelled). Jobs left when the
worker stops are given back without counting an attempt.

For each job (an *attempt*, holding a lease of ``lease`` seconds):

1. the parameters holding references or expression nodes are developed
   (``develop.py``) and checked against the task's argument annotations;
2. the task method runs in the worker's main thread, under its timeout;
3. its return value is checked against the return annotation and encoded;
4. the result is stored and the job marked ``done``. An exception instead is
   recorded at once (type, message, traceback, task revision) as the failure
   of that attempt; under the task's retry policy the job becomes ``ready``
   again after the backoff delay, otherwise it is ``failed`` and its
   downstream ``upstream_failed``.

A KeyboardInterrupt, a SystemExit, or the end of the grace period gives the
job back (``ready``) before the worker stops, with the jobs of its batch.

``serve`` repeats this until SIGINT or SIGTERM: a signal stops the claiming,
and the job in hand is finished, or given back once ``grace`` seconds have
passed. An idle worker sleeps, doubling its pause from ``idle_min`` to
``idle_max`` (5 ms, the longest a new job waits for it), and asks the store
again when the store's change token moves, or every second for delayed
retries: idle workers cost next to nothing and never take the write lock.
Every few seconds a worker gives back the jobs whose lease expired.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

from .compiler.graph import SYSTEM_ELF
from .develop import Developer, develop_templates, holds, referenced_jobs
from .errors import ExecutionError, StoreError
from .interrupts import Heartbeat, InstalledDeadlines, StopNow
from .policy import NO_RETRY
from .store.base import ClaimedJob, Completion, FailureDocument, WorkerDocument
from .system_jobs import run_system_job
from .values import SkippedMarker, decode

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0
MAX_MESSAGE = 10_000
MAX_TRACEBACK = 100_000
BATCH_SECONDS = 0.005
MAX_BATCH = 32
HOLD_SECONDS = 0.02  # the longest a finished job's result waits in the worker
# Pauses between attempts to store a job's outcome when the store is busy
# beyond its own lock timeout (each attempt already waits that long).
_PERSIST_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)
_TIMED_CHECK = 1.0
_EXPANDED = object()  # an expand job completes itself, with its expansion
_NOTHING = object()  # an attempt whose outcome is stored already
_FAILED = object()  # an attempt whose failure is recorded


@dataclass(frozen=True)
class JobContext:
    """What a running task may know of its job: ``self.current_job``.

    ``job_id`` (with ``attempt``) makes a natural idempotency key for what a
    task writes elsewhere: a job re-run after its worker died has the same
    ``job_id`` and a higher ``attempt``.
    """

    job_id: str
    run_id: str
    index: int
    attempt: int


class ElfWorker:
    """Runs the jobs of one elf instance against its mycelium."""

    def __init__(self, elf, mycelium, lease: float = DEFAULT_LEASE):
        if lease <= 0:
            raise ValueError("the lease must be a positive number of seconds")
        self.elf = elf
        self.mycelium = mycelium
        self.lease = float(lease)
        self.specs = type(elf).__blumycelium_tasks__
        self.worker_id = "%s:%d:%s" % (
            socket.gethostname(),
            os.getpid(),
            secrets.token_hex(3),
        )
        self.deadlines = InstalledDeadlines()
        self._heartbeat: Heartbeat | None = None
        self._stopping = False
        self._signals = 0
        self._next_reap = 0.0
        self._held: deque[ClaimedJob] = deque()  # claimed, not started
        self._finished: list[Completion] = []  # run, result not stored yet
        self._finished_at = 0.0  # when the first of them finished
        self._finished_lock = threading.Lock()  # the heartbeat stores late ones
        self._leases: dict[str, int] = {}  # every job held: id -> attempt
        self._claim_token = None  # the store's change token before the claim
        self._job_seconds: float | None = None  # how long jobs take, smoothed

    @property
    def store(self):
        return self.mycelium.store

    # -- loops ----------------------------------------------------------------

    def run_ready_jobs(
        self, store_failures: bool = True, raise_exceptions: bool = True
    ) -> int:
        """Run claimable jobs until none is left; return how many ran."""
        self.mycelium.register_elf(self.elf, store_source=True)
        self._reap(force=True)
        ran = 0
        with self._working(registered=False):
            while True:
                job = self._next_job()
                if job is None:
                    return ran
                ran += 1
                self._run_in_batch(job, store_failures, raise_exceptions)

    def serve(
        self,
        idle_min: float = 0.0005,
        idle_max: float = 0.005,
        handle_signals: bool = True,
        max_jobs: int | None = None,
        grace: float | None = 30.0,
    ) -> int:
        """Run jobs as they become claimable until stopped; how many ran.

        After SIGINT or SIGTERM the job in hand finishes, or is given back
        once ``grace`` seconds have passed (None: always finish it).
        """
        self.mycelium.register_elf(self.elf, store_source=True)
        self.store.register_worker(
            WorkerDocument(
                self.worker_id,
                socket.gethostname(),
                os.getpid(),
                self.elf.uid,
                self.lease,
            )
        )
        self._stopping = False
        self.grace = grace
        previous = self._install_handlers() if handle_signals else None
        logger.info("elf %r serves as worker %s", self.elf.uid, self.worker_id)
        ran = 0
        try:
            with self._working(registered=True):
                while not self._stopping and (max_jobs is None or ran < max_jobs):
                    job = self._claim(None if max_jobs is None else max_jobs - ran)
                    if job is None:
                        self._wait_for_changes(self._claim_token, idle_min, idle_max)
                        continue
                    self._run_in_batch(job, True, False)
                    ran += 1
        except StopNow:
            pass
        finally:
            self._restore_handlers(previous)
            self._persist_quietly(self.store.stop_worker, self.worker_id)
        logger.info("elf %r stops after %d jobs", self.elf.uid, ran)
        return ran

    def stop(self, grace: float | None = None) -> None:
        """Ask ``serve`` to return after the job in hand (given back after
        ``grace`` seconds, when given)."""
        self._stopping = True
        self.deadlines.request_stop(grace)

    def _claim(self, budget: int | None) -> ClaimedJob | None:
        try:
            self._reap()
            return self._next_job(budget)
        except StoreError:
            logger.exception("elf %r cannot claim a job now; retrying", self.elf.uid)
            self._pause(1.0)
            return None

    def _reap(self, force: bool = False) -> None:
        """Give back the jobs of dead workers (every few seconds at most)."""
        now = time.monotonic()
        if not force and now < self._next_reap:
            return
        self._next_reap = now + min(5.0, self.lease / 2)
        reaped = self.store.reap_expired_leases()
        if reaped:
            logger.warning(
                "worker %s gave back %d job(s) whose lease expired",
                self.worker_id,
                reaped,
            )

    # -- batches --------------------------------------------------------------

    def _next_job(self, budget: int | None = None) -> ClaimedJob | None:
        """The next job of the batch, after handing in the finished ones and
        claiming a new batch when this one is used up; None when there is
        no claimable job."""
        if not self._held:
            handed_in = bool(self._finished)
            self._exchange(budget)
            if handed_in and not self._held:
                self._exchange(budget)  # what it released may need deciding
        while self._held:
            job = self._held.popleft()
            if self._still_held(job):
                return job
        return None

    def _exchange(self, budget: int | None) -> None:
        """Hand in the finished jobs and claim the next batch, in one call:
        guarded jobs are decided first, system jobs (any worker runs those)
        come before this elf's."""
        self._claim_token = self.store.changes_token()  # before: no lost wakeup
        self.decide_guards()
        limit = self._batch_size(budget)
        if self._finished:
            claimed = self._hand_in(limit)
        else:
            claimed = self._claim_batch([], limit)
        for job in claimed:
            self._leases[job.id] = job.attempt
        self._held.extend(claimed)

    def _claim_batch(self, finished: list[Completion], limit: int) -> list:
        stored, claimed = self.store.complete_and_claim(
            finished,
            [SYSTEM_ELF, self.elf.uid],
            self.worker_id,
            self.lease,
            limit,
        )
        for completion, was_stored in zip(finished, stored):
            self._leases.pop(completion.job_id, None)
            if not was_stored:
                _log_lost(completion.job_id, completion.attempt, self.elf.uid)
        return claimed

    def _hand_in(self, limit: int = 0, since: float | None = None) -> list:
        """Store the finished jobs' results, claiming up to ``limit`` jobs in
        the same call, waiting out a busy store (see _persistently). The
        heartbeat thread passes ``since``: only results held since then."""
        with self._finished_lock:
            if since is not None and (since != self._finished_at or not self._finished):
                return []  # stored meanwhile; the next ones are not late yet
            finished, self._finished = self._finished, []
        ids = [completion.job_id for completion in finished]
        try:
            claimed = self._persistently(
                lambda: self._claim_batch(finished, limit), ids
            )
        except BaseException:
            with self._finished_lock:  # not stored: the next exchange tries
                self._finished[:0] = finished
            raise
        if claimed is None:
            for job_id in ids:
                self._leases.pop(job_id, None)
            return []
        return claimed

    def _batch_size(self, budget: int | None) -> int:
        """How many jobs to claim: about BATCH_SECONDS of work."""
        size = 1
        if self._job_seconds is not None:
            size = int(BATCH_SECONDS / max(self._job_seconds, 1e-6))
        size = max(1, min(MAX_BATCH, size))
        return size if budget is None else max(0, min(size, budget))

    def _still_held(self, job: ClaimedJob) -> bool:
        """Whether the job is still this worker's to start. It is, unless
        another process wrote since the batch was last checked and the job's
        run was cancelled (it is then given back, and becomes cancelled) or
        the job went to another worker; the rest of the batch is checked at
        the same time."""
        token = self.store.changes_token()
        if token == self._claim_token:
            return True
        batch = [job, *self._held]
        current = self.store.current_claims([(j.id, j.attempt) for j in batch])
        self._claim_token = token
        lost = [j for j in batch if j.id not in current]
        if lost:
            logger.info(
                "job(s) %s of elf %r cancelled or taken over before they started",
                ", ".join(j.id for j in lost),
                self.elf.uid,
            )
            self._held = deque(j for j in self._held if j.id in current)
            for j in lost:
                self._leases.pop(j.id, None)
            self.store.release_jobs([(j.id, j.attempt) for j in lost])
        return job.id in current

    def _run_in_batch(self, job, store_failures: bool, raise_exceptions: bool) -> None:
        """Run a job of the batch; its result is handed in with the next
        exchange."""
        result = self._attempt(job, store_failures, raise_exceptions)
        if result is _NOTHING or result is _FAILED:
            return
        with self._finished_lock:
            first = not self._finished
            if first:
                self._finished_at = time.monotonic()
            self._finished.append(Completion(job.id, job.attempt, result))
        if first and self._heartbeat is not None:
            self._heartbeat.woken.set()  # it stores them if they wait too long

    def decide_guards(self) -> None:
        """Decide the ready jobs that have a guard or skipped dependencies, of
        any elf: they run, or are skipped (their branch was not taken)."""
        for job in self.store.undecided_jobs():
            runs = self._guard_holds(job)
            if self.store.decide_job(job.id, runs) and not runs:
                logger.info("job %s skipped: its guard is false", job.id)

    def _guard_at_claim(self, job: ClaimedJob) -> bool:
        """The guard again, at claim time: an error here fails the job."""
        value = develop_templates(
            {"guard": job.guard},
            lambda indices: self.store.fetch_results(job.run_id, indices),
            "the guard of job %s: " % job.id,
        )["guard"]
        return bool(value)

    def _guard_holds(self, job) -> bool:
        """Whether a job runs: its guard holds, and nothing it would receive
        comes from a skipped job (a value a lazy ``x if c else y`` or
        ``and``/``or`` does not take is not received)."""

        def fetch(indices):
            return self.store.fetch_results(job.run_id, indices)

        try:
            if job.guard is not None:
                where = "the guard of job %s: " % job.id
                if not develop_templates({"guard": job.guard}, fetch, where)["guard"]:
                    return False
            if job.skipped_dependencies and job.elf_uid != SYSTEM_ELF:
                return not self._receives_skipped(job, fetch)
        except ExecutionError as error:
            if "was skipped" in str(error):
                return False
            logger.exception("cannot decide job %s; its worker will fail it", job.id)
        return True

    def _receives_skipped(self, job, fetch) -> bool:
        templates = {
            p.name: p.value for p in self.store.job_parameters(job.id) if p.has_refs
        }
        needed: set = set()
        for template in templates.values():
            referenced_jobs(template, needed)
        developer = Developer(fetch(needed) if needed else {})
        return any(
            holds(developer.develop(t, lenient=True), _is_skipped)
            for t in templates.values()
        )

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))

    def _wait_for_changes(self, token, idle_min: float, idle_max: float) -> None:
        """Sleep until another process writes (its token moves), at most a
        second, so that delayed retries and expired leases are seen too."""
        delay = idle_min
        deadline = time.monotonic() + _TIMED_CHECK
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(delay)
            if self.store.changes_token() != token:
                return
            delay = min(delay * 2, idle_max)

    @contextlib.contextmanager
    def _working(self, registered: bool):
        """Around a loop over batches: the heartbeat thread runs and the
        timeout handler stays installed; what is left when the loop ends
        (finished jobs, jobs claimed and not started) is stored or given
        back."""
        heartbeat = self._heartbeat = _BatchHeartbeat(self, registered)
        heartbeat.start()
        self.deadlines.install()
        try:
            yield
        finally:
            self.deadlines.uninstall()
            if self._finished:
                self._hand_in()
            unstarted = [(job.id, job.attempt) for job in self._held]
            self._held.clear()
            for job_id, _ in unstarted:  # before: their numbers may be reused
                self._leases.pop(job_id, None)
            if unstarted:
                self._persist_quietly(self.store.release_jobs, unstarted)
            heartbeat.stop()
            heartbeat.join()  # it may be storing results
            self._heartbeat = None
            self._leases.clear()

    # -- signals --------------------------------------------------------------

    def _install_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        self._signals = 0
        previous = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, self._on_signal)
        return previous

    def _on_signal(self, number, frame) -> None:
        self._signals += 1
        name = signal.Signals(number).name
        if self._signals > 1 and number == signal.SIGINT:
            raise KeyboardInterrupt
        logger.info(
            "elf %r received %s: finishing the job in hand (for %ss at"
            " most), then stopping",
            self.elf.uid,
            name,
            self.grace,
        )
        self.stop(self.grace)

    def _restore_handlers(self, previous) -> None:
        for number, handler in (previous or {}).items():
            signal.signal(number, handler)

    # -- one job --------------------------------------------------------------

    def run_job(
        self,
        job: ClaimedJob,
        store_failures: bool = True,
        raise_exceptions: bool = True,
    ) -> bool:
        """Run one claimed job and store its outcome; True when it succeeded."""
        try:
            result = self._attempt(job, store_failures, raise_exceptions)
            if result is _NOTHING or result is _FAILED:
                return result is _NOTHING
            self._persist(
                job, lambda: self.store.complete_job(job.id, job.attempt, result)
            )
            return True
        finally:
            self._leases.pop(job.id, None)

    def _attempt(self, job: ClaimedJob, store_failures: bool, raise_exceptions: bool):
        """Run one claimed job: the result to store, _FAILED when its failure
        is recorded, _NOTHING when its outcome is stored (skip, expansion)."""
        logger.info(
            "job %s claimed by elf %r: %s (run %s, attempt %d)",
            job.id,
            self.elf.uid,
            job.task,
            job.run_id,
            job.attempt,
        )
        started = time.perf_counter()
        self._leases[job.id] = job.attempt
        try:
            if job.guard is not None and not self._guard_at_claim(job):
                self.store.decide_job(job.id, False, job.attempt)
                logger.info("job %s skipped: its guard is false", job.id)
                self._leases.pop(job.id, None)
                return _NOTHING
            result = self._execute(job)
        except Exception as error:
            logger.exception(
                "job %s (%s) failed in the worker of elf %r",
                job.id,
                job.task,
                self.elf.uid,
            )
            self._record_failure(job, error, store_failures)
            self._leases.pop(job.id, None)
            if raise_exceptions:
                raise
            return _FAILED
        except BaseException:
            logger.warning(
                "job %s of elf %r interrupted; giving it back", job.id, self.elf.uid
            )
            self._leases.pop(job.id, None)
            self._persist_quietly(self.store.release_job, job.id, job.attempt)
            raise
        self._observe(time.perf_counter() - started)
        if result is _EXPANDED:
            logger.info("job %s expanded by elf %r's worker", job.id, self.elf.uid)
            self._leases.pop(job.id, None)
            return _NOTHING
        logger.info(
            "job %s done by elf %r in %.3fs",
            job.id,
            self.elf.uid,
            time.perf_counter() - started,
        )
        return result

    def _observe(self, seconds: float) -> None:
        """Follow how long jobs take; a slow one counts at once."""
        previous = self._job_seconds
        if previous is None or seconds > previous * 4:
            self._job_seconds = seconds
        else:
            self._job_seconds = previous * 0.8 + seconds * 0.2

    def _execute(self, job: ClaimedJob):
        if job.problem:
            raise ExecutionError(job.problem)
        if job.elf_uid == SYSTEM_ELF:
            result = run_system_job(self.store, job)
            return _EXPANDED if result is None else result
        spec = self._spec(job)
        arguments = self._develop(job, spec)
        args, kwargs = spec.split_arguments(arguments)
        self.elf.current_job = JobContext(job.id, job.run_id, job.index, job.attempt)
        try:
            with self.deadlines.running(
                spec.timeout, "job %s (%s)" % (job.id, spec.call_name)
            ):
                value = spec.function(self.elf, *args, **kwargs)
        finally:
            self.elf.current_job = None
        return spec.check_result(value)

    def _spec(self, job: ClaimedJob):
        spec = self.specs.get(job.task)
        if spec is None:
            raise ExecutionError(
                "elf %r (class %s) has no task %s; the job was created by flow"
                " %s line %s for a class that has it"
                % (
                    self.elf.uid,
                    type(self.elf).__name__,
                    job.task,
                    job.site.get("flow"),
                    job.site.get("line"),
                )
            )
        if spec.revision != job.task_revision:
            logger.warning(
                "job %s was submitted for %s revision %s; elf %r runs revision %s",
                job.id,
                spec.qualname,
                job.task_revision,
                self.elf.uid,
                spec.revision,
            )
        return spec

    def _develop(self, job: ClaimedJob, spec) -> dict:
        templates = {p.name: p.value for p in job.parameters if p.has_refs}
        developed = {}
        if templates:
            where = "job %s (%s, flow %s at %s:%s): " % (
                job.id,
                spec.call_name,
                job.site.get("flow"),
                job.site.get("file"),
                job.site.get("line"),
            )
            developed = develop_templates(
                templates,
                lambda indices: self.store.fetch_results(job.run_id, indices),
                where,
            )
            for name, value in developed.items():
                spec.check_argument(name, value)
        return {
            p.name: developed[p.name]
            if p.has_refs
            else (p.value if p.plain else decode(p.value))
            for p in job.parameters
        }

    def _record_failure(
        self, job: ClaimedJob, error: Exception, store_failures: bool
    ) -> None:
        spec = self.specs.get(job.task)
        policy = spec.retry if spec is not None else NO_RETRY
        attempt = job.attempt - job.attempt_base
        retry_at = None
        if policy.retries(error, attempt):
            retry_at = time.time() + policy.delay(attempt)
            logger.info(
                "job %s will be retried in %.1fs (attempt %d of %d)",
                job.id,
                retry_at - time.time(),
                attempt + 1,
                policy.max_attempts,
            )
        failure = describe_failure(
            error,
            store_failures,
            spec.revision if spec else None,
            spec.function.__code__ if spec else None,
        )
        self._persist(
            job, lambda: self.store.fail_job(job.id, job.attempt, failure, retry_at)
        )

    # -- writing outcomes -----------------------------------------------------

    def _persist(self, job: ClaimedJob, write) -> bool:
        """Write one job's outcome (see _persistently); whether it was stored."""
        stored = self._persistently(write, [job.id])
        if stored is False:
            _log_lost(job.id, job.attempt, self.elf.uid)
        return bool(stored)

    def _persistently(self, write, job_ids: list):
        """``write()``, waiting out a store that is busy for long (each try
        already waits the lock timeout); None when it never could: the jobs'
        leases then expire, and other workers run them again."""
        for pause in _PERSIST_PAUSES:
            try:
                return write()
            except StoreError:
                logger.exception(
                    "elf %r cannot store the outcome of job(s) %s; retrying in %ss",
                    self.elf.uid,
                    ", ".join(job_ids),
                    pause,
                )
                time.sleep(pause)
        logger.error(
            "elf %r gives up storing the outcome of job(s) %s; their leases"
            " will expire and other workers will run them",
            self.elf.uid,
            ", ".join(job_ids),
        )
        return None

    def _persist_quietly(self, action, *args) -> None:
        try:
            action(*args)
        except StoreError:
            logger.exception("worker %s: cannot update the store", self.worker_id)


class _BatchHeartbeat(Heartbeat):
    """Renews the lease of every job the worker holds (claimed, running, or
    finished with its result not stored yet), or says the worker is alive;
    and stores the results that waited HOLD_SECONDS, while the main thread
    is in a task that takes long."""

    def __init__(self, worker, registered: bool):
        super().__init__(worker.store, worker.worker_id, worker.lease, registered)
        self.worker = worker
        self.woken = threading.Event()  # results are waiting, or stop
        self.suspects: dict[str, int] = {}  # held jobs whose renewal failed
        self.told: set = set()  # the lost leases already reported

    def run(self) -> None:
        due = time.monotonic() + self.lease / 3
        while not self._stopped.is_set():
            since = self.worker._finished_at if self.worker._finished else None
            until = due if since is None else min(due, since + HOLD_SECONDS)
            self.woken.wait(max(0.0, until - time.monotonic()))
            self.woken.clear()
            now = time.monotonic()
            try:
                if since is not None and now >= since + HOLD_SECONDS:
                    self.worker._hand_in(0, since)
                if now >= due:
                    due = now + self.lease / 3
                    self.beat()
            except Exception:
                logger.exception("worker %s: heartbeat failed", self.worker_id)

    def beat(self) -> None:
        held = self.worker._leases.copy()  # one step: the worker changes it
        suspects, self.suspects = self.suspects, {}
        # the job in hand last: the worker's record names the last one renewed
        running = getattr(self.worker.elf.current_job, "job_id", None)
        for job_id, attempt in sorted(held.items(), key=lambda i: i[0] == running):
            renewed = self.store.renew_lease(
                job_id, attempt, self.worker_id, self.lease
            )
            if renewed or self.worker._leases.get(job_id) != attempt:
                continue
            # the main thread may have stored the job's outcome and not yet
            # let go of it: a lease is lost when the next beat finds it so too
            self.suspects[job_id] = attempt
            if suspects.get(job_id) == attempt and (job_id, attempt) not in self.told:
                self.told.add((job_id, attempt))  # once per attempt
                logger.warning(
                    "job %s attempt %d: the lease was lost; its outcome"
                    " will not be stored",
                    job_id,
                    attempt,
                )
        if not held and self.registered:
            self.store.worker_heartbeat(self.worker_id, None)

    def stop(self) -> None:
        super().stop()
        self.woken.set()


def _log_lost(job_id: str, attempt: int, uid: str) -> None:
    logger.warning(
        "job %s attempt %d of elf %r no longer holds the job; its outcome is"
        " not stored",
        job_id,
        attempt,
        uid,
    )


def describe_failure(
    error: BaseException,
    with_traceback: bool = True,
    revision: str | None = None,
    task_code=None,
) -> FailureDocument:
    """A storable record of an exception, whatever its message holds.

    The traceback starts at the task's own frame when it went through it, so
    that it shows the user's code rather than the worker's.
    """
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else "%s.%s" % (kind.__module__, kind.__qualname__)
    )
    message = _safe_text(lambda: str(error), MAX_MESSAGE)
    if not with_traceback:
        text = "(traceback not stored: store_failures=False)"
    else:
        text = _safe_text(lambda: _format_from(error, task_code), MAX_TRACEBACK)
    return FailureDocument(name, message, text, revision)


def _format_from(error: BaseException, task_code) -> str:
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code is not task_code:
        frames = frames.tb_next
    if frames is None:
        frames = error.__traceback__
    return "".join(traceback.TracebackException(type(error), error, frames).format())


def _safe_text(produce, limit: int) -> str:
    """Text that SQLite and JSON accept: no lone surrogates, bounded length."""
    try:
        text = produce()
    except Exception as problem:
        text = "(cannot be shown: str() raised %s)" % type(problem).__name__
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = (
            text[: limit // 2]
            + "\n[... %d characters cut ...]\n" % (len(text) - limit)
            + text[-limit // 2 :]
        )
    return text


def _is_skipped(value) -> bool:
    return type(value) is SkippedMarker
