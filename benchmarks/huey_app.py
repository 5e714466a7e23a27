"""The Huey reference: the same tasks on SqliteHuey, for its consumer.

``BENCH_HUEY_DB`` names the file; ``BENCH_HUEY_SYNC=normal`` runs it at our
durability (``synchronous=NORMAL``) instead of its default (``FULL``).
"""

import os
import sys

from huey import SqliteHuey
from huey.storage import SqliteStorage


class NormalSyncStorage(SqliteStorage):
    """SqliteStorage with ``synchronous=NORMAL``, as blumycelium runs SQLite."""

    def _create_connection(self):
        connection = super()._create_connection()
        connection.execute("pragma synchronous=1")
        return connection


# A pipeline is one message nesting each next step: pickling (in the client)
# and unpickling (in the consumer) the 500-step chain goes deeper than
# Python's default recursion limit.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

_NORMAL = os.environ.get("BENCH_HUEY_SYNC") == "normal"
huey = SqliteHuey(
    "bench",
    filename=os.environ.get("BENCH_HUEY_DB", "huey-bench.db"),
    storage_class=NormalSyncStorage if _NORMAL else SqliteStorage,
)


@huey.task()
def noop(n):
    return True


@huey.task()
def next_value(value):
    return value + 1


@huey.task()
def produce(count):
    return list(range(count))


@huey.task()
def double(x):
    return x * 2


@huey.task()
def reduce_values(values):
    return sum(values)
