"""The worker loop: how an elf runs its jobs.

A worker serves one elf (one uid) in one process. It reads the ready jobs of
that uid, claimed atomically and oldest first; their parameters; and the
results those parameters reference. It writes each job's result, or its
failure, through the store, which pushes readiness to the dependents in the
same transaction (so workers never scan dependencies).

For each claimed job:

1. the parameters holding references or expression nodes are developed
   (``develop.py``) and checked against the task's argument annotations;
2. the task method runs in this process;
3. its return value is checked against the return annotation and encoded;
4. the result is stored and the job marked ``done``; any exception instead
   marks it ``failed`` (and its downstream ``upstream_failed``) with the
   exception type, message, traceback and the revision of the task that ran.

A KeyboardInterrupt or SystemExit during a task gives the job back
(``ready``) before it propagates.

``serve`` repeats this until SIGINT or SIGTERM: a signal sets a flag that is
read between jobs, so the job in hand is finished first. When no job is
ready the worker sleeps, doubling the pause from ``idle_min`` to
``idle_max``; it asks the store again only when the store's change token says
another process has written, so idle workers cost next to nothing and never
take the write lock.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback

from .develop import develop_templates
from .errors import ExecutionError, StoreError
from .store.base import ClaimedJob, FailureDocument
from .values import decode

logger = logging.getLogger(__name__)

MAX_MESSAGE = 10_000
MAX_TRACEBACK = 100_000
# Pauses between attempts to store a job's outcome when the store is busy
# beyond its own lock timeout (each attempt already waits that long).
_PERSIST_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)


class ElfWorker:
    """Runs the jobs of one elf instance against its mycelium."""

    def __init__(self, elf, mycelium):
        self.elf = elf
        self.mycelium = mycelium
        self.specs = type(elf).__blumycelium_tasks__
        self.worker_id = "%s:%d" % (socket.gethostname(), os.getpid())
        self._stopping = False
        self._signals = 0

    @property
    def store(self):
        return self.mycelium.store

    # -- loops ----------------------------------------------------------------

    def run_ready_jobs(
        self, store_failures: bool = True, raise_exceptions: bool = True
    ) -> int:
        """Run ready jobs until none is left; return how many ran."""
        self.mycelium.register_elf(self.elf, store_source=True)
        ran = 0
        while True:
            job = self.store.claim_job(self.elf.uid, self.worker_id)
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
    ) -> int:
        """Run jobs as they become ready until stopped; return how many ran."""
        self.mycelium.register_elf(self.elf, store_source=True)
        self._stopping = False
        previous = self._install_handlers() if handle_signals else None
        logger.info("elf %r serves from %s", self.elf.uid, self.worker_id)
        ran = 0
        try:
            while not self._stopping and (max_jobs is None or ran < max_jobs):
                job = self._claim()
                if job is None:
                    self._wait_for_changes(idle_min, idle_max)
                    continue
                self.run_job(job, store_failures=True, raise_exceptions=False)
                ran += 1
        finally:
            self._restore_handlers(previous)
        logger.info("elf %r stops after %d jobs", self.elf.uid, ran)
        return ran

    def _claim(self) -> ClaimedJob | None:
        try:
            return self.store.claim_job(self.elf.uid, self.worker_id)
        except StoreError:
            logger.exception("elf %r cannot claim a job now; retrying", self.elf.uid)
            self._pause(1.0)
            return None

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))

    def stop(self) -> None:
        """Ask ``serve`` to return after the job in hand."""
        self._stopping = True

    def _wait_for_changes(self, idle_min: float, idle_max: float) -> None:
        token = self.store.changes_token()
        delay = idle_min
        while not self._stopping:
            time.sleep(delay)
            if self.store.changes_token() != token:
                return
            delay = min(delay * 2, idle_max)

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
        self._stopping = True
        name = signal.Signals(number).name
        if self._signals > 1 and number == signal.SIGINT:
            raise KeyboardInterrupt
        logger.info(
            "elf %r received %s: finishing the job in hand, then stopping",
            self.elf.uid,
            name,
        )

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
        try:
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
            self.store.release_job(job.id)
            raise
        if self._persist(self.store.complete_job, job.id, result):
            logger.info(
                "job %s done by elf %r in %.3fs",
                job.id,
                self.elf.uid,
                time.perf_counter() - started,
            )
        return True

    def _persist(self, action, job_id: str, document) -> bool:
        """Write a job's outcome, waiting out a store that is busy for long."""
        for pause in _PERSIST_PAUSES:
            try:
                if action(job_id, document):
                    return True
                logger.warning(
                    "job %s of elf %r was no longer running; its outcome is not stored",
                    job_id,
                    self.elf.uid,
                )
                return False
            except StoreError:
                logger.exception(
                    "job %s of elf %r: cannot store its outcome; retrying in %ss",
                    job_id,
                    self.elf.uid,
                    pause,
                )
                time.sleep(pause)
        logger.error(
            "job %s of elf %r: giving up storing its outcome; it stays running",
            job_id,
            self.elf.uid,
        )
        return False

    def _execute(self, job: ClaimedJob):
        if job.problem:
            raise ExecutionError(job.problem)
        spec = self._spec(job)
        arguments = self._develop(job, spec)
        args, kwargs = spec.split_arguments(arguments)
        value = spec.function(self.elf, *args, **kwargs)
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
        failure = describe_failure(
            error, store_failures, spec.revision if spec else None
        )
        self._persist(self.store.fail_job, job.id, failure)


def describe_failure(
    error: BaseException, with_traceback: bool = True, revision: str | None = None
) -> FailureDocument:
    """A storable record of an exception, whatever its message holds."""
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
        text = _safe_text(
            lambda: "".join(traceback.format_exception(error)), MAX_TRACEBACK
        )
    return FailureDocument(name, message, text, revision)


def _safe_text(produce, limit: int) -> str:
    """Text that SQLite and JSON accept: no lone surrogates, bounded length."""
    try:
        text = produce()
    except Exception as problem:
        text = "(cannot be shown: %s raised %s)" % ("str()", type(problem).__name__)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = (
            text[: limit // 2]
            + "\n[... %d characters cut ...]\n" % (len(text) - limit)
            + text[-limit // 2 :]
        )
    return text
