"""HTML -> clean article.

Stable entry point: :func:`extract_article` (module level, picklable, no side effects:
the pipeline runs it in worker processes). Stages, one module each:

- :mod:`.encoding`     bytes -> str (BOM, UTF-8, meta charset, HTTP hint)
- :mod:`.document`     str -> lxml tree (trafilatura's loader, repairs only where needed)
- :mod:`.body`         main-content paragraphs (trafilatura, completed for split bodies)
- :mod:`.boilerplate`  generic furniture lines; :mod:`.templates` the per-site learned ones
- :mod:`.normalize`    spaces, invisible characters, NFC, quotation marks
- :mod:`.metadata`     title, site name, canonical URL, page language, authors
- :mod:`.dates`        published / modified
- :mod:`.source`       original publisher of reposts
- :mod:`.language`     the body's language (py3langid, its model cached decompressed)
- :mod:`.pagetype`     home/section/tag/search/error pages -> NotAnArticle
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from lxml import etree

from crawler.exceptions import ExtractionError, NotAnArticle
from crawler.extract.body import extract_paragraphs
from crawler.extract.boilerplate import remove_boilerplate
from crawler.extract.dates import extract_dates
from crawler.extract.document import parse_html
from crawler.extract.encoding import decode_html_utf8
from crawler.extract.language import detect_language
from crawler.extract.metadata import (
    extract_authors,
    extract_canonical,
    extract_page_language,
    extract_site_name,
    extract_title,
    forget_page,
    json_ld_objects,
)
from crawler.extract.normalize import normalize_quotes, normalize_text
from crawler.extract.pagetype import article_signals, check_article_page, check_article_text, listing_signals
from crawler.extract.source import source_from_canonical, source_from_links
from crawler.extract.templates import SiteTemplate, learn_from_page, load_template, save_template

logger = logging.getLogger(__name__)

# Elements trafilatura's cleaning removes in our configuration (settings.MANUALLY_CLEANED,
# less <form>, <figure>, <picture>, <time> and <math>, which it treats case by case).
PRE_STRIPPED_TAGS = ("script", "style", "noscript", "template", "svg", "aside", "footer", "nav",
                     "menu", "iframe", "embed", "object", "applet", "audio", "video", "canvas", "map",
                     "button", "select", "textarea", "datalist", "dialog", "frame", "frameset",
                     "noindex", "link", "fencedframe")

ARTICLE_FIELDS = ("url", "canonical_url", "title", "text", "published", "modified", "authors",
                  "language", "page_language", "site_name", "source_url")

__all__ = ["ARTICLE_FIELDS", "SiteTemplate", "detect_language", "extract_article", "learn_from_page",
           "load_template", "save_template"]


def extract_article(html: bytes | str, url: str, *, template: SiteTemplate | None = None,
                    encoding: str | None = None) -> dict:
    """The article fields of a page, or :class:`NotAnArticle`.

    ``encoding`` is the charset of the HTTP response, used when the page itself does
    not say (or says wrongly). ``template`` is the site's learned boilerplate.
    """
    try:
        return _extract_article(html, url, template, encoding)
    finally:
        forget_page()


def _extract_article(html: bytes | str, url: str, template: SiteTemplate | None,
                     encoding: str | None) -> dict:
    text_html, utf8 = decode_html_utf8(html, encoding)
    if not text_html.strip():
        raise NotAnArticle(f"empty page at {url}")
    tree = parse_html(text_html, utf8)
    if tree is None:
        raise NotAnArticle(f"not an HTML page at {url}")
    host = (urlsplit(url).hostname or "").lower()

    objects = json_ld_objects(tree)
    site_name = extract_site_name(tree, objects)
    title = extract_title(tree, objects, site_name, host)
    check_article_page(tree, url, title, objects)

    canonical = extract_canonical(tree, url)
    canonical_source = source_from_canonical(canonical, url)
    if canonical_source:
        canonical = url  # the copy keeps its own identity; the original is source_url
    link_source, link_block = source_from_links(tree, url)
    # An editorial "Source:" link names the original; a cross-domain canonical may only
    # name the site's main host (a mirror of a copy), so the link wins when both exist.
    source_url = link_source or canonical_source
    published, modified = extract_dates(tree, objects, url)
    authors = extract_authors(tree, objects, site_name, host)
    page_language = extract_page_language(tree)
    listing = listing_signals(tree)

    # Metadata is read: drop what the body extractor would discard anyway (scripts,
    # navigation, sidebars, footers, embeds), which spares it copying and scanning them.
    etree.strip_elements(tree, *PRE_STRIPPED_TAGS, with_tail=False)
    try:
        paragraphs, link_lines = extract_paragraphs(tree, url)
    except (ValueError, TypeError, AttributeError, etree.LxmlError) as exc:  # a malformed tree
        raise ExtractionError(f"body extraction failed at {url}: {exc}") from exc
    paragraphs, removed = remove_boilerplate(paragraphs)
    removed = link_lines + removed
    if link_block:
        block = normalize_text(link_block)
        if block in paragraphs and paragraphs.index(block) >= len(paragraphs) - 3:
            paragraphs.remove(block)
            removed.append(block)
    if template is not None and template.active:
        kept = []
        for paragraph in paragraphs:
            (removed if template.is_boilerplate(paragraph) else kept).append(paragraph)
        paragraphs = kept
    if title and paragraphs and normalize_text(paragraphs[0]) == title:
        removed.append(paragraphs.pop(0))  # the headline repeated as the first line

    body = "\n\n".join(paragraphs)
    language = detect_language(body)
    paragraphs = [normalize_quotes(p, language) for p in paragraphs]
    body = "\n\n".join(paragraphs)
    check_article_text(url, paragraphs, article_signals(tree, objects), listing)

    return {
        "url": url,
        "canonical_url": canonical or url,
        "title": normalize_quotes(title, language) if title else title,
        "text": body,
        "published": published,
        "modified": modified,
        "authors": authors,
        "language": language,
        "page_language": page_language,
        "site_name": site_name,
        "source_url": source_url,
        "paragraphs": paragraphs,
        "boilerplate_removed": removed,
    }
