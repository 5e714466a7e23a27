"""Where the animals demo keeps its mycelium and its JSON database.

Both live in the demo's working directory: ``ANIMALS_DEMO_DIR`` when set,
else this directory. Every process of the demo (orchestration, daemons,
launcher) builds its elves here, the same way.
"""

import logging
import os

import elves

from blumycelium import Mycelium

ANIMALS = ["dolphin", "dog", "bee", "whale"]


def work_directory():
    return os.environ.get("ANIMALS_DEMO_DIR") or os.path.dirname(
        os.path.abspath(__file__)
    )


def database_file():
    return os.path.join(work_directory(), "my_animals.json")


def demo_mycelium():
    """The demo's mycelium (opened on first use)."""
    return Mycelium(os.path.join(work_directory(), "animals.db"))


def init_myc(mycelium=None, drop=False):
    """The demo's mycelium, created if needed; emptied when ``drop``."""
    mycelium = mycelium or demo_mycelium()
    mycelium.init(init_db=True)
    if drop:
        mycelium.drop()
    return mycelium


def make_elf(mycelium, role):
    """One elf of the demo by role, named as in the original demo."""
    if role == "animals":
        return elves.Animals("animals creator", mycelium, ANIMALS)
    if role == "store":
        return elves.Storage("animals data store", mycelium, database_file())
    if role in ("calc1", "calc2", "calc3"):
        return elves.Stats(role, mycelium, database_file())
    if role == "printer":
        return elves.Formater("report printer", mycelium)
    raise ValueError("no elf role %r; expected one of %s" % (role, ", ".join(ROLES)))


ROLES = ("animals", "store", "calc1", "calc2", "calc3", "printer")


def serve(role):
    """Run one elf's daemon until SIGINT or SIGTERM (what *_daemon.py do)."""
    logging.basicConfig(
        level=os.environ.get("BLUMYCELIUM_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    elf = make_elf(init_myc(), role)
    elf.register()
    elf.serve()
