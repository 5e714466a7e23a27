"""Runs the whole asynchronous animals demo: six elf daemons and the
orchestration, each in its own process.

    python demos/animals/run_demo.py [--iterations 100] [--timeout 300]

The daemons start in a random order (blumycelium takes care of the order in
which jobs run); the orchestration submits the run; the launcher waits for
the run to end, prints the last report, and stops the daemons with SIGTERM,
which lets each finish the job in hand. Every process prints what its elf
does, as in the original demo.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time

import common
import elves

HERE = os.path.dirname(os.path.abspath(__file__))
DAEMONS = [
    ["animals_elf_daemon.py"],
    ["storage_elf_daemon.py"],
    ["stats_elf_daemon.py", "calc1"],
    ["stats_elf_daemon.py", "calc2"],
    ["stats_elf_daemon.py", "calc3"],
    ["formater_elf_daemon.py"],
]


def start_daemons(environment):
    order = list(DAEMONS)
    random.shuffle(order)
    daemons = []
    for script, *args in order:
        print("Starting %s" % " ".join([script, *args]))
        command = [sys.executable, os.path.join(HERE, script), *args]
        daemons.append(subprocess.Popen(command, env=environment))
    return daemons


def submit(iterations, environment):
    command = [
        sys.executable,
        os.path.join(HERE, "orchestration.py"),
        "--iterations",
        str(iterations),
    ]
    finished = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )
    sys.stdout.write(finished.stdout)
    sys.stderr.write(finished.stderr)
    match = re.search(r"Submitted run (\S+)", finished.stdout)
    if finished.returncode != 0 or match is None:
        raise SystemExit("the orchestration failed (exit %d)" % finished.returncode)
    return match.group(1)


def stop(daemons):
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
    codes = []
    for daemon in daemons:
        try:
            codes.append(daemon.wait(timeout=30))
        except subprocess.TimeoutExpired:
            daemon.kill()
            codes.append(daemon.wait())
    return codes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args()
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    common.init_myc()
    started = time.monotonic()
    daemons = start_daemons(environment)
    try:
        run_id = submit(options.iterations, environment)
        run = common.demo_mycelium().run(run_id)
        status = run.wait(timeout=options.timeout)
        report = run.result() if status == "done" else None
    finally:
        codes = stop(daemons)
    print(
        "\nRun %s of flow animals_report: %s in %.1fs, %d jobs"
        % (run_id, status, time.monotonic() - started, len(run.jobs()))
    )
    if report:
        print("Last report:")
        print(elves.format_report(report["means"], report["mins"], report["maxs"]))
    print("Daemons stopped, exit codes: %s" % codes)
    return 0 if status == "done" and not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
