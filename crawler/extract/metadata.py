"""Article metadata from the page tree: title, site name, canonical URL, page language, authors.

Dates live in :mod:`crawler.extract.dates`, the original-source link in
:mod:`crawler.extract.source`. Every function takes the parsed lxml tree (read only).
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urljoin, urlsplit

from lxml import etree

from crawler.extract.normalize import normalize_text

logger = logging.getLogger(__name__)

ARTICLE_TYPES = frozenset({"article", "newsarticle", "blogposting", "reportagenewsarticle",
                           "analysisnewsarticle", "opinionnewsarticle", "reviewnewsarticle",
                           "backgroundnewsarticle", "scholarlyarticle", "techarticle", "report",
                           "liveblogposting", "socialmediaposting", "posting", "satiricalarticle",
                           "askpublicnewsarticle", "advertisercontentarticle"})


_META_CACHE: list = [None, {}]  # (tree, {name: [contents]}) of the page being extracted
# (tree, {tag: [elements]}) of the page being extracted: the head elements metadata reads,
# found by one walk of the page instead of one walk (or XPath search) each.
_ELEMENT_CACHE: list = [None, {}]
_PAGE_TAGS = ("meta", "script", "title", "h1", "link")


def page_elements(tree, tag: str) -> list:
    """The ``tag`` elements (one of _PAGE_TAGS) of the whole page ``tree`` is the root of,
    in document order: what ``tree.xpath("//tag")`` returns, or ``tree.iter(tag)``.
    Only for a document's root element (see _is_page_root); read-only use."""
    if _ELEMENT_CACHE[0] is not tree:
        found: dict[str, list] = {name: [] for name in _PAGE_TAGS}
        for el in tree.iter(*_PAGE_TAGS):
            found[el.tag].append(el)
        _ELEMENT_CACHE[0], _ELEMENT_CACHE[1] = tree, found
    return _ELEMENT_CACHE[1][tag]


def _is_page_root(tree) -> bool:
    """Whether ``tree`` is its document's root element: then the document-wide XPath
    ``//tag`` and ``tree.iter(tag)`` find the same elements (from a sub-element they
    would not)."""
    return _ELEMENT_CACHE[0] is tree or tree.getroottree().getroot() is tree


def _first_title(tree):
    """``tree.find(".//title")``."""
    if not _is_page_root(tree):
        return tree.find(".//title")
    for el in page_elements(tree, "title"):
        if el is not tree:  # ".//" searches below the element only
            return el
    return None


def _h1s(tree) -> list:
    """``tree.xpath("//h1")``."""
    return page_elements(tree, "h1") if _is_page_root(tree) else tree.xpath("//h1")


def meta_values(tree) -> dict[str, list[str]]:
    """Every <meta name|property|itemprop> of the page, in document order (built once per tree)."""
    if _META_CACHE[0] is tree:
        return _META_CACHE[1]
    values: dict[str, list[str]] = {}
    for el in (page_elements(tree, "meta") if _is_page_root(tree) else tree.iter("meta")):
        content = el.get("content")
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            name = el.get(attr)
            if name:
                values.setdefault(name, []).append(content)
        equiv = el.get("http-equiv")
        if equiv:
            values.setdefault("http-equiv:" + equiv.lower(), []).append(content)
    _META_CACHE[0], _META_CACHE[1] = tree, values
    return values


def forget_page() -> None:
    """Release the cached meta tags and elements of the last page (called when its
    extraction ends)."""
    _META_CACHE[0], _META_CACHE[1] = None, {}
    _ELEMENT_CACHE[0], _ELEMENT_CACHE[1] = None, {}


def meta_content(tree, *names: str) -> str | None:
    """The first non-empty <meta name|property|itemprop=...> content among ``names``."""
    values = meta_values(tree)
    for name in names:
        for content in values.get(name, ()):
            value = normalize_text(content)
            if value:
                return value
    return None


def json_ld_objects(tree) -> list[dict]:
    """Every JSON-LD object of the page, flattened (@graph and nested lists)."""
    objects: list[dict] = []

    def walk(node, depth=0):
        if depth > 6:
            return
        if isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif isinstance(node, dict):
            objects.append(node)
            for key in ("@graph", "mainEntity", "mainEntityOfPage"):
                if isinstance(node.get(key), (list, dict)):
                    walk(node[key], depth + 1)

    if _is_page_root(tree):
        scripts = [el for el in page_elements(tree, "script") if el.get("type") == "application/ld+json"]
    else:
        scripts = tree.xpath('//script[@type="application/ld+json"]')
    for script in scripts:
        raw = (script.text or "").strip()
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            try:  # a trailing comma or a stray control character is common
                data = json.loads(re.sub(r",\s*([}\]])", r"\1", raw).replace("\n", " "), strict=False)
            except ValueError:
                logger.debug("unparsable JSON-LD block skipped")
                continue
        walk(data)
    return objects


