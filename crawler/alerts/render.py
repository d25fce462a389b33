"""Turning alerts into text for people: snippets, escaping, one renderer per format.

Everything scraped (title, snippet, source name, URL) is untrusted. Each output
format has its own escaping, applied here and nowhere else:

- ``sanitize_terminal(text)``: control characters, ANSI CSI/OSC/DCS escape
  sequences and bidi overrides removed, before text reaches a terminal or a log;
- ``escape_html(text)``: for the HTML part of e-mails;
- ``escape_markdown(text)``: for chat targets (Apprise, Markdown body).

A snippet is ~300 characters around the first matched term; matched terms are
highlighted ``[term]`` in plain text, ``**term**`` in Markdown, ``<mark>`` in HTML.
Renderers take a *delivery*: any object with ``id``, ``kind``, ``subscription`` and
``items`` (the alert payloads), see :class:`crawler.alerts.notifiers.base.Delivery`.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from urllib.parse import urlsplit

SNIPPET_CHARS = 300
MAX_ITEMS = 50  # stories written out in one digest/batch message; the rest are counted

_TERMINAL_ESCAPES = re.compile(
    r"""
      \x1b\[[0-?]*[\x20-/]*[@-~]?             # CSI: ESC [ params intermediates final
    | \x9b[0-?]*[\x20-/]*[@-~]?               # 8-bit CSI
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC ... BEL or ST (hyperlinks, titles)
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # 8-bit OSC
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?  # DCS, SOS, PM, APC strings
    | [\x90\x98\x9e\x9f][^\x1b\x9c]*(?:\x1b\\|\x9c)?  # their 8-bit forms
    | \x1b[\x20-/]*[0-~]?                     # any other escape (charset, keypad, RIS...)
    | [\x00-\x08\x0b-\x1f\x7f-\x9f]           # remaining C0/C1 controls (not \t \n)
    | [\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]   # bidi overrides (Trojan Source)
    """,
    re.VERBOSE,
)
# Every sequence _TERMINAL_ESCAPES removes starts with one of these: text without any is clean.
_UNSAFE_CHAR = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"\s+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&])")


def sanitize_terminal(text: object, single_line: bool = False) -> str:
    """``text`` without control characters or terminal escape sequences.

    With ``single_line`` newlines and tabs become spaces too (for log lines, so a
    scraped string cannot forge extra log records).
    """
    if text is None:
        return ""
    cleaned = str(text)
    if _UNSAFE_CHAR.search(cleaned):
        cleaned = _TERMINAL_ESCAPES.sub("", cleaned)
    if single_line:
        cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    return cleaned


def clean_line(text: object, limit: int | None = None) -> str:
    """One line of untrusted text: sanitized, whitespace collapsed, optionally cut."""
    line = sanitize_terminal(text, single_line=True)
    if limit and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def escape_html(text: object) -> str:
    return html.escape(sanitize_terminal(text), quote=True)


def escape_markdown(text: object) -> str:
    """Backslash-escape every character that means something in (CommonMark) Markdown inline text.

    Line-start syntax (``#``, ``-``, ``1.``) is not escaped: callers pass single lines
    that never start a Markdown line.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", sanitize_terminal(text))


def safe_url(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL fit for a link, else None (no javascript:)."""
    if not url:
        return None
    url = clean_line(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Characters that would end an autolink or an attribute are percent-encoded.
    return url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E").replace('"', "%22")


# -- snippets ---------------------------------------------------------------------------

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212\u00ad"


_ASCII_FOLD = str.maketrans({"-": " ", "_": " "})


@functools.lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch in _DASHES or ch == "_":
        return " "
    return "".join(part.casefold() for part in unicodedata.normalize("NFKD", ch)
                   if not unicodedata.combining(part))


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _fold_ascii(run: str) -> str:
    return run.lower().translate(_ASCII_FOLD)


def fold_text(text: str) -> tuple[str, list[int] | None]:
    """Case-, accent- and hyphen-folded ``text`` and, per folded char, its index in ``text``
    (None when the two line up one to one, as for ASCII text).

    ASCII runs are folded whole by str methods; only the other characters go one by one
    (an article in a Latin script is mostly ASCII).
    """
    if text.isascii():
        return _fold_ascii(text), None
    pieces = []
    one_to_one = True
    position = 0
    for found in _NON_ASCII.finditer(text):
        start = found.start()
        if start > position:
            pieces.append(_fold_ascii(text[position:start]))
        piece = _fold_char(found.group())
        one_to_one = one_to_one and len(piece) == 1
        pieces.append(piece)
        position = start + 1
    pieces.append(_fold_ascii(text[position:]))
    folded = "".join(pieces)
    if one_to_one:
        return folded, None
    index = [i for i, ch in enumerate(text) for _ in (_fold_char(ch) if not ch.isascii() else ch)]
    return folded, index


@functools.lru_cache(maxsize=4)
def _folded(text: str) -> tuple[str, list[int] | None]:
    """:func:`fold_text`, kept for the last few texts: one article's alerts (one per
    matched subscription and target) all look for their terms in the same text."""
    return fold_text(text)


@functools.lru_cache(maxsize=4)
def _sanitized(text: str) -> str:
    return sanitize_terminal(text)


@functools.lru_cache(maxsize=4096)
def _term_search(term: str) -> re.Pattern | None:
    """The folded term as a regex that ends on a word boundary. It has no leading
    look-behind, so the regex engine can jump to the term's first characters: the
    callers check that a match starts a word (:func:`_word_matches`). One compile per
    term and process."""
    term = term.strip()
    if ":" in term and not term.startswith('"'):
        term = term.split(":", 1)[1]  # title:foo, site:bar -> the word itself
    term = term.strip().strip('"').strip()
    prefix = term.endswith("*")
    term = term.rstrip("*").strip()
    folded, _ = fold_text(term)
    words = folded.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    tail = r"\w*" if prefix else ""
    return re.compile(body + tail + r"(?!\w)")


_WORD_CHAR = re.compile(r"\w")


def _word_matches(pattern: re.Pattern, folded: str, pos: int = 0):
    """Non-empty matches of ``pattern`` in ``folded`` from ``pos`` that start a word, left
    to right and not overlapping: what ``finditer`` of the pattern behind ``(?<!\w)``
    gives."""
    found = pattern.search(folded, pos)
    while found is not None:
        start, end = found.span()
        if end == start or (start and _WORD_CHAR.match(folded, start - 1)):
            found = pattern.search(folded, start + 1)
            continue
        yield found
        found = pattern.search(folded, end)


def find_terms(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) spans in ``text`` where any of ``terms`` occurs."""
    if not text or not terms:
        return []
    folded, index = _folded(text)
    spans: list[tuple[int, int]] = []
    for pattern in filter(None, map(_term_search, terms)):
        for m in _word_matches(pattern, folded):
            spans.append((index[m.start()], index[m.end() - 1] + 1) if index else (m.start(), m.end()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _first_occurrence(text: str, terms: list[str]) -> int:
    """Where the earliest of ``terms`` starts in ``text`` (0 if none does)."""
    if not text or not terms:
        return 0
    folded, index = _folded(text)
    first = len(folded)
    for pattern in filter(None, map(_term_search, terms)):
        found = next(_word_matches(pattern, folded), None)
        if found is not None and found.start() < first:
            first = found.start()
    if first == len(folded):
        return 0
    return index[first] if index else first


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> tuple[str, list[list[int]]]:
    """~``width`` characters of ``text`` around the first matched term, and the term spans in it.

    The snippet is one sanitized line; it starts and ends on word boundaries, with
    "…" where text was cut.
    """
    text = _sanitized(text or "")
    first = _first_occurrence(text, terms)
    start = max(0, first - width // 3)
    if start > 0:
        space = text.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start + width // 2, end)
        end = space if space != -1 else end
    snippet = clean_line(text[start:end])
    if start > 0:
        snippet = "…" + snippet
    if end < len(text):
        snippet += "…"
    return snippet, [list(s) for s in find_terms(snippet, terms)]


def _marked(snippet: str, spans, escape, before: str, after: str) -> str:
    out, pos = [], 0
    for start, end in spans or ():
        if start < pos or end > len(snippet):
            continue
        out.append(escape(snippet[pos:start]))
        out.append(before + escape(snippet[start:end]) + after)
        pos = end
    out.append(escape(snippet[pos:]))
    return "".join(out)


def mark_plain(snippet: str, spans) -> str:
    return _marked(snippet, spans, lambda s: s, "[", "]")


def mark_markdown(snippet: str, spans) -> str:
    return _marked(snippet, spans, escape_markdown, "**", "**")


def mark_html(snippet: str, spans) -> str:
    return _marked(snippet, spans, escape_html, "<mark>", "</mark>")


# -- messages ---------------------------------------------------------------------------

def _also_reported(item: dict) -> int:
    names = item.get("also_reported_by") or []
    size = item.get("story_size") or 1
    return max(int(size) - 1, len(names))


def _meta_line(item: dict) -> str:
    parts = [clean_line(item.get("source") or item.get("site_name") or "", 80)]
    if item.get("published"):
        parts.append(clean_line(item["published"], 40))
    others = _also_reported(item)
    if others:
        parts.append(f"also reported by {others} other source{'s' if others != 1 else ''}")
    return " · ".join(p for p in parts if p)


def render_subject(delivery) -> str:
    """A one-line subject/title for the delivery (sanitized, not escaped)."""
    name = clean_line(delivery.subscription, 80)
    items = delivery.items
    if delivery.kind == "digest":
        return f"[newswatch] {name}: digest, {len(items)} stor{'ies' if len(items) != 1 else 'y'}"
    if delivery.kind == "batch":
        return f"[newswatch] {name}: {len(items)} more matching stories"
    title = clean_line(items[0].get("title") or items[0].get("url") or "alert", 160) if items else "alert"
    return f"[newswatch] {name}: {title}"


def _shown(delivery) -> tuple[list[dict], int]:
    items = list(delivery.items)
    return items[:MAX_ITEMS], max(0, len(items) - MAX_ITEMS)


def _more(hidden: int) -> str:
    return f"… and {hidden} more stor{'ies' if hidden != 1 else 'y'}"


def render_text(delivery) -> str:
    lines = [render_subject(delivery), ""]
    items, hidden = _shown(delivery)
    for item in items:
        lines.append(clean_line(item.get("title") or "(no title)", 300))
        meta = _meta_line(item)
        if meta:
            lines.append(meta)
        if item.get("url"):
            lines.append(clean_line(item["url"], 2000))
        if item.get("snippet"):
            lines.append(mark_plain(item["snippet"], item.get("highlights")))
        if item.get("terms"):
            lines.append("Matched: " + ", ".join(clean_line(t, 80) for t in item["terms"]))
        lines.append("")
    if hidden:
        lines += [_more(hidden), ""]
    lines.append(f"Alert id: {delivery.id}")
    return "\n".join(lines)


def render_markdown(delivery) -> str:
    lines = []
    items, hidden = _shown(delivery)
    for item in items:
        title = escape_markdown(clean_line(item.get("title") or "(no title)", 300))
        url = safe_url(item.get("url"))
        lines.append(f"**[{title}](<{url}>)**" if url else f"**{title}**")
        meta = _meta_line(item)
        if meta:
            lines.append("_" + escape_markdown(meta) + "_")
        if item.get("snippet"):
            lines.append("> " + mark_markdown(item["snippet"], item.get("highlights")))
        lines.append("")
    if hidden:
        lines += [_more(hidden), ""]
    lines.append(f"Alert id: `{delivery.id}`")
    return "\n".join(lines)


def render_html(delivery) -> str:
    parts = [f"<h2>{escape_html(render_subject(delivery))}</h2>"]
    items, hidden = _shown(delivery)
    for item in items:
        title = escape_html(clean_line(item.get("title") or "(no title)", 300))
        url = safe_url(item.get("url"))
        heading = f'<a href="{escape_html(url)}">{title}</a>' if url else title
        parts.append(f"<h3>{heading}</h3>")
        meta = _meta_line(item)
        if meta:
            parts.append(f"<p><small>{escape_html(meta)}</small></p>")
        if item.get("snippet"):
            parts.append(f"<blockquote>{mark_html(item['snippet'], item.get('highlights'))}</blockquote>")
    if hidden:
        parts.append(f"<p>{_more(hidden)}</p>")
    parts.append(f"<p><small>Alert id: {escape_html(delivery.id)}</small></p>")
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"
