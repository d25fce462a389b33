"""parse_html: the tree trafilatura's load_html makes, without its repairs where none applies."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from lxml import etree
from trafilatura.utils import load_html

from crawler.extract.document import _needs_repair, parse_html
from crawler.extract.encoding import decode_html_utf8

DATA = Path(__file__).parent / "data"


def _pages():
    for path in sorted(DATA.rglob("*.html")):
        yield path.relative_to(DATA).as_posix(), path.read_bytes()
    for path in sorted((DATA / "aeb-dev" / "html").glob("*.html.gz")):
        yield path.name, gzip.decompress(path.read_bytes())


PAGES = list(_pages())


def _same_tree(text: str, utf8: bytes | None = None) -> None:
    expected = load_html(text)
    got = parse_html(text, utf8)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert etree.tostring(got, encoding="unicode") == etree.tostring(expected, encoding="unicode")


def test_the_data_set_is_there():
    assert len(PAGES) >= 80


@pytest.mark.parametrize("name,data", PAGES, ids=[name for name, _ in PAGES])
def test_every_test_page_parses_as_load_html_does(name, data):
    text, utf8 = decode_html_utf8(data)
    if utf8 is not None:
        assert utf8 == text.encode("utf-8")
        _same_tree(text, utf8)  # the page's own bytes, as the extractor passes them
    _same_tree(text)


ARTICLE = "<html><head><title>T</title></head><body><p>One paragraph of text.</p><p>Two.</p></body></html>"


@pytest.mark.parametrize("text", [
    ARTICLE.replace("One", "One\x00\x08\x0b\x1f"),                       # controls XML forbids
    ARTICLE.replace("Two", "Two\ufffe and \uffff"),                      # non-characters
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/'
    'xhtml1-strict.dtd">\n' + ARTICLE,                                   # the libxml2 doctype bug
    '<html lang="en"/>\n<head><title>T</title></head><body><p>Body.</p></body>',  # <html/>
    "<!doctype html>\n" + ARTICLE,                                       # a doctype that is fine
    "<p>a fragment</p>",                                                 # not a document
    "<div><p>a</p></div><div><p>b</p></div>",                            # not a document either
    ARTICLE.replace("Two", "caf\u00e9 \u4e2d\u6587 \U0001f600"),         # beyond Latin-1 and the BMP
    ARTICLE.replace("Two", "\ud800 lone surrogate"),                     # not encodable
    "   ",
])
def test_repaired_and_odd_inputs_give_load_html_s_tree(text):
    _same_tree(text)


def test_utf8_bytes_are_handed_on_only_for_pages_sent_in_utf8():
    text = "<p>Zürich – «Grüezi»</p>"
    assert decode_html_utf8(text.encode("utf-8")) == (text, text.encode("utf-8"))
    assert decode_html_utf8(text.encode("windows-1252"))[1] is None
    assert decode_html_utf8(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, None)  # a BOM
    assert decode_html_utf8(text) == (text, None)


def test_the_repairs_are_recognised():
    assert not _needs_repair(ARTICLE, ARTICLE.encode())
    for text in (ARTICLE.replace("One", "\x07"), ARTICLE.replace("One", "\uffff"),
                 '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "x/y.dtd">\n' + ARTICLE,
                 '<html/>\n<body><p>x</p></body>'):
        assert _needs_repair(text, text.encode("utf-8", "surrogatepass"))
    # tabs, line breaks and carriage returns are allowed
    text = ARTICLE.replace("One", "One\tand\r\nmore")
    assert not _needs_repair(text, text.encode())
