"""The ArangoDB mycelium's database: collections, named graphs and indexes.

One database per mycelium. The collection names are the original
blumycelium's (Jobs, MachineElves, MachineElvesRevisions, Parameters,
Results, Failures; edges JobToJob, JobParameters, JobFailures, each in its
named graph, so that ArangoDB's web interface shows a run as a graph), and
what the model added: Runs, RunKeys (one document per idempotency key, so
that a key's uniqueness rests on the primary index, which a cluster
enforces), TaskRevisions, FlowRevisions, Chunks (parts of large values),
Workers and Meta.

:func:`ensure_schema` is idempotent and safe to run from many processes at
once (a collection or graph someone else just created counts as created).
Its fast path, taken by every process after the first, is two reads: the
list of collections and the Meta document. A database that holds other
collections but no Meta is refused before anything in it is changed: it
belongs to another application (or to the seed-era blumycelium, whose
collections have the same names and other documents).
"""

from __future__ import annotations

import logging

from ..errors import StoreUnavailableError
from .arango_connection import DATABASE_NOT_FOUND, DUPLICATE_NAME, GRAPH_DUPLICATE

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION = "blumycelium"
META = "Meta"
META_KEY = "schema"

DOCUMENT_COLLECTIONS = (
    META,
    "Runs",
    "RunKeys",
    "Jobs",
    "MachineElves",
    "MachineElvesRevisions",
    "TaskRevisions",
    "FlowRevisions",
    "Parameters",
    "Results",
    "Failures",
    "Chunks",
    "Workers",
)
# edge collection -> (graph, from collection, to collection)
EDGE_COLLECTIONS = {
    "JobToJob": ("Jobs_graph", "Jobs", "Jobs"),
    "JobParameters": ("JobParameters_graph", "Jobs", "Parameters"),
    "JobFailures": ("JobFailures_graph", "Jobs", "Failures"),
}
# what drop_jobs empties; drop empties these and the rest but Meta
RUN_COLLECTIONS = (
    "Runs",
    "RunKeys",
    "Jobs",
    "Parameters",
    "Results",
    "Failures",
    "Chunks",
    "JobToJob",
    "JobParameters",
    "JobFailures",
)
ALL_COLLECTIONS = RUN_COLLECTIONS + (
    "Workers",
    "MachineElves",
    "MachineElvesRevisions",
    "TaskRevisions",
    "FlowRevisions",
)
# collection -> persistent indexes (field lists). Claims filter on elf,
# status and decision and sort on run then program order; the rest serve
# lookups by run (listing, purging), lease reaping and revisions by elf.
INDEXES = {
    "Jobs": (
        ("elf_uid", "status", "decided", "run", "order"),
        ("status", "decided", "run", "order"),
        ("status", "lease_expires_at"),
        ("run", "order"),
    ),
    "Runs": (("status", "finished_at"),),
    "RunKeys": (("run",),),
    "Parameters": (("job", "position"), ("run",)),
    "Results": (("run",),),
    "Chunks": (("run",),),
    "JobToJob": (("run",),),
    "JobParameters": (("run",),),
    "JobFailures": (("run",), ("job", "attempt")),
    "MachineElvesRevisions": (("elf_uid", "registered_at"),),
    "Workers": (("started_at",),),
}


def ensure_schema(db, system_db, name: str, create_database: bool) -> None:
    """Create what is missing of the mycelium in the database ``db`` (called
    ``name``); ``system_db()`` gives a handle to create the database."""
    existing = _collections(db, system_db, name, create_database)
    meta = _meta(db, name, existing)
    wanted = DOCUMENT_COLLECTIONS + tuple(EDGE_COLLECTIONS)
    if meta.get("complete") and existing.issuperset(wanted):
        return
    for collection in wanted:
        if collection not in existing:
            _create_collection(db, collection, collection in EDGE_COLLECTIONS)
    if not meta:
        _insert_meta(db)
    _create_graphs(db)
    for collection, indexes in INDEXES.items():
        for fields in indexes:
            add_persistent_index(db.collection(collection), list(fields))
    db.collection(META).update(
        {"_key": META_KEY, "complete": True}, check_rev=False, silent=True
    )
    logger.info("ArangoDB mycelium %s: schema version %d ready", name, SCHEMA_VERSION)


def _collections(db, system_db, name: str, create_database: bool) -> set:
    """Names of the database's collections, creating it when allowed."""
    from arango.exceptions import ArangoServerError

    try:
        return {c["name"] for c in db.collections() if not c["name"].startswith("_")}
    except ArangoServerError as error:
        if error.error_code != DATABASE_NOT_FOUND:
            raise
        if not create_database:
            raise StoreUnavailableError(
                "the ArangoDB database %r does not exist; create it, or call"
                " init(init_db=True) as a user allowed to" % name
            ) from error
    _ignore_duplicate(lambda: system_db().create_database(name), DUPLICATE_NAME)
    logger.info("ArangoDB database %s created", name)
    return set()


def _meta(db, name: str, existing: set) -> dict:
    """The Meta document; refuse a database another application owns."""
    if META not in existing:
        if existing:
            raise StoreUnavailableError(
                "the ArangoDB database %r holds collections of another"
                " application (%s); give the mycelium a database of its own"
                % (name, ", ".join(sorted(existing)[:5]))
            )
        return {}
    meta = db.collection(META).get(META_KEY) or {}
    if meta and meta.get("application") != APPLICATION:
        raise StoreUnavailableError(
            "the ArangoDB database %r belongs to %r, not to blumycelium"
            % (name, meta.get("application"))
        )
    if meta and meta.get("version") != SCHEMA_VERSION:
        raise StoreUnavailableError(
            "the ArangoDB mycelium %r has schema version %s; this blumycelium"
            " reads version %d" % (name, meta.get("version"), SCHEMA_VERSION)
        )
    return meta


def _insert_meta(db) -> None:
    document = {
        "_key": META_KEY,
        "application": APPLICATION,
        "version": SCHEMA_VERSION,
        "complete": False,
    }
    db.collection(META).insert(document, overwrite_mode="ignore", silent=True)


def _create_collection(db, name: str, edge: bool) -> None:
    _ignore_duplicate(lambda: db.create_collection(name, edge=edge), DUPLICATE_NAME)


def _create_graphs(db) -> None:
    present = {graph["name"] for graph in db.graphs()}
    for edge, (graph, source, target) in EDGE_COLLECTIONS.items():
        if graph in present:
            continue
        definition = {
            "edge_collection": edge,
            "from_vertex_collections": [source],
            "to_vertex_collections": [target],
        }
        _ignore_duplicate(
            lambda graph=graph, definition=definition: db.create_graph(
                graph, edge_definitions=[definition]
            ),
            GRAPH_DUPLICATE,
        )


def add_persistent_index(collection, fields: list) -> None:
    """A persistent index (idempotent on the server), through the call
    python-arango 8 prefers, or the one 7.x has."""
    if hasattr(collection, "add_index"):
        collection.add_index({"type": "persistent", "fields": fields})
    else:
        collection.add_persistent_index(fields)


def _ignore_duplicate(create, code: int) -> None:
    from arango.exceptions import ArangoServerError

    try:
        create()
    except ArangoServerError as error:
        if error.error_code != code:
            raise
