"""The synchronous animals demo of the original blumycelium, in one process.

    python demos/animals/sync_orchestration.py [--iterations 10]

Every iteration measures an animal, saves it, computes the statistics with
three Stats elves and prints the report. Then every elf runs its ready jobs
in turn with ``start_jobs``, in dependency order, as in the original: all
measurements first, then all saves, then the statistics, then the reports.
The statistics wait for their iteration's save with ``after``; in the
original they simply ran after every save had.
"""

import argparse
import json

import common
import elves

from blumycelium import after

mycelium = common.demo_mycelium()
animals = common.make_elf(mycelium, "animals")
store = common.make_elf(mycelium, "store")
mean_calc = elves.Stats("average calculator", mycelium, common.database_file())
min_calc = elves.Stats("min calculator", mycelium, common.database_file())
max_calc = elves.Stats("max calculator", mycelium, common.database_file())
printer = common.make_elf(mycelium, "printer")


@mycelium.flow
def sync_report(iterations: int):
    for _ in range(iterations):
        measurement = animals.task_get_animal_data()
        saved = store.task_save_animal_data(
            species=measurement["species"], weight=measurement["weight"]
        )
        with after(saved):
            mean = mean_calc.task_calculate_means()
            mins = min_calc.task_calculate_mins()
            maxs = max_calc.task_calculate_maxs()
        printer.task_print_stats(
            means=mean["means"], mins=mins["mins"], maxs=maxs["maxs"]
        )


def main(iterations=10):
    with open(common.database_file(), "w") as file:
        json.dump({}, file)
    common.init_myc(mycelium, drop=True)
    run = sync_report(iterations)
    for elf in (animals, store, mean_calc, min_calc, max_calc, printer):
        elf.start_jobs(store_failures=True, raise_exceptions=True)
    print("run %s: %s" % (run.id, run.wait(timeout=10)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    main(parser.parse_args().iterations)
