"""Recognise and parse what a source URL returns: a feed, a sitemap or an HTML page.

Pure functions over bytes, no Scrapy: ``sniff_kind``, ``parse_feed``, ``parse_sitemap``,
``discover_feeds``, ``looks_like_article``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin

import feedparser
from lxml import etree, html as lxml_html

from crawler.exceptions import FeedError
from crawler.spiders import feedxml

logger = logging.getLogger(__name__)

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json",
              "application/json", "application/rdf+xml", "application/xml", "text/xml")
USUAL_FEED_PATHS = ("/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml",
                    "/feeds/all.atom.xml", "/?feed=rss2")


@dataclass
class FeedEntry:
    """One item of a feed: where the article is, and what the feed says of it."""

    url: str
    guid: str | None = None
    title: str | None = None
    published: str | None = None  # ISO 8601
    summary: str | None = None
    authors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"url": self.url, "guid": self.guid, "title": self.title, "published": self.published,
                "summary": self.summary, "authors": list(self.authors)}


def _head(body: bytes, size: int = 2048) -> bytes:
    head = body[:size].lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    return head.lower()


def sniff_kind(body: bytes, content_type: str = "") -> str:
    """'feed', 'jsonfeed', 'sitemap', 'html' or 'other', from the first bytes and the type."""
    head = _head(body)
    content_type = content_type.lower()
    if head.startswith(b"{"):
        return "jsonfeed" if b"jsonfeed.org" in _head(body, 8192) else "other"
    if re.search(rb"<(rss|feed|rdf:rdf)[\s>]", head):
        return "feed"
    if re.search(rb"<(urlset|sitemapindex)[\s>]", head):
        return "sitemap"
    if b"<html" in head or b"<!doctype html" in head or "html" in content_type:
        return "html"
    if head.startswith(b"<?xml") or "xml" in content_type:
        return "feed"  # let feedparser decide, and fail clearly if it cannot
    return "other"


def _iso(struct_time) -> str | None:
    if not struct_time:
        return None
    try:
        return datetime(*struct_time[:6], tzinfo=timezone.utc).isoformat()
    except (TypeError, ValueError):
        return None


def feed_entries(body: bytes, url: str) -> list[dict]:
    """:func:`parse_feed`'s entries as plain dicts (what a worker process sends back)."""
    return [entry.as_dict() for entry in parse_feed(body, url)]


def parse_feed(body: bytes, url: str) -> list[FeedEntry]:
    """Entries of an RSS 0.9x/1.0/2.0, Atom or JSON Feed document; FeedError if it is none.

    Plain well-formed feeds take :mod:`feedxml`'s lxml fast path (same entries, a fraction
    of the CPU); anything it is not sure of goes through feedparser.
    """
    if sniff_kind(body) == "jsonfeed" or _head(body).startswith(b"{"):
        return _parse_json_feed(body, url)
    fast = fast_feed_entries(body, url)
    return fast if fast is not None else feedparser_entries(body, url)


def feedparser_entries(body: bytes, url: str) -> list[FeedEntry]:
    """:func:`parse_feed` by feedparser: any RSS/Atom, however broken; FeedError if none."""
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.entries:
        problem = parsed.get("bozo_exception")
        if parsed.bozo and problem is not None:
            raise FeedError(f"malformed feed at {url}: {problem}")
        if not parsed.get("version"):
            raise FeedError(f"not a feed at {url}: no RSS, Atom or JSON Feed root element")
        return []
    entries = [entry for entry in (
        _feed_entry(item, url, _iso(item.get("published_parsed") or item.get("updated_parsed")))
        for item in parsed.entries) if entry is not None]
    if not entries and parsed.bozo:
        raise FeedError(f"malformed feed at {url}: {parsed.get('bozo_exception')}")
    return entries


def fast_feed_entries(body: bytes, url: str) -> list[FeedEntry] | None:
    """:func:`parse_feed`'s entries by the lxml fast path, or None where feedparser must decide.

    None too when no entry has a link: then feedparser's verdict (``[]`` or FeedError) counts.
    """
    items = feedxml.parse_items(body)
    if items is None:
        return None
    entries = [entry for entry in (_feed_entry(item, url, item["published"]) for item in items)
               if entry is not None]
    return entries or None


