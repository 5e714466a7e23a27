"""The Mycelium: where flows are submitted and elves find their jobs.

``Mycelium(url)`` names a store (an SQLite file by default, ``./mycelium.db``
or ``BLUMYCELIUM_URL``); the store is opened on first use, so building a
Mycelium writes nothing. It turns compiled flow graphs into run documents
(:meth:`submit`), registers elves, re-attaches to runs (:meth:`run`) and keeps
the calls of the original blumycelium (``init``, ``get_jobs``,
``drop_jobs``, ``drop``).

In *preview mode* (``python -m blumycelium.compile``) a Mycelium never opens
its store: flows compile and show their graphs, and anything that would touch
the store raises a clear error instead.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import reprlib
import threading

from .errors import CompileError, NotStorableError, StoreError
from .urls import check_sqlite_directory, redact_url, resolve_url
from .values import encode

logger = logging.getLogger(__name__)

_PREVIEW = {"depth": 0}


@contextlib.contextmanager
def preview_mode():
    """Inside this block no Mycelium opens its store."""
    _PREVIEW["depth"] += 1
    try:
        yield
    finally:
        _PREVIEW["depth"] -= 1


def is_preview() -> bool:
    return _PREVIEW["depth"] > 0


class Mycelium:
    """A handle on one mycelium (store); cheap to build, opened on first use."""

    def __init__(self, url=None):
        self.url = resolve_url(url)
        if not is_preview():
            check_sqlite_directory(self.url)
        self._store = None
        self._registered: set = set()

    def __repr__(self) -> str:
        return "Mycelium(%r)" % self.public_url

    @property
    def public_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return redact_url(self.url)

    @property
    def store(self):
        if is_preview():
            raise StoreError(
                "the mycelium %s is not opened while previewing flows;"
                " move store calls under `if __name__ == '__main__':`" % self.public_url
            )
        if self._store is None:
            from .store import open_store

            store = open_store(self.url)
            store.init()
            self._store = store
            logger.info("mycelium opened: %s", self.public_url)
        return self._store

    # -- flows and runs -------------------------------------------------------

    def flow(self, function=None, *, name: str | None = None):
        """Decorator: compile ``function`` into a flow submitted to this mycelium."""
        from .flow import Flow

        if function is None:
            return lambda function: Flow(function, self, name)
        return Flow(function, self, name)

    def run(self, run_id):
        """Re-attach to a run by id (from any process)."""
        from .run import Run

        self.store.get_run(str(run_id))
        return Run(self, str(run_id))

    def submit(self, flow, graph, arguments: dict, run_key: str | None = None):
        """Write the graph of one flow call as a run; return its Run."""
        from .run import Run
        from .store.base import RunDocument

        self._check_elves(graph)
        for elf in graph.elves().values():
            self.register_elf(elf, store_source=True)
        compiled = flow.compiled
        document = RunDocument(
            flow.name,
            compiled.revision,
            compiled.source.file,
            compiled.source.first_line,
            compiled.source.text,
            arguments,
            graph.result,
            sorted(graph.result_dependencies),
            _job_documents(graph),
            run_key,
        )
        run_id = self.store.submit_run(document)
        logger.info(
            "run %s of flow %s submitted with %d jobs",
            run_id,
            flow.name,
            len(graph.jobs),
        )
        return Run(self, run_id)

    def _check_elves(self, graph) -> None:
        from .compiler.diagnostics import Diagnostic

        classes: dict = {}
        for elf, span in graph.elf_sites.values():
            problem = self._elf_problem(elf, classes)
            if problem:
                raise CompileError([Diagnostic(span, problem)])

    def _elf_problem(self, elf, classes: dict) -> str:
        owner = classes.setdefault(elf.uid, type(elf))
        if owner is not type(elf):
            return (
                "two elves named %r in one run have different classes (%s and"
                " %s); give each elf its own uid"
                % (elf.uid, owner.__name__, type(elf).__name__)
            )
        if elf.mycelium is None:
            return "elf %r has no mycelium; build it as %s(%r, mycelium)" % (
                elf.uid,
                type(elf).__name__,
                elf.uid,
            )
        if getattr(elf.mycelium, "url", None) != self.url:
            return (
                "elf %r belongs to %s, but the flow submits to %s; its worker"
                " would never see the job"
                % (elf.uid, redact_url(elf.mycelium.url), self.public_url)
            )
        return ""

    # -- elves ----------------------------------------------------------------

    def register_elf(self, elf, store_source: bool = True) -> None:
        """Record ``elf`` and its tasks (once per process and class: the
        class's revision, a hash of its source, is read from its file once,
        not at every submission)."""
        key = (elf.uid, type(elf), store_source)
        if key in self._registered:
            return
        from .store.base import ElfDocument, TaskDocument

        cls = type(elf)
        document = ElfDocument(
            elf.uid,
            cls.__qualname__,
            cls.__module__,
            elf.documentation,
            cls.revision(),
            cls.class_source() if store_source else None,
        )
        tasks = [
            TaskDocument(
                spec.revision,
                cls.__qualname__,
                spec.name,
                spec.source if store_source else None,
                spec.documentation,
                spec.describe_signature(),
                None if spec.result.keys is None else list(spec.result.keys),
            )
            for spec in cls.tasks().values()
        ]
        self.store.register_elf(document, tasks)
        self._registered.add(key)

    # -- the original blumycelium's calls --------------------------------------

    def init(self, init_db: bool = True, users_to_create=None):
        """Create the store's schema if needed (idempotent); return self."""
        if users_to_create:
            raise StoreError("users_to_create applies to ArangoDB myceliums only")
        self.store.init()
        return self

    def get_jobs(
        self, elf_uid: str, all_jobs: bool = False, status_restriction=("pending",)
    ) -> list[dict]:
        """Jobs of an elf, as dicts; every status when ``all_jobs`` is True.

        As in the original blumycelium, ``pending`` means not started yet: it
        selects the jobs waiting for dependencies and the ready ones.
        """
        statuses = None if all_jobs else list(status_restriction)
        if statuses is not None and "pending" in statuses:
            statuses.append("ready")
        return [
            job.as_dict()
            for job in self.store.list_jobs(elf_uid=elf_uid, statuses=statuses)
        ]

    def drop_jobs(self) -> None:
        """Delete every run, job, parameter, result and failure; keep elves."""
        self.store.drop_jobs()

    def drop(self) -> None:
        """Delete everything in the mycelium."""
        self.store.drop()
        self._registered.clear()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class ArangoMycelium(Mycelium):
    """The seed-era form: the mycelium in the ArangoDB database ``name``.

    ``connection`` is an ``ArangoConnection`` (from
    ``blumycelium.store.arango_connection``: a python-arango ``ArangoClient``
    with a user name and a password), or the ``ArangoClient`` itself, with
    ``username`` (default ``root``) and ``password`` (default
    ``BLUMYCELIUM_ARANGO_PASSWORD``) as keywords. Nothing is sent to the
    server until first use. As in the original, the database is not created
    on first use: ``init(init_db=True)`` creates it, with its collections,
    graphs and indexes; ``users_to_create`` (dicts of ``username`` and
    ``password``) get read-write access to it.

    Build the client in the process that uses it: its HTTP sessions are not
    shared safely with a forked child.
    """

    def __init__(self, connection, name: str, *, username=None, password=None):
        from .store.arango import ArangoBackend
        from .store.arango_connection import ArangoConnection, require_driver

        driver = require_driver()
        if not isinstance(connection, (ArangoConnection, driver.ArangoClient)):
            raise TypeError(
                "ArangoMycelium(connection, name): connection must be a"
                " python-arango ArangoClient or an ArangoConnection, not %s %r"
                % (type(connection).__name__, connection)
            )
        if not isinstance(name, str) or not name:
            raise TypeError(
                "ArangoMycelium(connection, name): name must be a non-empty"
                " database name, not %r" % (name,)
            )
        if not isinstance(connection, ArangoConnection):
            connection = ArangoConnection(connection, username or "root", password)
        backend = ArangoBackend(connection, name, create_database=False)
        super().__init__(backend.url)
        self._store = backend

    def __repr__(self) -> str:
        return "ArangoMycelium(%r)" % self.public_url

    def init(self, init_db: bool = True, users_to_create=None):
        """Create the database (when ``init_db``), its collections, graphs
        and indexes if missing (idempotent), and the users; return self."""
        self.store.init(create_database=init_db)
        if users_to_create:
            self.store.create_users(users_to_create)
        return self


