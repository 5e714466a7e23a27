"""Document keys of the ArangoDB mycelium.

ArangoDB accepts a ``_key`` of 1 to 254 bytes made of letters, digits and
``_ - : . @ ( ) + , = ; $ ! * ' %``. Keys made from names users choose (elf
uids, worker ids, run keys) are escaped so that any text gives a legal key
and two texts never give the same one:

- letters, digits and ``_ - . @ ( ) + , = ; $ * '`` stand for themselves;
- every other character is ``%`` and two upper-case hex digits per byte of
  its UTF-8 form, as in a URL (a lone surrogate is kept, byte for byte);
- ``:`` joins the parts of a composite key (it is always escaped in a part);
- the empty text is ``%`` alone, which no other text escapes to;
- a key longer than 254 bytes keeps its first 200 bytes, then ``!`` and 40
  hex digits of the SHA-256 of the whole escaped key. ``!`` appears in no
  escaped text, so a shortened key never equals an escaped one. Such a key
  cannot be read back: documents keep the name they were made from.

Keys the store makes itself are plain: a run key is the submission time in
microseconds, base 36 in eleven digits, then three random digits, so that
keys sort in submission order; a job is ``<run>-<index>``, and what hangs on
a job extends its key the same way. Run keys and program-order keys
(``base.order_key``) use only ``0-9a-z``, an alphabet in which ArangoDB's
string collation and byte order agree, so AQL sorts them as Python does.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from urllib.parse import unquote_to_bytes

MAX_KEY_BYTES = 254
_KEPT_BYTES = 200
_DIGEST_DIGITS = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-.@()+,=;$*']")
_LEGAL = re.compile(r"[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}")
_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_RUN_TIME_DIGITS = 11
_RUN_RANDOM_DIGITS = 3


def escape_key(name: str) -> str:
    """A legal key for ``name`` (unshortened; see :func:`document_key`)."""
    if not name:
        return "%"
    return _UNSAFE.sub(_percent_bytes, name)


def _percent_bytes(match: re.Match) -> str:
    data = match.group().encode("utf-8", "surrogatepass")
    return "".join("%%%02X" % byte for byte in data)


def unescape_key(key: str) -> str:
    """The name :func:`escape_key` made ``key`` from; ValueError for a key
    it cannot have made (a shortened key among them)."""
    if key == "%":
        return ""
    if _UNSAFE.search(_ESCAPE.sub("", key)):
        raise ValueError("%r is not an escaped name" % key)
    try:
        name = unquote_to_bytes(key).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ValueError("%r does not escape UTF-8 text" % key) from None
    if escape_key(name) != key:
        raise ValueError("%r is not how a name is escaped" % key)
    return name


def document_key(*parts: str) -> str:
    """The key of the names ``parts``: escaped, joined by ``:``, shortened
    with a digest past the length limit."""
    key = ":".join(escape_key(part) for part in parts)
    if len(key) <= MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(key.encode("ascii")).hexdigest()[:_DIGEST_DIGITS]
    kept = key[:_KEPT_BYTES]
    cut = kept.rfind("%", len(kept) - 2)
    if cut >= 0:  # never end on half an escape
        kept = kept[:cut]
    return kept + "!" + digest


def is_legal_key(key) -> bool:
    """Whether ArangoDB would accept ``key`` as a document key."""
    return isinstance(key, str) and _LEGAL.fullmatch(key) is not None


def job_key(run: str, index: int) -> str:
    return "%s-%d" % (run, index)


def run_of_job(key: str) -> str:
    """The run key a job key begins with."""
    return key.rsplit("-", 1)[0]


class RunKeys:
    """Run keys that sort in submission order, strictly within a process."""

    def __init__(self, clock=time.time_ns, rng: random.Random | None = None):
        self._clock = clock
        self._random = rng or random.SystemRandom()
        self._last = 0
        self._lock = threading.Lock()

    def new(self) -> str:
        with self._lock:
            micros = max(self._clock() // 1000, self._last + 1)
            self._last = micros
        suffix = "".join(
            self._random.choice(_DIGITS) for _ in range(_RUN_RANDOM_DIGITS)
        )
        return _base36(micros, _RUN_TIME_DIGITS) + suffix


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits)).rjust(width, "0")
