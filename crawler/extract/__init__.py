"""HTML -> clean article.

Stable entry point: :func:`extract_article`. (Placeholder; the extraction helper owns this package.)
"""

from __future__ import annotations

import trafilatura

from crawler.exceptions import NotAnArticle

ARTICLE_FIELDS = ("url", "canonical_url", "title", "text", "published", "modified", "authors",
                  "language", "page_language", "site_name", "source_url")


def extract_article(html: bytes | str, url: str, *, template=None) -> dict:
    """Return the article fields of a page, or raise NotAnArticle."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True)
    if doc is None or not doc.text:
        raise NotAnArticle(f"no article body found at {url}")
    return {
        "url": url,
        "canonical_url": doc.url or url,
        "title": doc.title,
        "text": "\n\n".join(p for p in doc.text.split("\n") if p.strip()),
        "published": doc.date,
        "modified": None,
        "authors": [a.strip() for a in (doc.author or "").split(";") if a.strip()],
        "language": doc.language,
        "page_language": None,
        "site_name": doc.sitename,
        "source_url": None,
    }