# Young objects a cycle collection waits for while runs are being built.
RELAXED_THRESHOLD = 100_000
_RELAXED = {"calls": 0, "saved": None}
_RELAXED_LOCK = threading.Lock()


@contextlib.contextmanager
def collector_relaxed():
    """Collect cycles less often while a flow's syntax tree, or a run's graph,
    documents and rows are made: they are many small objects that live until
    the flow is compiled or the run is written,
    and a collection every 700 of them walks them again and again. Garbage
    of the flow's own code (cycles included) is still collected, every
    RELAXED_THRESHOLD objects; the last call to finish, of all threads,
    gives the collector its thresholds back."""
    with _RELAXED_LOCK:
        if _RELAXED["calls"] == 0:
            first, *others = gc.get_threshold()
            if 0 < first < RELAXED_THRESHOLD:
                _RELAXED["saved"] = (first, *others)
                gc.set_threshold(RELAXED_THRESHOLD, *others)
        _RELAXED["calls"] += 1
    try:
        yield
    finally:
        with _RELAXED_LOCK:
            _RELAXED["calls"] -= 1
            if _RELAXED["calls"] == 0 and _RELAXED["saved"] is not None:
                gc.set_threshold(*_RELAXED["saved"])
                _RELAXED["saved"] = None


def _job_documents(graph) -> list:
    from .store.base import JobDocument

    sites: dict = {}  # the jobs of a loop share one call site record
    documents = []
    append = documents.append
    for job in graph.jobs:
        key = (job.site_id, job.via)
        site = sites.get(key)
        if site is None:
            site = sites[key] = job.site_record()
        spec = job.spec
        append(
            JobDocument(
                job.index,
                job.elf_uid,
                spec.name,
                spec.revision,
                site,
                job.arguments,
                sorted(job.dependencies) if job.dependencies else [],
                spec.retry.max_attempts,
                job.guard,
                None,
                job.deferred_arguments,
            )
        )
    return documents


