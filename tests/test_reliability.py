"""Reliable execution with real worker processes on a real SQLite file:
exactly-once claims, leases and crash recovery, retries, timeouts,
cancellation, re-runs, idempotent submission and graceful shutdown."""

import collections
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from blumycelium.errors import RunKeyConflictError
from blumycelium.progress import ProgressBar
from tests.conftest import PRELUDE, ROOT, side_effects, wait_for

ADDER = "tests.fixtures.workshop:adder"
FLAKY = "tests.fixtures.workshop:flaky"


@pytest.mark.parametrize("count", [2, 4, 8])
def test_n_workers_of_one_elf_run_each_of_thousands_of_jobs_once(
    workshop, workers, tmp_path, count
):
    run = workshop.many_noops(1500)
    for _ in range(count):
        workers.start(ADDER)
    assert run.wait(timeout=300) == "done"
    workers.wait_registered(workshop.mycelium.store)
    assert workers.stop_all() == [0] * count
    ran = collections.Counter(side_effects(tmp_path))
    assert ran == collections.Counter("noop %d" % n for n in range(1500))
    assert {job.attempts for job in run.jobs()} == {1}


def test_a_worker_killed_mid_task_loses_the_job_to_another_after_its_lease(
    workshop, workers, tmp_path
):
    run = workshop.long_then_many(1.5, 3)
    first = workers.start(FLAKY, "--lease", "1")
    assert wait_for(lambda: side_effects(tmp_path) == ["long start"], 30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    workers.start(FLAKY, "--lease", "1")
    workers.start(ADDER, "--lease", "1")
    assert run.wait(timeout=60) == "done"
    long_job = run.jobs()[0]
    assert long_job.attempts == 2
    failures = run.failures()
    assert [(f.attempt, f.exception_type) for f in failures] == [
        (1, "blumycelium.errors.WorkerLostError")
    ]
    assert "stopped renewing its lease during attempt 1" in failures[0].message
    assert side_effects(tmp_path).count("long start") == 2
    assert side_effects(tmp_path).count("long end") == 1
    assert workers.stop_all()[1:] == [0, 0]


def test_a_long_task_keeps_its_job_by_renewing_the_lease(workshop, workers, tmp_path):
    run = workshop.long_then_many(3.0, 1)
    workers.start(FLAKY, "--lease", "1")
    workers.start(FLAKY, "--lease", "1")
    workers.start(ADDER, "--lease", "1")
    assert run.wait(timeout=60) == "done"
    assert run.jobs()[0].attempts == 1
    assert side_effects(tmp_path).count("long start") == 1


def test_an_orchestrator_killed_while_submitting_leaves_all_or_nothing(
    db_url, tmp_path
):
    script = tmp_path / "submit_big.py"
    script.write_text(
        textwrap.dedent("""
        from blumycelium import MachineElf, Mycelium
        myc = Mycelium()

        class Noop(MachineElf):
            def task_noop(self, n: int) -> None:
                pass

        noop = Noop("noop", myc)

        @myc.flow
        def big(count):
            for n in range(count):
                noop.task_noop(n)

        big(200_000)
        print("submitted", flush=True)
    """)
    )
    path = db_url[len("sqlite:///") :]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert wait_for(
        lambda: (
            os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 2_000_000
        ),
        120,
        0.005,
    )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    runs = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    jobs = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
    parameters = connection.execute(
        "SELECT count(*) FROM jobs WHERE parameters IS NOT NULL"
    ).fetchone()[0]
    connection.close()
    assert (runs, jobs, parameters) in [(0, 0, 0), (1, 200_000, 200_000)]


def test_a_flaky_task_is_retried_with_backoff_until_it_succeeds(workshop, workers):
    run = workshop.flaky_then_fine(2)
    workers.start(FLAKY)
    workers.start(ADDER)
    assert run.result(timeout=60) == 4
    flaky_job = run.jobs()[0]
    assert flaky_job.attempts == 3
    failures = run.failures()
    assert [(f.attempt, f.message) for f in failures] == [
        (1, "flaky attempt 1"),
        (2, "flaky attempt 2"),
    ]
    first_gap = failures[1].created_at - failures[0].created_at
    assert first_gap >= 0.2
    assert flaky_job.finished_at - failures[1].created_at >= 0.4


def test_dependents_fail_only_when_attempts_are_exhausted(workshop):
    run = workshop.flaky_then_fine(5)
    workshop.flaky.start_jobs(raise_exceptions=False)
    assert [j.status for j in run.jobs()] == ["ready", "pending"]
    assert wait_for(
        lambda: (
            workshop.flaky.start_jobs(raise_exceptions=False) == 0
            and run.status != "running"
        ),
        10,
        0.1,
    )
    assert [j.status for j in run.jobs()] == ["failed", "upstream_failed"]
    assert [f.attempt for f in run.failures()] == [1, 2, 3]


def test_a_task_over_its_timeout_is_stopped_and_retried(workshop, workers, tmp_path):
    run = workshop.hanging()
    started = time.monotonic()
    workers.start(FLAKY)
    assert run.wait(timeout=60) == "failed"
    assert time.monotonic() - started < 20
    failures = run.failures()
    assert [(f.attempt, f.exception_type) for f in failures] == [
        (1, "blumycelium.errors.TaskTimeoutError"),
        (2, "blumycelium.errors.TaskTimeoutError"),
    ]
    assert "ran longer than its timeout of 0.5s" in failures[0].message
    assert side_effects(tmp_path) == ["hang start", "hang start"]


def test_cancelling_a_run_stops_every_job_not_yet_started(workshop, workers, tmp_path):
    run = workshop.long_then_many(2.0, 50)
    workers.start(FLAKY)
    workers.start(ADDER)
    assert wait_for(lambda: side_effects(tmp_path) == ["long start"], 30)
    assert run.cancel() == 50
    assert run.status == "cancelled"
    assert wait_for(lambda: run.jobs()[0].status == "done", 30)
    time.sleep(1.0)
    statuses = collections.Counter(job.status for job in run.jobs())
    assert statuses == {"done": 1, "cancelled": 50}
    assert side_effects(tmp_path) == ["long start", "long end"]
    assert run.wait(timeout=1) == "cancelled"


def test_retrying_a_run_after_a_fix_keeps_what_succeeded(workshop, tmp_path):
    run = workshop.fix_and_retry(1)
    workshop.adder.start_jobs()
    workshop.flaky.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=5) == "failed"
    assert [j.status for j in run.jobs()] == ["done", "failed", "upstream_failed"]
    (tmp_path / "fixed").write_text("deployed")
    assert run.retry() == 2
    assert run.status == "running"
    assert [j.status for j in run.jobs()] == ["done", "ready", "pending"]
    workshop.flaky.start_jobs()
    workshop.adder.start_jobs()
    assert run.result(timeout=5) == 3
    assert side_effects(tmp_path).count("add 1 1") == 1
    assert [f.attempt for f in run.failures()] == [1]
    assert run.jobs()[1].attempts == 2


