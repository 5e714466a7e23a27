"""The worker loop: how an elf runs its jobs.

A worker serves one elf (one uid) in one process. It reads the claimable
jobs of that uid (``ready``, and past their retry delay), claimed atomically
and oldest first; their parameters; and the results those parameters
reference. It writes each attempt's result or failure through the store,
which pushes readiness to the dependents in the same transaction.

For each claimed job (an *attempt*, holding a lease of ``lease`` seconds that
the heartbeat thread renews while the task runs):

1. the parameters holding references or expression nodes are developed
   (``develop.py``) and checked against the task's argument annotations;
2. the task method runs in the worker's main thread, under its timeout;
3. its return value is checked against the return annotation and encoded;
4. the result is stored and the job marked ``done``. An exception instead is
   recorded (type, message, traceback, task revision) as the failure of that
   attempt; under the task's retry policy the job becomes ``ready`` again
   after the backoff delay, otherwise it is ``failed`` and its downstream
   ``upstream_failed``.

A KeyboardInterrupt, a SystemExit, or the end of the grace period gives the
job back (``ready``) before the worker stops.

``serve`` repeats this until SIGINT or SIGTERM: a signal stops the claiming,
and the job in hand is finished, or given back once ``grace`` seconds have
passed. An idle worker sleeps, doubling its pause from ``idle_min`` to
``idle_max``, and asks the store again when the store's change token says
another process wrote, or every second for delayed retries; so idle workers
cost next to nothing and never take the write lock. Every few seconds a
worker also gives back the jobs whose lease expired (their worker died).
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
from dataclasses import dataclass

from .develop import Developer, develop_templates, holds, referenced_jobs
from .errors import ExecutionError, StoreError
from .interrupts import Deadlines, Heartbeat, StopNow
from .policy import NO_RETRY
from .store.base import ClaimedJob, FailureDocument, WorkerDocument
from .system_jobs import SYSTEM_ELF, run_system_job
from .values import SkippedMarker, decode

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0
MAX_MESSAGE = 10_000
MAX_TRACEBACK = 100_000
# Pauses between attempts to store a job's outcome when the store is busy
# beyond its own lock timeout (each attempt already waits that long).
_PERSIST_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)
_TIMED_CHECK = 1.0
_EXPANDED = object()  # an expand job completes itself, with its expansion


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
        self.deadlines = Deadlines()
        self._heartbeat: Heartbeat | None = None
        self._stopping = False
        self._signals = 0
        self._next_reap = 0.0

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
        with self._beating(registered=False):
            while True:
                job = self._claim_any()
                if job is None:
                    return ran
                ran += 1
                self.run_job(job, store_failures, raise_exceptions)

    def serve(
        self,
        idle_min: float = 0.0005,
        idle_max: float = 0.05,
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
            with self._beating(registered=True):
                while not self._stopping and (max_jobs is None or ran < max_jobs):
                    token = self.store.changes_token()  # before: no lost wakeup
                    job = self._claim()
                    if job is None:
                        self._wait_for_changes(token, idle_min, idle_max)
                        continue
                    self.run_job(job, store_failures=True, raise_exceptions=False)
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

    def _claim(self) -> ClaimedJob | None:
        try:
            self._reap()
            return self._claim_any()
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

    def _claim_any(self) -> ClaimedJob | None:
        """Decide guarded jobs, then claim a system job (any worker runs
        those), else one of this elf's."""
        self.decide_guards()
        return self.store.claim_job(
            SYSTEM_ELF, self.worker_id, self.lease
        ) or self.store.claim_job(self.elf.uid, self.worker_id, self.lease)

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
    def _beating(self, registered: bool):
        """The heartbeat thread, for as long as the worker runs jobs."""
        heartbeat = Heartbeat(self.store, self.worker_id, self.lease, registered)
        heartbeat.start()
        self._heartbeat = heartbeat
        try:
            yield
        finally:
            heartbeat.stop()
            self._heartbeat = None

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
        """Run one claimed job; True when it succeeded."""
        logger.info(
            "job %s claimed by elf %r: %s (run %s, attempt %d)",
            job.id,
            self.elf.uid,
            job.task,
            job.run_id,
            job.attempt,
        )
        started = time.perf_counter()
        if self._heartbeat is not None:
            self._heartbeat.job = (job.id, job.attempt)
        try:
            if job.guard is not None and not self._guard_at_claim(job):
                self.store.decide_job(job.id, False, job.attempt)
                logger.info("job %s skipped: its guard is false", job.id)
                return True
            result = self._execute(job)
        except Exception as error:
            logger.exception("job %s failed in elf %r", job.id, self.elf.uid)
            self._record_failure(job, error, store_failures)
            if raise_exceptions:
                raise
            return False
        except BaseException:
            logger.warning(
                "job %s of elf %r interrupted; giving it back", job.id, self.elf.uid
            )
            self._persist_quietly(self.store.release_job, job.id, job.attempt)
            raise
        finally:
            if self._heartbeat is not None:
                self._heartbeat.job = None
        if result is _EXPANDED:
            logger.info("job %s expanded by elf %r's worker", job.id, self.elf.uid)
            return True
        if self._persist(
            job, lambda: self.store.complete_job(job.id, job.attempt, result)
        ):
            logger.info(
                "job %s done by elf %r in %.3fs",
                job.id,
                self.elf.uid,
                time.perf_counter() - started,
            )
        return True

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
        where = "job %s (%s, flow %s at %s:%s): " % (
            job.id,
            spec.call_name,
            job.site.get("flow"),
            job.site.get("file"),
            job.site.get("line"),
        )
        templates = {p.name: p.value for p in job.parameters if p.has_refs}
        developed = develop_templates(
            templates,
            lambda indices: self.store.fetch_results(job.run_id, indices),
            where,
        )
        for name, value in developed.items():
            spec.check_argument(name, value)
        return {
            p.name: developed[p.name] if p.has_refs else decode(p.value)
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
        """Write a job's outcome, waiting out a store that is busy for long."""
        for pause in _PERSIST_PAUSES:
            try:
                if write():
                    return True
                logger.warning(
                    "job %s attempt %d of elf %r no longer holds the"
                    " job; its outcome is not stored",
                    job.id,
                    job.attempt,
                    self.elf.uid,
                )
                return False
            except StoreError:
                logger.exception(
                    "job %s of elf %r: cannot store its outcome; retrying in %ss",
                    job.id,
                    self.elf.uid,
                    pause,
                )
                time.sleep(pause)
        logger.error(
            "job %s of elf %r: giving up storing its outcome; its lease"
            " will expire and another worker will run it",
            job.id,
            self.elf.uid,
        )
        return False

    def _persist_quietly(self, action, *args) -> None:
        try:
            action(*args)
        except StoreError:
            logger.exception("worker %s: cannot update the store", self.worker_id)


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
