"""A fast path for plain RSS 0.9x/1.0/2.0 and Atom 1.0 feeds, built on lxml.

feedparser costs ~13 ms of CPU for a 50-entry feed; most feeds are plain, well-formed
UTF-8 documents whose few fields we use (link, id, title, summary, dates, author names)
can be read in a fraction of that. :func:`parse_items` reads such a document and returns,
per entry, the same values feedparser 6 would give for them (``parse_feed`` turns both into
``FeedEntry``), or ``None`` whenever it is not certain to: XML errors, DOCTYPEs, other
encodings, xml:base, unknown elements inside an entry, markup inside text fields, types
other than text/html, dates outside a strict RFC 822 / W3C subset, repeated fields...
The caller then uses feedparser. The rules below mirror feedparser's (mixin.py
``pop``/``_sync_author_detail``, namespaces/_base.py, datetimes/w3dtf.py and rfc822.py);
``tests/test_spiders_feedxml.py`` compares both paths on many feeds.
"""

from __future__ import annotations

import logging
import re
import xml.parsers.expat
from datetime import datetime, timedelta, timezone

from feedparser.html import _cp1252 as CP1252  # feedparser maps U+0080-U+009F with this table
from lxml import etree

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
ATOM_NS = "http://www.w3.org/2005/atom"  # lower-cased, as feedparser compares namespaces
ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
RDF_ROOT = "{%s}RDF" % RDF_NS
RDF_ABOUT = "{%s}about" % RDF_NS
XML_ATTRIBUTE = "{http://www.w3.org/XML/1998/namespace}"
# Namespaces feedparser treats as the feed's own (prefix ''), lower-cased as it compares them.
CORE_NS = {"", "http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/", ATOM_NS}
# Other namespaces of elements we read or know to be harmless inside an entry.
PREFIX_OF_NS = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://search.yahoo.com/mrss/": "media", "http://search.yahoo.com/mrss": "media",
    RDF_NS: "rdf",
}
# feedparser's standard prefixes for every namespace it knows, by lower-cased URI: a document
# binding one of "our" prefixes to another known namespace makes feedparser rename elements.
try:
    from feedparser.mixin import _FeedParserMixin
    KNOWN_NS_PREFIX = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
except (ImportError, AttributeError):  # pragma: no cover - then any declaration of ours declines
    KNOWN_NS_PREFIX = {}

TITLE, SUMMARY, CONTENT, ID, LINK, ENCLOSURE, PUBLISHED, UPDATED, AUTHOR, HARMLESS = range(10)
ROLE = {
    ("", "title"): TITLE,
    ("", "description"): SUMMARY, ("", "summary"): SUMMARY,
    ("", "content"): CONTENT, ("content", "encoded"): CONTENT,
    ("", "guid"): ID, ("", "id"): ID,
    ("", "link"): LINK, ("", "enclosure"): ENCLOSURE,
    ("", "pubdate"): PUBLISHED, ("", "published"): PUBLISHED, ("", "issued"): PUBLISHED,
    ("dcterms", "issued"): PUBLISHED,
    ("", "updated"): UPDATED, ("", "modified"): UPDATED, ("", "lastbuilddate"): UPDATED,
    ("dc", "date"): UPDATED, ("dcterms", "modified"): UPDATED,
    ("", "author"): AUTHOR, ("dc", "creator"): AUTHOR, ("dc", "author"): AUTHOR,
    ("", "category"): HARMLESS, ("", "comments"): HARMLESS, ("dc", "subject"): HARMLESS,
    ("wfw", "commentrss"): HARMLESS, ("wfw", "comment"): HARMLESS, ("slash", "comments"): HARMLESS,
    ("feedburner", "origlink"): HARMLESS,
    ("media", "content"): HARMLESS, ("media", "thumbnail"): HARMLESS,  # without children (media:title...)
}
TEXT_TYPES = {"text", "plain", "html", "text/plain", "text/html"}
HTML_TYPES = {"application/xhtml+xml", "text/html"}

XML_DECLARATION = re.compile(rb"<\?xml\s([^?>]*)\?>")
DECLARED = re.compile(rb"""(\w+)\s*=\s*["']([^"']*)["']""")
BASE_ATTRIBUTE = re.compile(rb"""base\s*=\s*["']""")  # searched in the lower-cased document
PREFIX_DECLARATION = re.compile(rb"""xmlns:([^\s=]+)\s*=\s*["']([^"']*)["']""")
URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls._urifixer
LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")  # noqa: E501

MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                      "oct", "nov", "dec"), 1)}
ZONE_HOURS = {"gmt": 0, "ut": 0, "utc": 0, "z": 0, "edt": -4, "est": -5, "cdt": -5, "cst": -6,
              "mdt": -6, "mst": -7, "pdt": -7, "pst": -8}
RFC822 = re.compile(r"(?:(?:mon|tue|wed|thu|fri|sat|sun),\s+)?(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+"
                    r"(\d\d):(\d\d)(?::(\d\d))?\s+([+-]\d\d:?\d\d|[a-z]+)", re.ASCII)
W3DTF = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:t(\d\d):(\d\d)(?::(\d\d(?:\.\d{1,6})?))?(z|[+-]\d\d:\d\d)?)?",
                   re.ASCII)

logger = logging.getLogger(__name__)


def _parser() -> etree.XMLParser:
    """A new parser per document (a few µs): lxml parsers are not to be shared between threads."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


SPLIT_TAGS: dict[str, tuple[str | None, str]] = {}  # tag -> _split(tag); feeds use few tags
DATES: dict[str, str | None] = {}  # date text -> parse_date(text); feeds are fetched again and again


class Decline(Exception):
    """The document (or one of its values) is not one we can read exactly like feedparser."""


def parse_items(body: bytes) -> list[dict] | None:
    """Entries of a plain feed as feedparser-like dicts, or None to leave the feed to feedparser.

    Each dict has what ``parse_feed`` reads of a feedparser entry: ``link`` (only if
    feedparser would set it), ``links`` (dicts with an ``href`` when feedparser has one),
    ``id``, ``title``, ``summary`` (when present), ``authors`` (dicts with ``name``) and
    ``published``: the ISO 8601 UTC string of ``published_parsed or updated_parsed``.
    """
    try:
        return _parse_items(body)
    except Decline:
        return None
    except Exception:  # a bug here must cost speed, never a feed: feedparser still reads it
        logger.warning("feedxml failed on a feed; feedparser reads it instead", exc_info=True)
        return None


def _parse_items(body: bytes) -> list[dict]:
    _check_document(body)
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise Decline(str(exc)) from exc
    items = _item_elements(root)
    if not items:
        raise Decline("no entries")
    return [_read_item(item) for item in items]


def _check_document(body: bytes) -> None:
    """UTF-8 XML 1.0 without DTD, xml:base or confusing prefixes, that expat accepts too."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if body[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in body[:4]:
        raise Decline("UTF-16 or UTF-32")
    declaration = XML_DECLARATION.match(body)
    if declaration:
        fields = {k.lower(): v.lower() for k, v in DECLARED.findall(declaration.group(1))}
        if fields.get(b"version") != b"1.0" or fields.get(b"encoding", b"utf-8") not in (b"utf-8", b"utf8"):
            raise Decline("not a UTF-8 XML 1.0 document")
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered or BASE_ATTRIBUTE.search(lowered):
        raise Decline("DOCTYPE, entities or xml:base")
    for prefix, uri in PREFIX_DECLARATION.findall(body):
        prefix = prefix.decode("utf-8", "replace")
        if prefix in PREFIX_OF_NS.values() and KNOWN_NS_PREFIX.get(uri.decode("utf-8", "replace").lower()) != prefix:
            raise Decline("a prefix of ours is bound to another namespace")
    # feedparser parses with expat: make sure it would not fall back to its loose parser.
    try:
        xml.parsers.expat.ParserCreate(namespace_separator=" ").Parse(body, True)
    except xml.parsers.expat.ExpatError as exc:
        raise Decline(str(exc)) from exc


def _split(tag: str) -> tuple[str | None, str]:
    """(feedparser prefix or None if unknown, lower-cased local name) of an lxml tag."""
    known = SPLIT_TAGS.get(tag)
    if known is None:
        known = _split_tag(tag)
        if len(SPLIT_TAGS) < 1000:
            SPLIT_TAGS[tag] = known
    return known


def _split_tag(tag: str) -> tuple[str | None, str]:
    if tag[0] == "{":
        uri, _, local = tag[1:].partition("}")
        uri = uri.lower()
    else:
        uri, local = "", tag
    if uri in CORE_NS:
        return "", local.lower()
    return PREFIX_OF_NS.get(uri), local.lower()


