"""The embedded mycelium: one SQLite file shared by any number of processes.

Connections, schema and transactions are in ``sqlite_connection.py``;
claims and completions in ``sqlite_claims.py``; leases, workers, cancellation
and re-runs in ``sqlite_recovery.py``; fan-out in ``sqlite_expansion.py``.

How the rules of ``base.py`` are kept:

- submission: one ``BEGIN IMMEDIATE`` transaction inserts the run, its jobs
  (ids assigned from the sequence under the write lock), parameters and edges
  with ``executemany``;
- readiness: ``complete_job`` decrements ``unfinished_dependencies`` of the
  job's dependents (found through the ``job_edges`` primary key) and flips
  those reaching zero from ``pending`` to ``ready`` in the same transaction;
- claims: a worker hands in its finished jobs and claims its next ones in
  one transaction, through a partial index holding only ready jobs (see
  ``sqlite_claims.py``); an idle worker only reads, and never takes the
  write lock;
- failures: a recursive query walks the edges downstream and marks what has
  not finished ``upstream_failed``.
"""

from __future__ import annotations

import hashlib
import time

from ..errors import NotFoundError
from ..values import dumps, loads
from .base import (
    ElfDocument,
    FailureDocument,
    FailureRecord,
    JobRecord,
    ParameterDocument,
    RunDocument,
    RunProgress,
    RunRecord,
    StoreBackend,
    TaskDocument,
    UndecidedJob,
)
from .sqlite_claims import RUN_CANCELLED, ClaimsMixin, parameter_documents
from .sqlite_connection import IN_LIST, SQLiteConnections, id_list, int_id, numbered
from .sqlite_expansion import ExpansionMixin
from .sqlite_recovery import RecoveryMixin
from .sqlite_rows import (
    READY_COLUMNS,
    STATE_COLUMNS,
    JobRows,
    insert_statement,
    job_rows,
    run_row,
)

# What a skipped job's result reads as (see values.SkippedMarker).
SKIPPED = {"__bm__": "skipped"}

_JOB_COLUMNS = (
    "id, run_id, idx, elf_uid, task, task_revision, status, site,"
    " attempts, unfinished_dependencies, created_at, started_at,"
    " finished_at, worker, attempt_base, max_attempts, not_before, position"
)


