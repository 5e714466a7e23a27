"""Serves the report printer: python demos/animals/formater_elf_daemon.py"""

import common

if __name__ == "__main__":
    common.serve("printer")
