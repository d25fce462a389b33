"""The lxml fast path for feeds (crawler/spiders/feedxml.py) against feedparser's path.

Every test is differential: ``parsing.fast_feed_entries`` must give exactly what
``parsing.feedparser_entries`` gives, or decline (None); and ``parse_feed`` must give what
feedparser gives, FeedError included. Some tests also check which way a feed went.
"""

import codecs
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is not an installed package: run from the checkout
    sys.path.insert(0, str(ROOT))

from bench.newsroom_gen import Newsroom as GeneratedNewsroom  # noqa: E402
from crawler.exceptions import FeedError  # noqa: E402
from crawler.newsroom import Newsroom  # noqa: E402
from crawler.spiders import feedxml, parsing  # noqa: E402

# feedparser's own warning when parse_feed's fallback reads updated_parsed of an entry without it
pytestmark = pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")

URL = "https://news.example/feeds/main.xml"

RSS_NS = ('xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
          'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
          'xmlns:media="http://search.yahoo.com/mrss/"')


def by_feedparser(body: bytes, url: str = URL):
    try:
        return [entry.as_dict() for entry in parsing.feedparser_entries(body, url)]
    except FeedError as exc:
        return ("FeedError", str(exc))


def check(body: bytes, url: str = URL) -> bool:
    """Assert both paths agree; True if the fast path took the feed."""
    expected = by_feedparser(body, url)
    fast = parsing.fast_feed_entries(body, url)
    if fast is not None:
        assert [entry.as_dict() for entry in fast] == expected
    try:
        got = [entry.as_dict() for entry in parsing.parse_feed(body, url)]
    except FeedError as exc:
        got = ("FeedError", str(exc))
    assert got == expected
    return fast is not None


def rss(items: str, root: str = f'<rss version="2.0" {RSS_NS}>', prolog: str = '<?xml version="1.0" encoding="utf-8"?>'):
    return (f"{prolog}\n{root}<channel><title>T</title><link>https://news.example/</link>"
            f"<description>D</description>\n{items}</channel></rss>").encode("utf-8")


def atom(entries: str, attrs: str = ""):
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{attrs}>'
            f"<title>T</title><id>urn:feed</id><updated>2024-01-01T00:00:00Z</updated>\n{entries}</feed>").encode()


def rdf(items: str):
    return ('<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<channel rdf:about="https://news.example/"><title>T</title><link>https://news.example/</link>'
            '<description>D</description><items><rdf:Seq><rdf:li rdf:resource="https://news.example/r1"/>'
            f"</rdf:Seq></items></channel>{items}</rdf:RDF>").encode()


# -- generated feeds: the fast path takes them all and agrees ------------------------------

def test_benchmark_newsroom_feeds_all_take_the_fast_path():
    room = GeneratedNewsroom(articles=600, templates=6)
    kinds = set()
    for name in room.feeds:
        _, body = room.feed(name, "http://127.0.0.1:8765")
        kinds.add(room.feed_kind(name))
        assert check(body, f"http://127.0.0.1:8765/feeds/{name}"), name
        entries = parsing.fast_feed_entries(body, URL)
        assert len(entries) == len(room.feeds[name])
        assert all(e.title and e.summary and e.published and e.authors for e in entries)
    assert kinds == {"rss", "atom"}


def test_test_newsroom_feeds_take_the_fast_path():
    from datetime import datetime, timedelta, timezone
    start = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with Newsroom(name="Tom & Jerry's <News>") as room:
        for i in range(30):
            room.publish(f"/a/{i}.html", "<html></html>", title=f"Story {i} & <friends> “quoted”",
                         published=start + timedelta(minutes=7 * i), summary=f"<p>Summary {i} &amp; more</p>",
                         guid=None if i % 3 else f"urn:story:{i}")
        for kind in ("rss", "atom"):
            _, body = room.render_feed("main", kind)
            assert check(body, room.url(f"/feeds/main.{kind}")), kind


