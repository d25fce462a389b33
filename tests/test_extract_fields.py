"""The pieces of extraction, each on small inputs: encoding, normalisation, dates, authors,
titles, boilerplate lines, source links and the benchmark's scoring."""

from __future__ import annotations

import codecs
import gzip
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from trafilatura.utils import load_html

from crawler.extract.benchmark import main as bench_main
from crawler.extract.benchmark import score_corpus, score_page, shingles
from crawler.extract.boilerplate import is_boilerplate
from crawler.extract.dates import extract_dates
from crawler.extract.encoding import decode_html
from crawler.extract.metadata import clean_person_name, extract_authors, strip_site_suffix
from crawler.extract.normalize import normalize_quotes, normalize_text
from crawler.extract.source import source_from_links

AEB = Path(__file__).parent / "data" / "aeb-dev"


def page(head: str = "", body: str = "") -> object:
    return load_html(f"<html><head>{head}</head><body>{body}<p>filler</p></body></html>")


# -- encoding ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding,text", [
    ("windows-1251", "Привет, мир — «ёлка»"),
    ("iso-8859-1", "Café crème à Besançon"),
    ("windows-1252", "naïve “quotes” — dash"),
])
def test_declared_single_byte_encodings_decode(encoding, text):
    html = f'<html><head><meta charset="{encoding}"></head><body><p>{text}</p></body></html>'
    assert text in decode_html(html.encode(encoding))


def test_http_equiv_and_bom_and_hint():
    html = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Новости</p>'
    assert "Новости" in decode_html(html.encode("windows-1251"))
    assert decode_html(codecs.BOM_UTF8 + "<p>Ünïcode</p>".encode()) == "<p>Ünïcode</p>"
    # no declaration at all: the HTTP header's charset is used
    assert "Новости" in decode_html("<p>Новости дня</p>".encode("koi8-r"), encoding="koi8-r")


def test_utf8_page_mislabelled_latin1_stays_utf8():
    html = '<meta charset="iso-8859-1"><p>Zürich – «Grüezi»</p>'
    assert "Zürich – «Grüezi»" in decode_html(html.encode("utf-8"))


# -- normalisation ---------------------------------------------------------------------------

def test_normalize_text_spaces_invisibles_nfc():
    assert normalize_text(" a\u00a0b\u202fc\u200bd\ufeff\n\te\u0301 ") == "a b cd é"


def test_quotes_made_consistent_for_the_language():
    mixed = "«\u00a0Now he failed,” Miller said, « he will fail » again."
    assert normalize_quotes(normalize_text(mixed), "en") == "“Now he failed,” Miller said, “he will fail” again."
    assert normalize_quotes("« Il a dit “oui” »", "fr") == "« Il a dit « oui » »"
    assert normalize_quotes("He said “yes”.", "en") == "He said “yes”."


# -- dates -----------------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_meta_date_wins_over_a_current_date_widget():
    tree = page('<meta property="article:published_time" content="2023-09-12T06:35:12+00:00">',
                '<div class="td_data_time"><div>jeudi, mai 23, 2024</div></div>')
    assert extract_dates(tree, [], "https://x.example/a", now=NOW) == ("2023-09-12T06:35:12+00:00", None)


def test_json_ld_first_and_time_zone_kept():
    objects = [{"@type": "NewsArticle", "datePublished": "2024-03-05T17:42:00-05:00",
                "dateModified": "2024-03-06T09:15:00-05:00"}]
    tree = page('<meta property="article:published_time" content="2024-03-01T00:00:00Z">')
    assert extract_dates(tree, objects, "https://x.example/a", now=NOW) == (
        "2024-03-05T17:42:00-05:00", "2024-03-06T09:15:00-05:00")


def test_future_dates_are_rejected_and_the_next_source_used():
    tree = page('<meta property="article:published_time" content="2031-01-01T00:00:00Z">')
    assert extract_dates(tree, [], "https://x.example/2024/02/03/story/", now=NOW)[0] == "2024-02-03"


