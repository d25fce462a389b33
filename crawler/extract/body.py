"""The article body: trafilatura's main extractor, completed and cleaned.

1. trafilatura (fast mode, precision focus, comments off) finds the main content; a
   short result is retried with its readability/jusText fallbacks.
2. Split articles (one body cut into several sibling containers by ad slots, as
   Condé Nast or many CMS themes do) lose everything after the first container;
   :func:`complete_split_body` adds the paragraphs of the sibling containers that look
   like the first one.
3. The result becomes a list of paragraphs, normalised (see :mod:`normalize`); short
   lines that are one link and no sentence (teasers for other pages) are set apart.
Boilerplate lines are dropped afterwards by :mod:`crawler.extract.boilerplate`.
"""

from __future__ import annotations

import logging
import re

import trafilatura
from trafilatura.settings import Extractor

from crawler.extract.normalize import normalize_text

logger = logging.getLogger(__name__)

LINK_LINE_MAX_CHARS = 150   # a shorter paragraph that is all link text is a teaser
LINK_MARK = "\x00link\x00"
RETRY_BELOW_CHARS = 500       # a shorter fast extraction is retried with the fallbacks
MIN_SPLIT_GAIN_CHARS = 400     # a split-body completion must add at least this much text
_SKIP_CONTAINER = ("comment", "related", "sidebar", "footer", "newsletter", "promo", "recirc",
                   "share", "social", "teaser", "most-popular", "trending", "author-bio", "caption")


_SENTENCE_END = frozenset(".!?…\"”»)")
_INNER_SENTENCE_END = re.compile(r"[a-z]{2}[.!?]['’\"”]?\s*[A-Z]")


def _text(element) -> str:
    """The normalised text of an element; a line break (<lb/>) counts as a space."""
    for lb in element.iter("lb"):
        lb.tail = " " + (lb.tail or "")
    return normalize_text("".join(element.itertext()))


def _is_link_line(element, text: str) -> bool:
    """A short line that is one link and no sentence: a teaser for another page."""
    if len(text) >= LINK_LINE_MAX_CHARS or text[-1] in _SENTENCE_END or _INNER_SENTENCE_END.search(text):
        return False
    return sum(len(_text(ref)) for ref in element.iter("ref")) >= 0.9 * len(text)


def _block_texts(element) -> list[str]:
    """Paragraph texts of one element of trafilatura's output body."""
    tag = element.tag
    if tag == "list":
        texts = []
        for item in element.iter("item"):
            text = _text(item)
            if text:
                texts.append(LINK_MARK + text if _is_link_line(item, text) else text)
        return texts
    if tag == "table":
        rows = []
        for row in element.iter("row"):
            cells = [_text(cell) for cell in row.iter("cell")]
            cells = [c for c in cells if c]
            if cells:
                rows.append(" | ".join(cells))
        return rows
    if tag == "graphic":
        return []
    text = _text(element)
    if text and tag in ("p", "head") and _is_link_line(element, text):
        return [LINK_MARK + text]
    return [text] if text else []


def _body_paragraphs(document) -> list[str]:
    if document is None or document.body is None:
        return []
    paragraphs: list[str] = []
    loose = normalize_text(document.body.text or "")
    if loose:
        paragraphs.append(loose)
    for child in document.body:
        paragraphs.extend(_block_texts(child))
        loose = normalize_text(child.tail or "")  # text between blocks is a paragraph of its own
        if loose:
            paragraphs.append(loose)
    return paragraphs


# trafilatura's options, built once per process: building them costs ~0.4 ms per page
# (trafilatura supports a shared Extractor; its recall retry works on a copy). No URL is
# given: trafilatura would only resolve every link's target with it (~0.8 ms per page),
# and only the links' text is read here (link-line detection).
_OPTIONS = dict(output_format="python", precision=True, comments=False, tables=True, links=True,
                with_metadata=False)
_FAST_OPTIONS = Extractor(fast=True, **_OPTIONS)
_FULL_OPTIONS = Extractor(fast=False, **_OPTIONS)


