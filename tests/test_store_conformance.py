"""The store contract (store/base.py), checked on every backend.

Each test drives the StoreBackend interface with documents, as the library
does. SQLite always runs; other backends join the `backend` fixture's
parameters when they exist and are configured.
"""

import multiprocessing
import os

import pytest

from blumycelium.errors import NotFoundError, StoreError
from blumycelium.store import open_store
from blumycelium.store.base import (
    ElfDocument,
    FailureDocument,
    JobDocument,
    ParameterDocument,
    RunDocument,
    TaskDocument,
)

SITE = {"file": "flows.py", "line": 3, "column": 5, "flow": "f"}


ARANGO_URL_VARIABLE = "BLUMYCELIUM_ARANGO_URL"


@pytest.fixture(params=["sqlite", "arango"])
def backend(request, tmp_path, monkeypatch):
    if request.param == "arango":
        store = _arango_store(monkeypatch)
    else:
        store = open_store("sqlite:///" + str(tmp_path / "conformance.db"))
    store.init()
    yield store
    store.close()
    if request.param == "arango":
        store.drop_database()


def _arango_store(monkeypatch):
    """A throwaway database on the server BLUMYCELIUM_ARANGO_URL names; its
    password goes to the environment, so that other processes reopen the
    store from its password-free URL. Skipped unless one is configured."""
    import uuid

    from blumycelium.urls import PASSWORD_VARIABLE, parse_arango_url

    url = os.environ.get(ARANGO_URL_VARIABLE)
    if not url:
        pytest.skip(
            "ArangoDB not configured: set %s=arango://user:password@host:8529/name"
            " to run the store conformance suite against a live server"
            % ARANGO_URL_VARIABLE
        )
    location = parse_arango_url(url)
    if location is None:
        pytest.fail("%s is not an arango:// URL" % ARANGO_URL_VARIABLE)
    monkeypatch.setenv(PASSWORD_VARIABLE, location.password)
    name = "blumycelium_test_%s" % uuid.uuid4().hex[:12]
    return open_store(location.with_database(name).public())


def job(index, elf="worker", deps=(), task="task_run", params=None):
    arguments = dict(params or {"n": index})
    return JobDocument(index, elf, task, "rev-1", SITE, arguments, list(deps))


def run_of(*jobs, result=None, dependencies=()):
    return RunDocument(
        "f",
        "flowrev",
        "flows.py",
        1,
        "def f(): ...",
        {"x": {"value": 1}},
        result,
        list(dependencies),
        list(jobs),
    )


def failure(message="boom"):
    return FailureDocument(
        "ValueError", message, "Traceback...\nValueError: %s\n" % message, "rev-1"
    )


def statuses(store, run_id):
    return [j.status for j in store.list_jobs(run_id=run_id)]


def test_a_submitted_run_holds_its_jobs_parameters_and_edges(backend):
    run_id = backend.submit_run(
        run_of(job(0), job(1, deps=[0]), job(2, params={"values": [1, (2, 3)]}))
    )
    run = backend.get_run(run_id)
    assert (run.flow, run.status, run.jobs_total, run.jobs_unfinished) == (
        "f",
        "running",
        3,
        3,
    )
    assert run.arguments == {"x": {"value": 1}}
    jobs = backend.list_jobs(run_id=run_id)
    assert [(j.index, j.status, j.unfinished_dependencies) for j in jobs] == [
        (0, "ready", 0),
        (1, "pending", 1),
        (2, "ready", 0),
    ]
    assert all(isinstance(j.id, str) for j in jobs)
    assert jobs[0].site == SITE
    assert backend.job_parameters(jobs[2].id)[0].value == [1, [2, 3]]


def test_a_run_without_jobs_is_done_at_once(backend):
    run = backend.get_run(backend.submit_run(run_of(result=42)))
    assert (run.status, run.result) == ("done", 42)
    assert run.finished_at is not None


