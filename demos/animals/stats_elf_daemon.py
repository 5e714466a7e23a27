"""Serves one stats elf: python demos/animals/stats_elf_daemon.py calc1

The three stats elves (calc1: averages, calc2: minimums, calc3: maximums)
are three daemons of the same class, so they compute in parallel.
"""

import sys

import common

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("calc1", "calc2", "calc3"):
        sys.exit("usage: python stats_elf_daemon.py calc1|calc2|calc3")
    common.serve(sys.argv[1])
