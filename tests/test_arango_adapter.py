"""The ArangoDB backend, driven through the real python-arango driver against
a scripted HTTP client: what it sends (endpoints, AQL, bind variables,
stream transactions and the collections they declare, bulk inserts) and how
it reads answers and errors (conflicts retried with jitter, unique
constraints, missing documents, failed preconditions).

These tests check what the backend asks for; what a server does with it is
checked only by the conformance suite against a live server
(tests/test_store_conformance.py with BLUMYCELIUM_ARANGO_URL). No test here
opens a socket: the scripted client answers every request itself, and a
fixture makes any attempt to connect fail the test.
"""

from __future__ import annotations

import inspect
import json
import random
import re
import socket
import sys
from urllib.parse import urlsplit

import pytest
from arango import ArangoClient
from hypothesis import given
from hypothesis import strategies as st

from blumycelium.errors import (
    MissingDependencyError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from blumycelium.mycelium import ArangoMycelium
from blumycelium.store import arango_queries as aql
from blumycelium.store import open_store
from blumycelium.store.arango import ArangoBackend
from blumycelium.store.arango_connection import ArangoConnection, RetryPolicy
from blumycelium.store.arango_expansion import copy_states
from blumycelium.store.arango_keys import (
    MAX_KEY_BYTES,
    RunKeys,
    document_key,
    escape_key,
    is_legal_key,
    unescape_key,
)
from blumycelium.store.arango_schema import (
    EDGE_COLLECTIONS,
    INDEXES,
)
from blumycelium.store.base import (
    FailureDocument,
    JobDocument,
    ParameterDocument,
    RunDocument,
)
from blumycelium.urls import parse_arango_url
from tests import test_store_conformance as conformance
from tests.fixtures.arango_fake import (
    EVERY_COLLECTION,
    HOST,
    NAMES,
    Failure,
    FakeArango,
    ScriptedHTTPClient,
    Unreachable,
)
from tests.fixtures.arango_model import ModelArango

SITE = {"file": "flows.py", "line": 3, "column": 5, "flow": "f"}


@pytest.fixture(autouse=True, scope="module")
def no_sockets():
    """Any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture
def server():
    return FakeArango().ready()


def backend_on(server, hosts=HOST, **options) -> ArangoBackend:
    client = ArangoClient(hosts=hosts, http_client=ScriptedHTTPClient(server))
    store = ArangoBackend(
        ArangoConnection(client, "root", "secret"), "mycelium", **options
    )
    store._sleep = server_pauses(server)
    return store


def server_pauses(server):
    server.pauses = []
    return server.pauses.append


@pytest.fixture
def store(server):
    store = backend_on(server)
    store.init()
    server.sent.clear()
    return store


def job(index, deps=(), params=None, elf="worker"):
    arguments = dict(params or {"n": index})
    return JobDocument(index, elf, "task_run", "rev-1", SITE, arguments, list(deps))


def run_of(*jobs, run_key=None):
    return RunDocument(
        "f", "flowrev", "flows.py", 1, "def f(): ...", {}, None, [], list(jobs), run_key
    )


FAILURE = FailureDocument("ValueError", "boom", "Traceback...\nValueError: boom\n", "r")


# -- set-up --------------------------------------------------------------------


def steps(server) -> list[str]:
    """What the transactions did, in order: statements by their name in
    arango_queries, bulk inserts as ``insert <collection>``."""
    described = []
    for sent in server.sent:
        if sent.transaction is None:
            continue
        if sent.path == "/_api/cursor":
            described.append(NAMES.get(sent.body["query"], sent.body["query"]))
        else:
            described.append("insert " + sent.path.rsplit("/", 1)[1])
    return described


def created(server, path: str) -> list:
    return [s.body for s in server.sent if s.method == "post" and s.path == path]


def declared(server, number: int = 0) -> dict:
    begun = created(server, "/_api/transaction/begin")
    return begun[number]["collections"]


def test_init_creates_database_collections_graphs_and_indexes():
    server = FakeArango()
    backend_on(server).init()
    assert created(server, "/_api/database") == [{"name": "mycelium"}]
    kinds = {c["name"]: c["type"] for c in created(server, "/_api/collection")}
    assert set(kinds) == EVERY_COLLECTION
    assert {name for name, kind in kinds.items() if kind == 3} == set(EDGE_COLLECTIONS)
    graphs = {g["name"]: g["edgeDefinitions"] for g in created(server, "/_api/gharial")}
    assert graphs["Jobs_graph"] == [
        {"collection": "JobToJob", "from": ["Jobs"], "to": ["Jobs"]}
    ]
    assert set(graphs) == {"Jobs_graph", "JobParameters_graph", "JobFailures_graph"}
    indexes = [
        (s.params["collection"], tuple(s.body["fields"]), s.body["type"])
        for s in server.sent
        if s.path == "/_api/index"
    ]
    claim_index = ("elf_uid", "status", "decided", "run", "order")
    assert ("Jobs", claim_index, "persistent") in indexes
    assert len(indexes) == sum(len(fields) for fields in INDEXES.values())
    assert server.meta["complete"] is True


def test_init_is_two_reads_once_the_schema_is_complete(server):
    backend_on(server).init()
    assert [(s.method, s.path) for s in server.sent] == [
        ("get", "/_api/collection"),
        ("get", "/_api/document/Meta/schema"),
    ]


def test_init_finishes_a_schema_another_process_left_half_made(server):
    server.collections -= {"Chunks", "JobFailures"}
    server.meta["complete"] = False
    backend_on(server).init()
    assert [c["name"] for c in created(server, "/_api/collection")] == [
        "Chunks",
        "JobFailures",
    ]
    assert server.meta["complete"] is True


def test_a_database_of_another_application_is_refused_before_any_change():
    server = FakeArango(databases=("_system", "mycelium"), collections=("users",))
    with pytest.raises(StoreUnavailableError, match="another application .*users"):
        backend_on(server).init()
    assert [s.method for s in server.sent] == ["get"]


def test_without_init_db_a_missing_database_is_named_not_created():
    server = FakeArango()
    client = ArangoClient(hosts=HOST, http_client=ScriptedHTTPClient(server))
    mycelium = ArangoMycelium(client, "mycelium", username="elf", password="pw")
    with pytest.raises(StoreUnavailableError, match="'mycelium' does not exist"):
        mycelium.init(init_db=False)
    mycelium.init(init_db=True)
    assert "mycelium" in server.databases
    assert {s.auth for s in server.sent} == {("elf", "pw")}


def test_arango_mycelium_takes_its_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("BLUMYCELIUM_ARANGO_PASSWORD", "from-env")
    server = FakeArango().ready()
    client = ArangoClient(hosts=HOST, http_client=ScriptedHTTPClient(server))
    mycelium = ArangoMycelium(client, "mycelium")
    assert mycelium.url == "arango://root@127.0.0.1:8529/mycelium"
    assert mycelium.init() is mycelium
    assert {s.auth for s in server.sent} == {("root", "from-env")}


def test_users_to_create_get_read_write_access(server):
    client = ArangoClient(hosts=HOST, http_client=ScriptedHTTPClient(server))
    ArangoMycelium(client, "mycelium").init(
        users_to_create=[{"username": "ada", "password": "pw"}]
    )
    assert [(u["user"], u["passwd"]) for u in created(server, "/_api/user")] == [
        ("ada", "pw")
    ]
    granted = [(s.path, s.body) for s in server.sent if s.method == "put"]
    assert granted == [("/_api/user/ada/database/mycelium", {"grant": "rw"})]


def test_drop_jobs_empties_the_run_collections_and_keeps_elves(store, server):
    store.drop_jobs()
    emptied = {path.split("/")[3] for path in server.paths("put")}
    assert {"Jobs", "Runs", "JobToJob", "Parameters", "RunKeys"} <= emptied
    assert not emptied & {"MachineElves", "TaskRevisions", "Workers", "Meta"}


def test_the_change_token_is_the_revision_of_the_jobs_collection(store, server):
    assert store.changes_token() != store.changes_token()
    assert server.paths("get") == ["/_api/collection/Jobs/revision"] * 2


# -- submission ----------------------------------------------------------------


def test_a_run_is_one_stream_transaction_of_bulk_inserts(store, server):
    run_id = store.submit_run(run_of(job(0), job(1), job(2, deps=[0, 1])))
    assert server.transactions == 1
    writes = set(declared(server)["write"])
    assert {"Runs", "Jobs", "Parameters", "JobParameters", "JobToJob"} <= writes
    assert steps(server) == [
        "insert FlowRevisions",
        "insert Runs",
        "insert Jobs",
        "insert Parameters",
        "insert JobParameters",
        "insert JobToJob",
    ]
    jobs = server.inserts("Jobs")[0].body
    assert [(j["_key"], j["status"], j["unfinished_dependencies"]) for j in jobs] == [
        (run_id + "-0", "ready", 0),
        (run_id + "-1", "ready", 0),
        (run_id + "-2", "pending", 2),
    ]
    edges = server.inserts("JobToJob")[0].body
    assert [(e["_from"], e["_to"]) for e in edges] == [
        ("Jobs/%s-0" % run_id, "Jobs/%s-2" % run_id),
        ("Jobs/%s-1" % run_id, "Jobs/%s-2" % run_id),
    ]
    assert server.paths("put") == ["/_api/transaction/trx-1"]


def test_runs_submitted_one_after_the_other_have_increasing_keys(store, server):
    keys = [store.submit_run(run_of(job(0))) for _ in range(20)]
    assert keys == sorted(keys) and len(set(keys)) == 20


def test_parameter_values_are_stored_as_exact_json_text(store, server):
    store.submit_run(run_of(job(0, params={"x": [1.0, -0.0, 2**53 - 1]})))
    (parameter,) = server.inserts("Parameters")[0].body
    assert parameter["json"] == "[1.0,-0.0,9007199254740991]"
    assert parameter["chunks"] == []


def test_a_million_numbers_are_one_parameter_document(store, server):
    store.submit_run(run_of(job(0, params={"x": list(range(1_000_000))})))
    (parameter,) = server.inserts("Parameters")[0].body
    assert json.loads(parameter["json"]) == list(range(1_000_000))
    assert server.inserts("Chunks") == []


def test_a_value_that_cannot_be_stored_sends_nothing(store, server):
    with pytest.raises(ValueError):
        store.submit_run(run_of(job(0, params={"x": float("nan")})))
    assert server.sent == []


def test_a_run_key_already_used_returns_its_run_and_writes_nothing(store, server):
    server.answer(aql.RUN_FOR_KEY, ["earlier"])
    assert store.submit_run(run_of(job(0), run_key="nightly")) == "earlier"
    assert server.query(aql.RUN_FOR_KEY).body["bindVars"] == {"key": "nightly"}
    assert server.inserts("Jobs") == []


def test_a_new_run_key_is_recorded_in_the_same_transaction(store, server):
    server.answer(aql.RUN_FOR_KEY, [None])
    run_id = store.submit_run(run_of(job(0), run_key="nightly run"))
    (recorded,) = server.inserts("RunKeys")[0].body
    assert recorded == {
        "_key": "nightly%20run",
        "run_key": "nightly run",
        "run": run_id,
    }
    assert {s.transaction for s in server.inserts("RunKeys")} == {"trx-1"}


def test_a_unique_key_clash_in_submission_runs_it_again_with_new_keys(store, server):
    server.fail_inserts("Runs", Failure(409, 1210, "unique constraint violated"))
    run_id = store.submit_run(run_of(job(0)))
    assert server.paths("delete") == ["/_api/transaction/trx-1"]
    assert server.paths("put") == ["/_api/transaction/trx-2"]
    first, second = (s.body[0]["_key"] for s in server.inserts("Runs"))
    assert first != second == run_id
    assert len(server.pauses) == 1


def test_a_failed_precondition_in_a_transaction_runs_all_of_it_again(store, server):
    server.fail_inserts("Jobs", Failure(412, 1200, "precondition failed"))
    run_id = store.submit_run(run_of(job(0)))
    assert server.paths("delete") == ["/_api/transaction/trx-1"]
    assert len(server.inserts("Runs")) == 2
    assert server.inserts("Jobs")[-1].body[0]["_key"] == run_id + "-0"


def test_a_large_value_is_cut_into_chunks_and_joined_back(server):
    store = backend_on(server)
    store.value_limit = 10
    store.submit_run(run_of(job(0, params={"x": list(range(20))})))
    (parameter,) = server.inserts("Parameters")[0].body
    chunks = server.inserts("Chunks")[0].body
    assert parameter["json"] is None
    assert parameter["chunks"] == [chunk["_key"] for chunk in chunks]
    assert all(len(chunk["text"]) <= 10 for chunk in chunks)
    assert json.loads("".join(c["text"] for c in chunks)) == list(range(20))
    server.answer("LIMIT 1", claimed_row(parameters=[parameter]))
    server.answer(aql.CHUNKS, [chunk["text"] for chunk in chunks])
    claimed = store.claim_job("worker", "w1")
    assert claimed.parameters[0].value == list(range(20))


# -- claims --------------------------------------------------------------------


def claimed_row(key="r1-0", parameters=()):
    job_document = {
        "_key": key,
        "run": "r1",
        "index": 0,
        "elf_uid": "worker",
        "task": "task_run",
        "task_revision": "rev-1",
        "attempts": 1,
        "site": SITE,
        "attempt_base": 0,
        "guard": None,
        "order": "a0",
    }
    return [{"job": job_document, "parameters": list(parameters)}]


def test_a_claim_is_one_aql_update_that_checks_revisions(store, server):
    parameter = {"name": "n", "json": "7", "chunks": [], "has_refs": False}
    server.answer(aql.CLAIM, claimed_row(parameters=[parameter]))
    claimed = store.claim_job("worker", "w1", lease=12.5)
    assert (claimed.id, claimed.run_id, claimed.attempt) == ("r1-0", "r1", 1)
    assert [(p.name, p.value) for p in claimed.parameters] == [("n", 7)]
    (sent,) = server.queries()
    assert sent.transaction is None and server.transactions == 0
    text = sent.body["query"]
    assert 'j.elf_uid == @elf AND j.status == "ready" AND j.decided == true' in text
    assert "SORT j.run, j.order\n  LIMIT 1" in text
    assert "OPTIONS {ignoreRevs: false}" in text
    bind = sent.body["bindVars"]
    assert (bind["elf"], bind["worker"], bind["lease"]) == ("worker", "w1", 12.5)
    assert isinstance(bind["now"], float)


def test_no_ready_job_is_no_claim(store, server):
    server.answer(aql.CLAIM, [])
    assert store.claim_job("worker", "w1") is None


def test_a_claim_that_meets_a_conflict_pauses_at_random_and_looks_again(store, server):
    conflict = Failure(409, 1200, "write-write conflict")
    server.answer(aql.CLAIM, conflict, conflict, claimed_row())
    assert store.claim_job("worker", "w1").id == "r1-0"
    assert len(server.queries()) == 3
    first, second = server.pauses
    assert 0 <= first <= 0.005 and 0 <= second <= 0.01


def test_pauses_are_random_below_a_doubling_bound():
    policy = RetryPolicy(attempts=12, first_delay=0.01, max_delay=0.05)
    rng = random.Random(5)
    pauses = [policy.pause(3, rng) for _ in range(50)]
    assert all(0 <= pause <= 0.04 for pause in pauses)
    assert len(set(pauses)) == 50
    assert max(policy.pause(10, rng) for _ in range(50)) <= 0.05


def test_a_conflict_that_never_ends_is_a_store_error_with_the_server_message(server):
    store = backend_on(server, retry=RetryPolicy(attempts=3))
    server.answer(aql.CLAIM, Failure(409, 1200, "write-write conflict on key"))
    with pytest.raises(StoreError) as caught:
        store.claim_job("worker", "w1")
    message = str(caught.value)
    assert "cannot claim a job of elf 'worker'" in message
    assert "[HTTP 409][ERR 1200] write-write conflict on key" in message
    assert "gave up after 3 write-write conflicts" in message
    assert type(caught.value.__cause__).__name__ == "AQLQueryExecuteError"
    assert len(server.pauses) == 2


def test_a_failed_precondition_counts_as_a_conflict(store, server):
    server.answer(aql.CLAIM, Failure(412, 1200, "precondition failed"), [])
    assert store.claim_job("worker", "w1") is None
    assert len(server.pauses) == 1


# -- completion and failure ----------------------------------------------------


def finished(server, key="r1-0"):
    run, index = key.rsplit("-", 1)
    server.answer(aql.FINISH, [{"_key": key, "run": run, "index": int(index)}])
    server.answer(aql.RELEASE_DEPENDENTS, [])
    server.answer(aql.COUNT_DOWN, [])


def test_completing_a_job_pushes_readiness_in_its_transaction(store, server):
    finished(server)
    assert store.complete_job("r1-0", 1, {"v": 1.0})
    assert steps(server) == [
        "FINISH",
        "insert Results",
        "RELEASE_DEPENDENTS",
        "COUNT_DOWN",
    ]
    assert {s.transaction for s in server.sent if s.transaction} == {"trx-1"}
    collections = declared(server)
    assert {"Jobs", "Runs", "Results"} <= set(collections["write"])
    assert collections["read"] == ["JobToJob"]
    finish = server.query(aql.FINISH).body["bindVars"]
    assert (finish["job"], finish["attempt"], finish["status"]) == ("r1-0", 1, "done")
    (result,) = server.inserts("Results")[0].body
    assert (result["_key"], result["json"]) == ("r1-0", '{"v":1.0}')
    assert server.inserts("Results")[0].params["overwriteMode"] == "replace"
    release = server.query(aql.RELEASE_DEPENDENTS).body["bindVars"]
    assert release == {"job": "Jobs/r1-0", "skipped": 0}
    count = server.query(aql.COUNT_DOWN).body["bindVars"]
    assert (count["run"], count["finished"], count["failed"]) == ("r1", 1, 0)
    assert server.paths("put") == ["/_api/transaction/trx-1"]


def test_completing_an_attempt_that_is_not_running_writes_nothing(store, server):
    server.answer(aql.FINISH, [])
    assert not store.complete_job("r1-0", 1, {})
    assert steps(server) == ["FINISH"]


def test_failing_a_job_fails_its_downstream_and_links_the_failure(store, server):
    finished(server)
    server.answer(aql.FAIL_DOWNSTREAM, [2])
    assert store.fail_job("r1-0", 1, FAILURE)
    assert steps(server) == [
        "FINISH",
        "FAIL_DOWNSTREAM",
        "COUNT_DOWN",
        "insert Failures",
        "insert JobFailures",
    ]
    walk = server.query(aql.FAIL_DOWNSTREAM)
    assert walk.body["bindVars"]["job"] == "Jobs/r1-0"
    assert (
        'OUTBOUND @job JobToJob\n    OPTIONS {order: "bfs", uniqueVertices: "global"}'
        in (walk.body["query"])
    )
    count = server.query(aql.COUNT_DOWN).body["bindVars"]
    assert (count["finished"], count["failed"]) == (3, 1)
    (failure,) = server.inserts("Failures")[0].body
    assert re.fullmatch("[0-9a-f]{32}", failure["_key"])
    assert server.inserts("Failures")[0].params["overwriteMode"] == "ignore"
    (link,) = server.inserts("JobFailures")[0].body
    assert (link["_from"], link["_to"], link["attempt"]) == (
        "Jobs/r1-0",
        "Failures/" + failure["_key"],
        1,
    )


def test_a_failure_with_a_retry_time_makes_the_job_ready_from_then_on(store, server):
    server.answer(aql.REQUEUE, [True])
    assert store.fail_job("r1-0", 2, FAILURE, retry_at=123.0)
    assert steps(server) == ["REQUEUE", "insert Failures", "insert JobFailures"]
    assert server.query(aql.REQUEUE).body["bindVars"] == {
        "job": "r1-0",
        "attempt": 2,
        "not_before": 123.0,
    }


def test_a_missing_document_is_not_found_with_the_server_message(store, server):
    server.answer(aql.GIVE_BACK, Failure(404, 1202, "document not found"))
    with pytest.raises(NotFoundError) as caught:
        store.release_job("r1-0", 1)
    assert "cannot give back job r1-0" in str(caught.value)
    assert "[HTTP 404][ERR 1202] document not found" in str(caught.value)
    assert caught.value.__cause__.error_code == 1202


def test_unknown_ids_are_not_found(store, server):
    server.answer(aql.DOCUMENT, [None])
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        store.get_run("nope")
    with pytest.raises(NotFoundError, match="no job 'not/a key'"):
        store.get_job("not/a key")
    assert len(server.queries()) == 1  # an illegal key is not even asked for


def test_an_unreachable_server_is_store_unavailable():
    client = ArangoClient(hosts=HOST, http_client=Unreachable())
    store = ArangoBackend(ArangoConnection(client, "root", "pw"), "mycelium")
    with pytest.raises(StoreUnavailableError, match="cannot reach ArangoDB"):
        store.init()


# -- fan-out, decisions, leases ------------------------------------------------


def test_an_expansion_adds_copies_and_wires_the_gather_job_at_once(store, server):
    finished(server, "r1-1")
    server.answer(aql.RUN_STATUS, ["running"])
    server.answer(aql.STATUSES, [[[0, "done"]]])
    for statement in ("REMOVE_PARAMETERS", "REMOVE_PARAMETER_EDGES"):
        server.answer(getattr(aql, statement), [])
    server.answer(aql.WIRE_GATHER, [])
    server.answer(aql.GROW_RUN, [])
    gathered = [ParameterDocument("iterations", [{"n": 1}], True)]
    copies = [job(4, deps=[0]), job(5, deps=[0, 4])]
    assert store.expand_job("r1-1", 1, copies, 2, gathered, [4, 5])
    assert steps(server) == [
        "FINISH",
        "insert Results",
        "RUN_STATUS",
        "STATUSES",
        "insert Jobs",
        "insert Parameters",
        "insert JobParameters",
        "insert JobToJob",
        "REMOVE_PARAMETERS",
        "REMOVE_PARAMETER_EDGES",
        "insert Parameters",
        "insert JobParameters",
        "insert JobToJob",
        "WIRE_GATHER",
        "GROW_RUN",
        "RELEASE_DEPENDENTS",
        "COUNT_DOWN",
    ]
    states = [
        (j["_key"], j["status"], j["unfinished_dependencies"])
        for j in server.inserts("Jobs")[0].body
    ]
    assert states == [("r1-4", "ready", 0), ("r1-5", "pending", 1)]
    gather_edges = server.inserts("JobToJob")[1]
    assert gather_edges.params["overwriteMode"] == "ignore"
    assert [e["_to"] for e in gather_edges.body] == ["Jobs/r1-2", "Jobs/r1-2"]
    wire = server.query(aql.WIRE_GATHER).body["bindVars"]
    assert (wire["waits"], wire["dependencies"], wire["broken"]) == (2, 2, False)
    grow = server.query(aql.GROW_RUN).body["bindVars"]
    assert (grow["total"], grow["unfinished"]) == (2, 2)


def test_copies_waiting_for_a_failure_are_upstream_failed_at_once():
    copies = [job(4, deps=[1]), job(5, deps=[4]), job(6, deps=[0])]
    states, broken = copy_states(copies, {0: "skipped", 1: "failed"})
    assert states == {
        4: ("upstream_failed", 1, 0),
        5: ("upstream_failed", 1, 0),
        6: ("ready", 0, 1),
    }
    assert broken == {4, 5}


def test_a_decided_job_is_one_update_and_a_skipped_one_a_transaction(store, server):
    server.answer(aql.DECIDE_RUNS, [True])
    assert store.decide_job("r1-3", True)
    assert server.transactions == 0
    server.answer(aql.SKIP, [{"_key": "r1-3", "run": "r1", "index": 3}])
    server.answer(aql.RELEASE_DEPENDENTS, [])
    server.answer(aql.COUNT_DOWN, [])
    assert store.decide_job("r1-3", False)
    assert steps(server) == ["SKIP", "RELEASE_DEPENDENTS", "COUNT_DOWN"]
    assert server.query(aql.RELEASE_DEPENDENTS).body["bindVars"]["skipped"] == 1


def test_an_expired_lease_past_its_attempts_fails_the_job(store, server):
    server.answer(aql.ANY_EXPIRED, [True])
    server.answer(
        aql.EXPIRED, [[["r1-0", 3, 0, 1, "w9", "r1"], ["r1-1", 1, 0, 1, "w9", "r1"]]]
    )
    finished(server)
    server.answer(aql.FAIL_DOWNSTREAM, [0])
    server.answer(aql.REQUEUE, [True])
    assert store.reap_expired_leases() == 2
    assert steps(server)[1:] == [
        "FINISH",
        "FAIL_DOWNSTREAM",
        "COUNT_DOWN",
        "insert Failures",
        "insert JobFailures",
        "REQUEUE",
        "insert Failures",
        "insert JobFailures",
    ]
    lost = server.inserts("Failures")[0].body[0]
    assert lost["exception_type"] == "blumycelium.errors.WorkerLostError"
    assert "w9" in lost["message"]


def test_no_expired_lease_opens_no_transaction(store, server):
    server.answer(aql.ANY_EXPIRED, [])
    assert store.reap_expired_leases() == 0
    assert server.transactions == 0


def test_a_lease_renewal_and_its_heartbeat_are_one_statement(store, server):
    server.answer(aql.RENEW_LEASE, [True])
    assert store.renew_lease("r1-0", 2, "host 1:77", 30.0)
    bind = server.query(aql.RENEW_LEASE).body["bindVars"]
    assert (bind["job"], bind["attempt"], bind["worker"]) == (
        "r1-0",
        2,
        "host%201%3A77",
    )


def test_a_unique_constraint_outside_submission_is_not_retried(store, server):
    finished(server, "r1-1")
    server.answer(aql.RUN_STATUS, ["running"])
    server.answer(aql.STATUSES, [[]])
    server.fail_inserts("Jobs", Failure(409, 1210, "unique constraint violated"))
    with pytest.raises(StoreError) as caught:
        store.expand_job("r1-1", 1, [job(4)], 2, [], [4])
    assert "[HTTP 409][ERR 1210] unique constraint violated" in str(caught.value)
    assert "already exists" in str(caught.value)
    assert server.transactions == 1
    assert server.paths("delete") == ["/_api/transaction/trx-1"]


def test_workers_are_registered_under_escaped_keys(store, server):
    from blumycelium.store.base import WorkerDocument

    store.register_worker(WorkerDocument("host:1/2", "host", 1, "elf", 30.0))
    (sent,) = server.inserts("Workers")
    assert sent.body["_key"] == "host%3A1%2F2"
    assert sent.params["overwriteMode"] == "replace"


# -- URLs ----------------------------------------------------------------------


def test_a_url_names_hosts_database_user_and_password(monkeypatch):
    monkeypatch.delenv("BLUMYCELIUM_ARANGO_PASSWORD", raising=False)
    location = parse_arango_url("arango://ada:p%40ss@h1:8530,h2/my_db")
    assert location.hosts == ("http://h1:8530", "http://h2:8529")
    assert (location.database, location.username) == ("my_db", "ada")
    assert location.password == "p@ss"
    assert location.public() == "arango://ada@h1:8530,h2:8529/my_db"
    assert "p@ss" not in repr(location)
    assert parse_arango_url("arangos://h/db").hosts == ("https://h:8529",)
    assert parse_arango_url("arango://h/db?tls=1").hosts == ("https://h:8529",)
    assert parse_arango_url("arango://h/db").username == "root"
    assert parse_arango_url("sqlite:///x.db") is None
    monkeypatch.setenv("BLUMYCELIUM_ARANGO_PASSWORD", "from-env")
    assert parse_arango_url("arango://ada@h/db").password == "from-env"


@pytest.mark.parametrize(
    "url, problem",
    [
        ("arango://ada:hunter2@h1:8529", "name one database"),
        ("arango://ada:hunter2@h1:99999/db", "port 99999 is out of range"),
        ("arango://ada:hunter2@h 1/db", "'h 1' is not host or host:port"),
        ("arango://ada:hunter2@h1/db?verify=0", "unknown option 'verify'"),
        ("mongodb://ada:hunter2@h1/db", "unknown mycelium URL scheme"),
    ],
)
def test_a_bad_url_is_one_clear_error_that_hides_the_password(url, problem):
    with pytest.raises(StoreUnavailableError) as caught:
        open_store(url)
    message = str(caught.value)
    assert problem in message
    assert "ada:***@h" in message and "hunter2" not in message


def test_several_hosts_are_used_round_robin(server):
    location = parse_arango_url("arango://root:pw@h1:8529,h2:8529/mycelium")
    store = ArangoBackend.from_url(location, http_client=ScriptedHTTPClient(server))
    store.init()
    server.answer(aql.LIST_RUNS, [])
    store.list_runs()
    hosts = [urlsplit(sent.url).netloc for sent in server.sent]
    assert hosts == ["h1:8529", "h2:8529", "h1:8529"]
    assert store.url == "arango://root@h1:8529,h2:8529/mycelium"


def test_without_python_arango_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "arango", None)
    with pytest.raises(MissingDependencyError) as caught:
        open_store("arango://root@127.0.0.1:8529/mycelium")
    assert 'pip install "blumycelium[arango]"' in str(caught.value)


def test_opening_an_arango_url_sends_nothing_until_first_use():
    store = open_store("arango://root:pw@127.0.0.1:8529/mycelium")
    assert store.url == "arango://root@127.0.0.1:8529/mycelium"
    assert store._handles is None


# -- keys ----------------------------------------------------------------------

LEGAL_ESCAPED = re.compile(r"[A-Za-z0-9_\-.@()+,=;$*'%]+")


@given(st.text())
def test_an_escaped_name_is_a_legal_key_that_reads_back(name):
    key = escape_key(name)
    assert LEGAL_ESCAPED.fullmatch(key)
    assert unescape_key(key) == name
    assert is_legal_key(document_key(name))


@given(
    st.lists(st.text(max_size=150), min_size=1, max_size=3),
    st.lists(st.text(max_size=150), min_size=1, max_size=3),
)
def test_different_names_never_share_a_key(first, second):
    if first != second:
        assert document_key(*first) != document_key(*second)


def test_a_lone_surrogate_and_the_empty_name_escape_reversibly():
    for name in ("\ud800", "", "%", ":", "!", "a b/c"):
        assert unescape_key(escape_key(name)) == name
    assert escape_key("") == "%"


def test_a_name_past_the_length_limit_gets_a_digest_key():
    name = "é" * 200
    key = document_key(name)
    assert len(key.encode()) <= MAX_KEY_BYTES and is_legal_key(key)
    assert "!" in key and key != document_key(name + "x")
    with pytest.raises(ValueError):
        unescape_key(key)


def test_run_keys_sort_in_submission_order_even_when_the_clock_stands_still():
    keys = RunKeys(clock=lambda: 1_700_000_000_000_000_000)
    made = [keys.new() for _ in range(100)]
    assert made == sorted(made) and len(set(made)) == 100
    assert all(re.fullmatch("[0-9a-z]{14}", key) for key in made)


# -- the contract, over a model of each statement ------------------------------


# what only a real server (another process, or several) can show
NEEDS_A_SERVER = {
    "test_the_change_token_moves_when_another_connection_writes",
    "test_concurrent_claims_from_many_processes_hand_out_each_job_once",
}
CONTRACT = [
    check
    for name, check in sorted(vars(conformance).items())
    if name.startswith("test_")
    and "backend" in inspect.signature(check).parameters
    and name not in NEEDS_A_SERVER
]


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_the_store_contract_holds_over_a_model_of_each_statement(check, tmp_path):
    store = backend_on(ModelArango())
    arguments = {"backend": store, "tmp_path": tmp_path}
    wanted = inspect.signature(check).parameters
    check(**{name: arguments[name] for name in wanted})


def test_every_statement_has_a_model():
    names = [name for name, value in vars(aql).items() if name.isupper()]
    statements = [n for n in names if isinstance(getattr(aql, n), str)]
    missing = [n for n in statements if not hasattr(ModelArango, "q_" + n)]
    assert missing == ["ELVES"]  # the template of ONE_ELF and ALL_ELVES


@pytest.mark.parametrize(
    ("connection", "name", "message"),
    [
        (None, "db", "connection must be a python-arango ArangoClient"),
        ("http://127.0.0.1:1", "db", "not str 'http://127.0.0.1:1'"),
        ("client", None, "name must be a non-empty database name, not None"),
        ("client", "", "name must be a non-empty database name"),
    ],
)
def test_arango_mycelium_names_a_bad_argument(server, connection, name, message):
    if connection == "client":
        connection = ArangoClient(hosts=HOST, http_client=ScriptedHTTPClient(server))
    with pytest.raises(TypeError, match=message):
        ArangoMycelium(connection, name)