def trafilatura_paragraphs(tree, url: str) -> list[str]:
    """Main-content paragraphs as trafilatura sees them (fast, then with fallbacks if short)."""
    document = trafilatura.bare_extraction(tree, options=_FAST_OPTIONS)
    paragraphs = _body_paragraphs(document)
    if sum(len(p) for p in paragraphs) < RETRY_BELOW_CHARS:
        retried = _body_paragraphs(trafilatura.bare_extraction(tree, options=_FULL_OPTIONS))
        if sum(len(p) for p in retried) > sum(len(p) for p in paragraphs):
            paragraphs = retried
    return paragraphs


def _class_key(element) -> tuple[str, str]:
    return element.tag, " ".join(sorted((element.get("class") or "").split()))


def _skippable(element) -> bool:
    for el in element.iterancestors():
        if el.tag in ("aside", "footer", "nav", "header", "form"):
            return True
        marker = ((el.get("class") or "") + " " + (el.get("id") or "")).lower()
        if any(word in marker for word in _SKIP_CONTAINER):
            return True
    return False


def _link_density(element) -> float:
    text = len(normalize_text(element.text_content()))
    links = sum(len(normalize_text(a.text_content())) for a in element.iter("a"))
    return links / text if text else 1.0


def complete_split_body(tree, paragraphs: list[str]) -> list[str]:
    """Add the paragraphs of sibling containers when the body was split into several."""
    if not paragraphs:
        return paragraphs
    p_elements = [p for p in tree.iter("p")]
    # Cheap gate: when the extraction already holds most of the page's <p> text, no
    # container was left behind.
    extracted = sum(len(p) for p in paragraphs)
    if extracted >= 0.75 * sum(len(p.text_content()) for p in p_elements) - MIN_SPLIT_GAIN_CHARS:
        return paragraphs
    wanted = set(paragraphs)
    matched = []
    for p in p_elements:
        text = normalize_text(p.text_content())
        if text and text in wanted:
            matched.append(p)
    if len(matched) < 2:
        return paragraphs
    parents = {}
    for p in matched:
        parent = p.getparent()
        if parent is not None:
            parents[parent] = parents.get(parent, 0) + 1
    container = max(parents, key=parents.get)
    key = _class_key(container)
    if not key[1]:
        return paragraphs  # an unclassed <div> is too common to mean "same container"
    # Look for look-alike containers under the same ancestor, up to three levels up.
    scope = container
    for _ in range(3):
        if scope.getparent() is None:
            break
        scope = scope.getparent()
    matched_set = set(matched)
    additions: list[tuple[int, str]] = []
    for candidate in scope.iter(container.tag):
        if candidate is container or _class_key(candidate) != key:
            continue
        if any(p in matched_set for p in candidate.iter("p")) or _skippable(candidate):
            continue
        if _link_density(candidate) > 0.3:
            continue
        for p in candidate.iter("p"):
            text = normalize_text(p.text_content())
            if text and text not in wanted and _link_density(p) < 0.5:
                additions.append((p, text))
                wanted.add(text)
    if sum(len(t) for _, t in additions) < MIN_SPLIT_GAIN_CHARS:
        return paragraphs
    # Merge by document order: unmatched output paragraphs follow their predecessor.
    order = {el: index for index, el in enumerate(tree.iter("p"))}
    additions = [(order[p], text) for p, text in additions]
    positions, last = [], -1
    text_position = {normalize_text(p.text_content()): order[p] for p in matched}
    for text in paragraphs:
        last = text_position.get(text, last)
        positions.append((last, 0, text))
    merged = sorted(positions + [(index, 1, text) for index, text in additions], key=lambda x: (x[0], x[1]))
    logger.debug("split body completed with %d paragraphs", len(additions))
    return [text for _, _, text in merged]


def extract_paragraphs(tree, url: str) -> tuple[list[str], list[str]]:
    """(paragraphs, link-only lines dropped)."""
    paragraphs = trafilatura_paragraphs(tree, url)
    links = [p[len(LINK_MARK):] for p in paragraphs if p.startswith(LINK_MARK)]
    paragraphs = [p for p in paragraphs if not p.startswith(LINK_MARK)]
    return complete_split_body(tree, paragraphs), links
