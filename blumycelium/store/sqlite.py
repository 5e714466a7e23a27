"""The embedded mycelium: one SQLite file shared by any number of processes.

Connections, schema and transactions are in ``sqlite_connection.py``; leases,
workers, cancellation and re-runs in ``sqlite_recovery.py``.

How the rules of ``base.py`` are kept:

- submission: one ``BEGIN IMMEDIATE`` transaction inserts the run, its jobs
  (ids assigned from the sequence under the write lock), parameters and edges
  with ``executemany``;
- readiness: ``complete_job`` decrements ``unfinished_dependencies`` of the
  job's dependents (found through the ``job_edges`` primary key) and flips
  those reaching zero from ``pending`` to ``ready`` in the same transaction;
- claims: a read finds the oldest ready job of the elf through a partial
  index holding only ready jobs; a single ``UPDATE ... WHERE status =
  'ready'`` takes it, and a worker that loses the race looks again. Idle
  workers therefore never take the write lock;
- failures: a recursive query walks the edges downstream and marks what has
  not finished ``upstream_failed``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

from ..errors import NotFoundError, StoreError
from .base import (
    ClaimedJob,
    ElfDocument,
    FailureDocument,
    FailureRecord,
    JobRecord,
    ParameterDocument,
    RunDocument,
    RunRecord,
    StoreBackend,
    TaskDocument,
    UndecidedJob,
    order_key,
)
from .sqlite_connection import SQLiteConnections, dumps
from .sqlite_expansion import ExpansionMixin
from .sqlite_recovery import RecoveryMixin

# What a skipped job's result reads as (see values.SkippedMarker).
SKIPPED = {"__bm__": "skipped"}

_JOB_COLUMNS = (
    "id, run_id, idx, elf_uid, task, task_revision, status, site,"
    " attempts, unfinished_dependencies, created_at, started_at,"
    " finished_at, worker, attempt_base, max_attempts, not_before, position"
)


class SQLiteBackend(SQLiteConnections, RecoveryMixin, ExpansionMixin, StoreBackend):
    """A mycelium in one SQLite file."""

    def __repr__(self) -> str:
        return "SQLiteBackend(%r)" % self.path

    # -- elves ----------------------------------------------------------------

    def register_elf(self, elf: ElfDocument, tasks: list[TaskDocument]) -> None:
        now = time.time()
        with self._write() as connection:
            connection.execute(
                "INSERT INTO elves VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid)"
                " DO UPDATE SET class_name = excluded.class_name,"
                " module = excluded.module, documentation = excluded.documentation,"
                " revision = excluded.revision, updated_at = excluded.updated_at",
                (
                    elf.uid,
                    elf.class_name,
                    elf.module,
                    elf.documentation,
                    elf.revision,
                    now,
                    now,
                ),
            )
            connection.execute(
                "INSERT INTO elf_revisions VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET source ="
                " coalesce(excluded.source, elf_revisions.source)",
                (elf.uid, elf.revision, elf.class_name, elf.source, now),
            )
            connection.executemany(
                "INSERT INTO task_revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET source ="
                " coalesce(excluded.source, task_revisions.source)",
                [
                    (
                        t.revision,
                        t.elf_class,
                        t.name,
                        t.source,
                        t.documentation,
                        t.signature,
                        None if t.result_keys is None else dumps(t.result_keys),
                        now,
                    )
                    for t in tasks
                ],
            )

    def get_elf(self, uid: str) -> dict | None:
        rows = self._read(
            "SELECT uid, class_name, module, documentation, revision,"
            " registered_at, updated_at FROM elves WHERE uid = ?",
            (uid,),
        )
        if not rows:
            return None
        keys = (
            "uid",
            "class_name",
            "module",
            "documentation",
            "revision",
            "registered_at",
            "updated_at",
        )
        elf = dict(zip(keys, rows[0]))
        elf["revisions"] = [
            {
                "revision": revision,
                "class_name": class_name,
                "source": source,
                "registered_at": at,
            }
            for revision, class_name, source, at in self._read(
                "SELECT revision, class_name, source, registered_at FROM"
                " elf_revisions WHERE elf_uid = ? ORDER BY registered_at",
                (uid,),
            )
        ]
        return elf

    # -- runs -----------------------------------------------------------------

    def submit_run(self, run: RunDocument) -> str:
        now = time.time()
        with self._write() as connection:
            if run.run_key is not None:
                existing = connection.execute(
                    "SELECT id FROM runs WHERE run_key = ?", (run.run_key,)
                ).fetchone()
                if existing is not None:
                    return str(existing[0])
            run_id = self._insert_run(connection, run, now)
            ids = self._insert_jobs(connection, run_id, run.jobs, now)
            self._insert_parameters(connection, ids, run.jobs)
            connection.executemany(
                "INSERT INTO job_edges VALUES (?, ?)",
                [
                    (ids[dependency], ids[job.index])
                    for job in run.jobs
                    for dependency in job.dependencies
                ],
            )
        return str(run_id)

    def _insert_run(self, connection, run: RunDocument, now: float) -> int:
        connection.execute(
            "INSERT OR IGNORE INTO flow_revisions VALUES (?, ?, ?, ?, ?, ?)",
            (
                run.flow_revision,
                run.flow,
                run.flow_file,
                run.flow_line,
                run.flow_source,
                now,
            ),
        )
        finished = not run.jobs
        cursor = connection.execute(
            "INSERT INTO runs (flow, flow_revision, run_key, arguments, result,"
            " result_dependencies, status, jobs_total, jobs_unfinished,"
            " submitted_at, finished_at, next_index) VALUES (?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        return cursor.lastrowid

    def _insert_jobs(
        self, connection, run_id: int, jobs, now: float, states: dict | None = None
    ) -> dict:
        """Insert jobs with ids from the sequence; ``states`` overrides, by
        job index, (status, unfinished dependencies, skipped dependencies)."""
        row = connection.execute(
            "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), coalesce("
            "(SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0))"
        ).fetchone()
        first = row[0] + 1
        ids = {job.index: first + position for position, job in enumerate(jobs)}
        states = states or {}
        rows = []
        for job in jobs:
            status, unfinished, skipped = states.get(
                job.index,
                ("pending" if job.dependencies else "ready", len(job.dependencies), 0),
            )
            rows.append(
                (
                    ids[job.index],
                    run_id,
                    job.index,
                    job.elf_uid,
                    job.task,
                    job.task_revision,
                    dumps(job.site),
                    status,
                    unfinished,
                    now,
                    job.max_attempts,
                    None if job.guard is None else dumps(job.guard),
                    int(job.guard is None and skipped == 0),
                    len(job.dependencies),
                    skipped,
                    job.order or order_key(job.index),
                )
            )
        connection.executemany(
            "INSERT INTO jobs (id, run_id, idx, elf_uid, task, task_revision,"
            " site, status, unfinished_dependencies, created_at, max_attempts,"
            " guard, decided, dependency_count, skipped_dependencies, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return ids

    def _insert_parameters(self, connection, ids: dict, jobs) -> None:
        connection.executemany(
            "INSERT INTO parameters VALUES (?, ?, ?, ?, ?)",
            [
                (ids[job.index], position, p.name, dumps(p.value), int(p.has_refs))
                for job in jobs
                for position, p in enumerate(job.parameters)
            ],
        )

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read(
            "SELECT %s FROM runs WHERE id = ?" % _RUN_COLUMNS, (_int_id(run_id, "run"),)
        )
        if not rows:
            raise NotFoundError("no run %r in the mycelium %s" % (run_id, self.path))
        return _run_record(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._read(
            "SELECT %s FROM runs ORDER BY id DESC LIMIT ?" % _RUN_COLUMNS, (limit,)
        )
        return [_run_record(row) for row in rows]

    # -- the worker's side ----------------------------------------------------

    def claim_job(
        self, elf_uid: str, worker: str, lease: float = 30.0
    ) -> ClaimedJob | None:
        connection = self.connection
        while True:
            row = connection.execute(
                "SELECT id FROM jobs WHERE elf_uid = ? AND status = 'ready' AND"
                " decided = 1 AND coalesce(not_before, 0) <= ? ORDER BY run_id,"
                " position LIMIT 1",
                (elf_uid, time.time()),
            ).fetchone()
            if row is None:
                return None
            claimed = self._take(connection, row[0], worker, lease)
            if claimed is not None:
                return claimed

    def _take(
        self, connection, job_id: int, worker: str, lease: float
    ) -> ClaimedJob | None:
        now = time.time()
        try:
            row = connection.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
                " started_at = ?, worker = ?, lease_expires_at = ?, not_before ="
                " NULL WHERE id = ? AND status = 'ready' RETURNING id, run_id,"
                " idx, elf_uid, task, task_revision, attempts, site, attempt_base,"
                " guard, position",
                (now, worker, now + lease, job_id),
            ).fetchone()
        except sqlite3.Error as error:
            raise StoreError(
                "cannot claim a job in %s: %s" % (self.path, error)
            ) from error
        if row is None:
            return None
        identifier, run_id, index, elf_uid, task, revision, attempt, site, base = row[
            :9
        ]
        claimed = ClaimedJob(
            str(identifier),
            str(run_id),
            index,
            elf_uid,
            task,
            revision,
            attempt,
            json.loads(site),
            attempt_base=base,
            guard=None if row[9] is None else json.loads(row[9]),
            order=row[10],
        )
        try:
            claimed.parameters = self.job_parameters(claimed.id)
        except ValueError as error:
            claimed.problem = (
                "the stored parameters of job %s are not valid JSON: %s"
                % (claimed.id, error)
            )
        return claimed

    def fetch_results(self, run_id: str, indices) -> dict[int, object]:
        indices = sorted(set(indices))
        if not indices:
            return {}
        marks = ",".join("?" * len(indices))
        rows = self._read(
            "SELECT j.idx, r.value FROM jobs j LEFT JOIN results r ON r.job_id ="
            " j.id WHERE j.run_id = ? AND j.idx IN (%s) AND (r.job_id IS NOT NULL"
            " OR j.status = 'skipped')" % marks,
            (_int_id(run_id, "run"), *indices),
        )
        return {
            index: SKIPPED if value is None else json.loads(value)
            for index, value in rows
        }

    def complete_job(self, job_id: str, attempt: int, result) -> bool:
        text = dumps(result)
        identifier = _int_id(job_id, "job")
        now = time.time()
        with self._write() as connection:
            run_id = self._finish_done(connection, identifier, attempt, text, now)
            if run_id is None:
                return False
            self._release_dependents(connection, identifier, skipped=False)
            self._count_down(connection, run_id, 1, 0, now)
        return True

    def _release_dependents(self, connection, identifier: int, skipped: bool):
        """One dependency of each dependent finished: those left with none are
        ready, and claimable at once unless something must be decided first."""
        connection.execute(
            "UPDATE jobs SET unfinished_dependencies = unfinished_dependencies - 1,"
            " skipped_dependencies = skipped_dependencies + ?,"
            " decided = CASE WHEN unfinished_dependencies = 1 AND status ="
            " 'pending' THEN (guard IS NULL AND skipped_dependencies + ? = 0)"
            " ELSE decided END,"
            " status = CASE WHEN unfinished_dependencies = 1 AND status = 'pending'"
            " THEN 'ready' ELSE status END WHERE id IN (SELECT to_job FROM"
            " job_edges WHERE from_job = ?)",
            (int(skipped), int(skipped), identifier),
        )

    def undecided_jobs(self, limit: int = 50) -> list[UndecidedJob]:
        rows = self._read(
            "SELECT id, run_id, idx, guard, dependency_count, skipped_dependencies,"
            " elf_uid FROM jobs WHERE status = 'ready' AND decided = 0 ORDER BY id"
            " LIMIT ?",
            (limit,),
        )
        return [
            UndecidedJob(
                str(row[0]),
                str(row[1]),
                row[2],
                None if row[3] is None else json.loads(row[3]),
                row[4],
                row[5],
                row[6],
            )
            for row in rows
        ]

    def decide_job(self, job_id: str, runs: bool, attempt: int | None = None) -> bool:
        identifier = _int_id(job_id, "job")
        now = time.time()
        with self._write() as connection:
            if runs:
                return (
                    connection.execute(
                        "UPDATE jobs SET decided = 1 WHERE id = ? AND status = 'ready'"
                        " AND decided = 0",
                        (identifier,),
                    ).rowcount
                    == 1
                )
            row = connection.execute(
                "UPDATE jobs SET status = 'skipped', finished_at = ?,"
                " lease_expires_at = NULL WHERE id = ? AND ((status = 'ready' AND"
                " decided = 0) OR (status = 'running' AND attempts = ?))"
                " RETURNING run_id",
                (now, identifier, attempt),
            ).fetchone()
            if row is None:
                return False
            self._release_dependents(connection, identifier, skipped=True)
            self._count_down(connection, row[0], 1, 0, now)
        return True

    def _finish_done(
        self, connection, identifier: int, attempt: int, text: str, now: float
    ):
        """End the attempt as done with its result (JSON ``text``); the run
        id, or None when the attempt is not running."""
        run_id = self._finish(connection, identifier, attempt, "done", now)
        if run_id is not None:
            connection.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                (identifier, text, now),
            )
        return run_id

    def _finish(
        self, connection, identifier: int, attempt: int, status: str, now: float
    ):
        """End the attempt; the run id, or None when it is not running."""
        row = connection.execute(
            "UPDATE jobs SET status = ?, finished_at = ?, lease_expires_at = NULL"
            " WHERE id = ? AND status = 'running' AND attempts = ? RETURNING"
            " run_id",
            (status, now, identifier, attempt),
        ).fetchone()
        return None if row is None else row[0]

    def _count_down(
        self, connection, run_id: int, finished: int, failed: int, now: float
    ) -> None:
        connection.execute(
            "UPDATE runs SET jobs_unfinished = jobs_unfinished - ?,"
            " jobs_failed = jobs_failed + ?,"
            " status = CASE WHEN jobs_unfinished - ? > 0 THEN status"
            " WHEN jobs_failed + ? > 0 THEN 'failed' ELSE 'done' END,"
            " finished_at = CASE WHEN jobs_unfinished - ? > 0 THEN finished_at"
            " ELSE ? END WHERE id = ? AND status = 'running'",
            (finished, failed, finished, failed, finished, now, run_id),
        )

    def fail_job(
        self,
        job_id: str,
        attempt: int,
        failure: FailureDocument,
        retry_at: float | None = None,
    ) -> bool:
        identifier = _int_id(job_id, "job")
        now = time.time()
        with self._write() as connection:
            if retry_at is not None:
                if not self._requeue(connection, identifier, attempt, retry_at):
                    return False
            else:
                run_id = self._finish(connection, identifier, attempt, "failed", now)
                if run_id is None:
                    return False
                self._fail_downstream(connection, identifier, run_id, now)
            self._link_failure(connection, identifier, attempt, failure, now)
        return True

    def _requeue(
        self, connection, identifier: int, attempt: int, not_before: float
    ) -> bool:
        return (
            connection.execute(
                "UPDATE jobs SET status = 'ready', worker = NULL, lease_expires_at ="
                " NULL, not_before = ? WHERE id = ? AND status = 'running' AND"
                " attempts = ?",
                (not_before, identifier, attempt),
            ).rowcount
            == 1
        )

    def _fail_downstream(
        self, connection, identifier: int, run_id: int, now: float
    ) -> None:
        downstream = connection.execute(
            "UPDATE jobs SET status = 'upstream_failed', finished_at = ?"
            " WHERE status IN ('pending', 'ready') AND id IN (WITH RECURSIVE"
            " downstream(id) AS (SELECT to_job FROM job_edges WHERE from_job"
            " = ? UNION SELECT e.to_job FROM job_edges e JOIN downstream d"
            " ON e.from_job = d.id) SELECT id FROM downstream) RETURNING id",
            (now, identifier),
        ).fetchall()
        self._count_down(connection, run_id, 1 + len(downstream), 1, now)

    def _link_failure(
        self,
        connection,
        identifier: int,
        attempt: int,
        failure: FailureDocument,
        now: float,
    ) -> None:
        digest = _traceback_hash(failure)
        connection.execute(
            "INSERT OR IGNORE INTO failures (traceback_hash, exception_type,"
            " message, traceback, first_seen) VALUES (?, ?, ?, ?, ?)",
            (digest, failure.exception_type, failure.message, failure.traceback, now),
        )
        failure_id = connection.execute(
            "SELECT id FROM failures WHERE traceback_hash = ?", (digest,)
        ).fetchone()[0]
        connection.execute(
            "INSERT OR REPLACE INTO job_failures VALUES (?, ?, ?, ?, ?)",
            (identifier, attempt, failure_id, failure.task_revision, now),
        )

    def release_job(self, job_id: str, attempt: int) -> None:
        with self._write() as connection:
            connection.execute(
                "UPDATE jobs SET status = 'ready', worker = NULL, started_at ="
                " NULL, lease_expires_at = NULL WHERE id = ? AND status ="
                " 'running' AND attempts = ?",
                (_int_id(job_id, "job"), attempt),
            )

    # -- reading --------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord:
        rows = self._read(
            "SELECT %s FROM jobs WHERE id = ?" % _JOB_COLUMNS, (_int_id(job_id, "job"),)
        )
        if not rows:
            raise NotFoundError("no job %r in the mycelium %s" % (job_id, self.path))
        return _job_record(rows[0])

    def list_jobs(self, elf_uid=None, run_id=None, statuses=None) -> list[JobRecord]:
        clauses, parameters = [], []
        if elf_uid is not None:
            clauses.append("elf_uid = ?")
            parameters.append(elf_uid)
        if run_id is not None:
            clauses.append("run_id = ?")
            parameters.append(_int_id(run_id, "run"))
        if statuses is not None:
            statuses = list(statuses)
            clauses.append("status IN (%s)" % ",".join("?" * len(statuses)))
            parameters.extend(statuses)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._read(
            "SELECT %s FROM jobs%s ORDER BY run_id, position" % (_JOB_COLUMNS, where),
            parameters,
        )
        return [_job_record(row) for row in rows]

    def count_jobs(self, run_id: str) -> dict[str, int]:
        rows = self._read(
            "SELECT status, count(*) FROM jobs WHERE run_id = ? GROUP BY status",
            (_int_id(run_id, "run"),),
        )
        return dict(rows)

    def job_parameters(self, job_id: str) -> list[ParameterDocument]:
        rows = self._read(
            "SELECT name, value, has_refs FROM parameters WHERE"
            " job_id = ? ORDER BY position",
            (_int_id(job_id, "job"),),
        )
        return [
            ParameterDocument(name, json.loads(value), bool(has_refs))
            for name, value, has_refs in rows
        ]

    def job_result(self, job_id: str):
        rows = self._read(
            "SELECT value FROM results WHERE job_id = ?", (_int_id(job_id, "job"),)
        )
        return json.loads(rows[0][0]) if rows else None

    def list_edges(self, run_id: str) -> list[tuple[int, int]]:
        return [
            tuple(row)
            for row in self._read(
                "SELECT f.idx, t.idx FROM job_edges e JOIN jobs f ON f.id = e.from_job"
                " JOIN jobs t ON t.id = e.to_job WHERE t.run_id = ? ORDER BY t.idx,"
                " f.idx",
                (_int_id(run_id, "run"),),
            )
        ]

    def list_elves(self) -> list[dict]:
        uids = [row[0] for row in self._read("SELECT uid FROM elves ORDER BY uid")]
        return [self.get_elf(uid) for uid in uids]

    def get_task_revision(self, revision: str) -> dict | None:
        rows = self._read(
            "SELECT revision, elf_class, task, source, documentation,"
            " signature, result_keys FROM task_revisions WHERE"
            " revision = ?",
            (revision,),
        )
        keys = (
            "revision",
            "elf_class",
            "task",
            "source",
            "documentation",
            "signature",
            "result_keys",
        )
        return dict(zip(keys, rows[0])) if rows else None

    def get_flow_revision(self, revision: str) -> dict | None:
        rows = self._read(
            "SELECT revision, name, file, line, source FROM"
            " flow_revisions WHERE revision = ?",
            (revision,),
        )
        keys = ("revision", "name", "file", "line", "source")
        return dict(zip(keys, rows[0])) if rows else None

    def list_failures(self, run_id=None, job_id=None) -> list[FailureRecord]:
        clauses, parameters = [], []
        if run_id is not None:
            clauses.append("j.run_id = ?")
            parameters.append(_int_id(run_id, "run"))
        if job_id is not None:
            clauses.append("l.job_id = ?")
            parameters.append(_int_id(job_id, "job"))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._read(
            "SELECT f.id, l.job_id, l.attempt, f.exception_type, f.message,"
            " f.traceback, f.traceback_hash, l.task_revision, l.created_at"
            " FROM job_failures l JOIN failures f ON f.id = l.failure_id"
            " JOIN jobs j ON j.id = l.job_id%s ORDER BY l.created_at" % where,
            parameters,
        )
        return [FailureRecord(str(row[0]), str(row[1]), *row[2:]) for row in rows]


_RUN_COLUMNS = (
    "id, flow, flow_revision, status, arguments, result, result_dependencies,"
    " jobs_total, jobs_unfinished, jobs_failed, submitted_at, finished_at, run_key"
)


def _run_record(row) -> RunRecord:
    values = list(row)
    values[0] = str(row[0])
    for position in (4, 5, 6):
        values[position] = json.loads(row[position])
    return RunRecord(*values)


def _job_record(row) -> JobRecord:
    values = list(row)
    values[0], values[1], values[7] = str(row[0]), str(row[1]), json.loads(row[7])
    return JobRecord(*values)


def _int_id(value, kind: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFoundError(
            "%r is not a %s id of an SQLite mycelium (ids are numbers)" % (value, kind)
        ) from None


def _traceback_hash(failure: FailureDocument) -> str:
    digest = hashlib.sha256()
    for part in (failure.exception_type, failure.message, failure.traceback):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]
