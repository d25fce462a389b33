"""str -> lxml tree: trafilatura's loader, its repairs paid only by the pages that need them.

``trafilatura.utils.load_html`` runs three repairs over every page before parsing it: a
regex pass that deletes the characters XML forbids (controls, U+FFFE, U+FFFF), a fix of
XHTML doctypes on the first line (libxml2 bug 1955915) and a fix of a self-closing
``<html/>``. The regex pass alone costs as much as half the parse (~0.4 ms per 50 KB
page, ~1.5 ms on real pages), and almost no page has such a character.

:func:`parse_html` looks for what the repairs would change first, with byte searches
that cost a fraction of the regex, and parses the page's UTF-8 bytes directly when there
is nothing to repair. Otherwise it hands the page to trafilatura's loader. Either way
the tree is the one ``load_html`` makes (tested on every page of ``tests/data``).
"""

from __future__ import annotations

from lxml.html import fromstring
from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, HTML_PARSER, load_html

# Bytes that only INVALID_XML_CHARS' control characters encode to in UTF-8 (they never
# occur inside a multi-byte sequence).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


def _needs_repair(text: str, data: bytes) -> bool:
    """Whether trafilatura's ``repair_faulty_html`` would change ``text`` (``data``: its
    UTF-8 bytes)."""
    if len(data.translate(None, _CONTROL_BYTES)) != len(data):
        return True
    # On the str: a search for a character above the text's widest returns at once.
    if "\ufffe" in text or "\uffff" in text:
        return True
    beginning = text[:50].lower()
    if "doctype" in beginning:
        first_line_end = text.find("\n")
        if DOCTYPE_TAG.match(text, 0, first_line_end if first_line_end >= 0 else len(text)):
            return True
    for line in text[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>") and FAULTY_HTML.search(text):
            return True
    return False


def parse_html(text: str, utf8: bytes | None = None):
    """The lxml tree of a decoded page, or None for what is not HTML (as ``load_html``).
    ``utf8``: the text's UTF-8 bytes, when the caller has them (a page sent in UTF-8)."""
    if utf8 is not None:
        data = utf8
    else:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: trafilatura's loader knows what to do
            return load_html(text)
    if _needs_repair(text, data):
        return load_html(text)
    try:
        tree = fromstring(data, parser=HTML_PARSER)
    except Exception:  # noqa: BLE001 - as load_html: any parser failure is "not HTML"
        return load_html(text)
    if tree is None or len(tree) < 1:
        return load_html(text)
    if "html" not in text[:50].lower() and len(tree) < 2:
        return None  # load_html's rejection of a fragment that is not an HTML document
    return tree
