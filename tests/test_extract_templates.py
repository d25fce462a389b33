"""Site templates: learned from several pages of one site, applied to the next, stored in the DB."""

from __future__ import annotations

import pickle
import re
import unicodedata
from pathlib import Path

import pytest
import xxhash

from crawler.extract import SiteTemplate, extract_article, learn_from_page, load_template, save_template
from crawler.extract.templates import MIN_PAGES, fingerprint
from crawler.store import open_store

SITE = Path(__file__).parent / "data" / "extract" / "site-template"
HOST = "www.harbourtimes.example"
SUPPORT = "The Harbour Times is independent and reader-funded."
NEWSDESK = "Got a story? Message our newsdesk"
REPEATED_ONCE = "The harbour authority has been under pressure to dredge the channel"


def site_page(n: int) -> tuple[bytes, str]:
    return (SITE / f"page-{n}.html").read_bytes(), f"https://{HOST}/news/2024/04/story-{n}/"


def extract(n: int, template: SiteTemplate | None = None) -> dict:
    html, url = site_page(n)
    return extract_article(html, url, template=template)


def learned(pages) -> SiteTemplate:
    template = SiteTemplate()
    for n in pages:
        learn_from_page(template, extract(n, template))
    return template


def test_generic_extraction_keeps_the_sites_own_furniture():
    # the precondition that makes templates necessary
    text = extract(6)["text"]
    assert SUPPORT in text and NEWSDESK in text


def test_one_page_or_a_few_teach_nothing():
    for pages in ([1], list(range(1, MIN_PAGES))):
        text = extract(6, learned(pages))["text"]
        assert SUPPORT in text and NEWSDESK in text


def test_lines_on_most_pages_are_removed_from_the_next_page():
    template = learned(range(1, 6))
    article = extract(6, template)
    assert SUPPORT not in article["text"] and NEWSDESK not in article["text"]
    assert any(SUPPORT in line for line in article["boilerplate_removed"])
    assert article["paragraphs"][0].startswith("Repairs to the Victorian pier")
    assert len(article["paragraphs"]) == 4
    assert sorted(template.boilerplate()) == sorted(
        line for line in template.samples.values() if line.startswith((SUPPORT[:20], NEWSDESK[:20])))


def test_article_text_that_repeats_once_is_kept():
    template = learned(range(1, 6))  # pages 1 and 3 share one sentence
    for n in (1, 3):
        article = extract(n, template)
        assert REPEATED_ONCE in article["text"]
        assert SUPPORT not in article["text"]


def test_template_is_picklable_for_worker_processes():
    template = learned(range(1, 6))
    copy = pickle.loads(pickle.dumps(template))
    assert copy == template
    assert NEWSDESK not in extract(6, copy)["text"]


def test_the_copy_for_workers_is_small_and_removes_the_same_lines():
    template = learned(range(1, 6))
    small = template.for_extraction()
    assert len(small.counts) == 2 and not small.samples
    assert len(pickle.dumps(small)) < len(pickle.dumps(template)) / 5
    assert extract(6, small)["paragraphs"] == extract(6, template)["paragraphs"]
    assert not learned([1]).for_extraction().counts


def test_fingerprint_ignores_case_digits_punctuation_and_accents():
    assert fingerprint("- Advertisement -") == fingerprint("ADVERTISEMENT")
    assert fingerprint("Call 0800 555 0199") == fingerprint("call 0900 123 4567!")
    assert fingerprint("Édition du soir") == fingerprint("edition du soir")
    assert fingerprint("Advertisement") != fingerprint("Advertisements here")
    assert fingerprint("  --  ") is None


def _reference_fingerprint(text: str) -> int | None:
    """The definition the fast paths of ``fingerprint`` must agree with."""
    key = unicodedata.normalize("NFKD", text.lower())
    key = "".join(c for c in key if not unicodedata.combining(c))
    key = re.sub(r"[\W_]+", " ", re.sub(r"\d+", "0", key)).strip()
    return xxhash.xxh64_intdigest(key.encode("utf-8")) - (1 << 63) if key else None


@pytest.mark.parametrize("text", [
    "", "   ", "---", "_", "0", "007", "a0b", "Page 1 of 12", "10.5% of 2,000_000", "a__b  c\t\nd",
    "\x00\x1f\x7f", "Subscribe!  Now...", "Café crème", "Ünïcödé 12", "Kelvin \u212a", "İstanbul",
    "ﬁnancial ½", "Источник: ТАСС 2024", "٣ أيام", "a\u0301\u0327b", "x\u00a0y\u2009z",
])
def test_fingerprint_fast_paths_agree_with_the_definition(text):
    assert fingerprint(text) == _reference_fingerprint(text)


