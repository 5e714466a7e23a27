"""The demos, run as a new user runs them, with their output checked."""

import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def run_demo(path, cwd, *args, env=None, timeout=300):
    env = dict(os.environ, **(env or {}))
    env.pop("BLUMYCELIUM_URL", None)
    return subprocess.run(
        [sys.executable, str(ROOT / path), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quickstart_prints_the_message_after_the_sender_ran(tmp_path):
    finished = run_demo("demos/quickstart.py", tmp_path)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0] == "===> print"
    assert re.fullmatch(
        r">>> Machine >>> Elf >>> Printer: 'a message sent on: .+'", lines[1]
    )
    assert re.fullmatch(r"run \d+: done", lines[2])
    assert (tmp_path / "mycelium.db").exists()


def test_the_list_demo_prints_what_the_original_printed(tmp_path):
    finished = run_demo("demos/lists.py", tmp_path)
    assert finished.returncode == 0, finished.stderr
    lines = [
        line.split(": ", 1)[1]
        for line in finished.stdout.splitlines()
        if line.startswith(">>>")
    ]
    assert re.fullmatch(r"'a message sent on: .+'", lines[0]) and lines[0] == lines[1]
    assert lines[2:] == [
        "'['mop', 'kop', ['hop', 'clop']]'",
        "'%s'" % (["Tralala"] * 10,),
        "'['Tralala', ['Tralala']]'",
        "'TRALALA'",
        "'['TralalaTralala', ['Tralala', 'TRA']]'",
    ]


def test_the_animals_demo_runs_six_daemons_and_prints_the_report(tmp_path):
    finished = run_demo(
        "demos/animals/run_demo.py",
        tmp_path,
        "--iterations",
        "12",
        env={"ANIMALS_DEMO_DIR": str(tmp_path)},
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    out = finished.stdout
    assert out.count("Starting ") == 6
    assert out.count("Sending: ") == 12
    assert out.count(">new animal: ") == 12
    assert out.count("Stored a new entry for:") == 12
    assert out.count("====STATS====") == 3 + 1
    assert re.search(r"Run \d+ of flow animals_report: done in [\d.]+s, 36 jobs", out)
    assert "Daemons stopped, exit codes: [0, 0, 0, 0, 0, 0]" in out
    report = out.split("Last report:")[1]
    weights = sum(
        len(v["weight"])
        for v in __import__("json")
        .loads((tmp_path / "my_animals.json").read_text())
        .values()
    )
    assert weights == 12
    assert "Stats for" in report and "Average:" in report


def test_the_synchronous_animals_demo_runs_in_one_process(tmp_path):
    finished = run_demo(
        "demos/animals/sync_orchestration.py",
        tmp_path,
        "--iterations",
        "6",
        env={"ANIMALS_DEMO_DIR": str(tmp_path)},
    )
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    assert out.count(">new animal: ") == 6
    assert out.count("====STATS====") == 6
    assert re.search(r"run \d+: done", out)
    last = out.split("====STATS====")[-1]
    counted = re.findall(r"Stats for (\w+)", last)
    assert counted and len(set(counted)) == len(counted)