def ld_types(obj: dict) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def ld_articles(objects: list[dict]) -> list[dict]:
    return [o for o in objects if ld_types(o) & ARTICLE_TYPES]


def _ld_name(value) -> str | None:
    if isinstance(value, str):
        return normalize_text(value) or None
    if isinstance(value, dict):
        return _ld_name(value.get("name"))
    if isinstance(value, list) and value:
        return _ld_name(value[0])
    return None


# -- site name, title --------------------------------------------------------------------

def extract_site_name(tree, objects: list[dict]) -> str | None:
    name = meta_content(tree, "og:site_name", "application-name", "twitter:app:name:iphone")
    if name:
        return name
    for obj in ld_articles(objects):
        name = _ld_name(obj.get("publisher"))
        if name:
            return name
    for obj in objects:
        if ld_types(obj) & {"newsmediaorganization", "organization", "website"}:
            name = _ld_name(obj.get("name"))
            if name:
                return name
    # "<h1> – Site Name" in <title>: the suffix is the site's name.
    title_el = _first_title(tree)
    page_title = normalize_text(title_el.text_content()) if title_el is not None else ""
    headline = meta_content(tree, "og:title") or normalize_text(tree.xpath("string(//h1)"))
    if page_title and headline and len(headline) > 10 and page_title.startswith(headline):
        rest = page_title[len(headline):].strip()
        for sep in _TITLE_SEPARATORS:
            if rest.startswith(sep.strip() + " "):
                name = rest[len(sep.strip()):].strip()
                if 0 < len(name) <= 60:
                    return name
    return None


_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ", " « ", " / ", " ~ ")


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text).lower()


def strip_site_suffix(title: str, site_name: str | None, host: str) -> str:
    """Drop a trailing (or leading) " - Site Name" from a title."""
    host_key = _squash(host.removeprefix("www.").split(".")[0]) if host else ""
    site_key = _squash(site_name) if site_name else ""
    for sep in _TITLE_SEPARATORS:
        if sep not in title:
            continue
        head, _, tail = title.rpartition(sep)
        tail_key = _squash(tail)
        if tail_key and head.strip() and (tail_key in (site_key, host_key)
                                          or (site_key and (tail_key in site_key or site_key in tail_key))
                                          or (host_key and len(tail_key) > 3 and tail_key in host_key)):
            return head.strip()
        head, _, tail = title.partition(sep)
        head_key = _squash(head)
        if head_key and tail.strip() and head_key in (site_key, host_key):
            return tail.strip()
    return title


def extract_title(tree, objects: list[dict], site_name: str | None, host: str) -> str | None:
    h1s = [normalize_text(h.text_content()) for h in _h1s(tree)]
    h1s = [h for h in h1s if h]
    candidates = [meta_content(tree, "og:title", "twitter:title")]
    candidates += [_ld_name(o.get("headline")) for o in ld_articles(objects)]
    title_el = _first_title(tree)
    page_title = normalize_text(title_el.text_content()) if title_el is not None else None
    # A <title> that is the h1 plus a suffix: the h1 is the headline.
    if page_title:
        for h1 in h1s:
            if len(h1) > 10 and page_title.startswith(h1):
                candidates.append(h1)
    candidates += [page_title] + h1s[:1]
    for candidate in candidates:
        if candidate:
            return strip_site_suffix(candidate, site_name, host)
    return None


# -- URLs, language ----------------------------------------------------------------------

def extract_canonical(tree, url: str) -> str | None:
    if _is_page_root(tree):
        hrefs = [el.get("href") for el in page_elements(tree, "link") if el.get("rel") == "canonical"]
        hrefs = [href for href in hrefs if href is not None]
    else:
        hrefs = tree.xpath('//link[@rel="canonical"]/@href')
    for href in hrefs:
        href = href.strip()
        if href and not href.startswith(("javascript:", "#")):
            return urljoin(url, href)
    og_url = meta_content(tree, "og:url")
    return urljoin(url, og_url) if og_url else None