def test_one_failed_job_can_be_retried_alone(workshop, tmp_path):
    run = workshop.fix_and_retry(1)
    workshop.adder.start_jobs()
    workshop.flaky.start_jobs(raise_exceptions=False)
    failed = run.jobs()[1]
    (tmp_path / "fixed").write_text("deployed")
    assert run.retry(failed.id) == 2
    workshop.flaky.start_jobs()
    workshop.adder.start_jobs()
    assert run.result(timeout=5) == 3
    with pytest.raises(Exception, match="only a failed job can be retried"):
        run.retry(run.jobs()[0].id)


def test_submitting_twice_with_a_run_key_returns_the_first_run(workshop):
    first = workshop.chain(1, 2, run_key="nightly-2026-12-04")
    second = workshop.chain(1, 2, run_key="nightly-2026-12-04")
    other = workshop.chain(1, 2, run_key="nightly-2026-12-05")
    assert first.id == second.id != other.id
    assert len(workshop.mycelium.get_jobs("adder", all_jobs=True)) == 4
    with pytest.raises(RunKeyConflictError) as caught:
        workshop.chain(1, 3, run_key="nightly-2026-12-04")
    assert "already names run %s, of flow chain" % first.id in str(caught.value)
    with pytest.raises(RunKeyConflictError, match="this call is flow failing"):
        workshop.failing("x", run_key="nightly-2026-12-04")
    assert len(workshop.mycelium.store.list_runs()) == 2  # nothing more stored
    with pytest.raises(RunKeyConflictError):  # True is not 1: values are exact
        workshop.chain(True, 2, run_key="nightly-2026-12-04")
    assert workshop.chain(5, 1, run_key=None).id not in (first.id, other.id)