def test_a_failed_submission_leaves_nothing_behind(backend):
    backend.submit_run(run_of(job(0)))
    bad = run_of(job(0), job(1, params={"x": float("nan")}))
    with pytest.raises(ValueError):
        backend.submit_run(bad)
    assert len(backend.list_jobs()) == 1
    with pytest.raises(NotFoundError):
        backend.get_run("2")


def test_claims_hand_out_ready_jobs_oldest_first_and_once(backend):
    run_id = backend.submit_run(run_of(job(0), job(1), job(2, elf="other"), job(3)))
    claimed = [backend.claim_job("worker", "w1") for _ in range(4)]
    assert [c.index if c else None for c in claimed] == [0, 1, 3, None]
    assert claimed[0].attempt == 1 and claimed[0].run_id == run_id
    assert claimed[0].parameters[0].value == 0
    assert backend.claim_job("other", "w2").index == 2


def test_completing_a_job_pushes_readiness_to_its_dependents(backend):
    run_id = backend.submit_run(
        run_of(
            job(0),
            job(1),
            job(2, deps=[0, 1]),
            job(3, deps=[2]),
            result=[7],
            dependencies=[3],
        )
    )
    first, second = backend.claim_job("worker", "w"), backend.claim_job("worker", "w")
    assert backend.complete_job(first.id, first.attempt, {"v": 1})
    assert statuses(backend, run_id) == ["done", "running", "pending", "pending"]
    assert backend.complete_job(second.id, second.attempt, {"v": 2})
    assert statuses(backend, run_id) == ["done", "done", "ready", "pending"]
    third = backend.claim_job("worker", "w")
    backend.complete_job(third.id, third.attempt, None)
    fourth = backend.claim_job("worker", "w")
    assert fourth.index == 3
    assert backend.get_run(run_id).status == "running"
    backend.complete_job(fourth.id, fourth.attempt, {"v": 4})
    run = backend.get_run(run_id)
    assert (run.status, run.jobs_unfinished) == ("done", 0)
    assert backend.fetch_results(run_id, [0, 1, 3]) == {
        0: {"v": 1},
        1: {"v": 2},
        3: {"v": 4},
    }


def test_a_failure_marks_everything_downstream_upstream_failed(backend):
    run_id = backend.submit_run(
        run_of(job(0), job(1, deps=[0]), job(2, deps=[1]), job(3), job(4, deps=[3]))
    )
    first = backend.claim_job("worker", "w")
    assert backend.fail_job(first.id, first.attempt, failure())
    assert statuses(backend, run_id) == [
        "failed",
        "upstream_failed",
        "upstream_failed",
        "ready",
        "pending",
    ]
    assert backend.get_run(run_id).status == "running"
    independent = backend.claim_job("worker", "w")
    backend.complete_job(independent.id, independent.attempt, {})
    last = backend.claim_job("worker", "w")
    backend.complete_job(last.id, last.attempt, {})
    run = backend.get_run(run_id)
    assert (run.status, run.jobs_failed, run.jobs_unfinished) == ("failed", 1, 0)
    recorded = backend.list_failures(run_id=run_id)
    assert [(f.job_id, f.attempt, f.exception_type, f.message) for f in recorded] == [
        (first.id, 1, "ValueError", "boom")
    ]
    assert "ValueError: boom" in recorded[0].traceback


def test_identical_tracebacks_are_stored_once_and_linked_to_each_job(backend):
    run_id = backend.submit_run(run_of(job(0), job(1)))
    for _ in range(2):
        claimed = backend.claim_job("worker", "w")
        backend.fail_job(claimed.id, claimed.attempt, failure("same"))
    recorded = backend.list_failures(run_id=run_id)
    assert len(recorded) == 2
    assert recorded[0].id == recorded[1].id
    assert recorded[0].job_id != recorded[1].job_id


def test_only_a_running_job_can_be_completed_or_failed(backend):
    backend.submit_run(run_of(job(0)))
    ready = backend.list_jobs()[0]
    assert not backend.complete_job(ready.id, 1, {})
    assert not backend.fail_job(ready.id, 1, failure())
    claimed = backend.claim_job("worker", "w")
    assert backend.complete_job(claimed.id, claimed.attempt, {})
    assert not backend.complete_job(claimed.id, claimed.attempt, {})


