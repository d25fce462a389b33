"""Is this page an article? Home, section, tag, search and error pages are not.

Two checks: :func:`check_article_page` before extraction (error titles, CMS body
classes, listing URLs, a page that is a list of teasers), :func:`check_article_text`
after it (too little text, or text that is mostly one-line headlines). Both raise
:class:`~crawler.exceptions.NotAnArticle` with the reason.
"""

from __future__ import annotations

import re
from itertools import islice
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from crawler.exceptions import NotAnArticle
from crawler.extract.metadata import ld_articles, ld_types, meta_content
from crawler.extract.normalize import normalize_text

MIN_WORDS = 30
_WORD = re.compile(r"[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

_ERROR_TITLE = re.compile(
    r"(\b404\b|page not found|not found|page (does not|doesn't) exist|no longer available|"
    r"page introuvable|page non trouv[ée]e|n'existe pas|erreur 404|seite nicht gefunden|"
    r"nicht gefunden|p[áa]gina no encontrada|no se encontr[óo]|pagina non trovata|"
    r"p[áa]gina n[ãa]o encontrada|страница не найдена|ошибка 404|server error|access denied)", re.I)
_LISTING_BODY_CLASSES = {"home", "archive", "category", "tag", "search", "search-results", "error404",
                         "blog", "author", "date", "page-template-homepage", "tax", "taxonomy",
                         "front", "page-node-type-section", "path-frontpage", "section-front"}
_LISTING_PATH = re.compile(
    r"/(tags?|category|categories|categorie|rubrique|rubriques|themen?|thema|section|sections|topics?|"
    r"author|authors|autor|auteur|search|recherche|suche|buscar|busqueda|archives?|page)(/[^/]+)?(/page/\d+)?/?$",
    re.I)
_SEARCH_PARAMS = {"s", "q", "query", "search", "keyword", "keywords", "text"}
_LISTING_OG_TYPES = {"website", "profile", "blog"}
# Compiled once: tree.xpath(str) compiles its expression on every call (~10-20 us each).
_FIRST_H1_TEXT = etree.XPath("string(//h1)")
_TEASER_LINKS = etree.XPath("//h2//a | //h3//a | //article//a[@rel='bookmark']")
_ARTICLES = etree.XPath("//article")


def article_signals(tree, objects) -> bool:
    """Whether the page declares itself an article (og:type, JSON-LD, article meta)."""
    og_type = (meta_content(tree, "og:type") or "").lower()
    return (og_type == "article" or bool(ld_articles(objects))
            or meta_content(tree, "article:published_time") is not None)


def check_article_page(tree, url: str, title: str | None, objects: list[dict]) -> None:
    """Raise NotAnArticle for pages whose structure says they are not articles."""
    h1 = _FIRST_H1_TEXT(tree)
    for text in (title or "", normalize_text(h1)):
        if text and len(text) < 120 and _ERROR_TITLE.search(text):
            raise NotAnArticle(f"error page ({text!r}) at {url}")
    article = article_signals(tree, objects)
    body = tree.find(".//body")
    classes = set((body.get("class") or "").lower().split()) if body is not None else set()
    listing_class = classes & _LISTING_BODY_CLASSES
    if listing_class and not ({"single", "single-post", "postid"} & classes) and not (
            "blog" in listing_class and article):
        raise NotAnArticle(f"listing page (body class {sorted(listing_class)[0]!r}) at {url}")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if _SEARCH_PARAMS & set(query) and not article:
        raise NotAnArticle(f"search page at {url}")
    path = parts.path or "/"
    if path in ("", "/") or re.fullmatch(r"/(index\.\w+|home|accueil|startseite|inicio)?/?", path, re.I):
        if not article or (meta_content(tree, "og:type") or "").lower() in _LISTING_OG_TYPES:
            raise NotAnArticle(f"home page at {url}")
    if _LISTING_PATH.search(path) and not article:
        raise NotAnArticle(f"listing page (URL) at {url}")
    if not article and any(ld_types(o) & {"collectionpage", "searchresultspage", "itemlist"} for o in objects):
        raise NotAnArticle(f"listing page (JSON-LD) at {url}")


def listing_signals(tree) -> tuple[int, int]:
    """(headline links, <article> elements): how much the page looks like a list of teasers."""
    teaser_links = sum(1 for a in _TEASER_LINKS(tree) if len(normalize_text(a.text_content())) > 20)
    return teaser_links, len(_ARTICLES(tree))


def check_article_text(url: str, paragraphs: list[str], is_article: bool, listing: tuple[int, int]) -> None:
    """Raise NotAnArticle when what was extracted is no article body.

    ``is_article``: the page declares itself an article; ``listing``: :func:`listing_signals`.
    """
    text = " ".join(paragraphs)
    # Words, counting two CJK characters as one (those scripts do not separate words);
    # counting stops at MIN_WORDS: an article body has many more.
    words = sum(1 for _ in islice(_WORD.finditer(text), MIN_WORDS))
    if words < MIN_WORDS:
        words += len(_CJK.findall(text)) // 2
    if words < MIN_WORDS:
        raise NotAnArticle(f"no article body ({words} words) at {url}")
    if is_article:
        return
    # A list of teasers: many short lines, most of them headline links.
    long_paragraphs = sum(1 for p in paragraphs if len(p) > 150)
    teaser_links, articles = listing
    if teaser_links >= 8 and long_paragraphs < 3:
        raise NotAnArticle(f"list of {teaser_links} headlines at {url}")
    if articles >= 6 and long_paragraphs < 3:
        raise NotAnArticle(f"list of teasers at {url}")
