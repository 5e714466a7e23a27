"""The ArangoDB mycelium: one database shared by elves on many machines.

Talking to the server (handles, retries, error conversion) is in
``arango_connection.py``, the database layout in ``arango_schema.py``,
documents in ``arango_documents.py``, keys in ``arango_keys.py`` and every
AQL statement in ``arango_queries.py``; fan-out is in ``arango_expansion.py``
and leases, workers, cancellation and re-runs in ``arango_recovery.py``.

The semantics are the SQLite mycelium's, statement for statement; how the
rules of ``base.py`` are kept here:

- submission: one stream transaction, declared to write the run's
  collections, inserts the run, its jobs, parameters, edges and chunks with
  a bulk insert per collection (``insert_many``, in batches of bounded size).
  Ids are keys the client makes: a run key sorts by submission time (see
  ``arango_keys``), a job is ``<run>-<index>``, so edges are written without
  reading anything back;
- readiness: ``complete_job`` ends the attempt, stores the result, decrements
  the counters of the jobs its JobToJob edges point at and flips those that
  reach zero to ``ready``, and counts the run down, in one stream transaction;
- claims: one AQL statement finds the elf's oldest decided ready job through
  the persistent index (elf_uid, status, decided, run, order) and updates it
  with ``ignoreRevs: false``, so that of two workers that read the same job
  one gets a write-write conflict (1200), pauses a random moment and looks
  again. The claim returns the job's parameters in the same round trip;
- failures: a breadth-first traversal of JobToJob marks what is downstream
  and unfinished ``upstream_failed``, in the transaction that fails the job.

Timestamps come from the clock of the machine that writes them, as with
SQLite; machines sharing a mycelium must keep their clocks in step (NTP),
since a lease written by one is judged expired by another.
TODO: take lease times from the server (DATE_NOW() in AQL) to drop that need.

A run's counters live on its document, so workers completing jobs of one run
at the same moment conflict there and retry.
TODO: count finished jobs per worker and sum on read if that contention shows.

With several coordinators, python-arango's round robin sends consecutive
requests, those of one stream transaction included, to different
coordinators; this relies on a coordinator forwarding a request for a
transaction it does not own to the one that began it (not verified here).
TODO: pin a transaction to one coordinator if a cluster shows otherwise.
"""

from __future__ import annotations

import time

from ..errors import NotFoundError
from ..urls import ArangoURL
from . import arango_queries as aql
from .arango_connection import (
    ArangoAccess,
    ArangoConnection,
    RetryPolicy,
    require_driver,
    statement,
)
from .arango_documents import (
    SAFE_VALUE_CHARACTERS,
    SKIPPED,
    claimed_job,
    dependency_edges,
    dumps,
    elf_documents,
    failure_documents,
    flow_document,
    job_document,
    job_record,
    loads,
    parameter_documents,
    parameter_record,
    result_documents,
    run_document,
    run_record,
    stored_value,
)
from .arango_expansion import ArangoExpansion
from .arango_keys import RunKeys, document_key, is_legal_key, job_key, run_of_job
from .arango_recovery import ArangoRecovery
from .arango_schema import ALL_COLLECTIONS, RUN_COLLECTIONS, ensure_schema
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
)

# What each kind of transaction writes; every one also reads JobToJob.
SUBMIT_COLLECTIONS = (
    "FlowRevisions",
    "Runs",
    "RunKeys",
    "Jobs",
    "Parameters",
    "JobParameters",
    "JobToJob",
    "Chunks",
)
FINISH_COLLECTIONS = ("Jobs", "Runs", "Results", "Chunks", "Failures", "JobFailures")
ELF_COLLECTIONS = ("MachineElves", "MachineElvesRevisions", "TaskRevisions")


