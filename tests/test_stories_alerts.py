"""One alert per (subscription, story), even when a later copy joins two stories into one."""

import json
from datetime import datetime, timedelta, timezone

from crawler.dedupe.fingerprints import content_hash
from crawler.extract import extract_article

from conftest import run_cli

SENTENCES = [f"The harbour authority in Port Valen said on Monday that dredging phase {i} would "
             f"move {i * 1200} tonnes of silt before the ferry season, according to engineer report {i}."
             for i in range(1, 25)]
FIRST, SECOND = SENTENCES[:12], SENTENCES[12:]
PART_ONE, PART_TWO, FULL = "Port Valen dredging, part one", "Port Valen dredging, part two", "Port Valen dredging report"


def page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="og:type" content="article"></head><body><article><h1>{title}</h1>'
            f"{body}</article></body></html>")


def body_hash(title: str, paragraphs: list[str]) -> int:
    """The body's content hash as an unsigned number, the order story ids sort in."""
    text = extract_article(page(title, paragraphs), "http://127.0.0.1/x")["text"]
    return content_hash(text) & 0xFFFF_FFFF_FFFF_FFFF


def merging_copy() -> list[str]:
    """The whole report, with a closing line chosen so that its content hash is the smallest
    of the three (story ids are the smallest member hash): the merged story then gets an id
    that no earlier alert had."""
    lowest = min(body_hash(PART_ONE, FIRST), body_hash(PART_TWO, SECOND))
    for n in range(1000):
        paragraphs = FIRST + SECOND + [f"Filed by the harbour desk, edition {n}."]
        if body_hash(FULL, paragraphs) < lowest:
            return paragraphs
    raise AssertionError("no variant with a smaller hash")


def test_a_copy_that_merges_two_alerted_stories_is_not_alerted_again(newsroom, sqlite_url, tmp_path):
    target = tmp_path / "alerts.jsonl"
    run_cli("subs", "add", "harbour", "dredging harbour", "--notify", str(target), "--db", sqlite_url)
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    newsroom.publish("/a/part-one", page(PART_ONE, FIRST), "Part one", t0, feeds=("h",))
    newsroom.publish("/b/part-two", page(PART_TWO, SECOND), "Part two",
                     t0 + timedelta(minutes=1), feeds=("h",))
    out = tmp_path / "one.jsonl"
    run_cli("crawl", newsroom.url("/feeds/h.rss"), "--db", sqlite_url, "-o", str(out))
    first_run = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({a["story_id"] for a in first_run}) == 2
    assert len(target.read_text().splitlines()) == 2

    newsroom.publish("/c/full", page(FULL, merging_copy()), "Full report",
                     t0 + timedelta(minutes=2), feeds=("h",))
    out = tmp_path / "two.jsonl"
    run_cli("crawl", newsroom.url("/feeds/h.rss"), "--db", sqlite_url, "-o", str(out))
    [copy] = [json.loads(line) for line in out.read_text().splitlines()]
    assert copy["story_id"] not in {a["story_id"] for a in first_run}  # a new, merged story id
    assert len(target.read_text().splitlines()) == 2  # and still no third alert