# An argument holding more items than this is recorded on the run by its size
# only: the run's row is rewritten each time one of its jobs finishes, and the
# jobs that receive the argument store it whole as their parameter.
RECORDED_ITEMS = 10_000


def stored_arguments(arguments: dict) -> dict:
    """The flow's arguments as stored on the run (a repr where not storable,
    a size where large), taken before the flow runs, so that what it changes
    does not show."""
    stored = {}
    for name, value in arguments.items():
        if is_large(value):
            shown = "<%s holding more than %d items>" % (
                type(value).__name__,
                RECORDED_ITEMS,
            )
            stored[name] = {"repr": shown}
            continue
        try:
            stored[name] = {"value": encode(value, name)}
        except NotStorableError:
            stored[name] = {"repr": _shown(value)}
    return stored


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 1000


def _shown(value) -> str:
    """A short repr of an argument for the run's record; never raises (the
    argument is the user's, and its repr may fail or recurse)."""
    try:
        return _SHOWN.repr(value)
    except Exception as error:  # any failure of the repr
        return "<%s whose repr raised %s>" % (
            type(value).__name__,
            type(error).__name__,
        )


def is_large(value, budget: int = RECORDED_ITEMS) -> bool:
    """Whether ``value`` holds more than ``budget`` items, counting the items
    of every list, tuple and dict in it and a tenth of each string's length;
    stops counting there."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str:
            budget -= len(item) // 10
        elif kind in (list, tuple, dict):
            budget -= len(item)
            if budget >= 0:
                pending.extend(item.values() if kind is dict else item)
        if budget < 0:
            return True
    return False


def flow_arguments(function, args: tuple, kwargs: dict) -> dict:
    """Bind a flow call's arguments to names; TypeError naming the flow."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError("flow %s(): %s" % (function.__name__, error)) from None
    bound.apply_defaults()
    return dict(bound.arguments)
