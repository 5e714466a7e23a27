"""The embedded mycelium: one SQLite file shared by any number of processes.

Standard library ``sqlite3`` only. The file is in WAL mode, so readers never
block the writer and the writer never blocks readers; writes are serialized by
SQLite's write lock, taken with ``BEGIN IMMEDIATE`` so that a transaction
never has to be retried half-way. Every connection waits up to
``busy_timeout`` seconds for that lock. ``synchronous=NORMAL``: a committed
transaction survives a crash of any process; after a power loss the last
transactions before it may be rolled back, and the file stays consistent.

Connections are per thread and per process (a forked child opens its own).

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
import os
import sqlite3
import threading
import time
from contextlib import contextmanager

from ..errors import NotFoundError, StoreError, StoreUnavailableError
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
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS elves (
    uid TEXT PRIMARY KEY, class_name TEXT NOT NULL, module TEXT NOT NULL,
    documentation TEXT, revision TEXT NOT NULL,
    registered_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS elf_revisions (
    elf_uid TEXT NOT NULL, revision TEXT NOT NULL, class_name TEXT NOT NULL,
    source TEXT, registered_at REAL NOT NULL,
    PRIMARY KEY (elf_uid, revision)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_revisions (
    revision TEXT PRIMARY KEY, elf_class TEXT NOT NULL, task TEXT NOT NULL,
    source TEXT, documentation TEXT, signature TEXT NOT NULL,
    result_keys TEXT, registered_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flow_revisions (
    revision TEXT PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL,
    line INTEGER NOT NULL, source TEXT NOT NULL, registered_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, flow TEXT NOT NULL,
    flow_revision TEXT NOT NULL, run_key TEXT UNIQUE, arguments TEXT NOT NULL,
    result TEXT NOT NULL, result_dependencies TEXT NOT NULL,
    status TEXT NOT NULL, jobs_total INTEGER NOT NULL,
    jobs_unfinished INTEGER NOT NULL, jobs_failed INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL, finished_at REAL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL, elf_uid TEXT NOT NULL, task TEXT NOT NULL,
    task_revision TEXT NOT NULL, site TEXT NOT NULL, status TEXT NOT NULL,
    unfinished_dependencies INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, worker TEXT,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    UNIQUE (run_id, idx));
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (elf_uid, id)
    WHERE status = 'ready';
CREATE INDEX IF NOT EXISTS jobs_by_elf ON jobs (elf_uid, status);
CREATE TABLE IF NOT EXISTS parameters (
    job_id INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,
    value TEXT NOT NULL, has_refs INTEGER NOT NULL,
    PRIMARY KEY (job_id, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_edges (
    from_job INTEGER NOT NULL, to_job INTEGER NOT NULL,
    PRIMARY KEY (from_job, to_job)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_edges_to ON job_edges (to_job);
CREATE TABLE IF NOT EXISTS results (
    job_id INTEGER PRIMARY KEY, value TEXT NOT NULL, stored_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, traceback_hash TEXT NOT NULL UNIQUE,
    exception_type TEXT NOT NULL, message TEXT NOT NULL,
    traceback TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS job_failures (
    job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,
    failure_id INTEGER NOT NULL, task_revision TEXT, created_at REAL NOT NULL,
    PRIMARY KEY (job_id, attempt)) WITHOUT ROWID;
"""

_JOB_TABLES = (
    "runs",
    "jobs",
    "parameters",
    "job_edges",
    "results",
    "failures",
    "job_failures",
)
_ALL_TABLES = _JOB_TABLES + (
    "elves",
    "elf_revisions",
    "task_revisions",
    "flow_revisions",
)
_JOB_COLUMNS = (
    "id, run_id, idx, elf_uid, task, task_revision, status, site,"
    " attempts, unfinished_dependencies, created_at, started_at,"
    " finished_at, worker"
)


def _dumps(data) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