def _feed_entry(item, url: str, published: str | None) -> FeedEntry | None:
    """A FeedEntry from a feedparser entry (or feedxml's look-alike); None if it has no link."""
    link = item.get("link") or ""
    if not link:
        for candidate in item.get("links", []):
            if candidate.get("href"):
                link = candidate["href"]
                break
    guid = item.get("id") or None
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    if not link:
        return None
    return FeedEntry(
        url=urljoin(url, link.strip()),
        guid=guid,
        title=item.get("title"),
        published=published,
        summary=item.get("summary"),
        authors=[a.get("name") for a in item.get("authors", []) if a.get("name")],
    )


def _parse_json_feed(body: bytes, url: str) -> list[FeedEntry]:
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedError(f"malformed JSON Feed at {url}: {exc}") from exc
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
            "https://jsonfeed.org/version/"):
        raise FeedError(f"not a JSON Feed at {url}: missing 'version' https://jsonfeed.org/version/…")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError(f"malformed JSON Feed at {url}: 'items' must be a list")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("external_url")
        if not link and str(item.get("id", "")).startswith(("http://", "https://")):
            link = item["id"]
        if not link:
            continue
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        entries.append(FeedEntry(
            url=urljoin(url, str(link)),
            guid=str(item["id"]) if item.get("id") is not None else None,
            title=item.get("title"),
            published=item.get("date_published") or item.get("date_modified"),
            summary=item.get("summary") or item.get("content_text"),
            authors=[a.get("name") for a in authors if isinstance(a, dict) and a.get("name")],
        ))
    return entries


def parse_sitemap(body: bytes, url: str) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index."""
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(recover=True, resolve_entities=False,
                                                              no_network=True, huge_tree=False))
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"malformed sitemap at {url}: {exc}") from exc
    if root is None:
        raise FeedError(f"malformed sitemap at {url}: empty document")
    pages, children = [], []
    for loc in root.iter("{*}loc"):
        if not loc.text:
            continue
        parent = etree.QName(loc.getparent()).localname
        (children if parent == "sitemap" else pages).append(urljoin(url, loc.text.strip()))
    return pages, children


def _parse_html(body: bytes, url: str):
    try:
        return lxml_html.document_fromstring(body, base_url=url)
    except (etree.ParserError, ValueError):
        return None


def discover_feeds(body: bytes, url: str) -> list[str]:
    """Feed URLs a page announces with <link rel="alternate">, comment feeds last."""
    doc = _parse_html(body, url)
    if doc is None:
        return []
    found, comments = [], []
    for link in doc.xpath('//link[@href and contains(concat(" ", translate(@rel, "ALTERNATE", '
                          '"alternate"), " "), " alternate ")]'):
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        if kind not in FEED_TYPES or kind in ("application/json", "text/xml", "application/xml") and \
                "feed" not in (link.get("href") or "").lower():
            continue
        href = urljoin(url, link.get("href").strip())
        title = (link.get("title") or "").lower()
        (comments if "comment" in title or "/comments/" in href else found).append(href)
    return list(dict.fromkeys(found))[:5] if found else list(dict.fromkeys(comments))[:1]


def usual_feed_urls(url: str) -> list[str]:
    return [urljoin(url, path) for path in USUAL_FEED_PATHS]


def looks_like_article(body: bytes, url: str) -> bool:
    """Cheap signals that a page is one article rather than a home/section page."""
    head = body[:200_000].lower()
    if re.search(rb'<meta[^>]+property=["\']og:type["\'][^>]+content=["\']article', head) or \
            re.search(rb'<meta[^>]+content=["\']article["\'][^>]+property=["\']og:type', head):
        return True
    if re.search(rb'property=["\']article:published_time', head):
        return True
    if re.search(rb'"@type"\s*:\s*"(news|blogposting|report|)article"', head) or \
            re.search(rb'"@type"\s*:\s*"(newsarticle|blogposting|reportagenewsarticle)"', head):
        return True
    return head.count(b"<article") == 1 and head.count(b"<p") >= 5
