"""Real worker processes (`python -m blumycelium worker`) on a real SQLite file."""

import collections
import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, side_effects, wait_for


def test_a_worker_process_runs_a_chain_and_stops_cleanly_on_sigterm(workshop, workers):
    run = workshop.chain(10, 5)
    worker = workers.start("tests.fixtures.workshop:adder")
    assert run.wait(timeout=60) == "done"
    assert run.result() == 15
    assert workers.stop(worker) == 0


def test_factories_and_file_paths_name_the_elf_too(workshop, workers):
    run = workshop.chain(0, 2)
    worker = workers.start("tests/fixtures/workshop.py:make_adder")
    assert run.result(timeout=60) == 2
    assert workers.stop(worker) == 0


def test_many_workers_of_one_elf_run_each_job_exactly_once(workshop, workers, tmp_path):
    run = workshop.many_noops(300)
    pool = [workers.start("tests.fixtures.workshop:adder") for _ in range(3)]
    assert run.wait(timeout=120) == "done"
    workers.wait_registered(workshop.mycelium.store)
    assert workers.stop_all() == [0, 0, 0]
    counts = collections.Counter(side_effects(tmp_path))
    assert counts == collections.Counter("noop %d" % n for n in range(300))
    assert len(pool) == 3


def test_sigterm_lets_the_job_in_hand_finish(workshop, workers, tmp_path):
    run = workshop.slow_pair(1.5)
    worker = workers.start("tests.fixtures.workshop:adder")
    assert wait_for(lambda: any(j.status == "running" for j in run.jobs()), 30)
    assert workers.stop(worker) == 0
    statuses = sorted(job.status for job in run.jobs())
    assert statuses == ["done", "ready"]
    assert side_effects(tmp_path) == ["slow 1.5"]


def test_once_runs_the_ready_jobs_then_exits(workshop, workers):
    run = workshop.chain(1, 3)
    worker = workers.start("tests.fixtures.workshop:adder", "--once")
    assert worker.wait(timeout=60) == 0
    assert run.status == "done"


def test_an_idle_worker_does_not_spin_a_core(workshop, workers):
    worker = workers.start("tests.fixtures.workshop:adder")
    time.sleep(1.0)
    before = _cpu_seconds(worker.pid)
    time.sleep(3.0)
    used = _cpu_seconds(worker.pid) - before
    assert used < 0.6, "an idle worker used %.2fs of CPU in 3s" % used
    assert workers.stop(worker) == 0


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _command(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "blumycelium", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_worker_command_errors_are_one_line_and_exit_2(db_url):
    cases = [
        (["worker", "nocolon"], "is not module:attribute"),
        (["worker", "no_such_module_xyz:elf"], "cannot import 'no_such_module_xyz'"),
        (["worker", "tests.fixtures.workshop:nobody"], "has no attribute 'nobody'"),
        (["worker", "tests.fixtures.workshop:note"], "note needs arguments"),
        (["worker", "tests.fixtures.workshop:mycelium"], "not a MachineElf instance"),
        (["worker", "tests.fixtures.workshop:chain"], "chain is a flow, not an elf"),
        (["worker", "missing/file.py:elf"], "no such file: missing/file.py"),
    ]
    for args, message in cases:
        finished = _command(*args)
        assert finished.returncode == 2, (args, finished.stderr)
        assert "Traceback" not in finished.stderr
        assert message in finished.stderr, (args, finished.stderr)


def test_a_bad_url_is_reported_in_one_line(tmp_path):
    env = dict(os.environ)
    finished = _command(
        "worker",
        "tests.fixtures.workshop:adder",
        "--url",
        "sqlite:///" + str(tmp_path / "missing" / "x.db"),
        env=env,
    )
    assert finished.returncode == 2
    assert "the directory" in finished.stderr and "does not exist" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_sigint_stops_a_worker_with_exit_0(workshop, workers):
    worker = workers.start("tests.fixtures.workshop:adder")
    time.sleep(1.0)
    assert workers.stop(worker, signal.SIGINT) == 0


def test_broken_target_modules_are_reported_in_one_line(tmp_path, db_url):
    (tmp_path / "syntax_error.py").write_text("def broken(:\n")
    (tmp_path / "raises.py").write_text("x = 1\nraise RuntimeError('at import')\n")
    cases = [
        (
            str(tmp_path / "syntax_error.py") + ":elf",
            "SyntaxError: invalid syntax (%s, line 1)" % (tmp_path / "syntax_error.py"),
        ),
        (
            str(tmp_path / "raises.py") + ":elf",
            "RuntimeError: at import (%s, line 2)" % (tmp_path / "raises.py"),
        ),
        (str(tmp_path) + ":elf", "is a directory"),
    ]
    for target, message in cases:
        finished = _command("worker", target)
        assert finished.returncode == 2, finished.stderr
        assert message in finished.stderr, finished.stderr
        assert "Traceback" not in finished.stderr


def test_an_unknown_log_level_is_refused():
    finished = _command("--log-level", "LOUD", "worker", "x:y")
    assert finished.returncode == 2
    assert "invalid choice: 'LOUD'" in finished.stderr


def test_a_fan_out_runs_each_element_once_across_worker_processes(
    workshop, workers, tmp_path
):
    sentence = " ".join("w%d" % n for n in range(30))
    run = workshop.word_lengths(sentence)
    [workers.start("tests.fixtures.workshop:adder") for _ in range(2)]
    workers.start("tests.fixtures.workshop:texts")
    shouted, lengths, summary = run.result(timeout=120)
    workers.wait_registered(workshop.mycelium.store)
    assert workers.stop_all() == [0, 0, 0]
    assert shouted == ["W%d!" % n for n in range(30)]
    assert lengths == [len("W%d!" % n) for n in range(30)]
    adds = collections.Counter(side_effects(tmp_path))
    assert adds == collections.Counter("add %d 0" % n for n in lengths)
    assert summary == "many words"
    assert run.counts() == {"done": 1 + 2 + 30 + 2 + 30 + 1, "skipped": 1}


def test_the_preview_shows_that_flow_s_fan_outs_and_branch_before_it_runs():
    from tests.test_preview import compile_command

    finished = compile_command("tests/fixtures/workshop.py", "--flow", "word_lengths")
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    fan_out = "    (over a task result: one copy per element, at run time)"
    assert '  for word in parts["words"]:    line 224' + fan_out in out
    assert "  for word in shouted:    line 226" + fan_out in out
    assert (
        '  if parts["count"] > 20:    line 228    (decided by a task result:'
        " guarded jobs)" in out
    )
