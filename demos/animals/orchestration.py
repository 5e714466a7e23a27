"""The orchestration of the animals demo: what the elves should do, and in
which order. It runs in its own process, submits the run and returns; the
daemons do the work, whenever they are started.

    python demos/animals/orchestration.py [--iterations 100]

Every iteration measures an animal and saves it; every fifth, three Stats
elves compute statistics, each with its own elf so that they run in
parallel, and the report printer prints them. ``with after(saved)`` makes the
statistics wait until that iteration's measurement is saved, although they
take no value from it.
"""

import argparse
import json

import common

from blumycelium import after

mycelium = common.demo_mycelium()
animals = common.make_elf(mycelium, "animals")
store = common.make_elf(mycelium, "store")
mean_calc = common.make_elf(mycelium, "calc1")
min_calc = common.make_elf(mycelium, "calc2")
max_calc = common.make_elf(mycelium, "calc3")
printer = common.make_elf(mycelium, "printer")


@mycelium.flow
def animals_report(iterations: int):
    report = None
    for nb in range(iterations):
        print("Sending: %s" % nb)
        measurement = animals.task_get_animal_data()
        saved = store.task_save_animal_data(
            species=measurement["species"], weight=measurement["weight"]
        )
        if nb % 5 == 0:
            with after(saved):
                mean = mean_calc.task_calculate_means()
                mins = min_calc.task_calculate_mins()
                maxs = max_calc.task_calculate_maxs()
            printer.task_print_stats(
                means=mean["means"], mins=mins["mins"], maxs=maxs["maxs"]
            )
            report = {
                "means": mean["means"],
                "mins": mins["mins"],
                "maxs": maxs["maxs"],
            }
    return report


def main(iterations=100):
    """Empty the JSON database and the mycelium, then submit the run."""
    with open(common.database_file(), "w") as file:
        json.dump({}, file)
    common.init_myc(mycelium, drop=True)
    run = animals_report(iterations)
    print("Submitted run %s" % run.id)
    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    main(parser.parse_args().iterations)
