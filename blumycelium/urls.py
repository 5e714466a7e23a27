"""Mycelium URLs, resolved without importing any store backend.

    sqlite:///relative/path.db     an SQLite file, relative to the directory
    sqlite:////absolute/path.db    the process was started in
    path/to/file.db                a plain path means SQLite too
    arango://user:pw@host:8529/db  ArangoDB

``BLUMYCELIUM_URL`` replaces the default ``./mycelium.db`` when set.
"""

from __future__ import annotations

import os

from .errors import StoreUnavailableError

DEFAULT_URL = "sqlite:///mycelium.db"
URL_VARIABLE = "BLUMYCELIUM_URL"


def default_url() -> str:
    """``BLUMYCELIUM_URL`` when set, else ``./mycelium.db``."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def sqlite_path(url: str) -> str | None:
    """The absolute file path of an SQLite URL or plain path; None otherwise."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise StoreUnavailableError(
                "%r is not an SQLite file URL; write sqlite:///relative.db or"
                " sqlite:////absolute/path.db (an in-memory database cannot be"
                " shared by worker processes)" % url
            )
        return os.path.abspath(rest[1:])
    if "://" in url:
        return None
    return os.path.abspath(os.path.expanduser(url))


def resolve_url(url) -> str:
    """A canonical URL: SQLite paths made absolute against the current directory."""
    url = default_url() if url is None else os.fspath(url)
    if not url:
        raise StoreUnavailableError("the mycelium URL is empty")
    path = sqlite_path(url)
    return "sqlite:///" + path if path is not None else url


def check_sqlite_directory(url: str) -> None:
    """Fail early, naming the path, when an SQLite file's directory is missing."""
    path = sqlite_path(url)
    if path is None:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise StoreUnavailableError(
            "cannot open the mycelium %s: the directory %s does not exist"
            % (path, directory)
        )
    if os.path.isdir(path):
        raise StoreUnavailableError(
            "cannot open the mycelium %s: it is a directory, not a file" % path
        )
