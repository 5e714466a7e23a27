"""The mycelium's stores: the interface (``base``) and its backends.

:func:`open_store` picks the backend from a URL (see ``blumycelium.urls``).
The store package never imports the compiler.
"""

from __future__ import annotations

from ..errors import StoreUnavailableError
from ..urls import sqlite_path
from .base import StoreBackend


def open_store(url: str) -> StoreBackend:
    """The backend for ``url`` (opened lazily: nothing touches disk yet)."""
    path = sqlite_path(url)
    if path is not None:
        from .sqlite import SQLiteBackend

        return SQLiteBackend(path)
    scheme = url.split("://", 1)[0]
    if scheme in ("arango", "arangodb"):
        # TODO: the ArangoDB backend (store/arango.py, issue 5) would serve these.
        raise StoreUnavailableError(
            "the ArangoDB mycelium (%s://...) is not available in this version;"
            " use an SQLite file (sqlite:///path.db)" % scheme
        )
    raise StoreUnavailableError(
        "unknown mycelium URL scheme %r in %r; expected sqlite:///path.db"
        % (scheme, url)
    )
