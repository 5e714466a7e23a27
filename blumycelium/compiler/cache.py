"""The on-disk cache of rewritten flows.

Parsing a flow with libcst and rewriting it costs about a millisecond per
line, paid by every process that imports the flow's module: the script that
submits, and each worker. A rewrite depends only on the flow's text, where
it sits (file, line, indent), the compiler's own code and the Python
version; its call sites are numbered from a block that a hash of those
picks (``diagnostics.site_block``). So the rewrite made by one process is
valid in any other, and is kept as one JSON file per key:

- where: ``$BLUMYCELIUM_CACHE_DIR`` (empty: no cache), else
  ``$XDG_CACHE_HOME/blumycelium/flows``, else ``~/.cache/blumycelium/flows``;
- written to a temporary file then renamed, so that a reader sees a whole
  file or none; a file that cannot be read or does not fit is ignored and
  written again; a cache directory that cannot be written to only costs the
  time the cache would have saved;
- what the file holds is compiled and run at submit time, like a
  ``__pycache__`` file: the directory must be the user's own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from .diagnostics import SourceSpan, register_sites
from .rewrite import RewrittenFlow
from .source import FlowSource

logger = logging.getLogger(__name__)

FORMAT = 1
_COMPILER = Path(__file__).resolve().parent
_FINGERPRINT: list[str] = []  # the compiler's own files, as (name, size, mtime)


def cache_directory() -> Path | None:
    """Where rewritten flows are kept; None when the cache is turned off."""
    configured = os.environ.get("BLUMYCELIUM_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "blumycelium" / "flows"


def cache_key(source: FlowSource) -> str:
    """The hash of everything a rewrite of ``source`` depends on."""
    digest = hashlib.sha256()
    for part in (
        "format %d" % FORMAT,
        sys.version,
        _compiler_fingerprint(),
        source.file,
        "%d %d" % (source.first_line, source.indent),
        source.text,
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _compiler_fingerprint() -> str:
    """The compiler's files by size and modification time: a changed
    compiler makes new keys (read once per process)."""
    if not _FINGERPRINT:
        entries = []
        for path in sorted(_COMPILER.glob("*.py")):
            status = path.stat()
            entries.append("%s %d %d" % (path.name, status.st_size, status.st_mtime_ns))
        _FINGERPRINT.append("\n".join(entries))
    return _FINGERPRINT[0]


def load(key: str) -> RewrittenFlow | None:
    """The cached rewrite under ``key``, its sites registered; None when
    there is none, or it cannot be used."""
    directory = cache_directory()
    if directory is None:
        return None
    path = directory / (key + ".json")
    try:
        document = json.loads(path.read_text(encoding="ascii"))
        rewritten = _from_document(document)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.debug("ignoring the cached flow %s: %s", path, error)
        return None
    if not register_sites(rewritten.first_site, list(rewritten.spans)):
        return None  # another flow holds the block: rewrite into a fresh one
    return rewritten


def store(key: str, rewritten: RewrittenFlow) -> None:
    """Keep ``rewritten`` under ``key``; a failure to write is only logged."""
    directory = cache_directory()
    if directory is None:
        return
    text = json.dumps(_document(rewritten))  # ASCII: lone surrogates escaped
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="ascii") as file:
                file.write(text)
            os.replace(temporary, directory / (key + ".json"))
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        logger.debug("cannot cache the flow in %s: %s", directory, error)


def _document(rewritten: RewrittenFlow) -> dict:
    return {
        "format": FORMAT,
        "code": rewritten.code,
        "line_map": sorted(rewritten.line_map.items()),
        "first_site": rewritten.first_site,
        "spans": [
            [s.file, s.line, s.column, s.end_line, s.end_column, s.flow]
            for s in rewritten.spans
        ],
    }


def _from_document(document: dict) -> RewrittenFlow:
    if document["format"] != FORMAT:
        raise ValueError("format %r, not %d" % (document["format"], FORMAT))
    line_map = {int(line): int(original) for line, original in document["line_map"]}
    spans = tuple(SourceSpan(*fields) for fields in document["spans"])
    if not isinstance(document["code"], str) or not isinstance(
        document["first_site"], int
    ):
        raise ValueError("code or first_site of the wrong type")
    return RewrittenFlow(document["code"], line_map, document["first_site"], spans)
