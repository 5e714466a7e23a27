"""The benchmark suite keeps working: its quick mode runs every workload and
prints a row for each, with a reference figure beside ours."""

import subprocess
import sys

from tests.conftest import ROOT


def test_the_quick_benchmark_run_prints_every_row():
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("blumycelium benchmarks, ")
    rows = [line for line in lines[4:] if line and not line.startswith("call a")]
    workloads = {
        "submission",
        "no-op throughput",
        "chain latency",
        "fan-out/fan-in",
        "large value",
        "compile a 200-line flow",
        "worker memory",
    }
    for workload in workloads:
        assert any(row.startswith(workload) for row in rows), finished.stdout
    assert "Huey 1 consumer, synchronous=FULL" in finished.stdout
    assert "n/a" not in finished.stdout, finished.stdout
    # small sizes say nothing of the targets: no row is judged
    assert "MISSED" not in finished.stdout and " met" not in finished.stdout
