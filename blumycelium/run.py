"""Runs: one submitted call of a flow, followed from any process.

A :class:`Run` is a handle (mycelium and id); every property reads the store,
so a Run re-attached in another process (``myc.run(run_id)``) sees the same
thing. ``wait`` polls the run's status and counts (never its arguments or
return value, which may be large) with a growing pause; ``result``
develops the flow's return value from the stored results, or raises
:class:`~blumycelium.errors.RunFailedError` naming the failed job, its task,
the flow line that created it and the exception.
"""

from __future__ import annotations

import logging
import time

from .compiler.graph import SYSTEM_ELF
from .develop import develop_templates
from .errors import RunFailedError
from .progress import ProgressBar

logger = logging.getLogger(__name__)


class Run:
    """A submitted run of a flow."""

    def __init__(self, mycelium, run_id: str):
        self.mycelium = mycelium
        self.id = str(run_id)

    def __repr__(self) -> str:
        progress = self.mycelium.store.run_progress(self.id)
        return "<Run %s of flow %s: %s>" % (self.id, progress.flow, progress.status)

    def record(self):
        return self.mycelium.store.get_run(self.id)

    @property
    def status(self) -> str:
        return self.mycelium.store.run_progress(self.id).status

    def jobs(self) -> list:
        return self.mycelium.store.list_jobs(run_id=self.id)

    def failures(self) -> list:
        return self.mycelium.store.list_failures(run_id=self.id)

    def counts(self) -> dict[str, int]:
        """How many of the run's jobs have each status."""
        return self.mycelium.store.count_jobs(self.id)

    def wait(
        self,
        timeout: float | None = None,
        poll_min: float = 0.002,
        poll_max: float = 0.1,
        progress: bool = False,
    ) -> str:
        """Block until the run ends; return its final status.

        Raises TimeoutError when ``timeout`` seconds pass first. With
        ``progress``, a progress bar is drawn on stderr when it is a terminal.
        """
        bar = ProgressBar(self.id) if progress and ProgressBar.wanted() else None
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll_min
        store = self.mycelium.store
        while True:
            record = store.run_progress(self.id)  # without the arguments
            if bar is not None:
                bar.update(self.counts(), record.jobs_total, record.is_finished)
            if record.is_finished:
                return record.status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    "run %s of flow %s is still %s after %ss: %d of %d jobs have"
                    " not finished (are its elves' workers running?)"
                    % (
                        self.id,
                        record.flow,
                        record.status,
                        timeout,
                        record.jobs_unfinished,
                        record.jobs_total,
                    )
                )
            pause = (
                delay
                if deadline is None
                else min(delay, max(0.0, deadline - time.monotonic()))
            )
            time.sleep(pause)
            delay = min(delay * 1.5, poll_max)

    def cancel(self) -> int:
        """Cancel every job not yet started; return how many were cancelled.

        Jobs already running finish, and their results are kept; no other job
        of the run starts afterwards. The run's status is ``cancelled``.
        """
        cancelled = self.mycelium.store.cancel_run(self.id)
        logger.info("run %s cancelled: %d jobs will not run", self.id, cancelled)
        return cancelled

    def retry(self, job_id: str | None = None) -> int:
        """Run the failed jobs again (or one failed job), with the jobs they
        held up; keep every result. Return how many jobs will run again."""
        count = self.mycelium.store.retry_jobs(
            self.id, None if job_id is None else str(job_id)
        )
        logger.info("run %s: %d jobs will run again", self.id, count)
        return count

    def result(self, timeout: float | None = None):
        """The flow's return value, developed; waits for the run to end."""
        status = self.wait(timeout)
        store = self.mycelium.store
        if status != "done":
            raise self._failure_error(store.run_progress(self.id))
        developed = develop_templates(
            {"result": store.run_result(self.id)},
            lambda indices: store.fetch_results(self.id, indices),
            "run %s: " % self.id,
        )
        return developed["result"]

    def _failure_error(self, record) -> RunFailedError:
        store = self.mycelium.store
        failed = store.list_jobs(run_id=self.id, statuses=["failed"])
        if not failed:
            return RunFailedError(
                "run %s of flow %s ended %s" % (self.id, record.flow, record.status),
                self.id,
            )
        job = failed[0]
        failures = store.list_failures(job_id=job.id)
        failure = failures[-1] if failures else None
        site = job.site
        message = (
            "run %s of flow %s failed: job %s (%s) created at"
            " %s:%s in flow %s raised %s: %s"
            % (
                self.id,
                record.flow,
                job.id,
                _described(store, job),
                site.get("file"),
                site.get("line"),
                site.get("flow"),
                failure.exception_type if failure else "an error",
                failure.message if failure else "(no failure recorded)",
            )
        )
        others = len(failed) - 1
        if others:
            message += "; %d other job%s failed" % (others, "s" if others > 1 else "")
        if failure and failure.traceback:
            message += "\n\nTraceback of the task:\n" + failure.traceback.rstrip()
        return RunFailedError(message, self.id, job, failure)


def _described(store, job) -> str:
    if job.elf_uid == SYSTEM_ELF:
        return "the %s job of a loop over a task result" % job.task
    return "%s.%s, elf %r" % (_class_of(store, job), job.task, job.elf_uid)


def _class_of(store, job) -> str:
    elf = store.get_elf(job.elf_uid)
    return elf["class_name"] if elf else "?"
