"""Leases, workers, cancellation, re-runs and purges of the ArangoDB mycelium.

The policy is the SQLite mycelium's (see ``sqlite_recovery.py``), and where
it is written once over four primitives it is shared, not copied: a lost
attempt is handled by ``sqlite_recovery.RecoveryMixin._lose_attempt``, which
this backend runs over its own ``_requeue``, ``_finish``,
``_fail_downstream`` and ``_link_failure``.

A lease renewal and its worker's heartbeat are one AQL statement (two
updates of different collections). Reaping looks for expired leases with a
read through the (status, lease_expires_at) index and opens a transaction
only when it found some. ``retry_jobs`` walks JobToJob downstream of the
retried jobs and of the failures left standing, and puts back to pending
what only the retried ones held up, recounting what each still waits for.
"""

from __future__ import annotations

import time

from ..errors import NotFoundError, StoreError
from . import arango_queries as aql
from .arango_connection import statement
from .arango_documents import worker_document, worker_record
from .arango_keys import document_key, is_legal_key
from .base import WorkerDocument, WorkerRecord, cancelled_run_not_retried
from .sqlite_recovery import RecoveryMixin as _SQLiteRecovery

# collections of runs that a purge empties of the purged runs' documents
PURGED_COLLECTIONS = (
    "Jobs",
    "Parameters",
    "Results",
    "Chunks",
    "RunKeys",
    "JobToJob",
    "JobParameters",
    "JobFailures",
)
LEASE_COLLECTIONS = ("Jobs", "Runs", "Failures", "JobFailures")


class ArangoRecovery:
    """The ArangoDB backend's leases, reaping, cancellation, re-runs, workers."""

    # -- leases ---------------------------------------------------------------

    def renew_lease(self, job_id: str, attempt: int, worker: str, lease: float) -> bool:
        rows = self._query(
            "renew the lease of job %s" % job_id,
            aql.RENEW_LEASE,
            job=job_id,
            attempt=attempt,
            worker=document_key(worker),
            now=time.time(),
            lease=lease,
        )
        return bool(rows and rows[0])

    def reap_expired_leases(self) -> int:
        now = time.time()
        if not self._query("look for expired leases", aql.ANY_EXPIRED, now=now):
            return 0

        def body(trx):
            expired = statement(trx, aql.EXPIRED, now=now)[0]
            for job in expired:
                self._lose_attempt(trx, job, now)
            return len(expired)

        return self._transaction(
            "give back jobs whose lease expired",
            body,
            write=LEASE_COLLECTIONS,
            read=("JobToJob",),
        )

    # (key, attempt, attempt base, max attempts, worker, run) of a job
    _lose_attempt = _SQLiteRecovery._lose_attempt

    # -- operators' actions ---------------------------------------------------

    def cancel_run(self, run_id: str) -> int:
        self.get_run(run_id)  # NotFoundError for an unknown run
        now = time.time()

        def body(trx):
            cancelled = statement(trx, aql.CANCEL_JOBS, run=run_id, now=now)[0]
            statement(trx, aql.CANCEL_RUN, run=run_id, cancelled=cancelled, now=now)
            return cancelled

        return self._transaction("cancel run %s" % run_id, body, write=("Jobs", "Runs"))

    def purge_runs(self, before: float) -> int:
        def body(trx):
            runs = statement(trx, aql.PURGEABLE_RUNS, before=before)[0]
            if not runs:
                return 0
            for collection in PURGED_COLLECTIONS:
                statement(
                    trx, aql.REMOVE_OF_RUNS, runs=runs, **{"@collection": collection}
                )
            statement(trx, aql.REMOVE_RUNS, runs=runs)
            statement(trx, aql.REMOVE_UNUSED_FAILURES)
            return len(runs)

        return self._transaction(
            "purge finished runs",
            body,
            write=PURGED_COLLECTIONS + ("Runs", "Failures"),
        )

    def retry_jobs(self, run_id: str, job_id: str | None = None) -> int:
        self.get_run(run_id)  # NotFoundError for an unknown run

        def body(trx):
            if statement(trx, aql.RUN_STATUS, run=run_id)[0] == "cancelled":
                raise cancelled_run_not_retried(run_id)
            failed = self._failed_to_retry(trx, run_id, job_id)
            if not failed:
                return 0
            statement(trx, aql.RETRY, keys=failed)
            held = self._hold_again(trx, run_id, failed)
            statement(
                trx,
                aql.RETRY_RUN,
                run=run_id,
                failed=len(failed),
                unfinished=len(failed) + len(held),
            )
            return len(failed) + len(held)

        return self._transaction(
            "retry jobs of run %s" % run_id,
            body,
            write=("Jobs", "Runs"),
            read=("JobToJob",),
        )

    def _hold_again(self, trx, run_id: str, retried: list[str]) -> list[str]:
        """Make pending again what is downstream of the retried jobs, unless
        another failure, not retried now, still stands in its way."""
        others = statement(trx, aql.FAILED_JOBS, run=run_id)[0]
        blocked = set(_downstream(trx, others))
        candidates = [key for key in _downstream(trx, retried) if key not in blocked]
        if not candidates:
            return []
        held = statement(trx, aql.HOLD_AGAIN, keys=candidates)[0]
        if held:
            updates = statement(trx, aql.UNFINISHED_DEPENDENCIES, keys=held)[0]
            statement(trx, aql.UPDATE_JOBS, updates=updates)
        return held

    def _failed_to_retry(self, trx, run_id: str, job_id) -> list[str]:
        if job_id is None:
            return statement(trx, aql.FAILED_JOBS, run=run_id)[0]
        job = None
        if is_legal_key(job_id):
            job = statement(trx, aql.DOCUMENT, collection="Jobs", key=job_id)[0]
        if job is None or job["run"] != run_id:
            raise NotFoundError("no job %r in run %s" % (job_id, run_id))
        if job["status"] != "failed":
            raise StoreError(
                "job %s is %s; only a failed job can be retried (an"
                " upstream_failed one runs again when the job it"
                " waits for is retried)" % (job_id, job["status"])
            )
        return [job_id]

    # -- workers --------------------------------------------------------------

    def register_worker(self, worker: WorkerDocument) -> None:
        document = worker_document(worker, time.time())
        workers = self._db.collection("Workers")
        self._call(
            "register worker %s" % worker.id,
            lambda: workers.insert(document, overwrite_mode="replace", silent=True),
        )

    def worker_heartbeat(self, worker_id: str, job_id: str | None) -> None:
        self._query(
            "record a heartbeat of worker %s" % worker_id,
            aql.HEARTBEAT,
            worker=document_key(worker_id),
            now=time.time(),
            job=job_id,
        )

    def stop_worker(self, worker_id: str) -> None:
        self._query(
            "record that worker %s stopped" % worker_id,
            aql.STOP_WORKER,
            worker=document_key(worker_id),
            now=time.time(),
        )

    def list_workers(self) -> list[WorkerRecord]:
        return [
            worker_record(row) for row in self._query("list workers", aql.LIST_WORKERS)
        ]


def _downstream(trx, starts: list[str]) -> list[str]:
    """Keys of every job downstream of the jobs ``starts``."""
    if not starts:
        return []
    return statement(trx, aql.DOWNSTREAM, starts=starts)[0]