def test_a_released_job_is_ready_again_and_keeps_its_attempt_count(backend):
    backend.submit_run(run_of(job(0)))
    claimed = backend.claim_job("worker", "w")
    backend.release_job(claimed.id, claimed.attempt)
    again = backend.claim_job("worker", "w")
    assert (again.id, again.attempt) == (claimed.id, 2)


def test_listing_filters_by_elf_run_and_status(backend):
    first = backend.submit_run(run_of(job(0), job(1, elf="b")))
    second = backend.submit_run(run_of(job(0, elf="b")))
    assert [j.run_id for j in backend.list_jobs(elf_uid="b")] == [first, second]
    assert len(backend.list_jobs(run_id=second)) == 1
    assert len(backend.list_jobs(statuses=["pending"])) == 0
    assert len(backend.list_jobs(elf_uid="b", statuses=["ready"])) == 2


def test_unknown_ids_raise_not_found(backend):
    with pytest.raises(NotFoundError):
        backend.get_run("999")
    with pytest.raises(NotFoundError):
        backend.get_job("999")
    with pytest.raises(NotFoundError):
        backend.get_job("not-an-id")


def test_elves_register_idempotently_and_keep_revisions(backend):
    task = TaskDocument(
        "t1", "Elf", "task_x", "def task_x(self): ...", None, "task_x() -> None", None
    )
    backend.register_elf(ElfDocument("e", "Elf", "m", "doc", "r1", "class Elf"), [task])
    backend.register_elf(ElfDocument("e", "Elf", "m", "doc", "r1", None), [task])
    backend.register_elf(
        ElfDocument("e", "Elf", "m", "doc", "r2", "class Elf2"), [task]
    )
    elf = backend.get_elf("e")
    assert elf["revision"] == "r2"
    assert [(r["revision"], r["source"]) for r in elf["revisions"]] == [
        ("r1", "class Elf"),
        ("r2", "class Elf2"),
    ]
    assert backend.get_elf("nobody") is None


def test_drop_jobs_keeps_elves_and_drop_removes_everything(backend):
    backend.register_elf(ElfDocument("e", "Elf", "m", None, "r1", None), [])
    backend.submit_run(run_of(job(0)))
    backend.drop_jobs()
    assert backend.list_jobs() == [] and backend.get_elf("e") is not None
    backend.drop()
    assert backend.get_elf("e") is None


def test_the_change_token_moves_when_another_connection_writes(backend, tmp_path):
    other = open_store(backend.url)
    before = backend.changes_token()
    other.submit_run(run_of(job(0)))
    assert backend.changes_token() != before
    other.close()


def _claim_all(url, queue):
    store = open_store(url)
    mine = []
    while True:
        claimed = store.claim_job("worker", str(os.getpid()))
        if claimed is None:
            break
        store.complete_job(claimed.id, claimed.attempt, {"by": os.getpid()})
        mine.append(claimed.index)
    queue.put(mine)


def test_concurrent_claims_from_many_processes_hand_out_each_job_once(backend):
    backend.submit_run(run_of(*[job(i) for i in range(400)]))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_claim_all, args=(backend.url, queue)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    claimed = [index for _ in processes for index in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=60)
    assert sorted(claimed) == list(range(400))
    assert {j.status for j in backend.list_jobs()} == {"done"}


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my precious notes\n" * 100)
    store = open_store("sqlite:///" + str(path))
    with pytest.raises(StoreError, match="notes.db.*not an SQLite database"):
        store.init()
    assert path.read_text() == "my precious notes\n" * 100


def test_a_missing_directory_is_named_in_the_error(tmp_path):
    store = open_store("sqlite:///" + str(tmp_path / "nowhere" / "x.db"))
    with pytest.raises(StoreError, match="the directory .*nowhere does not exist"):
        store.init()


def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path):
    import sqlite3

    path = tmp_path / "app.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('ada')")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    store = open_store("sqlite:///" + str(path))
    with pytest.raises(StoreError, match="another application .*users"):
        store.init()
    assert path.read_bytes() == before
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


