"""Published and modified dates of an article page.

Sources, most trusted first: JSON-LD (datePublished/dateModified of the article
object), Open Graph / article / Dublin Core meta tags, a ``<time>`` element of the
article itself (not of "latest news" lists or the header's current-date widget), the
URL (``/2023/09/12/``), then the text (htmldate). A date in the future or before 1995
is rejected. Values are ISO 8601: with the page's UTC offset when it gives one,
``YYYY-MM-DDTHH:MM:SS`` when it gives a time but no zone, ``YYYY-MM-DD`` when it only
gives a day.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone

from dateutil import parser as dateutil_parser
from lxml import etree

from crawler.extract.metadata import ld_articles, meta_content

logger = logging.getLogger(__name__)

PUBLISHED_META = ("article:published_time", "og:article:published_time", "og:published_time",
                  "datePublished", "article.published", "pubdate", "publishdate", "publish-date",
                  "published_time", "published-date", "DC.date.issued", "dc.date.issued",
                  "dcterms.issued", "dcterms.created", "DC.date", "dc.date", "sailthru.date",
                  "parsely-pub-date", "article_date_original", "date", "Date", "cXenseParse:recs:publishtime")
MODIFIED_META = ("article:modified_time", "og:article:modified_time", "og:updated_time",
                 "dateModified", "article.updated", "last-modified", "dcterms.modified",
                 "DC.date.modified", "lastmod")

_EXCLUDED_TIME = ('ancestor::*[contains(@class, "related") or contains(@class, "latest") or '
                  'contains(@class, "widget") or contains(@class, "sidebar") or contains(@class, "td_block") '
                  'or contains(@class, "module") or contains(@class, "teaser") or contains(@class, "comment") '
                  'or contains(@class, "data_time") or contains(@class, "current-date")] or ancestor::aside '
                  'or ancestor::nav or ancestor::footer')
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-]?(0[1-9]|1[0-2])[/-]?(0[1-9]|[12]\d|3[01])(?:/|[-_]|\.html?|$)")


def parse_date(value: str | None) -> datetime | date | None:
    """A datetime (aware when the text has a zone), a date for day-only text, or None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    if re.fullmatch(r"\d{10}(\d{3})?", value):  # epoch seconds or milliseconds
        seconds = int(value[:10])
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    try:
        return dateutil_parser.isoparse(value)
    except (ValueError, OverflowError):
        pass
    try:
        parsed = dateutil_parser.parse(value, fuzzy=False)
    except (ValueError, OverflowError, TypeError):
        return None
    has_time = bool(re.search(r"\d{1,2}:\d{2}", value))
    return parsed if has_time else parsed.date()


def _plausible(value: datetime | date, now: datetime) -> bool:
    if isinstance(value, datetime):
        if value.year < 1995:
            return False
        if value.tzinfo is not None:
            return value <= now + timedelta(minutes=5)
        return value <= now.replace(tzinfo=None) + timedelta(hours=14)
    return date(1995, 1, 1) <= value <= (now + timedelta(hours=14)).date()


def format_date(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def _first_plausible(candidates, now: datetime) -> datetime | date | None:
    for raw in candidates:
        if not isinstance(raw, str):
            continue
        parsed = parse_date(raw)
        if parsed is not None and _plausible(parsed, now):
            return parsed
    return None


# Compiled once: tree.xpath(str) compiles its expression on every call.
_TIME_XPATHS = (etree.XPath('//time[@itemprop="datePublished" or @pubdate]/@datetime'),
                etree.XPath('//*[@itemprop="datePublished"]/@content'),
                etree.XPath(f'//article//time[@datetime][not({_EXCLUDED_TIME})]/@datetime'))
_ANY_TIME = etree.XPath(f'//time[@datetime][not({_EXCLUDED_TIME})]/@datetime')


def _time_elements(tree) -> list[str]:
    values = []
    for xpath in _TIME_XPATHS:
        values += xpath(tree)
    values += _ANY_TIME(tree)[:1]
    return values


def date_from_url(url: str) -> date | None:
    match = _URL_DATE.search(url or "")
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


_WIDGET_MARKERS = ("data_time", "date-now", "datenow", "current-date", "currentdate", "today", "date-today",
                   "header-date", "top-date", "date-widget", "datum", "clock", "weather", "related", "latest",
                   "widget", "sidebar", "comment", "td_block", "teaser", "most-")


def _without_widgets(tree):
    """A copy of the page without the places that show other dates than the article's."""
    from copy import deepcopy

    tree = deepcopy(tree)
    doomed = [el for el in tree.iter("header", "nav", "footer", "aside")]
    for el in tree.iter("div", "span", "section", "ul", "li", "p", "time"):
        marker = ((el.get("class") or "") + " " + (el.get("id") or "")).lower()
        if marker.strip() and any(word in marker for word in _WIDGET_MARKERS):
            doomed.append(el)
    for el in doomed:
        if el.getparent() is not None:
            el.getparent().remove(el)
    return tree


def _date_from_text(tree, url: str) -> date | None:
    try:
        from htmldate import find_date
    except ImportError:  # pragma: no cover
        return None
    try:
        found = find_date(_without_widgets(tree), extensive_search=True, original_date=True, url=url)
    except Exception:  # htmldate raises a zoo of errors on odd pages
        logger.debug("htmldate failed on %s", url, exc_info=True)
        return None
    return parse_date(found) if found else None


def extract_dates(tree, objects: list[dict], url: str, *, now: datetime | None = None) -> tuple[str | None, str | None]:
    """(published, modified) as ISO 8601 strings, or None."""
    now = now or datetime.now(timezone.utc)
    articles = ld_articles(objects)
    published = _first_plausible([o.get("datePublished") or o.get("dateCreated") for o in articles], now)
    if published is None:
        published = _first_plausible((meta_content(tree, name) for name in PUBLISHED_META), now)
    if published is None:
        published = _first_plausible(_time_elements(tree), now)
    if published is None:
        from_url = date_from_url(url)
        if from_url is not None and _plausible(from_url, now):
            published = from_url
    if published is None:
        from_text = _date_from_text(tree, url)
        if from_text is not None and _plausible(from_text, now):
            published = from_text
    modified = _first_plausible([o.get("dateModified") for o in articles], now)
    if modified is None:
        modified = _first_plausible((meta_content(tree, name) for name in MODIFIED_META), now)
    if modified is not None and published is not None and _before(modified, published):
        modified = None
    return (format_date(published) if published else None,
            format_date(modified) if modified else None)


def _before(a: datetime | date, b: datetime | date) -> bool:
    def key(v):
        if isinstance(v, datetime):
            return v.astimezone(timezone.utc).replace(tzinfo=None) if v.tzinfo else v
        return datetime(v.year, v.month, v.day)
    return key(a) < key(b) - timedelta(days=1)