# -- hand-written variants ---------------------------------------------------------------

TAKEN = {
    "cdata and entities": rss('<item><title><![CDATA[Fish & <Chips>]]></title><link>https://news.example/1</link>'
                              "<description>Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt; &#233;t&#xE9; &#8212;</description>"
                              "</item>"),
    "html description and content": rss(
        "<item><title>T</title><link>https://news.example/2</link><description>&lt;p&gt;Intro&lt;/p&gt;</description>"
        "<content:encoded><![CDATA[<p>Full <a href='/x'>text</a></p>]]></content:encoded></item>"
        "<item><link>https://news.example/3</link><content:encoded><![CDATA[<p>Only content</p>]]>"
        "</content:encoded></item>"
        "<item><link>https://news.example/4</link><content:encoded>first</content:encoded>"
        "<description>then description</description></item>"
        "<item><link>https://news.example/5</link><description></description><content:encoded>c</content:encoded></item>"),
    "links, guids and permalinks": rss(
        '<item><title>No link</title><guid>https://news.example/g1</guid></item>'
        '<item><title>Not a permalink</title><guid isPermaLink="false">https://news.example/g2</guid></item>'
        '<item><title>Permalink false, link</title><guid isPermaLink="false">g3</guid><link>/rel/3</link></item>'
        '<item><title>guid first</title><guid>tag:x,2024:4</guid><link>https://news.example/4</link></item>'
        '<item><title>two links</title><link>https://news.example/5a</link><link>https://news.example/5b</link></item>'
        '<item><title>atom link</title><atom:link href="https://news.example/6" rel="alternate"/></item>'
        '<item><title>enclosure</title><enclosure url="https://cdn.example/7.mp3" length="1" type="audio/mpeg"/>'
        '<guid isPermaLink="false">seven</guid></item>'
        '<item><title>query</title><link>https://news.example/8?a=1&amp;b=2&amp;amp;c=3</link></item>'
        '<item><title>slashes</title><link>http:///news.example//9</link></item>'
        '<item><title>spaces</title><link>\n   https://news.example/10  \n</link></item>'
        '<item><title>nothing</title><description>no way to link</description></item>'),
    "authors": rss(
        "<item><link>https://news.example/a1</link><author>jane@example.com (Jane Roe)</author></item>"
        "<item><link>https://news.example/a2</link><author>jane@example.com</author></item>"
        "<item><link>https://news.example/a3</link><author>Jane Roe &lt;jane@example.com&gt;</author></item>"
        "<item><link>https://news.example/a4</link><dc:creator>Ann</dc:creator><dc:creator>Bob (ed.)</dc:creator></item>"
        "<item><link>https://news.example/a5</link><author></author><dc:creator>  Carl\n</dc:creator></item>"),
    "dates and time zones": rss(
        "<item><link>https://news.example/d1</link><pubDate>Tue, 12 Sep 2023 06:35:12 +0200</pubDate></item>"
        "<item><link>https://news.example/d2</link><pubDate>12 Sep 2023 06:35 EST</pubDate></item>"
        "<item><link>https://news.example/d3</link><pubDate>Sun, 31 Dec 2023 23:30:00 -0530</pubDate></item>"
        "<item><link>https://news.example/d4</link><dc:date>2024-02-29T23:00:00Z</dc:date></item>"
        "<item><link>https://news.example/d5</link><dc:date>2024-02-29T23:00:00.250-03:30</dc:date></item>"
        "<item><link>https://news.example/d6</link><pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate>"
        "<dc:date>2020-01-01</dc:date></item>"
        "<item><link>https://news.example/d7</link><pubDate></pubDate><dc:date>2020-01-01T10:00</dc:date></item>"
        "<item><link>https://news.example/d8</link><pubDate>Sat, 06 Jan 2024 08:00:00 PDT</pubDate></item>"),
    "whitespace, comments, unicode": rss(
        "<item>\n  <!-- a comment -->\n  <title>\n   Spaced\u00a0title \n</title>\n"
        "  <link> https://news.example/w1 </link><description>  caf\u00e9 \u201cquoted\u201d \U0001F600 </description>"
        "<category>World</category><comments>https://news.example/w1#c</comments>"
        "<wfw:commentRss>https://news.example/w1/feed</wfw:commentRss></item>"
        "<item><title>Ã©tÃ© mojibake &#150; cp1252</title><link>https://news.example/w2</link></item>"
        "<item><TITLE>Upper case</TITLE><LINK>https://news.example/w3</LINK><PubDate>Tue, 12 Sep 2023 06:35:12 GMT"
        "</PubDate></item>"),
    "feed-level author, image and content": atom(
        '<entry><id>x</id><link href="https://news.example/1"/><title>t</title></entry>').replace(
        b"<title>T</title>", b"<title>T</title><author><name>Feed Author</name></author>"
        b"<link rel='alternate' href='https://news.example/'/><content>feed-level</content>"),
    "channel image": rss("<item><title>i</title><link>https://news.example/i</link></item>").replace(
        b"<title>T</title>", b"<title>T</title><image><url>https://news.example/logo.png</url><title>L</title>"
        b"<link>https://news.example/</link></image>"),
    "attribute case, xml:lang, processing instruction": rss(
        '<item xml:lang="fr"><?php echo 1 ?><guid ISPERMALINK="false">https://news.example/g</guid>'
        '<title xml:lang="fr">Bonjour</title></item>'),
    "type case": atom('<entry><id>x</id><title type="HTML">a &amp;amp; b</title>'
                      '<link href="https://news.example/1" type="TEXT/HTML"/></entry>'
                      '<entry><id>tag:x</id><link type="application/xhtml+xml" href="https://news.example/x"/></entry>'),
    "empty guid and links": rss("<item><guid></guid><link>https://news.example/e</link></item>"
                                "<item><link></link><guid>https://news.example/g</guid></item>"
                                "<item><guid>https://news.example/g2</guid><link/></item>"
                                "<item><guid>https://news.example/g3</guid><link> </link></item>"
                                '<item><title>s</title><atom:link rel="self" href="https://news.example/self"/>'
                                '<guid isPermaLink="false">z</guid></item>'),
    "unicode spaces, C1 controls and mojibake": rss(
        "<item><title>\u2003 em \u3000</title><link>\u00a0https://news.example/s\u00a0</link></item>"
        "<item><title>&#128;&#150;&#159; \u0085</title><link>https://news.example/c1</link></item>"
        "<item><title>\u00e2\u0082\u00ac</title><link>https://news.example/m</link></item>"),
    "cdata around values": rss("<item><title><![CDATA[  padded  ]]></title>"
                               "<link><![CDATA[ https://news.example/cd ]]></link></item>"),
    "odd author text": rss("<item><link>https://news.example/ae</link>"
                           "<author>(Jane) jane.doe+x@mail.example.co.uk?subject=hi</author>"
                           "<dc:creator>&lt;&gt;a@b.cd</dc:creator></item>"),
    "empty date then dc:date": rss("<item><link>https://news.example/pe</link><pubDate> </pubDate>"
                                   "<dc:date>2024-01-01</dc:date></item>"),
    "media content and thumbnail": rss(
        '<item><title>m</title><link>https://news.example/media</link>'
        '<media:content url="https://cdn.example/a.jpg" medium="image"/>'
        '<media:thumbnail url="https://cdn.example/t.jpg"/></item>',
        ),
    "standalone prolog": rss("<item><title>s</title><link>https://news.example/st</link></item>",
                             prolog='<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'),
    "BOM and no prolog": b"\xef\xbb\xbf" + rss("<item><title>bom</title><link>https://news.example/b</link></item>"),
    "no prolog": rss("<item><title>np</title><link>https://news.example/np</link></item>", prolog=""),
    "rss 0.91": rss("<item><title>old</title><link>https://news.example/o</link><description>x</description></item>",
                    root='<rss version="0.91">'),
    "rss 1.0": rdf('<item rdf:about="https://news.example/r1"><title>R1</title><link>https://news.example/r1</link>'
                   "<dc:creator>Ann</dc:creator><dc:date>2024-05-01T10:00:00+02:00</dc:date></item>"
                   '<item rdf:about="urn:r2"><title>R2</title><description>no link</description></item>'
                   '<item rdf:about="https://news.example/r3"><title>R3</title><link>/rel/r3</link></item>'),
    "atom": atom(
        '<entry><id>tag:news.example,2024:1</id><title type="html">A &amp;lt;b&amp;gt; title</title>'
        '<link rel="self" href="https://news.example/1.atom"/><link href="/rel/1"/>'
        '<published>2024-05-01T10:00:00+02:00</published><updated>2024-05-02T10:00:00Z</updated>'
        "<author><name> Jane Roe </name><email>jane@example.com</email></author>"
        "<author><name>Bob</name><uri>https://bob.example/</uri></author>"
        '<summary type="text">Plain &lt;summary&gt;</summary><content type="html">&lt;p&gt;Body&lt;/p&gt;</content>'
        '<category term="x"/></entry>'
        '<entry><title>only content</title><link rel="alternate" type="text/html" href="https://news.example/2"/>'
        '<link rel="alternate" type="application/pdf" href="https://news.example/2.pdf"/>'
        '<content type="html"><![CDATA[<p>Body 2</p>]]></content><updated>2024-05-02T10:00:00-04:00</updated>'
        "</entry>"
        '<entry><link rel="enclosure" href="https://cdn.example/3.mp3"/><id>tag:news.example,2024:3</id></entry>'
        '<entry><id>tag:news.example,2024:4</id><link rel="related" href="https://news.example/4"/></entry>'
        '<entry><id>https://news.example/5</id><summary>id is the link</summary></entry>'
        '<entry><link rel="alternate" href="https://news.example/6"/><link rel="alternate" href="https://news.example/6b"/>'
        "<author><email>only@example.com</email></author><author><name></name></author></entry>"),
}