def _item_elements(root) -> list:
    """The entry elements, all where feedparser's format puts them; Decline if any is elsewhere."""
    if root.tag == "rss":
        channels = [child for child in root if child.tag == "channel"]
        if len(channels) != 1:
            raise Decline("rss without one channel")
        parent = channels[0]
    elif root.tag in (RDF_ROOT, ATOM_FEED):
        parent = root
    else:
        raise Decline(f"unknown root {root.tag}")
    items = []
    for element in root.iter(etree.Element):  # feedparser takes any <item>/<entry>, in any case
        if element.tag.rpartition("}")[2].lower() in ("item", "entry"):
            if element.getparent() is not parent or _split(element.tag)[0] != "":
                raise Decline("entry element out of place")
            items.append(element)
    return items


def _attributes(element) -> dict[str, str]:
    """feedparser's view of an element's attributes: lower-cased local names; Decline on clashes."""
    attrs = {}
    for key, value in element.items():
        name = key.rpartition("}")[2].lower() if key[0] == "{" else key.lower()
        if key.startswith(XML_ATTRIBUTE) and name in ("lang", "space"):
            continue
        if name in attrs:
            raise Decline("attributes clash")
        attrs[name] = value.lower() if name in ("rel", "type") else value
    return attrs


def _text(element) -> str:
    """Text of an element without children (comments included), else Decline."""
    if len(element):
        raise Decline("markup inside a text field")
    return element.text or ""


def _finish(value: str) -> str:
    """What feedparser's ``pop`` does to an element's stripped text after URI resolution."""
    if value.isascii():
        return value  # both steps below leave ASCII as it is
    try:
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.translate(CP1252)


def _resolve(uri: str) -> str:
    """feedparser's ``resolve_uri`` without a base URI: only its scheme-slash fix-up."""
    if ":///" not in uri:
        return uri  # the fix-up only removes slashes after "scheme://"
    return URI_FIXER.sub(r"\1\3", uri)


def _content_text(element) -> str:
    """Title/summary/content text, when its type is one feedparser leaves as it is."""
    attrs = _attributes(element)
    if set(attrs) - {"type"} or attrs.get("type", "text") not in TEXT_TYPES:
        raise Decline("content type, mode or src feedparser may transform")
    return _finish(_text(element).strip())


class _Entry:
    """One entry read in document order, with feedparser's overwrite/setdefault rules."""

    def __init__(self, item):
        self.values: dict = {"links": [], "authors": []}
        self.summary = self.content = None
        self.published = self.updated = None
        self.seen: set[int] = set()
        attrs = _attributes(item)
        if set(attrs) - {"about"}:
            raise Decline("entry attributes feedparser may read")
        if "about" in attrs:
            if RDF_ABOUT not in item.attrib:
                raise Decline("about outside the RDF namespace")
            self.values["id"] = attrs["about"]

    def once(self, role: int) -> None:
        if role in self.seen:
            raise Decline("repeated field")
        self.seen.add(role)

    def read(self, element, role: int) -> None:
        if role == TITLE:
            self.once(TITLE)
            self.values["title"] = _content_text(element)
        elif role == SUMMARY:
            self.once(SUMMARY)
            self.summary = _content_text(element)
        elif role == CONTENT:
            self.once(CONTENT)
            self.content = _content_text(element)
        elif role == ID:
            self.read_id(element)
        elif role == LINK:
            self.read_link(element)
        elif role == ENCLOSURE:
            self.read_enclosure(element)
        elif role in (PUBLISHED, UPDATED):
            self.once(role)
            value = _finish(_text(element).strip())  # parsed in result(): updated only if needed
            if role == PUBLISHED:
                self.published = value
            else:
                self.updated = value
        elif role == AUTHOR:
            self.read_author(element)
        elif len(element):
            raise Decline("markup inside an ignored element")

    def read_id(self, element) -> None:
        self.once(ID)
        permalink = _attributes(element).get("ispermalink", "true") == "true"
        text = _text(element).strip()
        value = _finish(_resolve(text) if text and permalink else text)
        self.values["id"] = value
        if permalink:
            self.values.setdefault("link", value)

    def read_link(self, element) -> None:
        attrs = _attributes(element)
        if "url" in attrs or "uri" in attrs:
            raise Decline("link with url/uri attributes")
        if len(element):
            raise Decline("markup inside a link")
        if "href" not in attrs:
            text = _text(element).strip()
            value = _finish(_resolve(text) if text else text)
            value = LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
            self.values["link"] = value
            self.values["links"].append({"href": value} if value else {})
            return
        if not attrs["href"]:
            raise Decline("empty href")
        href = _resolve(attrs["href"])
        rel = attrs.get("rel", "alternate")
        kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
        self.values["links"].append({"href": href})
        if rel == "alternate" and _map_content_type(kind) in HTML_TYPES:
            self.values["link"] = href

    def read_enclosure(self, element) -> None:
        attrs = _attributes(element)
        if len(element) or "uri" in attrs or "href" in attrs or not attrs.get("url"):
            raise Decline("enclosure other than <enclosure url=...>")
        self.values["links"].append({"href": attrs["url"]})

    def read_author(self, element) -> None:
        children = [child for child in element if isinstance(child.tag, str)]
        if len(children) != len(element):
            raise Decline("comment inside an author")
        if not children:
            name = _author_name(_finish(_text(element).strip()))
            self.values["authors"].append({"name": name} if name else {})
            return
        if self.values["authors"] and _split(children[0].tag) != ("", "name"):
            raise Decline("feedparser copies the previous author into this one")
        name = None
        for child in children:
            prefix, local = _split(child.tag)
            if prefix != "" or local not in ("name", "email", "uri") or len(child):
                raise Decline("author element feedparser may read differently")
            if local == "name":
                name = (child.text or "").strip()
        self.values["authors"].append({"name": name} if name else {})

    def result(self) -> dict:
        values = self.values
        summary = self.summary if self.summary is not None else self.content
        if summary is not None:
            values["summary"] = summary
        values["published"] = _cached_date(self.published) or _cached_date(self.updated)
        return values


