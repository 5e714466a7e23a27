"""Mycelium URLs, resolved without importing any store backend.

    sqlite:///relative/path.db     an SQLite file, relative to the directory
    sqlite:////absolute/path.db    the process was started in
    path/to/file.db                a plain path means SQLite too
    arango://user:pw@host:8529/db  ArangoDB over HTTP, database ``db``
    arango://user@h1:8529,h2/db    several coordinators, used round robin
    arangos://user@host/db         ArangoDB over HTTPS (or ``?tls=1``)

``BLUMYCELIUM_URL`` replaces the default ``./mycelium.db`` when set. An
ArangoDB password is better kept out of the URL, in
``BLUMYCELIUM_ARANGO_PASSWORD``; it is read when the URL has none. User name
and password are percent-decoded (write ``%40`` for ``@``); the user is
``root`` when the URL names none, and a port left out is 8529. Errors about
a URL show it with its password replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from .errors import StoreUnavailableError

DEFAULT_URL = "sqlite:///mycelium.db"
URL_VARIABLE = "BLUMYCELIUM_URL"
PASSWORD_VARIABLE = "BLUMYCELIUM_ARANGO_PASSWORD"
DEFAULT_ARANGO_PORT = 8529

# scheme -> whether it speaks HTTPS
_ARANGO_SCHEMES = {"arango": False, "arangodb": False, "arangos": True}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$")


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


@dataclass(frozen=True)
class ArangoURL:
    """An ArangoDB mycelium URL, parsed: base URLs of the coordinators,
    database, user and password (never shown: see :meth:`public`)."""

    hosts: tuple[str, ...]
    database: str
    username: str = "root"
    password: str = field(default="", repr=False)
    tls: bool = False

    def public(self) -> str:
        """The URL without its password: safe to print, and it opens the same
        store where ``BLUMYCELIUM_ARANGO_PASSWORD`` holds the password."""
        netloc = ",".join(host.split("://", 1)[1] for host in self.hosts)
        return "%s://%s@%s/%s" % (
            "arangos" if self.tls else "arango",
            quote(self.username, safe=""),
            netloc,
            quote(self.database, safe=""),
        )

    def with_database(self, database: str) -> ArangoURL:
        return replace(self, database=database)


def parse_arango_url(url: str) -> ArangoURL | None:
    """The parts of an ``arango://`` URL; None for any other scheme."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in _ARANGO_SCHEMES:
        return None
    tls = _ARANGO_SCHEMES[scheme.lower()]
    userinfo, at, rest = rest.rpartition("@")
    location, _, query = rest.partition("?")
    netloc, slash, database = location.partition("/")
    tls = _tls_option(url, query, tls)
    if not slash or not database or "/" in database:
        raise _bad_url(url, "name one database after the hosts: .../name")
    username, has_password, password = userinfo.partition(":")
    if not has_password:
        password = os.environ.get(PASSWORD_VARIABLE, "")
    hosts = tuple(_base_url(url, host, tls) for host in netloc.split(","))
    return ArangoURL(
        hosts,
        unquote(database),
        unquote(username) if at and username else "root",
        unquote(password),
        tls,
    )


def redact_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***``."""
    scheme, separator, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if not separator or not at or ":" not in userinfo:
        return url
    return "%s://%s:***@%s" % (scheme, userinfo.split(":", 1)[0], location)


def _tls_option(url: str, query: str, tls: bool) -> bool:
    for option in filter(None, query.split("&")):
        name, _, value = option.partition("=")
        if name != "tls":
            raise _bad_url(url, "unknown option %r (the one option is tls=1)" % name)
        if value.lower() not in _TRUE + _FALSE:
            raise _bad_url(url, "tls=%s is neither 1 nor 0" % value)
        tls = value.lower() in _TRUE
    return tls


def _base_url(url: str, host: str, tls: bool) -> str:
    match = _HOST.match(host)
    if match is None:
        raise _bad_url(url, "%r is not host or host:port" % host)
    port = int(match.group(2) or DEFAULT_ARANGO_PORT)
    if not 0 < port < 65536:
        raise _bad_url(url, "port %d is out of range" % port)
    return "%s://%s:%d" % ("https" if tls else "http", match.group(1), port)


def _bad_url(url: str, problem: str) -> StoreUnavailableError:
    return StoreUnavailableError(
        "%r is not an ArangoDB mycelium URL: %s (expected"
        " arango://user:password@host:8529/name)" % (redact_url(url), problem)
    )
