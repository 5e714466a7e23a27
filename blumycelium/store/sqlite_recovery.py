"""Leases, workers, cancellation and re-runs of the SQLite mycelium.

A claim is an attempt (``jobs.attempts``) with a lease (``lease_expires_at``)
that the worker renews while the task runs. Every write about an attempt is
fenced by its number, so a worker whose lease expired cannot store an outcome
once its job has been handed to another worker.

:meth:`RecoveryMixin.reap_expired_leases` is called by workers from time to
time. It first looks for expired leases with a plain read (through a partial
index of running jobs), and takes the write lock only when it found some. A
lost attempt is recorded as a ``WorkerLostError`` failure; the job is ready
again while ``attempts - attempt_base`` is below ``max_attempts`` (its retry
policy) plus :data:`LOST_ATTEMPTS_ALLOWED`, and failed with its downstream
otherwise: a worker's death does not use up a task's retries, and a task that
kills its worker every time still ends.

``retry_jobs`` sets ``attempt_base`` to the attempts already made, so a job
re-run by hand gets its whole retry policy again while its attempt numbers,
and the failures linked to them, keep counting up.
"""

from __future__ import annotations

import socket
import time

from ..errors import NotFoundError, StoreError
from .base import (
    FailureDocument,
    WorkerDocument,
    WorkerRecord,
    cancelled_run_not_retried,
)
from .sqlite_connection import IN_LIST, id_list

LOST_ATTEMPTS_ALLOWED = 2

_DOWNSTREAM = (
    "WITH RECURSIVE downstream(id) AS (SELECT to_job FROM job_edges WHERE"
    " from_job IN (%s) UNION SELECT e.to_job FROM job_edges e JOIN downstream d"
    " ON e.from_job = d.id) SELECT id FROM downstream"
)


