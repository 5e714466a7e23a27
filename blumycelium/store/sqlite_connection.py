"""SQLite connections, schema and transactions of the embedded mycelium.

Standard library ``sqlite3`` only. The file is in WAL mode, so readers never
block the writer and the writer never blocks readers; writes are serialized by
SQLite's write lock, taken with ``BEGIN IMMEDIATE`` so that a transaction
never has to be retried half-way. Every connection waits up to
``BUSY_TIMEOUT_SECONDS`` for that lock, in steps that start at 50 µs
(:meth:`SQLiteConnections._patiently`): SQLite's own busy handler sleeps a
whole millisecond at its first retry, far longer than a worker's transaction
holds the lock, which kept two workers from running faster than one.
``synchronous=NORMAL``: a committed
transaction survives a crash of any process; after a power loss or an
operating-system crash the last transactions may be rolled back, and the file
stays consistent.

Connections are per thread and per process (a forked child opens its own).
A file that holds another application's tables is refused before anything
in it is changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager

from ..errors import NotFoundError, StoreError, StoreUnavailableError

SCHEMA_VERSION = 6

# A list of ids as one bound value (see id_list): SQLite caps the variables
# of a statement (32,766 by default), and fan-outs and re-runs name more jobs.
IN_LIST = "SELECT value FROM json_each(?)"


def id_list(values) -> str:
    """The bound value IN_LIST reads: the integers of ``values`` as JSON."""
    return json.dumps([int(value) for value in values])


def numbered(values) -> dict:
    """``values`` for the parameters ``?1``, ``?2``... of a statement, by
    number: Python 3.12 warns, and 3.14 refuses, numbered parameters given
    as a sequence."""
    return {str(number): value for number, value in enumerate(values, 1)}


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
    next_index INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL, finished_at REAL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL, elf_uid TEXT NOT NULL, task TEXT NOT NULL,
    task_revision TEXT NOT NULL, site TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ready',
    unfinished_dependencies INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, attempt_base INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1, worker TEXT,
    lease_expires_at REAL, not_before REAL, guard TEXT,
    decided INTEGER NOT NULL DEFAULT 1, dependency_count INTEGER NOT NULL DEFAULT 0,
    skipped_dependencies INTEGER NOT NULL DEFAULT 0, position TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    parameters TEXT, UNIQUE (run_id, idx));
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (elf_uid, run_id, position)
    WHERE status = 'ready' AND decided = 1;
CREATE INDEX IF NOT EXISTS jobs_undecided ON jobs (id)
    WHERE status = 'ready' AND decided = 0;
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (lease_expires_at)
    WHERE status = 'running';
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
    elf_uid TEXT NOT NULL, lease REAL NOT NULL, started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL, job_id INTEGER, stopped_at REAL);
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
    "workers",
    "elves",
    "elf_revisions",
    "task_revisions",
    "flow_revisions",
)


# Files whose header this process has read (see _check_header).
_CHECKED_FILES: set[str] = set()
_CHECKED_LOCK = threading.Lock()

# Pauses between two tries at a lock another connection holds: from 50 µs,
# doubling up to 2 ms (see _patiently).
_FIRST_PAUSE = 0.00005
_LONGEST_PAUSE = 0.002

# Bumped in a forked child, whose connections must be its own.
_FORKS = [0]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def int_id(value, kind: str) -> int:
    """The number of a run or job id; NotFoundError when it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFoundError(
            "%r is not a %s id of an SQLite mycelium (ids are numbers)" % (value, kind)
        ) from None


def _is_busy(error: sqlite3.Error) -> bool:
    """The error says another connection holds a lock (SQLITE_BUSY)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == 5  # SQLITE_BUSY and its extended codes
    return "locked" in str(error) or "busy" in str(error)


class SQLiteConnections:
    """Per-thread connections to one file, its schema and transactions."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.url = "sqlite:///" + self.path
        self._local = threading.local()
        self._initialized = False

    # -- connections ----------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.fork != _FORKS[0]:
            connection = self._connect()
            local.connection, local.fork = connection, _FORKS[0]
            if not self._initialized:
                self._create_schema(connection)
            # from here on this class waits for locks itself (see _patiently)
            connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def _check_header(self) -> None:
        """Refuse a file that is not an SQLite database, before SQLite sees it.

        Read with a plain ``open`` only while this process has no connection
        to the file: closing any descriptor of a file drops every POSIX lock
        the process holds on it, SQLite's included, after which another
        process may checkpoint and delete the WAL under our connections.
        """
        key = os.path.realpath(self.path)
        with _CHECKED_LOCK:
            if key in _CHECKED_FILES:
                return
            if os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
                with open(self.path, "rb") as file:
                    header = file.read(16)
                if header != b"SQLite format 3\x00":
                    raise StoreUnavailableError(
                        "cannot use %s as a mycelium: the file is not an SQLite"
                        " database (it is left as it was)" % self.path
                    )
            _CHECKED_FILES.add(key)

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreUnavailableError(
                "cannot open the mycelium %s: the directory %s does not exist"
                % (self.path, directory)
            )
        self._check_header()
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
                " version %d: point it at a new file, or read this one with the"
                " blumycelium that wrote it" % (self.path, row[0], SCHEMA_VERSION)
            )

    @contextmanager
    def _write(self, connection=None):
        """One write transaction, taken with the write lock up front."""
        connection = connection or self.connection
        self._patiently(connection.execute, "BEGIN IMMEDIATE", (), "write to")
        try:
            yield connection
        except sqlite3.Error as error:
            connection.execute("ROLLBACK")
            raise StoreError(
                "cannot write to the mycelium %s: %s" % (self.path, error)
            ) from error
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
        connection = self.connection
        return self._patiently(
            lambda *args: connection.execute(*args).fetchall(), sql, parameters, "read"
        )

    def _patiently(self, action, sql: str, parameters, verb: str):
        """``action(sql, parameters)``, tried again while another connection
        holds the lock it needs, for up to ``BUSY_TIMEOUT_SECONDS``; other
        errors (and a lock held beyond that) raise StoreError."""
        pause, deadline = _FIRST_PAUSE, None
        while True:
            try:
                return action(sql, parameters)
            except sqlite3.Error as error:
                now = time.monotonic()
                deadline = deadline or now + BUSY_TIMEOUT_SECONDS
                if not _is_busy(error) or now > deadline:
                    raise StoreError(
                        "cannot %s the mycelium %s: %s" % (verb, self.path, error)
                    ) from error
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def init(self) -> None:
        self.connection  # noqa: B018 - opening creates the schema

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.fork == _FORKS[0]:
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
        """Moves when the store is written: by another connection (SQLite's
        data_version) or by this one (its total_changes), so that a worker
        also notices what a task of its own process wrote."""
        return self._read("PRAGMA data_version")[0][0], self.connection.total_changes