def _map_content_type(kind: str) -> str:
    kind = kind.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html",
            "xhtml": "application/xhtml+xml"}.get(kind, kind)


def _author_name(author: str) -> str:
    """The name feedparser's ``_sync_author_detail`` takes from "email (Name)" text."""
    if not author:
        return ""
    match = EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "")
        author = author.strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    return author


def _read_item(item) -> dict:
    """One entry's dict, reading its fields in document order as feedparser does."""
    entry = _Entry(item)
    for element in item:
        tag = element.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions between fields
        role = ROLE.get(_split(tag))
        if role is None:
            raise Decline(f"unknown element {tag} in an entry")
        entry.read(element, role)
    return entry.result()


def _cached_date(value: str | None) -> str | None:
    """:func:`parse_date` of a value (None: absent), remembering the last few thousand dates."""
    if value is None:
        return None
    known = DATES.get(value)
    if known is None:
        known = parse_date(value)  # Decline propagates: not remembered
        if len(DATES) >= 4096:
            DATES.clear()
        DATES[value] = known
    return known


def parse_date(value: str) -> str | None:
    """ISO 8601 UTC string of a date as feedparser's ``_parse_date`` reads it; Decline if unsure.

    Only the two handlers that feedparser tries first and their simple forms: W3C-DTF
    (``2024-05-01T10:00:00+02:00``, ``...Z``, a date alone) and RFC 822
    (``Tue, 12 Sep 2023 06:35:12 GMT``, ``+0200``, ``EST``); anything else declines.
    """
    if not value:
        return None
    text = value.lower()
    match = W3DTF.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, zone = match.groups()
        zone = zone or ""
        hours, minutes = (int(zone[1:3]), int(zone[4:])) if zone[:1] in "+-" and zone else (0, 0)
        if zone.startswith("-"):
            hours, minutes = -hours, -minutes
        second = int(float(second)) if second else 0
        return _utc(int(year), int(month), int(day), int(hour or 0), int(minute or 0), second, hours, minutes)
    match = RFC822.fullmatch(text)
    if match:
        day, month, year, hour, minute, second, zone = match.groups()
        if month not in MONTHS:
            raise Decline(f"month {month!r}")
        if zone[0] in "+-":
            hours, minutes = int(zone[1:3]), int(zone[-2:])
            if zone[0] == "-":
                hours, minutes = -hours, -minutes
        elif zone in ZONE_HOURS:
            hours, minutes = ZONE_HOURS[zone], 0
        else:
            raise Decline(f"time zone {zone!r}")
        return _utc(int(year), MONTHS[month], int(day), int(hour), int(minute), int(second or 0), hours, minutes)
    raise Decline(f"date {value!r}")


def _utc(year, month, day, hour, minute, second, zone_hours, zone_minutes) -> str:
    try:
        stamp = datetime(year, month, day, hour, minute, second)
        utc = stamp - timedelta(hours=zone_hours, minutes=zone_minutes)
    except (ValueError, OverflowError) as exc:
        raise Decline(str(exc)) from exc  # feedparser would try its other date handlers
    return utc.replace(tzinfo=timezone.utc).isoformat()