class RecoveryMixin:
    """The SQLite backend's leases, reaping, cancellation, re-runs, workers."""

    # -- leases ---------------------------------------------------------------

    def renew_lease(self, job_id: str, attempt: int, worker: str, lease: float) -> bool:
        now = time.time()
        with self._write() as connection:
            renewed = (
                connection.execute(
                    "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND status ="
                    " 'running' AND attempts = ?",
                    (now + lease, int(job_id), attempt),
                ).rowcount
                == 1
            )
            connection.execute(
                "UPDATE workers SET heartbeat_at = ?, job_id = ? WHERE id = ?",
                (now, int(job_id) if renewed else None, worker),
            )
        return renewed

    def reap_expired_leases(self) -> int:
        now = time.time()
        if not self._read(
            "SELECT 1 FROM jobs WHERE status = 'running' AND"
            " lease_expires_at < ? LIMIT 1",
            (now,),
        ):
            return 0
        with self._write() as connection:
            expired = connection.execute(
                "SELECT id, attempts, attempt_base, max_attempts, worker, run_id"
                " FROM jobs WHERE status = 'running' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for job in expired:
                self._lose_attempt(connection, job, now)
        return len(expired)

    def _lose_attempt(self, connection, job, now: float) -> None:
        identifier, attempt, base, max_attempts, worker, run_id = job
        failure = FailureDocument(
            "blumycelium.errors.WorkerLostError",
            "the worker %s stopped renewing its lease during attempt %d (it was"
            " killed, or its machine was lost)" % (worker, attempt),
            "(no traceback: the worker process is gone; reaped by %s)"
            % socket.gethostname(),
            None,
        )
        if attempt - base < max_attempts + LOST_ATTEMPTS_ALLOWED:
            self._requeue(connection, identifier, attempt, now)
        else:
            self._finish(connection, identifier, attempt, "failed", now)
            self._fail_downstream(connection, identifier, run_id, now)
        self._link_failure(connection, identifier, attempt, failure, now)

    # -- operators' actions ---------------------------------------------------

    def cancel_run(self, run_id: str) -> int:
        identifier = self._run_id(run_id)
        now = time.time()
        with self._write() as connection:
            cancelled = connection.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE"
                " run_id = ? AND status IN ('pending', 'ready')",
                (now, identifier),
            ).rowcount
            connection.execute(
                "UPDATE runs SET status = 'cancelled', jobs_unfinished ="
                " jobs_unfinished - ?, finished_at = ? WHERE id = ? AND status ="
                " 'running'",
                (cancelled, now, identifier),
            )
        return cancelled

    def purge_runs(self, before: float) -> int:
        with self._write() as connection:
            runs = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM runs WHERE status IN ('done', 'failed',"
                    " 'cancelled') AND finished_at < ? AND NOT EXISTS (SELECT 1"
                    " FROM jobs WHERE jobs.run_id = runs.id AND jobs.status ="
                    " 'running')",
                    (before,),
                )
            ]
            for run in runs:
                jobs = "SELECT id FROM jobs WHERE run_id = %d" % run
                for table, column in (
                    ("parameters", "job_id"),
                    ("results", "job_id"),
                    ("job_failures", "job_id"),
                    ("job_edges", "to_job"),
                    ("job_edges", "from_job"),
                ):
                    connection.execute(
                        "DELETE FROM %s WHERE %s IN (%s)" % (table, column, jobs)
                    )
                connection.execute("DELETE FROM jobs WHERE run_id = ?", (run,))
                connection.execute("DELETE FROM runs WHERE id = ?", (run,))
            connection.execute(
                "DELETE FROM failures WHERE id NOT IN (SELECT"
                " failure_id FROM job_failures)"
            )
        return len(runs)

    def retry_jobs(self, run_id: str, job_id: str | None = None) -> int:
        identifier = self._run_id(run_id)
        with self._write() as connection:
            status = connection.execute(
                "SELECT status FROM runs WHERE id = ?", (identifier,)
            ).fetchone()[0]
            if status == "cancelled":
                raise cancelled_run_not_retried(run_id)
            failed = self._failed_to_retry(connection, identifier, job_id)
            if not failed:
                return 0
            connection.execute(
                "UPDATE jobs SET status = 'ready', attempt_base = attempts,"
                " finished_at = NULL, worker = NULL, not_before = NULL WHERE id IN"
                " (%s)" % IN_LIST,
                (id_list(failed),),
            )
            # downstream jobs wait again, unless another failure, not retried
            # now, still stands in their way
            others = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM jobs WHERE run_id = ? AND status = 'failed'",
                    (identifier,),
                )
            ]
            held = connection.execute(
                "UPDATE jobs SET status = 'pending', finished_at = NULL, decided ="
                " (guard IS NULL AND skipped_dependencies = 0) WHERE status ="
                " 'upstream_failed' AND id IN (%s) AND id NOT IN (%s) RETURNING id"
                % (_DOWNSTREAM % IN_LIST, _DOWNSTREAM % IN_LIST),
                (id_list(failed), id_list(others)),
            ).fetchall()
            self._recount_dependencies(connection, [row[0] for row in held])
            connection.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL,"
                " jobs_failed = jobs_failed - ?, jobs_unfinished = jobs_unfinished"
                " + ? WHERE id = ?",
                (len(failed), len(failed) + len(held), identifier),
            )
        return len(failed) + len(held)

    def _failed_to_retry(self, connection, run_id: int, job_id) -> list[int]:
        if job_id is None:
            return [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM jobs WHERE run_id = ? AND status = 'failed'",
                    (run_id,),
                )
            ]
        row = connection.execute(
            "SELECT status FROM jobs WHERE id = ? AND run_id = ?", (int(job_id), run_id)
        ).fetchone()
        if row is None:
            raise NotFoundError("no job %r in run %s" % (job_id, run_id))
        if row[0] != "failed":
            raise StoreError(
                "job %s is %s; only a failed job can be retried (an"
                " upstream_failed one runs again when the job it"
                " waits for is retried)" % (job_id, row[0])
            )
        return [int(job_id)]

    def _recount_dependencies(self, connection, jobs: list[int]) -> None:
        for job in jobs:
            connection.execute(
                "UPDATE jobs SET unfinished_dependencies = (SELECT count(*) FROM"
                " job_edges e JOIN jobs d ON d.id = e.from_job WHERE e.to_job ="
                " jobs.id AND d.status NOT IN ('done', 'skipped')) WHERE id = ?",
                (job,),
            )

    def _run_id(self, run_id: str) -> int:
        try:
            identifier = int(run_id)
        except (TypeError, ValueError):
            raise NotFoundError(
                "%r is not a run id of an SQLite mycelium" % (run_id,)
            ) from None
        if not self._read("SELECT 1 FROM runs WHERE id = ?", (identifier,)):
            raise NotFoundError("no run %r in the mycelium %s" % (run_id, self.path))
        return identifier

    # -- workers --------------------------------------------------------------

    def register_worker(self, worker: WorkerDocument) -> None:
        now = time.time()
        with self._write() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?, ?, ?, ?, ?, NULL,"
                " NULL)",
                (
                    worker.id,
                    worker.host,
                    worker.pid,
                    worker.elf_uid,
                    worker.lease,
                    now,
                    now,
                ),
            )

    def worker_heartbeat(self, worker_id: str, job_id: str | None) -> None:
        with self._write() as connection:
            connection.execute(
                "UPDATE workers SET heartbeat_at = ?, job_id = ? WHERE id = ?",
                (time.time(), None if job_id is None else int(job_id), worker_id),
            )

    def stop_worker(self, worker_id: str) -> None:
        with self._write() as connection:
            connection.execute(
                "UPDATE workers SET stopped_at = ?, job_id = NULL WHERE id = ?",
                (time.time(), worker_id),
            )

    def list_workers(self) -> list[WorkerRecord]:
        rows = self._read(
            "SELECT id, host, pid, elf_uid, lease, started_at,"
            " heartbeat_at, job_id, stopped_at FROM workers ORDER BY"
            " started_at DESC"
        )
        return [
            WorkerRecord(*row[:7], None if row[7] is None else str(row[7]), row[8])
            for row in rows
        ]