class SQLiteBackend(StoreBackend):
    """A mycelium in one SQLite file."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.url = "sqlite:///" + self.path
        self._local = threading.local()
        self._initialized = False

    def __repr__(self) -> str:
        return "SQLiteBackend(%r)" % self.path

    # -- connections ----------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            connection = self._connect()
            local.connection, local.pid = connection, os.getpid()
            if not self._initialized:
                self._create_schema(connection)
        return connection

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreUnavailableError(
                "cannot open the mycelium %s: the directory %s does not exist"
                % (self.path, directory)
            )
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = OFF")
        except sqlite3.Error as error:
            raise StoreUnavailableError(
                "cannot open the mycelium %s: %s" % (self.path, error)
            ) from error
        return connection

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        try:
            self._check_ownership(connection)
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreUnavailableError(
                    "cannot put the mycelium %s in WAL mode (it is %s); is it on"
                    " a network file system?" % (self.path, mode)
                )
            with self._write(connection):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                self._check_version(connection)
        except sqlite3.DatabaseError as error:
            raise StoreUnavailableError(
                "cannot use %s as a mycelium: %s" % (self.path, error)
            ) from error
        self._initialized = True

    def _check_ownership(self, connection) -> None:
        """Refuse, before changing anything, a database another program owns."""
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        owner = None
        if "meta" in tables:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'application'"
            ).fetchone()
            owner = row[0] if row else None
        if tables and owner != "blumycelium":
            shown = ", ".join(sorted(tables)[:5])
            raise StoreUnavailableError(
                "%s is an SQLite database of another application (it has the"
                " tables %s); give the mycelium a file of its own" % (self.path, shown)
            )

    def _check_version(self, connection) -> None:
        row = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        if row is None:
            connection.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("application", "blumycelium"),
                    ("schema_version", str(SCHEMA_VERSION)),
                ],
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreUnavailableError(
                "the mycelium %s has schema version %s; this blumycelium reads"
                " version %d" % (self.path, row[0], SCHEMA_VERSION)
            )

    @contextmanager
    def _write(self, connection=None):
        """One write transaction, taken with the write lock up front."""
        connection = connection or self.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(
                "cannot write to the mycelium %s: %s" % (self.path, error)
            ) from error
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        else:
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                connection.execute("ROLLBACK")
                raise StoreError(
                    "cannot commit to the mycelium %s: %s" % (self.path, error)
                ) from error

    def _read(self, sql: str, parameters=()) -> list:
        try:
            return self.connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise StoreError(
                "cannot read the mycelium %s: %s" % (self.path, error)
            ) from error

    def init(self) -> None:
        self.connection  # noqa: B018 - opening creates the schema

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local = threading.local()

    def drop_jobs(self) -> None:
        self._delete(_JOB_TABLES)

    def drop(self) -> None:
        self._delete(_ALL_TABLES)

    def _delete(self, tables) -> None:
        with self._write() as connection:
            for table in tables:
                connection.execute("DELETE FROM %s" % table)

    def changes_token(self):
        return self.connection.execute("PRAGMA data_version").fetchone()[0]

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
                        None if t.result_keys is None else _dumps(t.result_keys),
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
            run_id = self._insert_run(connection, run, now)
            ids = self._insert_jobs(connection, run_id, run.jobs, now)
            connection.executemany(
                "INSERT INTO parameters VALUES (?, ?, ?, ?, ?)",
                [
                    (ids[job.index], position, p.name, _dumps(p.value), int(p.has_refs))
                    for job in run.jobs
                    for position, p in enumerate(job.parameters)
                ],
            )
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
            " submitted_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.flow,
                run.flow_revision,
                run.run_key,
                _dumps(run.arguments),
                _dumps(run.result),
                _dumps(sorted(run.result_dependencies)),
                "done" if finished else "running",
                len(run.jobs),
                len(run.jobs),
                now,
                now if finished else None,
            ),
        )
        return cursor.lastrowid

    def _insert_jobs(self, connection, run_id: int, jobs, now: float) -> dict:
        row = connection.execute(
            "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), coalesce("
            "(SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0))"
        ).fetchone()
        first = row[0] + 1
        ids = {job.index: first + position for position, job in enumerate(jobs)}
        connection.executemany(
            "INSERT INTO jobs (id, run_id, idx, elf_uid, task, task_revision,"
            " site, status, unfinished_dependencies, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    ids[job.index],
                    run_id,
                    job.index,
                    job.elf_uid,
                    job.task,
                    job.task_revision,
                    _dumps(job.site),
                    "pending" if job.dependencies else "ready",
                    len(job.dependencies),
                    now,
                )
                for job in jobs
            ],
        )
        return ids

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read(
            "SELECT id, flow, flow_revision, status, arguments, result,"
            " result_dependencies, jobs_total, jobs_unfinished, jobs_failed,"
            " submitted_at, finished_at, run_key FROM runs WHERE id = ?",
            (_int_id(run_id, "run"),),
        )
        if not rows:
            raise NotFoundError("no run %r in the mycelium %s" % (run_id, self.path))
        (
            identifier,
            flow,
            revision,
            status,
            arguments,
            result,
            dependencies,
            total,
            unfinished,
            failed,
            submitted,
            finished,
            run_key,
        ) = rows[0]
        return RunRecord(
            str(identifier),
            flow,
            revision,
            status,
            json.loads(arguments),
            json.loads(result),
            json.loads(dependencies),
            total,
            unfinished,
            failed,
            submitted,
            finished,
            run_key,
        )

    # -- the worker's side ----------------------------------------------------

    def claim_job(self, elf_uid: str, worker: str) -> ClaimedJob | None:
        connection = self.connection
        while True:
            row = connection.execute(
                "SELECT id FROM jobs WHERE elf_uid = ? AND status = 'ready'"
                " ORDER BY id LIMIT 1",
                (elf_uid,),
            ).fetchone()
            if row is None:
                return None
            claimed = self._take(connection, row[0], worker)
            if claimed is not None:
                return claimed

    def _take(self, connection, job_id: int, worker: str) -> ClaimedJob | None:
        try:
            row = connection.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
                " started_at = ?, worker = ? WHERE id = ? AND status = 'ready'"
                " RETURNING id, run_id, idx, elf_uid, task, task_revision,"
                " attempts, site",
                (time.time(), worker, job_id),
            ).fetchone()
        except sqlite3.Error as error:
            raise StoreError(
                "cannot claim a job in %s: %s" % (self.path, error)
            ) from error
        if row is None:
            return None
        identifier, run_id, index, elf_uid, task, revision, attempt, site = row
        claimed = ClaimedJob(
            str(identifier),
            str(run_id),
            index,
            elf_uid,
            task,
            revision,
            attempt,
            json.loads(site),
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
            "SELECT j.idx, r.value FROM jobs j JOIN results r ON r.job_id = j.id"
            " WHERE j.run_id = ? AND j.idx IN (%s)" % marks,
            (_int_id(run_id, "run"), *indices),
        )
        return {index: json.loads(value) for index, value in rows}

    def complete_job(self, job_id: str, result) -> bool:
        text = _dumps(result)
        identifier = _int_id(job_id, "job")
        now = time.time()
        with self._write() as connection:
            run_id = self._finish(connection, identifier, "done", now)
            if run_id is None:
                return False
            connection.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                (identifier, text, now),
            )
            connection.execute(
                "UPDATE jobs SET unfinished_dependencies ="
                " unfinished_dependencies - 1, status = CASE WHEN"
                " unfinished_dependencies = 1 AND status = 'pending' THEN 'ready'"
                " ELSE status END WHERE id IN (SELECT to_job FROM job_edges"
                " WHERE from_job = ?)",
                (identifier,),
            )
            self._count_down(connection, run_id, 1, 0, now)
        return True

    def _finish(self, connection, identifier: int, status: str, now: float):
        row = connection.execute(
            "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND"
            " status = 'running' RETURNING run_id",
            (status, now, identifier),
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

    def fail_job(self, job_id: str, failure: FailureDocument) -> bool:
        identifier = _int_id(job_id, "job")
        digest = _traceback_hash(failure)
        now = time.time()
        with self._write() as connection:
            attempt = connection.execute(
                "SELECT attempts FROM jobs WHERE id = ?", (identifier,)
            ).fetchone()
            run_id = self._finish(connection, identifier, "failed", now)
            if run_id is None:
                return False
            failure_id = self._store_failure(connection, failure, digest, now)
            connection.execute(
                "INSERT OR REPLACE INTO job_failures VALUES (?, ?, ?, ?, ?)",
                (identifier, attempt[0], failure_id, failure.task_revision, now),
            )
            downstream = connection.execute(
                "UPDATE jobs SET status = 'upstream_failed', finished_at = ?"
                " WHERE status IN ('pending', 'ready') AND id IN (WITH RECURSIVE"
                " downstream(id) AS (SELECT to_job FROM job_edges WHERE from_job"
                " = ? UNION SELECT e.to_job FROM job_edges e JOIN downstream d"
                " ON e.from_job = d.id) SELECT id FROM downstream) RETURNING id",
                (now, identifier),
            ).fetchall()
            self._count_down(connection, run_id, 1 + len(downstream), 1, now)
        return True

    def _store_failure(self, connection, failure, digest: str, now: float) -> int:
        connection.execute(
            "INSERT OR IGNORE INTO failures (traceback_hash, exception_type,"
            " message, traceback, first_seen) VALUES (?, ?, ?, ?, ?)",
            (digest, failure.exception_type, failure.message, failure.traceback, now),
        )
        return connection.execute(
            "SELECT id FROM failures WHERE traceback_hash = ?", (digest,)
        ).fetchone()[0]

    def release_job(self, job_id: str) -> None:
        with self._write() as connection:
            connection.execute(
                "UPDATE jobs SET status = 'ready', worker = NULL, started_at ="
                " NULL WHERE id = ? AND status = 'running'",
                (_int_id(job_id, "job"),),
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
            "SELECT %s FROM jobs%s ORDER BY id" % (_JOB_COLUMNS, where), parameters
        )
        return [_job_record(row) for row in rows]

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


def _job_record(row) -> JobRecord:
    (
        identifier,
        run_id,
        index,
        elf_uid,
        task,
        revision,
        status,
        site,
        attempts,
        unfinished,
        created,
        started,
        finished,
        worker,
    ) = row
    return JobRecord(
        str(identifier),
        str(run_id),
        index,
        elf_uid,
        task,
        revision,
        status,
        json.loads(site),
        attempts,
        unfinished,
        created,
        started,
        finished,
        worker,
    )


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
