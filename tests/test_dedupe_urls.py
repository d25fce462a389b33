"""canonicalize_url: one table of (link, canonical key) pairs, and pairs that must stay apart."""

import pytest

from crawler.dedupe.urls import canonicalize_url

CASES = [
    # scheme, host, port, fragment
    ("HTTP://Example.COM/a", "https://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://user:pw@example.com/a", "https://example.com/a"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com./a", "https://example.com/a"),
    # www / m. / mobile. / amp. hosts
    ("https://www.example.com/a", "https://example.com/a"),
    ("https://m.example.com/a", "https://example.com/a"),
    ("https://mobile.example.com/a", "https://example.com/a"),
    ("https://amp.example.co.uk/a", "https://example.co.uk/a"),
    ("https://news.example.com/a", "https://news.example.com/a"),
    ("https://m.co/a", "https://m.co/a"),
    # AMP paths and parameters
    ("https://example.com/news/story/amp/", "https://example.com/news/story"),
    ("https://example.com/amp/news/story", "https://example.com/news/story"),
    ("https://example.com/news/story.amp.html", "https://example.com/news/story.html"),
    ("https://example.com/news/story?amp=1", "https://example.com/news/story"),
    ("https://example.com/news/story?amp", "https://example.com/news/story"),
    ("https://example.com/news/story?outputType=amp", "https://example.com/news/story"),
    ("https://example.com/news/story?output=pdf", "https://example.com/news/story?output=pdf"),
    # tracking parameters
    ("https://example.com/a?utm_source=x&utm_medium=y&utm_campaign=z", "https://example.com/a"),
    ("https://example.com/a?fbclid=IwAR0&gclid=abc&yclid=1&igshid=2", "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&_ga=3&ref=rss&ref_src=twsrc", "https://example.com/a"),
    ("https://example.com/a?id=123&utm_source=feed", "https://example.com/a?id=123"),
    ("https://example.com/?p=42&fbclid=x", "https://example.com/?p=42"),
    # session ids
    ("https://example.com/a;jsessionid=0A1B2C?id=7", "https://example.com/a?id=7"),
    ("https://example.com/a?PHPSESSID=abc&id=7", "https://example.com/a?id=7"),
    ("https://example.com/a?sid=abc&sessionid=x&id=7", "https://example.com/a?id=7"),
    # trailing slashes, repeated slashes, encoding, order
    ("https://example.com/a/", "https://example.com/a"),
    ("https://example.com//a//b/", "https://example.com/a/b"),
    ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
    ("https://example.com/café", "https://example.com/caf%C3%A9"),
    ("https://example.com/a%7Eb", "https://example.com/a~b"),
    ("https://example.com/a?b=2&a=1&a=0", "https://example.com/a?a=0&a=1&b=2"),
    ("https://example.com/search?q=a+b", "https://example.com/search?q=a%20b"),
    ("https://example.com/a?empty=", "https://example.com/a?empty="),
    # not web URLs: returned as they are
    ("mailto:desk@example.com", "mailto:desk@example.com"),
    ("  not a url  ", "not a url"),
    ("https://[::1/a", "https://[::1/a"),
]


@pytest.mark.parametrize("url, expected", CASES)
def test_canonicalize_url(url, expected):
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize("url, _", CASES)
def test_canonicalize_url_is_idempotent(url, _):
    once = canonicalize_url(url)
    assert canonicalize_url(once) == once


def test_variants_of_one_article_compare_equal():
    variants = [
        "https://www.example.com/world/2023/09/12/putin-kim/",
        "http://example.com/world/2023/09/12/putin-kim?utm_source=twitter&utm_medium=social",
        "https://m.example.com/world/2023/09/12/putin-kim/amp/#top",
        "https://EXAMPLE.com:443/world/2023/09/12/putin-kim;jsessionid=F00?fbclid=abc",
        "https://amp.example.com/world/2023/09/12/putin-kim?outputType=amp",
    ]
    assert len({canonicalize_url(v) for v in variants}) == 1


def test_meaningful_differences_stay_apart():
    pairs = [
        ("https://example.com/article?id=1", "https://example.com/article?id=2"),
        ("https://example.com/?p=41", "https://example.com/?p=42"),
        ("https://example.com/a", "https://news.example.com/a"),
        ("https://example.com/a", "https://example.org/a"),
        ("https://example.com:8080/a", "https://example.com/a"),
        ("https://example.com/Story", "https://example.com/story"),
    ]
    for a, b in pairs:
        assert canonicalize_url(a) != canonicalize_url(b), (a, b)