def registered_domain(url: str) -> str:
    """A cheap registrable domain: the last two labels (three under a 2-letter ccSLD)."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "net", "ac",
                                                                     "gov", "edu", "ne", "or"}:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def extract_page_language(tree) -> str | None:
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates.append(meta_content(tree, "og:locale", "http-equiv:content-language"))
    candidates.append(meta_content(tree, "language", "dc.language", "DC.language"))
    for value in candidates:
        if value:
            code = re.split(r"[-_,;\s]", value.strip().lower())[0]
            if re.fullmatch(r"[a-z]{2,3}", code):
                return code
    return None


# -- authors -----------------------------------------------------------------------------

_BYLINE_PREFIX = re.compile(r"^(?:(?:written|posted|reported|published|photos?)\s+)?(?:by|par|von|por|de|di|door|av|автор[ы]?:?)\s+", re.I)
_SPLIT_AUTHORS = re.compile(r"\s*(?:,|;|&|\||(?<=[a-z]{2})\.\s|\band\b|\bund\b|\bet\b|\by\b|\be\b|\bи\b)\s*", re.I)
_NOT_A_PERSON = re.compile(
    r"\b(?:staff|editor[s]?|editorial|team|desk|newsroom|admin(?:istrator)?|redac?ci[oó]n|r[ée]daction|"
    r"redaktion|reporters?|correspondents?|contributors?|writers?|agenc[yi]a?|agence|press|news|wire|"
    r"media|online|service|bureau|group|office|web|digital|magazine|journal|times|post|daily|"
    r"associated|reuters|afp|dpa|efe|tass|ria|ap|upi|bloomberg|sponsored|partner|guest|"
    r"international|network|channel|tv|radio|broadcasting|company|inc|ltd|llc|gmbh|foundation|institute|"
    r"university|ministry|department|government|association|club|partners|holdings|"
    r"редакция|корреспондент|updated|published|posted|min(?:ute)?s?|read|follow|twitter|facebook)\b",
    re.I)
_CJK_NAME = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af·・]{2,8}")
_ARTICLES = {"the", "la", "le", "les", "der", "die", "das", "el", "los", "las", "il", "lo", "a", "an", "our", "my"}
_PARTICLES = {"de", "da", "do", "dos", "das", "del", "della", "der", "den", "van", "von", "zu", "bin",
              "ibn", "al", "el", "la", "le", "du", "di", "y", "e", "ten", "ter", "st.", "mc", "mac"}


def clean_person_name(raw: str, site_keys: set[str]) -> str | None:
    """A person's name from a byline fragment, or None when it is not one."""
    name = normalize_text(raw)
    name = _BYLINE_PREFIX.sub("", name).strip(" .,:;-–—|")
    if not name or "@" in name or "http" in name or "/" in name or any(c.isdigit() for c in name):
        return None
    if _squash(name) in site_keys or _NOT_A_PERSON.search(name):
        return None
    if name.isupper():
        name = name.title()  # "STEVE PEOPLES" -> "Steve Peoples"
    words = name.split()
    if len(words) == 1 and _CJK_NAME.fullmatch(name):
        return name  # Chinese, Japanese and Korean names are written without spaces
    if not 2 <= len(words) <= 5 or len(name) > 60 or words[0].lower() in _ARTICLES:
        return None
    for word in words:
        if word.lower() in _PARTICLES:
            continue
        first = word[0]
        # Names start with a capital; scripts without case (Arabic, Hebrew, ...) pass.
        if first.islower() and not (word[:2].lower() in {"o'", "d'"} and len(word) > 2):
            return None
        if not first.isalpha():
            return None
    return name


def _split_names(raw: str) -> list[str]:
    raw = _BYLINE_PREFIX.sub("", normalize_text(raw))
    return [part for part in _SPLIT_AUTHORS.split(raw) if part]


_BYLINES = etree.XPath('//*[@rel="author" or @itemprop="author" or contains(@class, "byline") or '
                       'contains(@class, "author-name") or contains(@class, "entry-author") or '
                       'contains(@class, "article-author") or contains(@class, "autor") or '
                       'contains(@class, "auteur")][not(ancestor::footer)]')


def extract_authors(tree, objects: list[dict], site_name: str | None, host: str) -> list[str]:
    site_keys = {k for k in (_squash(site_name or ""), _squash(host.removeprefix("www.")),
                             _squash(host.removeprefix("www.").split(".")[0])) if k}
    raw: list[str] = []
    for obj in ld_articles(objects):
        authors = obj.get("author") or obj.get("creator")
        for author in authors if isinstance(authors, list) else [authors]:
            if isinstance(author, dict):
                if ld_types(author) & {"organization", "newsmediaorganization"}:
                    continue
                if isinstance(author.get("name"), str):
                    raw.append(author["name"])
            elif isinstance(author, str):
                raw.append(author)
    if not raw:
        metas = meta_values(tree)
        for name in ("author", "article:author", "dc.creator", "DC.creator", "sailthru.author",
                     "parsely-author", "byl"):
            raw.extend(metas.get(name, ()))
    if not raw:
        for el in _BYLINES(tree)[:6]:
            text = el.text_content()
            if len(text) < 120:
                raw.append(text)
    authors: list[str] = []
    for chunk in raw:
        for part in _split_names(chunk):
            name = clean_person_name(part, site_keys)
            if name and name.lower() not in {a.lower() for a in authors}:
                authors.append(name)
    return authors
