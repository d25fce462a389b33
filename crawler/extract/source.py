"""``source_url``: where a repost or syndicated copy was first published.

Signals, strongest first: a rel=canonical (or og:url) on another domain; a link closing
the body whose text or label says where it comes from ("Source link", "Source:",
"Quelle:", "Fuente:", "Fonte:", "Источник:", "Originally published at/on", "Read the
original"). Links in navigation, headers, footers and sidebars are ignored. Original
articles get None.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from lxml import etree

from crawler.extract.metadata import registered_domain
from crawler.extract.normalize import normalize_text

_LINK_TEXT = re.compile(
    r"^(source( link)?|lien source|lien d'origine|quelle|fuente|fonte|fonti|источник|original( article| story| post)?|"
    r"read (the )?(original|full) (article|story)( here)?|view (the )?original( article)?|originalartikel|"
    r"article original|artículo original|read more at .{1,40})\s*[:.»>]?$", re.I)
# First four letters of every _LINK_TEXT alternative: a cheap filter before the regex.
_LINK_TEXT_STARTS = frozenset({"sour", "lien", "quel", "fuen", "font", "исто", "orig", "read", "view",
                               "arti", "artí"})
_LABEL = re.compile(
    r"^(source|sources|quelle|fuente|fonte|источник|via|originally published (at|on|in|by)|"
    r"this (article|story) (was |first |originally )*(appeared|published) (on|in|at)|"
    r"publi[ée] (initialement|à l'origine) (sur|par|dans)|zuerst erschienen (bei|auf|in)|"
    r"publicado originalmente (en|por))\s*:?", re.I)
_IGNORED_TAGS = frozenset({"nav", "header", "footer", "aside"})
_IGNORED_CLASSES = ("sidebar", "menu", "widget", "comment", "related")


def _ignored(element) -> bool:
    for el in element.iterancestors():
        if el.tag in _IGNORED_TAGS:
            return True
        marker = (el.get("class") or "").lower()
        if marker and any(word in marker for word in _IGNORED_CLASSES):
            return True
    return False


def same_publisher(a: str, b: str) -> bool:
    """Same registrable domain, or the same name under another TLD (site.com / site.de)."""
    da, db = registered_domain(a), registered_domain(b)
    return da == db or da.split(".")[0] == db.split(".")[0]


def source_from_canonical(canonical: str | None, url: str) -> str | None:
    if canonical and canonical.startswith("http") and url and not same_publisher(canonical, url):
        return canonical
    return None


def _label_start(block) -> bool:
    """Cheap test: does the block's own text (or first child's) start like a source label?"""
    head = (block.text or "").strip()
    if not head and len(block):
        head = (block[0].text or "").strip()
    return bool(head) and bool(_LABEL.match(normalize_text(head)))


def _stays_on_host(href: str, netloc: str) -> bool:
    """Whether ``urljoin(base, href)`` keeps the host of an http(s) base whose authority
    (urlsplit's netloc) is ``netloc``: a reference with neither scheme (a ":" before any
    "/") nor authority ("//"), or one whose authority is ``netloc`` itself under http(s);
    and none of the characters urlsplit removes (tabs, line breaks) or strips (leading
    controls) that could make another."""
    if not href:
        return True  # the base itself
    if href[0] <= " " or "\t" in href or "\n" in href or "\r" in href:
        return False
    if href[0] == "/":
        if href[1:2] != "/":
            return True
        start = 2
    else:
        colon = href.find(":")
        if colon < 0 or 0 <= href.find("/") < colon:
            return True
        if href.startswith("https://"):
            start = 8
        elif href.startswith("http://"):
            start = 7
        else:
            return False
    end = len(href)
    for delimiter in "/?#":
        found = href.find(delimiter, start)
        if 0 <= found < end:
            end = found
    return href[start:end] == netloc


def _base_netloc(url: str) -> str | None:
    """The authority of an http(s) page URL as urljoin reads it (None for other URLs)."""
    if not url.startswith(("http://", "https://")):
        return None
    try:
        return urlsplit(url).netloc
    except ValueError:
        return None


def _may_cite(href: str | None, netloc: str | None) -> bool:
    """Whether a link with this href can be a source link at all. A link into the page's
    own site never is (same_publisher below): the site's own links (most links of a page)
    are skipped before their text is read."""
    if not href or href.lstrip().startswith(("#", "javascript:", "mailto:")):
        return False
    return netloc is None or not _stays_on_host(href.strip(), netloc)


# The hrefs of tree.iter("a"), as plain strings: no element objects made for them.
_HREFS = etree.XPath("descendant-or-self::a/@href", smart_strings=False)


def source_from_links(tree, url: str) -> tuple[str | None, str | None]:
    """(source URL, the text of the block that carried it) from a closing source link."""
    found = (None, None)
    netloc = _base_netloc(url)
    candidates = {href for href in _HREFS(tree) if _may_cite(href, netloc)}
    if not candidates:
        return found  # the common case: only on-site links and anchors
    for link in tree.iter("a"):
        href = link.get("href")
        if href not in candidates:
            continue
        raw_text = link.text_content()
        if len(raw_text) > 80:
            continue  # a sentence-long link is body text, not a source credit
        block = link.getparent()
        while block is not None and block.tag in ("strong", "em", "b", "i", "span", "small", "a"):
            block = block.getparent()
        if raw_text.lstrip()[:4].lower() in _LINK_TEXT_STARTS and _LINK_TEXT.match(normalize_text(raw_text)):
            block_text = normalize_text(raw_text)
        elif block is None or len(block) > 12 or not _label_start(block):
            continue  # a big container is not a one-line source credit
        else:
            block_text = normalize_text(block.text_content())
            if len(block_text) >= 200 or not _LABEL.match(block_text):
                continue
        target = urljoin(url, href.strip())
        if not target.startswith("http") or same_publisher(target, url):
            continue
        if not _ignored(link):
            found = (target, block_text)  # the last one wins: it closes the body
    return found