def test_sigterm_past_the_grace_period_gives_the_job_back(workshop, workers, tmp_path):
    run = workshop.long_then_many(30.0, 0)
    worker = workers.start(FLAKY, "--grace", "0.5")
    assert wait_for(lambda: side_effects(tmp_path) == ["long start"], 30)
    stopped = time.monotonic()
    assert workers.stop(worker) == 0
    assert time.monotonic() - stopped < 10
    [job] = run.jobs()
    assert (job.status, job.attempts) == ("ready", 1)
    assert run.failures() == []


def test_workers_are_registered_while_they_serve(workshop, workers):
    worker = workers.start(ADDER)
    assert wait_for(
        lambda: any(
            w.pid == worker.pid and w.stopped_at is None
            for w in workshop.mycelium.store.list_workers()
        ),
        30,
    )
    assert workers.stop(worker) == 0
    [record] = [
        w for w in workshop.mycelium.store.list_workers() if w.pid == worker.pid
    ]
    assert record.elf_uid == "adder" and record.stopped_at is not None
    assert not record.is_lost(time.time())


def test_progress_is_drawn_only_on_a_terminal(workshop, capsys):
    run = workshop.chain(1, 1)
    workshop.adder.start_jobs()
    assert run.wait(timeout=5, progress=True) == "done"
    assert capsys.readouterr().err == ""
    bar = ProgressBar("7")
    line = bar.render({"done": 55, "running": 3, "failed": 1}, 100)
    assert line.startswith("run 7  [#############-----------]  55/100 done")
    assert "3 running  1 failed" in line


def test_a_task_knows_its_job_for_idempotent_writes(myc):
    from blumycelium import MachineElf

    class Recorder(MachineElf):
        def task_who(self) -> ("job", "attempt"):
            context = self.current_job
            return {"job": context.job_id, "attempt": context.attempt}

    recorder = Recorder("recorder", myc)

    @myc.flow
    def who():
        return recorder.task_who()

    run = who()
    recorder.start_jobs()
    [job] = run.jobs()
    assert run.result(timeout=5) == {"job": job.id, "attempt": 1}
    assert recorder.current_job is None


def test_a_run_key_is_not_shared_by_two_flows_of_one_name(load_flows):
    sales = load_flows(
        """
        @myc.flow
        def nightly(day):
            return calc.task_add(day, 1000)["sum"]
        """
    )
    inventory = load_flows(
        """
        @myc.flow
        def nightly(day):
            return words.task_split("inventory %d" % day)["words"]
        """
    )
    first = sales.nightly(4, run_key="nightly-4")
    assert sales.nightly(4, run_key="nightly-4").id == first.id
    with pytest.raises(RunKeyConflictError) as caught:
        inventory.nightly(4, run_key="nightly-4")
    message = str(caught.value)
    assert "of flow nightly (%s)" % sales.__file__ in message
    assert "this call is flow nightly (%s)" % inventory.__file__ in message


def test_a_run_key_follows_the_flow_s_file_by_any_path_not_its_text(tmp_path, db_url):
    text = PRELUDE + (
        "\n@myc.flow\ndef nightly(day):\n    return calc.task_add(day, 1)['sum']\n"
    )
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "sales.py").write_text(text)
    (tmp_path / "copy.py").write_text(text)  # the same text, another flow
    (tmp_path / "link").symlink_to(tmp_path / "real")

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    first = load("sales_real", tmp_path / "real" / "sales.py")
    run = first.nightly(1, run_key="k")
    linked = load("sales_linked", tmp_path / "link" / "sales.py")
    assert linked.nightly(1, run_key="k").id == run.id
    copy = load("sales_copy", tmp_path / "copy.py")
    with pytest.raises(RunKeyConflictError, match="copy.py"):
        copy.nightly(1, run_key="k")