def test_template_round_trips_through_the_database(db_url):
    store = open_store(db_url)
    template = SiteTemplate()
    for n in range(1, 4):
        learn_from_page(template, extract(n, template))
    with store.begin() as conn:
        save_template(conn, HOST, template)
    with store.begin() as conn:
        first = load_template(conn, HOST)
    assert first.pages == 3 and first.counts == template.counts
    # a restart: continue learning from the stored template, save the increments only
    for n in (4, 5):
        learn_from_page(first, extract(n, first))
    with store.begin() as conn:
        save_template(conn, HOST, first)
        save_template(conn, HOST, first)  # nothing new: no double counting
    with store.begin() as conn:
        restored = load_template(conn, HOST)
        other = load_template(conn, "other.example")
    assert restored.pages == 5
    assert restored.counts == first.counts
    assert other.pages == 0 and not other.counts
    article = extract(6, restored)
    assert SUPPORT not in article["text"] and NEWSDESK not in article["text"]
    assert len(article["paragraphs"]) == 4


def test_two_crawlers_of_one_site_add_up_their_counts(db_url):
    store = open_store(db_url)
    a, b = SiteTemplate(), SiteTemplate()
    for n in (1, 2):
        learn_from_page(a, extract(n))
    for n in (3, 4):
        learn_from_page(b, extract(n))
    with store.begin() as conn:
        save_template(conn, HOST, a)
        save_template(conn, HOST, b)
    with store.begin() as conn:
        merged = load_template(conn, HOST)
    assert merged.pages == 4
    assert merged.counts[fingerprint(SUPPORT + " Every contribution helps keep our local journalism free "
                                     "for everyone in the bay.")] == 4
    assert merged.active and NEWSDESK not in extract(6, merged)["text"]


def test_a_large_save_adds_every_count(db_url):
    """Increments go as one statement over arrays on PostgreSQL, an executemany on
    SQLite: a save of many lines (a site's first pages, a long crawl) stores them all
    with their samples, and a second save adds to the stored counts."""
    _UPSERT_ROWS = 500

    store = open_store(db_url)
    lines = [(fp, f"line {fp}") for fp in range(1, 2 * _UPSERT_ROWS + 7)]
    template = SiteTemplate()
    template.learn_lines(lines)
    with store.begin() as conn:
        save_template(conn, HOST, template)
    template.learn_lines(lines[:_UPSERT_ROWS + 1])
    with store.begin() as conn:
        save_template(conn, HOST, template)
    with store.begin() as conn:
        stored = load_template(conn, HOST)
    assert stored.pages == 2
    assert stored.counts == {fp: 2 if fp <= _UPSERT_ROWS + 1 else 1 for fp, _ in lines}
    assert stored.samples[_UPSERT_ROWS + 3] == f"line {_UPSERT_ROWS + 3}"


@pytest.mark.parametrize("line", ["", "x" * 1000])
def test_empty_and_long_lines_are_not_learned(line):
    template = SiteTemplate()
    template.learn([line])
    assert template.pages == 1 and not template.counts


def test_for_extraction_keeps_exactly_the_boilerplate_lines_as_the_template_learns():
    """for_extraction looks only at lines seen on MIN_PAGES pages or more (kept as they
    are learned); what it keeps is every line the full rule calls boilerplate."""
    import random

    from crawler.extract.templates import MIN_PAGES, MIN_SHARE, SiteTemplate

    rng = random.Random(5)
    template = SiteTemplate(pages=3, counts={1: 3, 2: 1})  # as load_template fills one
    for page in range(300):
        lines = [(fp, f"line {fp}") for fp in rng.sample(range(40), 12)]
        lines += [(100, "menu"), (101, "footer")] if page % 5 else []
        template.learn_lines(lines)
        if page % 7 == 0:
            expected = {fp: n for fp, n in template.counts.items()
                        if template.active and n >= MIN_PAGES and n >= MIN_SHARE * template.pages}
            copy = template.for_extraction()
            assert copy.counts == expected and copy.pages == template.pages
    assert {100, 101} <= set(template.for_extraction().counts)


def test_take_increments_hands_over_the_counts_since_the_last_save():
    from crawler.extract.templates import SiteTemplate

    template = SiteTemplate()
    template.learn_lines([(1, "a"), (2, "b")])
    template.learn_lines([(1, "a")])
    increments = template.take_increments()
    assert (increments.pages, increments.new_pages, increments.new_counts) == (2, 2, {1: 2, 2: 1})
    assert increments.samples == {1: "a", 2: "b"}
    assert (template.new_pages, template.new_counts, template.counts) == (0, {}, {1: 2, 2: 1})