class SQLiteBackend(
    SQLiteConnections, ClaimsMixin, RecoveryMixin, ExpansionMixin, StoreBackend
):
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
        # the rows are made before the write lock is taken, and wait only
        # for their ids
        row = run_row(run, now)
        jobs = job_rows(run.jobs, now)
        with self._write() as connection:
            if run.run_key is not None:
                existing = connection.execute(
                    "SELECT id FROM runs WHERE run_key = ?", (run.run_key,)
                ).fetchone()
                if existing is not None:
                    return str(existing[0])
            run_id = self._insert_run(connection, run, row, now)
            ids = self._insert_jobs(connection, run_id, run.jobs, jobs)
            connection.executemany(
                "INSERT INTO job_edges VALUES (?, ?)",
                [
                    (ids[dependency], ids[job.index])
                    for job in run.jobs
                    for dependency in job.dependencies
                ],
            )
        return str(run_id)

    def _insert_run(self, connection, run: RunDocument, row: tuple, now) -> int:
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
        cursor = connection.execute(
            "INSERT INTO runs (flow, flow_revision, run_key, arguments, result,"
            " result_dependencies, status, jobs_total, jobs_unfinished,"
            " submitted_at, finished_at, next_index) VALUES (?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?)",
            row,
        )
        return cursor.lastrowid

    def _insert_jobs(self, connection, run_id: int, jobs, rows: JobRows) -> dict:
        """Insert the rows of ``jobs`` (see ``job_rows``); the ids by job index.

        Job ids are never used twice, even once their runs are purged: the
        last one given is kept in ``meta`` (per write, where AUTOINCREMENT
        would keep it per row, at a sixth of the insert's time); a file
        whose jobs table had AUTOINCREMENT keeps its mark in sqlite_sequence."""
        row = connection.execute(
            "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), coalesce((SELECT"
            " CAST(value AS INTEGER) FROM meta WHERE key = 'last_job_id'), 0),"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0))"
        ).fetchone()
        first = row[0] + 1
        connection.execute(
            "INSERT OR REPLACE INTO meta VALUES ('last_job_id', ?)",
            (str(first + len(jobs) - 1),),
        )
        for columns, batch in (
            (READY_COLUMNS, rows.ready),
            (READY_COLUMNS + STATE_COLUMNS, rows.waiting),
        ):
            if batch:
                connection.executemany(
                    insert_statement(columns, first, run_id, rows.created_at), batch
                )
        connection.executemany(
            "INSERT INTO parameters VALUES (%d + ?, ?, ?, ?, ?)" % first,
            rows.parameters,
        )
        return {job.index: first + number for number, job in enumerate(jobs)}

    def get_run(self, run_id: str) -> RunRecord:
        return _run_record(self._run_row(_RUN_COLUMNS, run_id))

    def run_progress(self, run_id: str) -> RunProgress:
        row = self._run_row(_PROGRESS_COLUMNS, run_id)
        return RunProgress(str(row[0]), *row[1:])

    def run_result(self, run_id: str):
        return loads(self._run_row("result", run_id)[0])

    def _run_row(self, columns: str, run_id: str):
        rows = self._read(
            "SELECT %s FROM runs WHERE id = ?" % columns, (int_id(run_id, "run"),)
        )
        if not rows:
            raise NotFoundError("no run %r in the mycelium %s" % (run_id, self.path))
        return rows[0]

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._read(
            "SELECT %s FROM runs ORDER BY id DESC LIMIT ?" % _RUN_COLUMNS, (limit,)
        )
        return [_run_record(row) for row in rows]

    # -- the worker's side ----------------------------------------------------

    def fetch_results(self, run_id: str, indices) -> dict[int, object]:
        indices = sorted(set(indices))
        if not indices:
            return {}
        rows = self._read(
            "SELECT j.idx, r.value FROM jobs j LEFT JOIN results r ON r.job_id ="
            " j.id WHERE j.run_id = ? AND j.idx IN (%s) AND (r.job_id IS NOT NULL"
            " OR j.status = 'skipped')" % IN_LIST,
            (int_id(run_id, "run"), id_list(indices)),
        )
        return {
            index: SKIPPED if value is None else loads(value) for index, value in rows
        }

    def _release_dependents(self, connection, identifiers: list, skipped: bool):
        """The jobs of ``identifiers`` finished: each of their dependents has
        that many dependencies fewer; those left with none are ready, and
        claimable at once unless something must be decided first."""
        count = len(identifiers)
        finished = ",".join("?%d" % number for number in range(1, count + 1))
        released = _RELEASED % finished
        connection.execute(
            _RELEASE
            % {
                "released": released,
                "skips": "?%d * %s" % (count + 1, released),
                "finished": finished,
            },
            numbered((*identifiers, int(skipped))),
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
                None if row[3] is None else loads(row[3]),
                row[4],
                row[5],
                row[6],
            )
            for row in rows
        ]

    def decide_job(self, job_id: str, runs: bool, attempt: int | None = None) -> bool:
        identifier = int_id(job_id, "job")
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
            self._release_dependents(connection, [identifier], skipped=True)
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
        identifier = int_id(job_id, "job")
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
        """Make a running attempt's job ready again from ``not_before`` on, or
        cancelled when its run was cancelled meanwhile."""
        return (
            connection.execute(
                "UPDATE jobs SET status = CASE WHEN %s THEN 'cancelled' ELSE"
                " 'ready' END, finished_at = CASE WHEN %s THEN ? END, worker ="
                " NULL, lease_expires_at = NULL, not_before = ? WHERE id = ? AND"
                " status = 'running' AND attempts = ?" % (RUN_CANCELLED, RUN_CANCELLED),
                (not_before, not_before, identifier, attempt),
            ).rowcount
            == 1
        )

    def _fail_downstream(
        self, connection, identifier: int, run_id: int, now: float
    ) -> None:
        downstream = self._mark_downstream(connection, identifier, now)
        self._count_down(connection, run_id, 1 + downstream, 1, now)

    def _mark_downstream(self, connection, identifier: int, now: float) -> int:
        """Make every job that has not started below ``identifier``
        upstream_failed; how many there were."""
        return len(
            connection.execute(
                "UPDATE jobs SET status = 'upstream_failed', finished_at = ?"
                " WHERE status IN ('pending', 'ready') AND id IN (WITH RECURSIVE"
                " downstream(id) AS (SELECT to_job FROM job_edges WHERE from_job"
                " = ? UNION SELECT e.to_job FROM job_edges e JOIN downstream d"
                " ON e.from_job = d.id) SELECT id FROM downstream) RETURNING id",
                (now, identifier),
            ).fetchall()
        )

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

    # -- reading --------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord:
        rows = self._read(
            "SELECT %s FROM jobs WHERE id = ?" % _JOB_COLUMNS, (int_id(job_id, "job"),)
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
            parameters.append(int_id(run_id, "run"))
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
            (int_id(run_id, "run"),),
        )
        return dict(rows)

    def job_parameters(self, job_id: str) -> list[ParameterDocument]:
        identifier = int_id(job_id, "job")
        inline = self._read("SELECT parameters FROM jobs WHERE id = ?", (identifier,))
        rows = []
        if not inline or inline[0][0] is None:
            rows = self._read(
                "SELECT name, value, has_refs FROM parameters WHERE"
                " job_id = ? ORDER BY position",
                (identifier,),
            )
        return parameter_documents(inline[0][0] if inline else None, rows)

    def job_result(self, job_id: str):
        rows = self._read(
            "SELECT value FROM results WHERE job_id = ?", (int_id(job_id, "job"),)
        )
        return loads(rows[0][0]) if rows else None

    def list_edges(self, run_id: str) -> list[tuple[int, int]]:
        return [
            tuple(row)
            for row in self._read(
                "SELECT f.idx, t.idx FROM job_edges e JOIN jobs f ON f.id = e.from_job"
                " JOIN jobs t ON t.id = e.to_job WHERE t.run_id = ? ORDER BY t.idx,"
                " f.idx",
                (int_id(run_id, "run"),),
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
            parameters.append(int_id(run_id, "run"))
        if job_id is not None:
            clauses.append("l.job_id = ?")
            parameters.append(int_id(job_id, "job"))
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


# How many of the finished jobs (?1, ?2, ...) a job waited for.
_RELEASED = (
    "(SELECT count(*) FROM job_edges WHERE to_job = jobs.id AND from_job IN (%s))"
)
_RELEASE = (
    "UPDATE jobs SET unfinished_dependencies = unfinished_dependencies -"
    " %(released)s, skipped_dependencies = skipped_dependencies + %(skips)s,"
    " decided = CASE WHEN unfinished_dependencies = %(released)s AND status ="
    " 'pending' THEN (guard IS NULL AND skipped_dependencies + %(skips)s = 0)"
    " ELSE decided END, status = CASE WHEN unfinished_dependencies ="
    " %(released)s AND status = 'pending' THEN 'ready' ELSE status END WHERE"
    " id IN (SELECT to_job FROM job_edges WHERE from_job IN (%(finished)s))"
)
_PROGRESS_COLUMNS = "id, flow, status, jobs_total, jobs_unfinished, jobs_failed"


def _run_record(row) -> RunRecord:
    values = list(row)
    values[0] = str(row[0])
    for position in (4, 5, 6):
        values[position] = loads(row[position])
    return RunRecord(*values)


def _job_record(row) -> JobRecord:
    values = list(row)
    values[0], values[1], values[7] = str(row[0]), str(row[1]), loads(row[7])
    return JobRecord(*values)


def _traceback_hash(failure: FailureDocument) -> str:
    digest = hashlib.sha256()
    for part in (failure.exception_type, failure.message, failure.traceback):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]
