"""The animals demo in one process: the same flow, with every elf's ready
jobs run in turn by ``start_jobs`` instead of by daemons.

    python demos/animals/sync_orchestration.py [--iterations 10]

An elf's jobs that wait for another elf's results are not ready until that
elf has run, so the elves are started in dependency order.
"""

import argparse

import elves
import orchestration


def main(iterations=10):
    run = orchestration.main(iterations)
    for elf in (
        orchestration.animals,
        orchestration.store,
        orchestration.mean_calc,
        orchestration.min_calc,
        orchestration.max_calc,
        orchestration.printer,
    ):
        elf.start_jobs(store_failures=True, raise_exceptions=True)
    report = run.result(timeout=10)
    if report:
        print("Last report:")
        print(elves.format_report(report["means"], report["mins"], report["maxs"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    main(parser.parse_args().iterations)
