"""The mycelium's stores: the interface (``base``) and its backends.

:func:`open_store` picks the backend from a URL (see ``blumycelium.urls``):
an SQLite file, or an ArangoDB database (``arango://``, which needs the
``arango`` extra: python-arango). The store package never imports the
compiler.
"""

from __future__ import annotations

from ..errors import StoreUnavailableError
from ..urls import parse_arango_url, redact_url, sqlite_path
from .base import StoreBackend


def open_store(url: str) -> StoreBackend:
    """The backend for ``url`` (opened lazily: nothing touches disk or
    network yet)."""
    path = sqlite_path(url)
    if path is not None:
        from .sqlite import SQLiteBackend

        return SQLiteBackend(path)
    location = parse_arango_url(url)
    if location is not None:
        from .arango_connection import require_driver

        require_driver()
        from .arango import ArangoBackend

        return ArangoBackend.from_url(location)
    scheme = url.split("://", 1)[0]
    raise StoreUnavailableError(
        "unknown mycelium URL scheme %r in %r; expected sqlite:///path.db or"
        " arango://user@host:8529/name" % (scheme, redact_url(url))
    )
