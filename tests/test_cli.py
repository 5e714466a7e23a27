"""The operator commands, run as subprocesses against a store filled by real
runs: a success, a failure, a cancelled run, and a worker that died."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from blumycelium.store import open_store
from blumycelium.store.base import JobDocument, RunDocument
from blumycelium.values import encode
from blumycelium.views import job_detail_data
from tests.conftest import ROOT, Workers, wait_for


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store with runs 1 (done), 2 (failed), 3 (cancelled), 4 (done), and a
    lost worker."""
    directory = tmp_path_factory.mktemp("cli")
    url = "sqlite:///" + str(directory / "cli.db")
    env = dict(
        os.environ,
        BLUMYCELIUM_URL=url,
        PYTHONPATH=str(ROOT),
        WORKSHOP_LOG=str(directory / "log"),
    )
    script = """
import tests.fixtures.workshop as w
w.chain(1, 3); w.adder.start_jobs()
w.failing("bad input 42"); w.adder.start_jobs(raise_exceptions=False)
w.texts.start_jobs()
w.long_then_many(1, 5).cancel()
w.sentence_report("hello brave world"); w.texts.start_jobs()
"""
    subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    workers = Workers(env)
    doomed = workers.start("tests.fixtures.workshop:texts", "--lease", "0.5")
    assert wait_for(lambda: b"serving" in _run(env, "workers").stdout.encode(), 30)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    time.sleep(1.0)
    return env


def _run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "blumycelium", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_lists_each_run_with_its_counts_and_status(filled):
    out = _run(filled, "runs").stdout
    rows = out.splitlines()
    assert rows[0].split() == ["RUN", "FLOW", "SUBMITTED", "SECONDS", "JOBS", "STATUS"]
    assert rows[1].split()[:2] == ["4", "sentence_report"]
    assert "1 done 1 failed 2 upstream_failed" in out
    assert "6 cancelled" in out
    assert all(len(row) <= 100 for row in rows)
    data = json.loads(_run(filled, "runs", "--json").stdout)
    assert [(r["id"], r["status"]) for r in data] == [
        ("4", "done"),
        ("3", "cancelled"),
        ("2", "failed"),
        ("1", "done"),
    ]
    assert data[2]["counts"] == {"done": 1, "failed": 1, "upstream_failed": 2}


def test_show_gives_each_job_with_status_elf_task_call_site(filled):
    out = _run(filled, "show", "2").stdout
    assert out.startswith("run 2 of flow failing: failed")
    rows = [row.split() for row in out.splitlines()[2:]]
    assert rows[1][2:5] == ["task_fail", "adder", "failed"]
    assert "workshop.py:" in out and "upstream_failed" in out
    graph = json.loads(_run(filled, "show", "2", "--format", "json").stdout)
    assert set(graph) == {"run", "jobs", "edges"}
    assert [j["status"] for j in graph["jobs"]] == [
        "done",
        "failed",
        "upstream_failed",
        "upstream_failed",
    ]
    assert {"from": 1, "to": 2} in graph["edges"]
    assert all(
        set(j)
        >= {
            "id",
            "index",
            "task",
            "elf_uid",
            "status",
            "call_site",
            "duration",
            "attempts",
        }
        for j in graph["jobs"]
    )


