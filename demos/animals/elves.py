"""The elves of the animals demo.

They share a "database" that is a plain JSON file: a design pattern for elves
working together on one external store. Settings each elf needs (the animal
names, the file name) go through ``initialize`` so that the orchestration and
every daemon build the elves the same way.
"""

import fcntl
import json
import os
import random
import time

from blumycelium import MachineElf


def load_json(json_filename, tries=10):
    """Read the JSON database, retrying while a writer replaces the file."""
    for _ in range(tries):
        try:
            with open(json_filename) as file:
                return json.load(file)
        except (OSError, ValueError) as error:
            print("Unable to load file '%s' because of: '%s'" % (json_filename, error))
            time.sleep(0.1)
    return {}


class Animals(MachineElf):
    """Makes up measurements of random animals."""

    def initialize(self, animal_list):
        self.animal_list = animal_list

    def task_get_animal_data(self) -> {"species": str, "weight": int}:
        name = random.choice(self.animal_list)
        weight = random.randint(0, 1000)
        print(">new animal: %s, weight: %s" % (name, weight))
        return {"species": name, "weight": weight}


class Storage(MachineElf):
    """Saves measurements in the JSON database."""

    def initialize(self, json_filename):
        self.json_filename = json_filename

    def task_save_animal_data(self, species: str, weight: int) -> None:
        # Several daemons may serve this elf: a lock keeps each
        # read-modify-write whole, and each writes its own temporary file.
        with open(self.json_filename + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            database = load_json(self.json_filename)
            database.setdefault(species, {"weight": []})["weight"].append(weight)
            temporary = "%s.%d.tmp" % (self.json_filename, os.getpid())
            with open(temporary, "w") as file:
                json.dump(database, file)
            os.replace(temporary, self.json_filename)
        print("Stored a new entry for:" + species)


class Stats(MachineElf):
    """Computes one statistic per species over the JSON database."""

    def initialize(self, json_filename):
        self.json_filename = json_filename

    def per_species(self, statistic):
        database = load_json(self.json_filename)
        return {name: statistic(values["weight"]) for name, values in database.items()}

    def task_calculate_means(self) -> ["means"]:
        print(">calculating averages for all animals")
        return {"means": self.per_species(lambda values: sum(values) / len(values))}

    def task_calculate_mins(self) -> ["mins"]:
        print(">finding min values for all animals")
        return {"mins": self.per_species(min)}

    def task_calculate_maxs(self) -> ["maxs"]:
        print(">finding max values for all animals")
        return {"maxs": self.per_species(max)}


class Formater(MachineElf):
    """Prints the statistics as a report."""

    def task_print_stats(self, means, mins, maxs) -> None:
        print(format_report(means, mins, maxs))


def format_report(means, mins, maxs):
    """The report; the three elves may have read the file at different times,
    so a species one of them has not seen yet shows as n/a."""
    lines = ["====STATS===="]
    names = list(means) + [n for n in {**mins, **maxs} if n not in means]
    for name in names:
        lines.append(
            "Stats for %s:\n\tAverage: %s\n\tMinimum: %s\n\tMaximum: %s"
            % tuple([name] + [part.get(name, "n/a") for part in (means, mins, maxs)])
        )
    lines.append("=============")
    return "\n".join(lines)
