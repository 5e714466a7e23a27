"""How the ArangoDB mycelium talks to its server: handles, queries, stream
transactions, retries, and errors turned into ours.

Every call to the server goes through :meth:`ArangoAccess._query` (one AQL
statement, a transaction of its own) or :meth:`ArangoAccess._transaction`
(a stream transaction: begun with the collections it writes and reads
declared, then statements and bulk inserts carrying its id, then committed;
aborted when anything fails). Both retry a write-write conflict (error 1200,
or HTTP 412 when a revision precondition fails) with "full jitter": a random
pause up to a bound that doubles from ``RetryPolicy.first_delay`` to
``RetryPolicy.max_delay``, ``RetryPolicy.attempts`` times at most. A whole
transaction is run again, never half of one.

Whatever python-arango or the HTTP layer raises is converted here into
``blumycelium.errors`` (chained with ``from``, the server's message kept):

    1202 document not found                  NotFoundError
    1228 database, 1203 collection missing   StoreUnavailableError
    HTTP 401/403, error 11 (not allowed)     StoreUnavailableError
    connection refused, timeouts             StoreUnavailableError
    1200 / HTTP 412 after every retry        StoreError
    1210 unique constraint, anything else    StoreError

Handles are made per process (a forked worker opens its own HTTP sessions)
when the store built the client from a URL; a client passed in by the user
is used as it is, so build one per process.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field

from ..errors import (
    MissingDependencyError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from ..urls import PASSWORD_VARIABLE

logger = logging.getLogger(__name__)

CONFLICT = 1200
DOCUMENT_NOT_FOUND = 1202
COLLECTION_NOT_FOUND = 1203
DUPLICATE_NAME = 1207
UNIQUE_CONSTRAINT = 1210
DATABASE_NOT_FOUND = 1228
GRAPH_DUPLICATE = 1925
FORBIDDEN = 11
LOCK_TIMEOUT = 18
PRECONDITION_FAILED = 412

INSTALL_HINT = 'pip install "blumycelium[arango]"'


def require_driver():
    """The python-arango package; MissingDependencyError naming the extra."""
    try:
        import arango
    except ImportError as error:
        raise MissingDependencyError(
            "the ArangoDB mycelium needs python-arango, which is not installed:"
            " %s" % INSTALL_HINT
        ) from error
    return arango


def _driver_errors() -> tuple:
    from arango.exceptions import ArangoError
    from requests.exceptions import RequestException

    return (ArangoError, RequestException, ConnectionError)


@dataclass(frozen=True)
class ArangoConnection:
    """A python-arango ``ArangoClient`` and the credentials to use with it.

    ``password`` None reads ``BLUMYCELIUM_ARANGO_PASSWORD`` (else no
    password), so that it need not be written in code.
    """

    client: object
    username: str = "root"
    password: str | None = field(default=None, repr=False)

    def resolved_password(self) -> str:
        if self.password is not None:
            return self.password
        return os.environ.get(PASSWORD_VARIABLE, "")


@dataclass(frozen=True)
class RetryPolicy:
    """How write-write conflicts are retried: ``attempts`` in all, pauses
    drawn uniformly below a bound doubling from ``first_delay`` up to
    ``max_delay`` seconds."""

    attempts: int = 12
    first_delay: float = 0.005
    max_delay: float = 0.5

    def pause(self, failures: int, rng: random.Random) -> float:
        bound = min(self.max_delay, self.first_delay * 2 ** (failures - 1))
        return rng.uniform(0, bound)


def is_conflict(error) -> bool:
    code = getattr(error, "error_code", None)
    return code in (CONFLICT, LOCK_TIMEOUT) or (
        getattr(error, "http_code", None) == PRECONDITION_FAILED
    )


def server_code(error) -> int | None:
    return getattr(error, "error_code", None)


def to_store_error(error, action: str, where: str, tries: int = 1) -> StoreError:
    """Our exception for a python-arango (or HTTP) ``error`` raised while
    doing ``action`` on the mycelium ``where``; the caller chains it."""
    text = "cannot %s in the mycelium %s: %s" % (action, where, error)
    code = server_code(error)
    if getattr(error, "source", None) is None:  # no answer from any server
        return StoreUnavailableError(
            "cannot reach ArangoDB to %s (mycelium %s): %s" % (action, where, error)
        )
    if code == DOCUMENT_NOT_FOUND:
        return NotFoundError(text)
    if code == DATABASE_NOT_FOUND:
        return StoreUnavailableError(
            text + " (the database does not exist: init(init_db=True) creates it)"
        )
    if code == COLLECTION_NOT_FOUND:
        return StoreUnavailableError(text + " (init() creates the collections)")
    if code == FORBIDDEN or getattr(error, "http_code", None) in (401, 403):
        return StoreUnavailableError(
            text + " (check the user name and %s)" % PASSWORD_VARIABLE
        )
    if is_conflict(error):
        return StoreError("%s (gave up after %d write-write conflicts)" % (text, tries))
    if code == UNIQUE_CONSTRAINT:
        return StoreError(text + " (a document with that key already exists)")
    return StoreError(text)


class ArangoAccess:
    """Handles on one database, its queries and transactions."""

    def __init__(
        self,
        connection: ArangoConnection,
        database: str,
        url: str,
        create_database: bool = True,
        make_client=None,
        retry: RetryPolicy | None = None,
    ):
        self.connection = connection
        self.database = database
        self.url = url
        self.create_database = create_database
        self.retry = retry or RetryPolicy()
        self._make_client = make_client
        self._sleep = time.sleep
        self._random = random.Random()
        self._handles: tuple | None = None  # (pid, client, database handle)
        self._ready = False
        self._errors = _driver_errors()

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self.url)

    # -- handles --------------------------------------------------------------

    def _client(self):
        pid = os.getpid()
        if self._handles is None or self._handles[0] != pid:
            client = self.connection.client
            if self._make_client is not None:
                client = self._make_client()
            database = client.db(
                self.database,
                username=self.connection.username,
                password=self.connection.resolved_password(),
            )
            self._handles = (pid, client, database)
        return self._handles[1]

    @property
    def _db(self):
        """The database handle, its schema checked once per process."""
        self._client()
        if not self._ready:
            self.init(self.create_database)
        return self._handles[2]

    def _system_db(self):
        return self._client().db(
            "_system",
            username=self.connection.username,
            password=self.connection.resolved_password(),
        )

    def close(self) -> None:
        handles, self._handles = self._handles, None
        self._ready = False
        if handles and self._make_client is not None and handles[0] == os.getpid():
            handles[1].close()

    # -- calls ----------------------------------------------------------------

    def _call(self, action: str, call, retry_unique: bool = False):
        """``call()``, conflicts retried, driver errors converted."""
        failures = 0
        while True:
            try:
                return call()
            except self._errors as error:
                failures += 1
                retried = is_conflict(error) or (
                    retry_unique and server_code(error) == UNIQUE_CONSTRAINT
                )
                if not retried or failures >= self.retry.attempts:
                    raise to_store_error(error, action, self.url, failures) from error
                pause = self.retry.pause(failures, self._random)
                logger.debug(
                    "%s in %s: %s; again in %.3fs", action, self.url, error, pause
                )
                self._sleep(pause)

    def _query(self, action: str, text: str, **bind) -> list:
        """The rows of one AQL statement, a transaction of its own,
        retried on conflicts."""
        handle = self._db
        return self._call(action, lambda: statement(handle, text, **bind))

    def _transaction(
        self,
        action: str,
        body,
        write=(),
        read=(),
        retry_unique: bool = False,
    ):
        """``body(trx)`` inside one stream transaction, committed when it
        returns; the whole transaction is retried on conflicts."""
        handle = self._db

        def attempt():
            trx = handle.begin_transaction(read=list(read), write=list(write))
            try:
                result = body(trx)
            except BaseException:
                _abort_quietly(trx)
                raise
            trx.commit_transaction()
            return result

        return self._call(action, attempt, retry_unique)

    def _insert(self, trx, collection: str, documents, overwrite: str | None = None):
        """Bulk insert in a transaction, in batches; the first per-document
        error raised (python-arango returns them as values)."""
        for batch in _batches(documents):
            answers = trx.collection(collection).insert_many(
                batch, overwrite_mode=overwrite
            )
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer


def statement(handle, text: str, **bind) -> list:
    """The rows of one AQL statement run by ``handle`` (a database, or a
    stream transaction)."""
    return list(handle.aql.execute(text, bind_vars=bind))


def _abort_quietly(trx) -> None:
    try:
        trx.abort_transaction()
    except Exception:  # the transaction may be gone already; it expires
        logger.debug("could not abort transaction", exc_info=True)


BATCH_DOCUMENTS = 10_000
BATCH_CHARACTERS = 32 * 1024 * 1024


def _batches(documents):
    """Slices of ``documents`` of bounded count and (estimated) size."""
    batch, size = [], 0
    for document in documents:
        weight = 256 + sum(len(v) for v in document.values() if isinstance(v, str))
        if batch and (
            len(batch) >= BATCH_DOCUMENTS or size + weight > BATCH_CHARACTERS
        ):
            yield batch
            batch, size = [], 0
        batch.append(document)
        size += weight
    if batch:
        yield batch