DECLINED = {
    "xml:base": atom('<entry xml:base="https://other.example/dir/"><id>x</id><link href="rel/1"/></entry>'),
    "xml:base on the feed": atom('<entry><id>x</id><link href="rel/1"/></entry>',
                                 attrs=' xml:base="https://other.example/dir/"'),
    "xhtml title": atom('<entry><id>x</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
                        "<b>x</b></div></title><link href='https://news.example/1'/></entry>"),
    "base64 content": atom('<entry><id>x</id><link href="https://news.example/1"/>'
                           '<content type="application/octet-stream">aGVsbG8=</content></entry>'),
    "latin-1 prolog": rss("<item><title>Caf\u00e9</title><link>https://news.example/l1</link></item>",
                          prolog='<?xml version="1.0" encoding="iso-8859-1"?>').decode().encode("iso-8859-1"),
    "windows-1252 prolog": rss("<item><title>\u201cq\u201d</title><link>https://news.example/l2</link></item>",
                               prolog='<?xml version="1.0" encoding="windows-1252"?>').decode().encode("cp1252"),
    "utf-16": codecs.BOM_UTF16_LE + rss("<item><title>u16</title><link>https://news.example/u</link></item>",
                                        prolog='<?xml version="1.0" encoding="utf-16"?>').decode().encode("utf-16-le"),
    "utf-16 without BOM": rss("<item><title>u16</title><link>https://news.example/u</link></item>",
                              prolog='<?xml version="1.0" encoding="utf-16"?>').decode().encode("utf-16-le"),
    "ebcdic": rss("<item><title>e</title><link>https://news.example/e</link></item>",
                  prolog='<?xml version="1.0" encoding="cp037"?>').decode().encode("cp037"),
    "doctype with entities": rss('<item><title>A&nbsp;B &copy;</title><link>https://news.example/e</link></item>',
                                 prolog='<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;">'
                                        '<!ENTITY copy "&#169;">]>'),
    "html entity without doctype": rss("<item><title>A&nbsp;B</title><link>https://news.example/e</link></item>"),
    "markup in description": rss("<item><title>m</title><link>https://news.example/m</link>"
                                 "<description><p>unescaped <b>html</b></p></description></item>"),
    "unknown element": rss('<item><title>u</title><link>https://news.example/u</link>'
                           '<itunes:duration xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">1:00'
                           "</itunes:duration></item>"),
    "media content with a title": rss(
        '<item><link>https://news.example/u</link><media:content xmlns:media="http://search.yahoo.com/mrss/" '
        'url="x"><media:title>Photo</media:title></media:content></item>'),
    "two titles": rss("<item><title>a</title><title>b</title><link>https://news.example/t</link></item>"),
    "two-digit year": rss("<item><link>https://news.example/y</link><pubDate>Tue, 12 Sep 23 06:35:12 GMT</pubDate>"
                          "</item>"),
    "odd date": rss("<item><link>https://news.example/y</link><pubDate>2023/09/12 06:35</pubDate></item>"),
    "impossible date": rss("<item><link>https://news.example/y</link><pubDate>Fri, 30 Feb 2024 06:35:12 GMT"
                           "</pubDate></item>"),
    "broken xml": rss("<item><title>x & y</title><link>https://news.example/x</link></item>"),
    "truncated": rss("<item><title>x</title><link>https://news.example/x</link></item>" * 3)[:-60],
    "no items": rss(""),
    "no linkable item": rss("<item><title>only a title</title></item>"),
    "items elsewhere": rss("<item><link>https://news.example/1</link></item>").replace(
        b"<title>T</title>", b"<image><item><link>https://news.example/i</link></item></image>"),
    "swapped prefixes": rss("<item><link>https://news.example/1</link><dc:creator>Ann</dc:creator></item>",
                            root='<rss version="2.0" xmlns:dc="http://purl.org/rss/1.0/modules/content/">'),
    "source": rss("<item><title>s</title><link>https://news.example/s</link>"
                  '<source url="https://other.example/feed">Other</source></item>'),
    "second author starting with email": atom(
        '<entry><id>x</id><link href="https://news.example/1"/><author><name>A</name></author>'
        "<author><email>b@b.example</email><name>B</name></author></entry>"),
    "content src": atom('<entry><id>https://news.example/s</id><content src="https://news.example/body"/></entry>'),
    "xml 1.1": rss("<item><title>s</title><link>https://news.example/st</link></item>", prolog='<?xml version="1.1"?>'),
    "unknown namespace in an item": rss("<item><title>s</title><link>https://news.example/st</link>"
                                        '<foo xmlns="http://x.example/">bar</foo></item>'),
    "unparseable published": atom("<entry><id>https://news.example/u</id><published>soon</published>"
                                  "<updated>2024-01-01T00:00:00+01:00</updated></entry>"),
    "not a feed": b'<?xml version="1.0"?><html><body>hello</body></html>',
    "garbage": b"<<<&&& not xml",
}


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_plain_variants_take_the_fast_path_and_agree(name):
    assert check(TAKEN[name]), f"{name}: the fast path declined"


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_variants_the_fast_path_declines_still_give_feedparsers_result(name):
    assert feedxml.parse_items(DECLINED[name]) is None or parsing.fast_feed_entries(DECLINED[name], URL) is None
    assert not check(DECLINED[name])