def test_time_element_of_the_article_not_of_latest_news():
    tree = page(body='<div class="latest-news"><time datetime="2024-05-20T08:00:00+00:00">x</time></div>'
                     '<article><h1>T</h1><time datetime="2024-01-02T10:00:00+02:00">2 Jan</time></article>')
    assert extract_dates(tree, [], "https://x.example/a", now=NOW)[0] == "2024-01-02T10:00:00+02:00"


def test_text_dates_ignore_the_header_date_widget():
    body = ('<div class="td-header-top-menu"><div class="td_data_time"><div>jeudi, mai 23, 2024</div></div></div>'
            '<article><h1>Titre</h1><div class="meta">Publié le 12 septembre 2023 à 08:15</div>'
            "<p>Texte de l'article.</p></article>")
    assert extract_dates(page(body=body), [], "https://x.example/article-123", now=NOW)[0] == "2023-09-12"


def test_time_without_zone_stays_naive():
    tree = page('<meta name="date" content="2024-01-02 10:30:00">')
    assert extract_dates(tree, [], "https://x.example/a", now=NOW)[0] == "2024-01-02T10:30:00"


# -- authors, titles ------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("By Jane Doe", "Jane Doe"), ("Von Anna Müller", "Anna Müller"), ("Staff", None),
    ("Reuters Staff", None), ("jdoe@example.com", None), ("actu-monde", None),
    ("Editorial Team", None), ("Ludwig van Beethoven", "Ludwig van Beethoven"), ("admin", None),
    ("Иван Петров", "Иван Петров"), ("Associated Press", None), ("محمد العلي", "محمد العلي"),
    ("王小明", "王小明"), ("john smith", None), ("Staff Reporter", None),
])
def test_person_names(raw, expected):
    assert clean_person_name(raw, {"actumonde"}) == expected


def test_authors_skip_organisations_and_split_bylines():
    objects = [{"@type": "NewsArticle", "author": [{"@type": "Person", "name": "Jane Doe"},
                                                    {"@type": "Organization", "name": "Daily Planet"}]}]
    assert extract_authors(page(), objects, "Daily Planet", "dailyplanet.example") == ["Jane Doe"]
    tree = page('<meta name="author" content="By Jane Doe and John Smith, Daily Planet">')
    assert extract_authors(tree, [], "Daily Planet", "dailyplanet.example") == ["Jane Doe", "John Smith"]


@pytest.mark.parametrize("title,expected", [
    ("Headline here - Actu Monde", "Headline here"),
    ("Headline here | The Daily Planet", "Headline here"),
    ("Actu Monde | Headline here", "Headline here"),
    ("Support – US State Dept spox on the meeting", "Support – US State Dept spox on the meeting"),
])
def test_site_suffix_is_stripped_but_not_a_dash_in_the_headline(title, expected):
    assert strip_site_suffix(title, "Actu Monde" if "Actu" in title else "The Daily Planet",
                             "www.actu-monde.example") == expected


# -- boilerplate lines, source links -----------------------------------------------------------

@pytest.mark.parametrize("line", [
    "- Advertisement -", "- Advertisement -spot_imgspot_img", "Source link", "Related news", "Latest news",
    "S'il vous plaît entrez votre commentaire!", "Lire aussi : Le gel d'avril inquiète la Bourgogne",
    "READ MORE: China plague outbreak confirmed", "Photo: John Smith / Reuters", "Anzeige",
    "jeudi, mai 23, 2024", "17.8 C", "Subscribe to our daily newsletter", "Share this article",
])
def test_furniture_lines(line):
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", [
    "Miller said the source of the leak was still unknown.",
    "Related reports suggest that the talks will resume next week in Geneva, officials said.",
    "The photo was taken in 2019.",
    "Share prices fell 3% on Monday after the announcement.",
])
def test_article_sentences_are_not_furniture(line):
    assert not is_boilerplate(line)