def _loop_jobs() -> list:
    """Job 0 makes the iterable; 1 expands over it; 2 gathers."""
    return [
        job(0),
        job(1, elf="__blumycelium__", task="expand", deps=[0]),
        job(2, elf="__blumycelium__", task="gather", deps=[1]),
    ]


def _fan_out_run(backend, *others):
    """A loop (see _loop_jobs), job 3 after its gather, and ``others``."""
    return backend.submit_run(run_of(*_loop_jobs(), job(3, deps=[2]), *others))


def _claim_expand(backend, run_id):
    first = backend.claim_job("worker", "w1")
    assert backend.complete_job(first.id, first.attempt, {"items": [1, 2]})
    expand = backend.claim_job("__blumycelium__", "w1")
    assert expand.task == "expand" and expand.run_id == run_id
    return expand


def test_reserved_indices_follow_the_run_and_never_repeat(backend):
    run_id = _fan_out_run(backend)
    assert backend.reserve_indices(run_id, 3) == 4
    assert backend.reserve_indices(run_id, 2) == 7
    other = backend.submit_run(run_of(job(0)))
    assert backend.reserve_indices(other, 1) == 1


def test_an_expansion_adds_copies_and_wires_the_gather_job_at_once(backend):
    run_id = _fan_out_run(backend)
    expand = _claim_expand(backend, run_id)
    base = backend.reserve_indices(run_id, 2)
    copies = [job(base, deps=[0]), job(base + 1, deps=[0, base])]
    gathered = [ParameterDocument("iterations", [{"n": 1}], True)]
    assert backend.expand_job(
        expand.id, expand.attempt, copies, 2, gathered, [base, base + 1]
    )
    jobs = {j.index: j for j in backend.list_jobs(run_id=run_id)}
    assert [jobs[i].status for i in range(4)] == ["done", "done", "pending", "pending"]
    assert (jobs[base].status, jobs[base].unfinished_dependencies) == ("ready", 0)
    assert (jobs[base + 1].status, jobs[base + 1].unfinished_dependencies) == (
        "pending",
        1,
    )
    assert jobs[2].unfinished_dependencies == 2
    run = backend.get_run(run_id)
    assert (run.jobs_total, run.jobs_unfinished) == (6, 4)
    for _ in range(2):
        copy = backend.claim_job("worker", "w1")
        assert backend.complete_job(copy.id, copy.attempt, {"ok": copy.index})
    gather = backend.claim_job("__blumycelium__", "w1")
    assert gather.task == "gather"
    assert [(p.name, p.value) for p in gather.parameters] == [
        ("iterations", [{"n": 1}])
    ]


def test_an_expansion_under_a_failed_job_fails_what_follows_its_gather(backend):
    run_id = _fan_out_run(backend, job(4, elf="failer"))
    bad = backend.claim_job("failer", "w")
    assert backend.fail_job(bad.id, bad.attempt, failure())
    expand = _claim_expand(backend, run_id)
    base = backend.reserve_indices(run_id, 2)
    copies = [job(base, deps=[4]), job(base + 1, deps=[4])]
    assert backend.expand_job(
        expand.id, expand.attempt, copies, 2, [], [base, base + 1]
    )
    statuses = {j.index: j.status for j in backend.list_jobs(run_id=run_id)}
    assert statuses == {
        0: "done",
        1: "done",
        2: "upstream_failed",
        3: "upstream_failed",
        4: "failed",
        base: "upstream_failed",
        base + 1: "upstream_failed",
    }
    run = backend.get_run(run_id)
    assert (run.status, run.jobs_total, run.jobs_unfinished) == ("failed", 7, 0)