def test_malformed_feed_keeps_its_feed_error():
    with pytest.raises(FeedError, match="malformed feed at https://a.example/bad"):
        parsing.parse_feed(DECLINED["truncated"][:40] + b"<<<", "https://a.example/bad")


@pytest.mark.parametrize("value", [
    "Tue, 12 Sep 2023 06:35:12 GMT", "Tue, 12 Sep 2023 06:35:12 +0000", "12 Sep 2023 06:35 EST",
    "Mon, 1 Jan 2024 00:00:00 -0100", "Sat, 29 Feb 2020 23:59:59 +05:30", "Thu, 01 Oct 2020 10:00:00 UT",
    "Thu, 01 Oct 2020 10:00:00 Z", "Sun, 01 Nov 2020 01:00:00 CDT", "Wed, 11 Nov 2020 11:11:11 utc",
    "2024-05-01", "2024-05-01T10:00", "2024-05-01T10:00:00", "2024-05-01T10:00:00Z", "2024-05-01t10:00:00z",
    "2024-05-01T10:00:00.999999+14:00", "2024-05-01T00:30:00-09:30", "1999-12-31T23:59:59+00:00"])
def test_dates_read_like_feedparser(value):
    from feedparser.datetimes import _parse_date
    assert feedxml.parse_date(value) == parsing._iso(_parse_date(value))