class ArangoBackend(ArangoRecovery, ArangoExpansion, ArangoAccess, StoreBackend):
    """A mycelium in one ArangoDB database.

    ``connection`` is an :class:`ArangoConnection` (a python-arango client
    and credentials); ``database`` its name. The database is created on
    first use when ``create_database`` is true and the user may create it.
    """

    value_limit = SAFE_VALUE_CHARACTERS

    def __init__(
        self,
        connection: ArangoConnection,
        database: str,
        *,
        url: str | None = None,
        create_database: bool = True,
        make_client=None,
        retry: RetryPolicy | None = None,
    ):
        if url is None:
            url = _url_of(connection, database)
        super().__init__(connection, database, url, create_database, make_client, retry)
        self.run_keys = RunKeys()

    @classmethod
    def from_url(cls, location: ArangoURL, http_client=None) -> ArangoBackend:
        """The backend an ``arango://`` URL names; its client is made per
        process, round robin over several hosts."""
        driver = require_driver()
        hosts = list(location.hosts)

        def make_client():
            # one quick retry of a failed connection: the driver's default
            # (three, backing off from a second) made an unreachable server
            # take 20 s to report; conflicts are retried by this backend
            http = http_client or driver.http.DefaultHTTPClient(
                retry_attempts=1, backoff_factor=0.2
            )
            return driver.ArangoClient(
                hosts=hosts,
                host_resolver="roundrobin" if len(hosts) > 1 else "fallback",
                http_client=http,
            )

        connection = ArangoConnection(None, location.username, location.password)
        return cls(
            connection,
            location.database,
            url=location.public(),
            make_client=make_client,
        )

    # -- set-up ---------------------------------------------------------------

    def init(self, create_database: bool | None = None) -> None:
        """Create what is missing (database, collections, graphs, indexes)."""
        create = self.create_database if create_database is None else create_database
        self._client()
        database = self._handles[2]
        self._call(
            "prepare the database",
            lambda: ensure_schema(database, self._system_db, self.database, create),
        )
        self._ready = True

    def drop_jobs(self) -> None:
        self._truncate(RUN_COLLECTIONS)

    def drop(self) -> None:
        self._truncate(ALL_COLLECTIONS)

    def _truncate(self, collections) -> None:
        """Empty ``collections`` one by one (not atomic: stop workers first)."""
        database = self._db
        for name in collections:
            self._call("empty " + name, database.collection(name).truncate)

    def drop_database(self) -> None:
        """Delete the whole database (tests and benchmarks use throwaway ones)."""
        self._call(
            "drop the database",
            lambda: self._system_db().delete_database(
                self.database, ignore_missing=True
            ),
        )
        self._ready = False

    def create_users(self, users) -> None:
        """The seed-era ``users_to_create``: each ``{"username", "password"}``
        is created unless it exists, and may read and write this database."""
        system = self._system_db()
        for user in users:
            name = user["username"]

            def create(name=name, password=user["password"]):
                if not system.has_user(name):
                    system.create_user(name, password)
                system.update_permission(name, "rw", self.database)

            self._call("create user %r" % name, create)

    def changes_token(self):
        """The revision of the Jobs collection: any job written moves it."""
        return self._call("read the change token", self._db.collection("Jobs").revision)

    # -- elves ----------------------------------------------------------------

    def register_elf(self, elf: ElfDocument, tasks: list[TaskDocument]) -> None:
        document, revisions, task_revisions = elf_documents(elf, tasks, time.time())

        def body(trx):
            statement(trx, aql.UPSERT_ELF, elf=document)
            for collection, documents in (
                ("MachineElvesRevisions", revisions),
                ("TaskRevisions", task_revisions),
            ):
                if documents:
                    statement(
                        trx,
                        aql.UPSERT_REVISIONS,
                        documents=documents,
                        **{"@collection": collection},
                    )

        self._transaction(
            "register elf %r" % elf.uid, body, write=ELF_COLLECTIONS, retry_unique=True
        )

    def get_elf(self, uid: str) -> dict | None:
        rows = self._query("read elf %r" % uid, aql.ONE_ELF, key=document_key(uid))
        return rows[0] if rows else None

    def list_elves(self) -> list[dict]:
        return self._query("list the elves", aql.ALL_ELVES)

    # -- runs -----------------------------------------------------------------

    def submit_run(self, run: RunDocument) -> str:
        now = time.time()
        document = run_document("", run, now)  # ValueError before any request
        texts = [[dumps(p.value) for p in job.parameters] for job in run.jobs]

        def body(trx):
            if run.run_key is not None:
                existing = statement(
                    trx, aql.RUN_FOR_KEY, key=document_key(run.run_key)
                )
                if existing[0] is not None:
                    return existing[0]
            key = self.run_keys.new()
            self._insert(trx, "FlowRevisions", [flow_document(run, now)], "ignore")
            self._insert(trx, "Runs", [dict(document, _key=key)])
            if run.run_key is not None:
                self._insert(trx, "RunKeys", [_run_key_document(run.run_key, key)])
            self._insert_jobs(trx, key, run.jobs, texts, now)
            return key

        return self._transaction(
            "submit a run of flow %r" % run.flow,
            body,
            write=SUBMIT_COLLECTIONS,
            retry_unique=True,  # a concurrent submission with the same key
        )

    def _insert_jobs(self, trx, run: str, jobs, texts, now: float, states=None):
        """Jobs with their parameters, chunks and incoming edges; ``states``
        overrides, by index, (status, unfinished, skipped dependencies)."""
        states = states or {}
        self._insert(
            trx,
            "Jobs",
            [job_document(run, job, now, states.get(job.index)) for job in jobs],
        )
        self._insert_parameters(
            trx,
            run,
            [
                (job.index, job.parameters, job_texts)
                for job, job_texts in zip(jobs, texts)
            ],
        )
        edges = [
            edge
            for job in jobs
            for edge in dependency_edges(run, job.index, job.dependencies)
        ]
        self._insert(trx, "JobToJob", edges)

    def _insert_parameters(self, trx, run: str, jobs) -> None:
        """Parameters of ``jobs`` (index, parameters, their JSON texts), with
        their JobParameters edges and chunks."""
        parameters, edges, chunks = [], [], []
        for index, job_parameters, texts in jobs:
            documents, links, pieces = parameter_documents(
                run, index, job_parameters, texts, self.value_limit
            )
            parameters += documents
            edges += links
            chunks += pieces
        self._insert(trx, "Parameters", parameters)
        self._insert(trx, "JobParameters", edges)
        self._insert(trx, "Chunks", chunks, "replace")

    def get_run(self, run_id: str) -> RunRecord:
        return run_record(self._document("Runs", run_id, "run"))

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._query("list runs", aql.LIST_RUNS, limit=limit)
        return [run_record(row) for row in rows]

    def _document(self, collection: str, key: str, kind: str) -> dict:
        """A document by key; NotFoundError naming the ``kind`` when missing."""
        document = self._lookup(collection, key)
        if document is None:
            raise NotFoundError("no %s %r in the mycelium %s" % (kind, key, self.url))
        return document

    def _lookup(self, collection: str, key: str) -> dict | None:
        """A document by key, or None (without asking, for an illegal key)."""
        if not is_legal_key(key):
            return None
        rows = self._query(
            "read %s/%s" % (collection, key),
            aql.DOCUMENT,
            collection=collection,
            key=key,
        )
        return rows[0]

    # -- the worker's side ----------------------------------------------------

    def claim_job(
        self, elf_uid: str, worker: str, lease: float = 30.0
    ) -> ClaimedJob | None:
        rows = self._query(
            "claim a job of elf %r" % elf_uid,
            aql.CLAIM,
            elf=elf_uid,
            worker=worker,
            now=time.time(),
            lease=lease,
        )
        if not rows:
            return None
        claimed = claimed_job(rows[0]["job"])
        try:
            claimed.parameters = self._parameters(rows[0]["parameters"])
        except ValueError as error:
            claimed.problem = "the stored parameters of job %s are not valid: %s" % (
                claimed.id,
                error,
            )
        return claimed

    def _parameters(self, documents) -> list[ParameterDocument]:
        texts = self._chunk_texts(documents)
        return [parameter_record(document, texts) for document in documents]

    def _chunk_texts(self, documents) -> dict:
        """The texts of the chunks the value ``documents`` list, by key."""
        keys = [key for document in documents for key in document.get("chunks") or []]
        if not keys:
            return {}
        texts = self._query("read large values", aql.CHUNKS, keys=keys)
        missing = [key for key, text in zip(keys, texts) if text is None]
        if missing:
            raise ValueError("the chunks %s of a large value are missing" % missing)
        return dict(zip(keys, texts))

    def fetch_results(self, run_id: str, indices) -> dict[int, object]:
        indices = sorted(set(indices))
        if not indices or not is_legal_key(job_key(run_id, 0)):
            return {}
        rows = self._query(
            "read results of run %s" % run_id,
            aql.RESULTS,
            keys=[job_key(run_id, index) for index in indices],
        )
        texts = self._chunk_texts([row["result"] for row in rows if row["result"]])
        return {
            row["index"]: SKIPPED
            if row["result"] is None
            else stored_value(row["result"], texts)
            for row in rows
        }

    def complete_job(self, job_id: str, attempt: int, result) -> bool:
        text = dumps(result)
        now = time.time()
        if not is_legal_key(job_id):
            return False

        def body(trx):
            job = self._finish(trx, job_id, attempt, "done", now)
            if job is None:
                return False
            self._store_result(trx, job, text, now)
            self._release_dependents(trx, job_id, skipped=False)
            self._count_down(trx, job["run"], 1, 0, now)
            return True

        return self._finishing("complete job %s" % job_id, body)

    def _finishing(self, action: str, body) -> bool:
        """``body`` in a transaction that may end a job and what it holds up."""
        return self._transaction(
            action, body, write=FINISH_COLLECTIONS, read=("JobToJob",)
        )

    def _finish(self, trx, key: str, attempt: int, status: str, now: float):
        """End the attempt; the job (key, run, index), or None when that
        attempt is not running."""
        rows = statement(
            trx, aql.FINISH, job=key, attempt=attempt, status=status, now=now
        )
        return rows[0] if rows else None

    def _store_result(self, trx, job: dict, text: str, now: float) -> None:
        document, chunks = result_documents(job, text, now, self.value_limit)
        self._insert(trx, "Chunks", chunks, "replace")
        self._insert(trx, "Results", [document], "replace")

    def _release_dependents(self, trx, key: str, skipped: bool) -> None:
        statement(trx, aql.RELEASE_DEPENDENTS, job="Jobs/" + key, skipped=int(skipped))

    def _count_down(self, trx, run: str, finished: int, failed: int, now: float):
        statement(
            trx, aql.COUNT_DOWN, run=run, finished=finished, failed=failed, now=now
        )

    def fail_job(
        self,
        job_id: str,
        attempt: int,
        failure: FailureDocument,
        retry_at: float | None = None,
    ) -> bool:
        now = time.time()
        if not is_legal_key(job_id):
            return False

        def body(trx):
            if retry_at is not None:
                if not self._requeue(trx, job_id, attempt, retry_at):
                    return False
            else:
                job = self._finish(trx, job_id, attempt, "failed", now)
                if job is None:
                    return False
                self._fail_downstream(trx, job_id, job["run"], now)
            self._link_failure(trx, job_id, attempt, failure, now)
            return True

        return self._finishing("record a failure of job %s" % job_id, body)

    def _requeue(self, trx, key: str, attempt: int, not_before: float) -> bool:
        rows = statement(
            trx, aql.REQUEUE, job=key, attempt=attempt, not_before=not_before
        )
        return bool(rows)

    def _fail_downstream(self, trx, key: str, run: str, now: float) -> None:
        failed = statement(trx, aql.FAIL_DOWNSTREAM, job="Jobs/" + key, now=now)[0]
        self._count_down(trx, run, 1 + failed, 1, now)

    def _link_failure(
        self, trx, key: str, attempt: int, failure: FailureDocument, now: float
    ) -> None:
        document, link = failure_documents(key, run_of_job(key), attempt, failure, now)
        self._insert(trx, "Failures", [document], "ignore")
        self._insert(trx, "JobFailures", [link], "replace")

    def release_job(self, job_id: str, attempt: int) -> None:
        if is_legal_key(job_id):
            self._query(
                "give back job %s" % job_id,
                aql.GIVE_BACK,
                job=job_id,
                attempt=attempt,
            )

    def undecided_jobs(self, limit: int = 50) -> list[UndecidedJob]:
        rows = self._query("list undecided jobs", aql.UNDECIDED, limit=limit)
        return [
            UndecidedJob(
                row["_key"],
                row["run"],
                row["index"],
                loads(row["guard"]),
                row["dependency_count"],
                row["skipped_dependencies"],
                row["elf_uid"],
            )
            for row in rows
        ]

    def decide_job(self, job_id: str, runs: bool, attempt: int | None = None) -> bool:
        if not is_legal_key(job_id):
            return False
        if runs:
            return bool(
                self._query("decide job %s" % job_id, aql.DECIDE_RUNS, job=job_id)
            )
        now = time.time()

        def body(trx):
            rows = statement(trx, aql.SKIP, job=job_id, attempt=attempt, now=now)
            if not rows:
                return False
            self._release_dependents(trx, job_id, skipped=True)
            self._count_down(trx, rows[0]["run"], 1, 0, now)
            return True

        return self._transaction(
            "skip job %s" % job_id, body, write=("Jobs", "Runs"), read=("JobToJob",)
        )

    # -- reading --------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord:
        return job_record(self._document("Jobs", job_id, "job"))

    def list_jobs(self, elf_uid=None, run_id=None, statuses=None) -> list[JobRecord]:
        clauses, bind = [], {}
        for value, clause, name in (
            (elf_uid, "j.elf_uid == @elf", "elf"),
            (run_id, "j.run == @run", "run"),
            (statuses, "j.status IN @statuses", "statuses"),
        ):
            if value is not None:
                clauses.append(clause)
                bind[name] = list(value) if name == "statuses" else value
        rows = self._query("list jobs", aql.filtered(aql.LIST_JOBS, clauses), **bind)
        return [job_record(row) for row in rows]

    def count_jobs(self, run_id: str) -> dict[str, int]:
        rows = self._query("count jobs of run %s" % run_id, aql.COUNT_JOBS, run=run_id)
        return dict(rows)

    def job_parameters(self, job_id: str) -> list[ParameterDocument]:
        rows = self._query(
            "read the parameters of job %s" % job_id, aql.JOB_PARAMETERS, job=job_id
        )
        return self._parameters(rows)

    def job_result(self, job_id: str):
        document = self._lookup("Results", job_id)
        if document is None:
            return None
        return stored_value(document, self._chunk_texts([document]))

    def list_edges(self, run_id: str) -> list[tuple[int, int]]:
        rows = self._query("list edges of run %s" % run_id, aql.LIST_EDGES, run=run_id)
        return [tuple(row) for row in rows]

    def get_task_revision(self, revision: str) -> dict | None:
        document = self._lookup("TaskRevisions", document_key(revision))
        fields = (
            "revision",
            "elf_class",
            "task",
            "source",
            "documentation",
            "signature",
            "result_keys",
        )
        return None if document is None else {f: document[f] for f in fields}

    def get_flow_revision(self, revision: str) -> dict | None:
        document = self._lookup("FlowRevisions", document_key(revision))
        fields = ("revision", "name", "file", "line", "source")
        return None if document is None else {f: document[f] for f in fields}

    def list_failures(self, run_id=None, job_id=None) -> list[FailureRecord]:
        clauses, bind = [], {}
        if run_id is not None:
            clauses.append("l.run == @run")
            bind["run"] = run_id
        if job_id is not None:
            clauses.append("l.job == @job")
            bind["job"] = job_id
        rows = self._query("list failures", aql.filtered(aql.FAILURES, clauses), **bind)
        return [FailureRecord(**row) for row in rows]


def _run_key_document(run_key: str, run: str) -> dict:
    return {"_key": document_key(run_key), "run_key": run_key, "run": run}


def _url_of(connection: ArangoConnection, database: str) -> str:
    """The password-free URL of a store built from a client."""
    hosts = tuple(getattr(connection.client, "hosts", ()) or ("http://localhost",))
    location = ArangoURL(
        hosts,
        database,
        connection.username,
        tls=all(host.startswith("https://") for host in hosts),
    )
    return location.public()
