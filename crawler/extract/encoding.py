"""Bytes -> str for HTML pages: BOM, then UTF-8, then <meta charset>/http-equiv, then the HTTP hint.

Each candidate must decode the page strictly; the first that does wins. Strict UTF-8 is
tried before any declared single-byte encoding because real text in windows-1251 or
ISO-8859-1 is never valid UTF-8, while servers and templates often mislabel UTF-8 pages. Labels are
mapped as browsers do (ISO-8859-1, latin1 and ASCII mean windows-1252). When no
declared encoding fits, UTF-8 is tried, then a statistical guess, then UTF-8 with
replacement characters, so a page always decodes.
"""

from __future__ import annotations

import codecs
import logging
import re

logger = logging.getLogger(__name__)

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I)

# What browsers really use for these labels (WHATWG Encoding Standard).
_ALIASES = {"iso-8859-1": "windows-1252", "iso8859-1": "windows-1252", "latin1": "windows-1252",
            "latin-1": "windows-1252", "l1": "windows-1252", "us-ascii": "windows-1252",
            "ascii": "windows-1252", "iso-8859-9": "windows-1254", "tis-620": "windows-874",
            "x-cp1251": "windows-1251", "win-1251": "windows-1251", "cp1251": "windows-1251",
            "gb2312": "gb18030", "gbk": "gb18030", "utf8": "utf-8", "unicode": "utf-8"}


def _lookup(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_encoding(data: bytes) -> str | None:
    """The encoding a page declares in its first 4 KB (meta charset, http-equiv, XML)."""
    head = data[:4096]
    match = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return _lookup(match.group(1).decode("ascii", "ignore")) if match else None


def decode_html(data: bytes | str, encoding: str | None = None) -> str:
    """Decode a page; ``encoding`` is the HTTP header's charset, if any."""
    return decode_html_utf8(data, encoding)[0]


def decode_html_utf8(data: bytes | str, encoding: str | None = None) -> tuple[str, bytes | None]:
    """:func:`decode_html`, and the text's UTF-8 bytes when the page itself is UTF-8
    (then they need not be encoded again for the parser), else None."""
    if isinstance(data, str):
        return data, None
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(name, "replace"), None
    try:
        return data.decode("utf-8"), data  # strict: the bytes are exactly the text's UTF-8
    except UnicodeDecodeError:
        pass
    candidates = [declared_encoding(data), _lookup(encoding)]
    seen = {"utf-8"}
    for name in candidates:
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            return data.decode(name), None
        except (UnicodeDecodeError, LookupError):
            continue
    guessed = _guess(data)
    if guessed:
        try:
            return data.decode(guessed), None
        except (UnicodeDecodeError, LookupError):
            pass
    logger.debug("no encoding decodes the page cleanly; using UTF-8 with replacements")
    return data.decode("utf-8", "replace"), None


def _guess(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover
        return None
    best = from_bytes(data[:65536]).best()
    return _lookup(best.encoding) if best else None