@pytest.mark.parametrize("value", ["Tue, 12 Sep 23 06:35:12 GMT", "2024-05-01 10:00:00", "yesterday",
                                   "Tue, 12 Sept 2023 06:35:12 GMT", "2024-02-30T10:00:00Z", "2024-05-01T10:00+0200",
                                   "Tue, 12 Sep 2023 06:35:12 CEST", "Tue, 12 Sep 2023 24:00:00 GMT"])
def test_dates_outside_the_simple_forms_decline(value):
    with pytest.raises(feedxml.Decline):
        feedxml.parse_date(value)


# -- random feeds: many combinations of the fields above ------------------------------------

TEXTS = ["Plain", "  spaced \n out ", "A &amp; B", "<![CDATA[x < y & z]]>", "&lt;b&gt;bold&lt;/b&gt; text",
         "caf\u00e9", "Ã©tÃ©", "&#150; dash &#8212;", "", "&quot;q&quot; &apos;s&apos;", "\u00a0nbsp\u00a0",
         "<![CDATA[<p>para</p>]]>", "&lt;p&gt;Hello &amp;amp; bye&lt;/p&gt;", "emoji \U0001F600", "  ",
         "Jane Roe &lt;jane@example.com&gt;", "x@y.org (X Y)", "&amp;nbsp; &amp;copy;"]
