"""Recognising and parsing what a source URL returns (no network)."""

import json

import pytest

from crawler.exceptions import FeedError
from crawler.spiders import parsing

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>One</title><link>https://a.example/1?utm_source=rss</link><guid>g1</guid>
<pubDate>Tue, 12 Sep 2023 06:35:12 GMT</pubDate></item>
<item><title>No link</title><guid isPermaLink="true">https://a.example/2</guid></item>
<item><title>Nothing</title></item></channel></rss>"""

RSS1 = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://a.example/"><title>T</title></channel>
<item rdf:about="https://a.example/r1"><title>R1</title><link>https://a.example/r1</link></item></rdf:RDF>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
<entry><id>tag:a.example,2024:1</id><title>A1</title><link rel="alternate" href="/atom/1"/>
<published>2024-05-01T10:00:00+02:00</published><author><name>Jane Roe</name></author></entry></feed>"""


def test_rss2_entries_links_guids_and_dates():
    entries = parsing.parse_feed(RSS, "https://a.example/feed")
    assert [e.url for e in entries] == ["https://a.example/1?utm_source=rss", "https://a.example/2"]
    assert entries[0].guid == "g1" and entries[0].published == "2023-09-12T06:35:12+00:00"


def test_rss1_and_atom_with_relative_links():
    assert [e.url for e in parsing.parse_feed(RSS1, "https://a.example/rdf")] == ["https://a.example/r1"]
    entry = parsing.parse_feed(ATOM, "https://a.example/feed.atom")[0]
    assert entry.url == "https://a.example/atom/1" and entry.authors == ["Jane Roe"]
    assert entry.published == "2024-05-01T08:00:00+00:00"


def test_json_feed():
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [
        {"id": "1", "url": "https://a.example/j1", "title": "J1", "date_published": "2024-01-01T00:00:00Z"},
        {"id": "2", "content_text": "no url"}]}).encode()
    assert parsing.sniff_kind(body) == "jsonfeed"
    entries = parsing.parse_feed(body, "https://a.example/feed.json")
    assert [(e.url, e.guid) for e in entries] == [("https://a.example/j1", "1")]


@pytest.mark.parametrize("body", [b"<rss><channel><item><title>x</ti", b'{"version": "https://jsonfeed.org/version/1", ',
                                  b'{"version": "https://jsonfeed.org/version/1", "items": 3}'])
def test_malformed_feeds_raise_feed_error_naming_the_url(body):
    with pytest.raises(FeedError, match="https://a.example/bad"):
        parsing.parse_feed(body, "https://a.example/bad")


def test_sniff_kind():
    assert parsing.sniff_kind(b"\xef\xbb\xbf  <?xml version='1.0'?><rss>") == "feed"
    assert parsing.sniff_kind(b'<?xml version="1.0"?><urlset xmlns="x"><url>') == "sitemap"
    assert parsing.sniff_kind(b"<!DOCTYPE html><html>") == "html"
    assert parsing.sniff_kind(b"%PDF-1.4", "application/pdf") == "other"


def test_sitemap_pages_and_children():
    body = b"""<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>"""
    assert parsing.parse_sitemap(body, "https://a.example/sitemap.xml") == ([], ["https://a.example/s1.xml"])
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://a.example/p</loc>
    </url></urlset>"""
    assert parsing.parse_sitemap(body, "https://a.example/s1.xml") == (["https://a.example/p"], [])


def test_discover_feeds_prefers_article_feeds_over_comment_feeds():
    page = b"""<html><head>
    <link rel="alternate" type="application/rss+xml" title="Site &raquo; Flux des commentaires" href="/comments/feed/">
    <link rel="alternate" type="application/rss+xml" title="Site &raquo; Flux" href="/feed/">
    <link rel="Alternate" type="application/atom+xml" href="https://a.example/atom.xml">
    <link rel="alternate" hreflang="fr" href="/fr/"></head><body></body></html>"""
    assert parsing.discover_feeds(page, "https://a.example/") == ["https://a.example/feed/", "https://a.example/atom.xml"]


def test_looks_like_article():
    assert parsing.looks_like_article(b'<meta property="og:type" content="article">', "u")
    assert not parsing.looks_like_article(b"<html><body><ul><li>a</li></ul></body></html>", "u")