def test_a_stale_expansion_writes_nothing(backend):
    run_id = _fan_out_run(backend)
    expand = _claim_expand(backend, run_id)
    backend.release_job(expand.id, expand.attempt)
    again = backend.claim_job("__blumycelium__", "w2")
    base = backend.reserve_indices(run_id, 1)
    assert not backend.expand_job(
        expand.id, expand.attempt, [job(base, deps=[0])], 2, [], [base]
    )
    assert len(backend.list_jobs(run_id=run_id)) == 4
    assert backend.expand_job(
        again.id, again.attempt, [job(base, deps=[0])], 2, [], [base]
    )
    assert len(backend.list_jobs(run_id=run_id)) == 5
    assert not backend.expand_job(
        again.id, again.attempt, [job(base + 1, deps=[0])], 2, [], [base + 1]
    )
    assert len(backend.list_jobs(run_id=run_id)) == 5


def test_a_copy_waiting_for_a_failed_job_is_upstream_failed_at_once(backend):
    run_id = backend.submit_run(
        run_of(
            job(0),
            job(1),
            job(2, elf="__blumycelium__", task="expand", deps=[0]),
            job(3, elf="__blumycelium__", task="gather", deps=[2]),
        )
    )
    first = backend.claim_job("worker", "w1")
    assert backend.complete_job(first.id, first.attempt, {"items": [1]})
    second = backend.claim_job("worker", "w1")
    assert backend.fail_job(second.id, second.attempt, failure())
    expand = backend.claim_job("__blumycelium__", "w1")
    base = backend.reserve_indices(run_id, 1)
    assert backend.expand_job(
        expand.id, expand.attempt, [job(base, deps=[1])], 3, [], [base]
    )
    jobs = {j.index: j.status for j in backend.list_jobs(run_id=run_id)}
    assert jobs[base] == "upstream_failed"
    assert jobs[3] == "upstream_failed"
    assert backend.get_run(run_id).status == "failed"


def test_copies_are_claimed_in_program_order_before_later_jobs(backend):
    from blumycelium.store.base import order_key

    run_id = backend.submit_run(run_of(*_loop_jobs(), job(3)))
    expand = _claim_expand(backend, run_id)
    assert expand.order == order_key(1)
    base = backend.reserve_indices(run_id, 2)
    copies = [
        JobDocument(
            base + n,
            "worker",
            "task_run",
            "rev-1",
            SITE,
            {},
            [],
            order=expand.order + order_key(1 - n, 0),
        )
        for n in (1, 0)
    ]
    assert backend.expand_job(expand.id, expand.attempt, copies, 2, [], [])
    claimed = [backend.claim_job("worker", "w1").index for _ in range(3)]
    assert claimed == [base + 1, base, 3]
    listed = [j.index for j in backend.list_jobs(run_id=run_id)]
    assert listed == [0, 1, base + 1, base, 2, 3]
    assert order_key(9) < order_key(10) < order_key(10, 0) < order_key(11)


def test_an_expansion_of_a_cancelled_run_adds_nothing(backend):
    run_id = _fan_out_run(backend)
    expand = _claim_expand(backend, run_id)
    assert backend.cancel_run(run_id) == 2  # the gather and job 3
    base = backend.reserve_indices(run_id, 1)
    assert backend.expand_job(
        expand.id, expand.attempt, [job(base, deps=[0])], 2, [], [base]
    )
    assert len(backend.list_jobs(run_id=run_id)) == 4
    assert backend.claim_job("worker", "w1") is None
    assert backend.get_run(run_id).status == "cancelled"


def test_retrying_one_of_two_failures_ends_the_run_failed_again(backend):
    run_id = backend.submit_run(run_of(job(0), job(1), job(2, deps=[0, 1])))
    for _ in range(2):
        claimed = backend.claim_job("worker", "w1")
        assert backend.fail_job(claimed.id, claimed.attempt, failure())
    assert backend.get_run(run_id).status == "failed"
    first = backend.list_jobs(run_id=run_id)[0]
    assert backend.retry_jobs(run_id, first.id) == 1  # job 2 stays blocked by 1
    again = backend.claim_job("worker", "w1")
    assert again.index == 0
    assert backend.complete_job(again.id, again.attempt, {"ok": 1})
    assert statuses(backend, run_id) == ["done", "failed", "upstream_failed"]
    run = backend.get_run(run_id)
    assert (run.status, run.jobs_unfinished) == ("failed", 0)