LINKS = ["https://news.example/p/{i}", "/relative/{i}", "relative/{i}?a=1&amp;b=2", "http:///triple/{i}",
         "  https://news.example/s/{i}  ", "", "tag:news.example,2024:{i}", "https://news.example/{i}#frag"]
DATES = ["Tue, 12 Sep 2023 06:35:12 GMT", "Mon, 01 Jan 2024 00:00:00 +0200", "01 Jan 2024 00:00 EST",
         "2024-05-01T10:00:00Z", "2024-05-01T10:00:00-05:00", "2024-05-01", "", "  2024-05-01T10:00:00+01:00 ",
         "Fri, 30 Feb 2024 06:35:12 GMT", "garbage", "Tue, 12 Sep 23 06:35:12 GMT"]


def random_rss_item(rng: random.Random, i: int) -> str:
    parts = []
    if rng.random() < 0.8:
        parts.append(f"<title>{rng.choice(TEXTS)}</title>")
    if rng.random() < 0.7:
        parts.append(f"<link>{rng.choice(LINKS).format(i=i)}</link>")
    if rng.random() < 0.5:
        permalink = rng.choice(["", ' isPermaLink="false"', ' isPermaLink="true"', ' isPermaLink="False"'])
        parts.append(f"<guid{permalink}>{rng.choice(LINKS).format(i=i)}</guid>")
    if rng.random() < 0.6:
        parts.append(f"<description>{rng.choice(TEXTS)}</description>")
    if rng.random() < 0.4:
        parts.append(f"<content:encoded>{rng.choice(TEXTS)}</content:encoded>")
    for tag in ("pubDate", "dc:date"):
        if rng.random() < 0.4:
            parts.append(f"<{tag}>{rng.choice(DATES)}</{tag}>")
    for _ in range(rng.choice([0, 0, 1, 2])):
        tag = rng.choice(["author", "dc:creator"])
        parts.append(f"<{tag}>{rng.choice(TEXTS)}</{tag}>")
    if rng.random() < 0.2:
        parts.append(f'<enclosure url="https://cdn.example/{i}.mp3" type="audio/mpeg"/>')
    if rng.random() < 0.2:
        parts.append(f'<atom:link rel="{rng.choice(["alternate", "self", "related"])}" href="/atom/{i}"/>')
    if rng.random() < 0.3:
        parts.append("<category>Cat</category>")
    if rng.random() < 0.2:
        inside = rng.choice(["", "", f"<media:title>{rng.choice(TEXTS)}</media:title>"])
        parts.append(f'<media:content url="https://cdn.example/{i}.jpg">{inside}</media:content>')
    rng.shuffle(parts)
    return "<item>" + "\n".join(parts) + "</item>"


