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
- an entry not read for 30 days is removed when another is written, and so
  is a temporary file a writer left behind;
- what the file holds is compiled and run at submit time, like a
  ``__pycache__`` file: the directory must be the user's own.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from .diagnostics import SourceSpan, register_sites
from .rewrite import RewrittenFlow
from .source import FlowSource

logger = logging.getLogger(__name__)

FORMAT = 2
_COMPILER = Path(__file__).resolve().parent


def _compiler_fingerprint(directory: Path = _COMPILER) -> str | None:
    """What the compiler's output depends on besides the flow: the text of
    its modules (as imported with this one, so that a process started before
    an upgrade keeps its own keys) and libcst's version; None, and no cache,
    when its files cannot be read."""
    digest = hashlib.sha256(libcst_version().encode())
    try:
        for path in sorted(directory.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def libcst_version() -> str:
    try:
        return importlib.metadata.version("libcst")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_FINGERPRINT = _compiler_fingerprint()


def cache_directory() -> Path | None:
    """Where rewritten flows are kept; None when the cache is turned off."""
    if _FINGERPRINT is None:
        return None
    configured = os.environ.get("BLUMYCELIUM_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative: ignored, as XDG says
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "blumycelium" / "flows"


def cache_key(source: FlowSource) -> str:
    """The hash of everything a rewrite of ``source`` depends on."""
    digest = hashlib.sha256()
    for part in (
        "format %d" % FORMAT,
        sys.version,
        _FINGERPRINT,
        source.file,
        "%d %d" % (source.first_line, source.indent),
        source.text,
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def load(key: str) -> RewrittenFlow | None:
    """The cached rewrite under ``key``, its sites registered; None when
    there is none, or it cannot be used."""
    directory = cache_directory()
    if directory is None:
        return None
    path = directory / (key + ".json")
    try:
        document = json.loads(path.read_text(encoding="ascii"))
        rewritten = _from_document(key, document)
    except FileNotFoundError:
        return None
    except Exception as error:  # whatever is wrong with it, it is not used
        logger.debug("ignoring the cached flow %s: %r", path, error)
        return None
    if not register_sites(rewritten.first_site, list(rewritten.spans)):
        return None  # another flow holds the block: rewrite into a fresh one
    try:
        os.utime(path)  # used now: see prune
    except OSError:
        pass
    return rewritten


def store(key: str, rewritten: RewrittenFlow) -> None:
    """Keep ``rewritten`` under ``key``; a failure to write is only logged."""
    directory = cache_directory()
    if directory is None:
        return
    text = json.dumps(_document(key, rewritten))  # ASCII: surrogates escaped
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
        prune(directory)
    except OSError as error:
        logger.debug("cannot cache the flow in %s: %s", directory, error)


# Entries not read for this long are removed when another is written (each
# edit of a flow leaves its former rewrite behind); so are temporary files of
# writers that died before renaming them.
UNUSED_SECONDS = 30 * 24 * 3600
ABANDONED_SECONDS = 3600


def prune(directory: Path, now: float | None = None) -> None:
    """Remove the entries of ``directory`` unused for UNUSED_SECONDS and the
    temporary files older than ABANDONED_SECONDS."""
    now = time.time() if now is None else now
    for path in directory.iterdir():
        limit = {".json": UNUSED_SECONDS, ".tmp": ABANDONED_SECONDS}.get(path.suffix)
        try:
            if limit is not None and now - path.stat().st_mtime > limit:
                path.unlink()
        except OSError:
            pass  # removed by another process meanwhile, or not ours to remove


def _document(key: str, rewritten: RewrittenFlow) -> dict:
    content = {
        "code": rewritten.code,
        "line_map": sorted(rewritten.line_map.items()),
        "first_site": rewritten.first_site,
        "spans": [
            [s.file, s.line, s.column, s.end_line, s.end_column, s.flow]
            for s in rewritten.spans
        ],
    }
    return {"format": FORMAT, "digest": _digest(key, content), **content}


def _digest(key: str, content: dict) -> str:
    """A hash of the content under its key: a file changed by anything but
    this module (a damaged disk, an edit, a copy under another key) is not
    used."""
    text = json.dumps([key, content], sort_keys=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _from_document(key: str, document: dict) -> RewrittenFlow:
    content = {
        name: document[name] for name in ("code", "line_map", "first_site", "spans")
    }
    if document["format"] != FORMAT or document["digest"] != _digest(key, content):
        raise ValueError("written by another version, or changed since")
    line_map = {int(line): int(original) for line, original in content["line_map"]}
    spans = tuple(SourceSpan(*fields) for fields in content["spans"])
    return RewrittenFlow(content["code"], line_map, content["first_site"], spans)