def test_the_graph_formats_are_valid(filled, tmp_path):
    dot = _run(filled, "show", "2", "--format", "dot").stdout
    assert dot.startswith('digraph "run 2" {') and "j1 -> j2;" in dot
    mermaid = _run(filled, "show", "2", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "j1 --> j2" in mermaid
    if shutil.which("dot"):
        parsed = subprocess.run(
            ["dot", "-Tplain"], input=dot, capture_output=True, text=True, timeout=60
        )
        assert parsed.returncode == 0, parsed.stderr
        svg = _run(filled, "show", "2", "--format", "svg").stdout
        assert "<svg" in svg and "task_fail" in svg
    else:
        failed = _run(filled, "show", "2", "--format", "svg")
        assert failed.returncode == 2 and "Graphviz" in failed.stderr


def test_jobs_filter_by_run_elf_and_status(filled):
    data = json.loads(_run(filled, "jobs", "--run", "2", "--json").stdout)
    assert len(data) == 4
    data = json.loads(
        _run(
            filled, "jobs", "--elf", "texts", "--status", "upstream_failed", "--json"
        ).stdout
    )
    assert [j["task"] for j in data] == ["task_echo", "task_echo"]
    out = _run(filled, "jobs", "--status", "cancelled").stdout
    assert out.count("cancelled") == 6


def test_job_shows_parameters_result_call_site_attempts_and_failures(filled):
    graph = json.loads(_run(filled, "show", "2", "--format", "json").stdout)
    failed = graph["jobs"][1]["id"]
    out = _run(filled, "job", failed).stdout
    assert "task:       task_fail" in out
    assert "flow line:  boom = adder.task_fail(message)" in out
    assert "message = 'bad input 42'" in out
    assert "failure of attempt 1: ValueError: bad input 42" in out
    assert "raise ValueError(message)" in out
    done = json.loads(_run(filled, "show", "4", "--format", "json").stdout)["jobs"]
    detail = json.loads(_run(filled, "job", done[1]["id"], "--json").stdout)
    assert detail["parameters"] == {"text": "hello 3"}
    assert detail["result"] == {"text": "HELLO 3!"}


def test_failures_are_grouped_with_task_source_and_flow_line(filled):
    out = _run(filled, "failures").stdout
    assert "ValueError: bad input 42  (1 time; task_fail on elf 'adder')" in out
    assert "  >>         raise ValueError(message)" in out
    assert "flow line:   boom = adder.task_fail(message)" in out
    groups = json.loads(_run(filled, "failures", "--run", "2", "--json").stdout)
    assert [g["count"] for g in groups] == [1]
    assert json.loads(_run(filled, "failures", "--run", "1", "--json").stdout) == []


def test_elves_and_workers_show_revisions_and_a_lost_worker(filled):
    elves = json.loads(_run(filled, "elves", "--json").stdout)
    assert {e["uid"] for e in elves} >= {"adder", "texts", "flaky"}
    assert all(e["revisions"] for e in elves)
    workers = json.loads(_run(filled, "workers", "--json").stdout)
    assert [w["state"] for w in workers if w["elf_uid"] == "texts"] == ["lost"]
    assert "lost" in _run(filled, "workers").stdout


def test_watch_follows_a_run_and_exits_with_its_outcome(filled):
    done = _run(filled, "watch", "1")
    assert done.returncode == 0 and "run 1: done, 3 done" in done.stdout
    assert _run(filled, "watch", "2").returncode == 1


def test_cancel_retry_and_purge_change_the_store(filled, tmp_path):
    env = dict(
        filled,
        BLUMYCELIUM_URL="sqlite:///" + str(tmp_path / "act.db"),
        WORKSHOP_LOG=str(tmp_path / "log"),
    )
    script = """
import tests.fixtures.workshop as w
w.failing("x"); w.adder.start_jobs(raise_exceptions=False)
w.chain(1, 4)
"""
    subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    assert "run 2 cancelled: 4 jobs will not run" in _run(env, "cancel", "2").stdout
    assert "run 1: 3 jobs will run again" in _run(env, "retry", "1").stdout
    jobs = json.loads(_run(env, "jobs", "--run", "1", "--json").stdout)
    assert [j["status"] for j in jobs] == ["done", "ready", "pending", "pending"]
    assert (
        "purged 1 finished runs" in _run(env, "purge", "--before", "2999-01-01").stdout
    )
    remaining = json.loads(_run(env, "runs", "--json").stdout)
    assert [r["id"] for r in remaining] == ["1"]


def test_errors_are_one_line_and_a_non_zero_exit(filled, tmp_path):
    missing_dir = "sqlite:///" + str(tmp_path / "nowhere" / "x.db")
    cases = [
        (("show", "99"), "no run '99'"),
        (("job", "12345"), "no job '12345'"),
        (("runs", "--url", missing_dir), "does not exist"),
        (("runs", "--url", "ftp://host/x"), "unknown mycelium URL scheme 'ftp'"),
        # loopback port 1: nothing listens, the connection is refused at once
        (("runs", "--url", "arango://ada:pw@127.0.0.1:1/shop"), "cannot reach"),
        (("retry", "2", "--job", "4"), "only a failed job can be retried"),
        (("retry", "2", "--job", "1"), "no job '1' in run 2"),
        (("purge", "--before", "yesterday"), "is not a date"),
    ]
    for args, message in cases:
        finished = _run(filled, *args)
        assert finished.returncode == 2, (args, finished.stderr)
        assert message in finished.stderr, (args, finished.stderr)
        assert "Traceback" not in finished.stderr
        lines = finished.stderr.strip().splitlines()  # argparse adds its usage
        assert len(lines) == 1 or lines[0].startswith("usage:"), finished.stderr
        assert ":pw@" not in finished.stderr


def test_small_things_an_operator_trips_on(filled, tmp_path):
    url = filled["BLUMYCELIUM_URL"]
    bare = {k: v for k, v in filled.items() if k != "BLUMYCELIUM_URL"}
    listed = _run(bare, "--url", url, "runs", "--json")  # --url before the command
    assert [r["id"] for r in json.loads(listed.stdout)] == ["4", "3", "2", "1"]
    finished = _run(filled, "cancel", "1")
    assert "run 1 has already finished (done); nothing to cancel" in finished.stdout
    assert json.loads(_run(filled, "runs", "--json").stdout)[3]["status"] == "done"
    for listing in ("jobs", "failures"):
        missing = _run(filled, listing, "--run", "99")
        assert missing.returncode == 2 and "no run '99'" in missing.stderr
    bogus = _run(filled, "jobs", "--status", "bogus")
    assert bogus.returncode == 2 and "invalid choice: 'bogus'" in bogus.stderr
    empty = subprocess.run(
        [sys.executable, "-m", "blumycelium", "runs"],
        env=bare,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2
    assert "no mycelium at %s" % (tmp_path / "mycelium.db") in empty.stderr
    assert os.listdir(tmp_path) == []  # looking created nothing
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "blumycelium", "jobs"],
        env=filled,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader_gone.stdout.close()  # before the command writes: its writes fail
    stderr = reader_gone.stderr.read()
    assert reader_gone.wait(timeout=60) == 141
    assert stderr == ""


def test_worker_processes_are_supervised_and_stopped_together(workshop, workers):
    run = workshop.many_noops(200)
    supervisor = workers.start("tests.fixtures.workshop:adder", "--processes", "3")
    assert run.wait(timeout=120) == "done"

    def live():
        return [
            w for w in workshop.mycelium.store.list_workers() if w.stopped_at is None
        ]

    assert wait_for(lambda: len(live()) == 3, 30)
    assert workers.stop(supervisor) == 0
    assert live() == []


def test_json_output_holds_every_stored_value():
    import io

    from blumycelium.console import Console

    stream = io.StringIO()
    Console(stream).json({"params": {(1, "x"): 1, "s": "\ud800", "t": (1, 2)}})
    assert json.loads(stream.getvalue()) == {
        "params": [[[1, "x"], 1], ["s", "\ud800"], ["t", [1, 2]]]
    }


SITE = {"file": "flows.py", "line": 3, "column": 5, "flow": "f"}


def _job(index, arguments=None, deps=(), references=()):
    return JobDocument(
        index,
        "worker",
        "task_run",
        "rev",
        SITE,
        arguments or {},
        list(deps),
        references=set(references),
    )


def _store_with(tmp_path, *jobs):
    """A fresh store holding one run of ``jobs``; its URL and job ids."""
    url = "sqlite:///" + str(tmp_path / "store.db")
    store = open_store(url)
    store.init()
    run = RunDocument("f", "rev", "flows.py", 1, "", {}, None, [], list(jobs))
    run_id = store.submit_run(run)
    return store, url, [job.id for job in store.list_jobs(run_id=run_id)]


def test_job_shows_its_result_as_the_task_returned_it(tmp_path):
    store, _, _ = _store_with(tmp_path, _job(0))
    claimed = store.claim_job("worker", "w")
    returned = {"pair": (1, 2), "big": 2**1400, (1, "k"): "tuple key"}
    store.complete_job(claimed.id, claimed.attempt, encode(returned))
    assert job_detail_data(store, claimed.id)["result"] == returned
    store.close()


def test_job_json_keeps_keys_json_would_merge(tmp_path):
    store, url, _ = _store_with(tmp_path, _job(0))
    claimed = store.claim_job("worker", "w")
    returned = {"a": {1: "int one", "1": "str one", (1,): "tuple", "(1,)": "text"}}
    store.complete_job(claimed.id, claimed.attempt, encode(returned))
    store.close()
    shown = _run(dict(os.environ, BLUMYCELIUM_URL=url), "job", claimed.id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["result"] == {
        "a": [[1, "int one"], ["1", "str one"], [[1], "tuple"], ["(1,)", "text"]]
    }


def test_job_names_what_a_waiting_job_s_parameters_wait_for(tmp_path):
    reference = {"__bm__": "ref", "job": 0, "key": "count"}
    arguments = {"n": reference, "items": [1, reference], "plain": (1, 2)}
    store, _, (first, waiting) = _store_with(
        tmp_path, _job(0), _job(1, arguments, [0], {"n", "items"})
    )
    awaited = "<result of job %s['count'], not known yet>" % first
    assert job_detail_data(store, waiting)["parameters"] == {
        "n": awaited,
        "items": [1, awaited],
        "plain": [1, 2],
    }
    store.close()


def test_job_names_the_inputs_a_waiting_expression_needs(tmp_path):
    expression = {
        "__bm__": "expr",
        "code": "_0 + 1",
        "inputs": {"_0": {"__bm__": "ref", "job": 0, "key": "sum"}},
        "site": [4, 8],
    }
    unreadable = {"__bm__": "element", "loop": "L1"}  # known to the expansion only
    arguments = {"x": expression, "template": unreadable}
    store, _, (first, waiting) = _store_with(
        tmp_path, _job(0), _job(1, arguments, [0], {"x", "template"})
    )
    assert job_detail_data(store, waiting)["parameters"] == {
        "x": "<_0 + 1 where _0 = result of job %s['sum'], once known>" % first,
        "template": unreadable,
    }
    store.close()


def test_a_large_failure_group_names_its_first_jobs_in_text():
    from blumycelium.views import SHOWN_JOBS, _some_jobs

    jobs = [{"job": str(n), "attempt": 1} for n in range(SHOWN_JOBS + 5)]
    text = _some_jobs(jobs)
    assert text.startswith("0 (attempt 1), 1 (attempt 1)")
    assert "%d (attempt 1)" % (SHOWN_JOBS - 1) in text
    assert "%d (attempt 1)" % SHOWN_JOBS not in text
    assert text.endswith(" and 5 more (--json lists them all)")
    assert _some_jobs(jobs[:2]) == "0 (attempt 1), 1 (attempt 1)"