def random_atom_entry(rng: random.Random, i: int) -> str:
    parts = []
    if rng.random() < 0.8:
        parts.append(f"<id>{rng.choice(LINKS).format(i=i)}</id>")
    if rng.random() < 0.8:
        kind = rng.choice(["", ' type="text"', ' type="html"', ' type="text/html"'])
        parts.append(f"<title{kind}>{rng.choice(TEXTS)}</title>")
    for _ in range(rng.choice([0, 1, 1, 2])):
        rel = rng.choice(["", ' rel="alternate"', ' rel="self"', ' rel="enclosure"', ' rel="related"'])
        kind = rng.choice(["", ' type="text/html"', ' type="application/pdf"', ' type="html"'])
        parts.append(f'<link{rel}{kind} href="{rng.choice(LINKS).format(i=i).strip() or "/x"}"/>')
    if rng.random() < 0.5:
        kind = rng.choice(["", ' type="html"'])
        parts.append(f"<summary{kind}>{rng.choice(TEXTS)}</summary>")
    if rng.random() < 0.4:
        kind = rng.choice(["", ' type="html"', ' type="text"'])
        parts.append(f"<content{kind}>{rng.choice(TEXTS)}</content>")
    for tag in ("published", "updated"):
        if rng.random() < 0.5:
            parts.append(f"<{tag}>{rng.choice(DATES)}</{tag}>")
    for _ in range(rng.choice([0, 1, 1, 2])):
        children = [f"<name>{rng.choice(TEXTS)}</name>"] if rng.random() < 0.8 else []
        if rng.random() < 0.4:
            children.append("<email>a@b.example</email>")
        if rng.random() < 0.2:
            children.append("<uri>https://a.example/</uri>")
        rng.shuffle(children)
        parts.append("<author>" + "".join(children) + "</author>")
    rng.shuffle(parts)
    return "<entry>" + "\n".join(parts) + "</entry>"


def random_feed(rng: random.Random) -> bytes:
    count = rng.randint(1, 6)
    kind = rng.choice(["rss", "rss", "atom", "atom", "rdf"])
    if kind == "atom":
        return atom("".join(random_atom_entry(rng, i) for i in range(count)))
    items = "".join(random_rss_item(rng, i) for i in range(count))
    if kind == "rdf":
        items = items.replace("<item>", '<item rdf:about="https://news.example/about/1">')
        items = items.replace("<content:encoded>", "<description>").replace("</content:encoded>", "</description>")
        return rdf(items.replace("atom:link", "link").replace("<enclosure", "<link").replace("pubDate", "dc:date"))
    return rss(items)


def test_random_feeds_agree_and_mostly_take_the_fast_path():
    rng = random.Random(20240501)
    taken = declined = 0
    for _ in range(400):
        body = random_feed(rng)
        if check(body):
            taken += 1
        else:
            declined += 1
    assert taken >= 100, (taken, declined)  # the comparison is not vacuous
    assert declined >= 20, (taken, declined)  # and the random feeds do reach the fallbacks
