"""The SQLite file stays whole while other processes come and go."""

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from blumycelium.errors import StoreUnavailableError
from blumycelium.store import open_store


def test_a_second_thread_does_not_drop_this_process_s_locks(tmp_path):
    path = tmp_path / "locks.db"
    store = open_store("sqlite:///" + str(path))
    store.init()
    store.list_runs()  # the main thread's connection
    worker = threading.Thread(target=store.list_runs)  # a second connection
    worker.start()
    worker.join()
    # Another process opens and closes the file: had this process lost its
    # locks, that process would be "the last one", checkpoint and delete the
    # WAL under our open connections.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            " c.execute('select count(*) from runs').fetchone(); c.close()",
            str(path),
        ],
        check=True,
    )
    assert os.path.exists(str(path) + "-wal")
    assert store.list_runs() == []
    store.close()


def test_a_file_of_another_schema_version_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "old.db"
    store = open_store("sqlite:///" + str(path))
    store.init()
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    before = path.read_bytes()
    with pytest.raises(StoreUnavailableError) as refused:
        open_store("sqlite:///" + str(path)).list_runs()
    assert "has schema version 5; this blumycelium reads version 6" in str(
        refused.value
    )
    assert "point it at a new file" in str(refused.value)
    assert path.read_bytes() == before