def test_source_link_closing_the_body_but_not_in_the_footer():
    tree = page(body='<article><p>Text.</p><p><a href="https://wire.example/a/1">Source link</a></p></article>'
                     '<footer><a href="https://other.example/">Source</a></footer>')
    assert source_from_links(tree, "https://www.site.example/x")[0] == "https://wire.example/a/1"
    tree = page(body='<p>Quelle: <a href="https://dpa.example/meldung/5">dpa</a></p>')
    assert source_from_links(tree, "https://www.site.example/x")[0] == "https://dpa.example/meldung/5"
    tree = page(body='<p>See <a href="https://www.site.example/other">Source link</a></p>')
    assert source_from_links(tree, "https://www.site.example/x")[0] is None  # same site: not a repost


@pytest.mark.parametrize("href", [
    "/news/1", "/", "", "  /a  ", "page.html", "../up", "?page=2", "/wiki/File:x.png", "a/b:c",
    "//wire.example/a/1", "https://wire.example/a", "HTTPS://wire.example/a", "wire:x", "/\t/wire.example/a",
    "\n//wire.example/a", "/\n/wire.example/a", "\x01//wire.example/a", "\x1f//wire.example/a", "/\\wire.example",
    "https://www.site.example/a", "http://www.site.example", "//www.site.example?q", "https://www.site.example#x",
    "https://www.site.example.evil/a", "https://www.site.example@evil.example/", "http://127.0.0.1:8000/a",
    "//127.0.0.1:8000", "https://127.0.0.1:8001/", "http://site.example/a", "https://site.example:443/a",
])
@pytest.mark.parametrize("base", ["https://www.site.example/x", "http://127.0.0.1:8000/a/b/", "http://site.example"])
def test_links_skipped_as_same_site_are_same_site(href, base):
    from urllib.parse import urljoin

    from crawler.extract.source import _base_netloc, _stays_on_host, same_publisher

    if _stays_on_host(href.strip(), _base_netloc(base)):
        target = urljoin(base, href.strip())
        assert target.startswith("http") and same_publisher(target, base)


def test_relative_links_skipped_and_foreign_ones_kept():
    body = ('<article><p>Text <a href="/a/1">Source</a>.</p><p><a href="page.html">Source link</a></p>'
            '<p><a href="/\twire.example/a">Source link</a></p>'
            '<p>Quelle: <a href="//dpa.example/meldung/5">dpa</a></p></article>')
    assert source_from_links(page(body=body), "https://www.site.example/x") == (
        "https://dpa.example/meldung/5", "Quelle: dpa")
    body = ('<article><p><a href="/a/1">Source link</a></p><p><a href="https://www.site.example/b">Source</a></p>'
            '<p>Via <a href="//www.site.example/c">us</a></p></article>')
    assert source_from_links(page(body=body), "https://www.site.example/x") == (None, None)


# One line per _PROMPT alternative (in its order), as a page could write it.
PROMPT_LINES = [
    "Sign up for our daily Newsletter", "Subscribe to the weekend newsletter!", "Get our free newsletter",
    "Inscrivez-vous a notre grande newsletter", "Abonnez-vous à notre newsletter", "Newsletter abonnieren",
    "Melden Sie sich jetzt für unseren Newsletter an", "Suscribete a nuestro gran boletin",
    "This website uses cookies.", "Nous utilisons des cookies", "Wir verwenden Cookies", "Utilizamos cookies",
    "Accept all cookies", "Your email address will not be published.", "Votre adresse e-mail ne sera pas publiee",
    "Required fields are marked *", "Save my name, email and website in this browser.",
    "Enregistrer mon nom, mon e-mail", "S'il vous plait entrez votre commentaire",
    "Please enter your comment!", "You have entered an incorrect email address!",
    "Vous avez entre une adresse email incorrecte!", "By submitting this form you agree to our terms",
    "(c) 2024 Example Media. All Rights Reserved.", "Tous droits reserves", "Alle Rechte vorbehalten",
    "Todos los derechos reservados", "Все права защищены", "Click here to subscribe",
    "Download our app", "This article was originally published by Example", "Syndicated from Example Wire",
    "The story first ran on Example.com", "Have a news tip? Write to us", "Contact us at desk@example.com",
    "Log in to comment", "To comment, please sign in", "Follow Jane Doe on Twitter",
]


