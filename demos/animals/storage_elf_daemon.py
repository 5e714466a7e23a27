"""Serves the storage elf: python demos/animals/storage_elf_daemon.py"""

import common

if __name__ == "__main__":
    common.serve("store")
