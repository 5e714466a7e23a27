"""Serves the animals elf: python demos/animals/animals_elf_daemon.py"""

import common

if __name__ == "__main__":
    common.serve("animals")