@pytest.mark.parametrize("line", PROMPT_LINES)
def test_prompt_prefilter_lets_every_prompt_through(line):
    from crawler.extract.boilerplate import _PROMPT, _may_prompt

    for variant in (line, line.upper(), line.lower(), "Intro. " + line.swapcase() + " end"):
        if _PROMPT.search(variant):
            assert _may_prompt(variant), variant
    assert is_boilerplate(line)


def _all_test_pages():
    data = Path(__file__).parent / "data"
    for path in sorted(data.rglob("*.htm*")):
        raw = path.read_bytes()
        yield path.name, gzip.decompress(raw) if path.suffix == ".gz" else raw


def test_one_walk_finds_what_the_xpath_searches_found():
    from crawler.extract.metadata import _first_title, _h1s, forget_page, json_ld_objects, page_elements

    for name, raw in _all_test_pages():
        tree = load_html(decode_html(raw))
        try:
            for tag in ("meta", "script", "title", "h1", "link"):
                assert page_elements(tree, tag) == tree.xpath(f"//{tag}"), (name, tag)
            assert _first_title(tree) is tree.find(".//title"), name
            assert _h1s(tree) == tree.xpath("//h1"), name
            scripts = tree.xpath('//script[@type="application/ld+json"]')
            assert len(json_ld_objects(tree)) >= bool(scripts and any((s.text or "").strip() for s in scripts)), name
            # From an element below the root, the document-wide searches are kept.
            body = tree.find(".//body")
            if body is not None:
                assert _h1s(body) == tree.xpath("//h1"), name
                assert _first_title(body) is body.find(".//title"), name
        finally:
            forget_page()


# -- benchmark scoring ---------------------------------------------------------------------------

def test_shingle_scoring_as_the_benchmark_readme_says():
    assert shingles("one two three") == {("one", "two", "three"): 1}
    assert sum(shingles("a b c d e").values()) == 2
    assert score_page("a b c d e", "a b c d e") == (1.0, 1.0)
    precision, recall = score_page("a b c d e f", "a b c d e")
    assert precision == pytest.approx(2 / 3) and recall == 1.0
    assert score_page("", "a b c d") == (None, 0.0)
    corpus = score_corpus([("a b c d", "a b c d"), ("", "w x y z")])
    assert corpus["precision"] == 1.0 and corpus["recall"] == 0.5 and corpus["empty"] == 1


def test_benchmark_command_prints_the_side_by_side_table(tmp_path, capsys):
    truth = json.loads((AEB / "ground-truth.json").read_text("utf-8"))
    subset = dict(list(sorted(truth.items()))[:3])
    (tmp_path / "html").mkdir()
    for page_id in subset:
        shutil.copy(AEB / "html" / f"{page_id}.html.gz", tmp_path / "html")
    (tmp_path / "ground-truth.json").write_text(json.dumps(subset), "utf-8")
    assert bench_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 pages" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:4]}
    assert set(rows) == {"newswatch", "trafilatura"}
    assert 0.5 < float(rows["newswatch"][1]) <= 1.0
    assert bench_main([str(tmp_path / "missing")]) == 2


def test_benchmark_reads_plain_html_too(tmp_path, capsys):
    (tmp_path / "html").mkdir()
    first = sorted(json.loads((AEB / "ground-truth.json").read_text("utf-8")).items())[0]
    (tmp_path / "html" / f"{first[0]}.html").write_bytes(gzip.decompress((AEB / "html" / f"{first[0]}.html.gz").read_bytes()))
    (tmp_path / "ground-truth.json").write_text(json.dumps(dict([first])), "utf-8")
    assert bench_main([str(tmp_path), "--only", "newswatch"]) == 0
    assert "1 pages" in capsys.readouterr().out
