"""The SQLite file stays whole while other processes come and go."""

import os
import subprocess
import sys
import threading

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
