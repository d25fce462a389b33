"""End to end, through the real CLI and real Scrapy crawls against the fake newsroom."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest

from conftest import NEWSROOM_DATA, ROOT, SEED_DATA, load_manifest, parse_summary, publish_held_back, read_jsonl, run_cli

SEED_PATH = "/2023/09/12/russia-having-to-beg-north-korea-for-support-us-state-dept-spox/"
ARTICLE_PATHS = {e["path"] for e in load_manifest() if e["file"] != "g7.html"}


def fold(text: str) -> str:
    """Compare paragraphs modulo the typography normalisation extraction applies
    (quote style, NBSP and spacing inside quotes)."""
    text = unicodedata.normalize("NFKC", text)
    for quote in "«»“”„‟":
        text = text.replace(quote, '"')
    text = text.replace("‘", "'").replace("’", "'")
    return " ".join(text.replace('"', ' " ').split())


def article_pages(room) -> list[str]:
    return [p for p in room.requested() if p.split("?")[0] in ARTICLE_PATHS | {"/2024/05/24/g7-finance-ministers-meet/"}]


def test_crawl_stores_clean_articles_and_refetches_nothing(newsroom, db_url, tmp_path):
    out1 = tmp_path / "run1.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", db_url, "-o", str(out1),
                     "--watch", "Kim Jong Un", "--watch", "wildfires Canada")
    summary = parse_summary(result.stderr)
    articles = {a["canonical_url"]: a for a in read_jsonl(out1)}
    assert summary["new"] == len(ARTICLE_PATHS) == len(articles), result.stderr
    assert summary["errors"] == 0

    seed = next(a for a in articles.values() if a["url"].endswith(SEED_PATH))
    expected = json.loads((SEED_DATA / "seed-page.expected.json").read_text("utf-8"))
    assert seed["title"] == expected["title"]
    paragraphs = seed["text"].split("\n\n")
    assert [fold(p) for p in paragraphs] == [fold(p) for p in expected["paragraphs"]]
    assert seed["published"].startswith("2023-09-12")
    assert seed["language"] == "en"
    assert seed["site_name"] == expected["site_name"]
    assert seed["source_url"] == expected["source_url"]
    for boilerplate in expected["boilerplate"]:
        assert boilerplate not in seed["text"], boilerplate
    assert seed["matched"] == ["Kim Jong Un"]
    assert seed["story_id"] and seed["duplicate_of"] is None
    for field in ("url", "canonical_url", "title", "text", "published", "authors", "language", "site_name",
                  "source_url", "story_id", "duplicate_of", "matched"):
        assert all(field in a for a in articles.values()), field

    wildfires = next(a for a in articles.values() if "wildfires" in a["url"])
    assert wildfires["matched"] == ["wildfires Canada"]
    assert wildfires["authors"] == ["Emily Carter"]
    assert "Advertisement" not in wildfires["text"] and "newsletter" not in wildfires["text"]
    others = [a for a in articles.values() if a not in (seed, wildfires)]
    assert all(a["matched"] == [] for a in others)

    russian = next(a for a in articles.values() if "vystavka" in a["url"])
    assert "международная книжная выставка" in russian["text"] and russian["language"] == "ru"
    french = next(a for a in articles.values() if "pistes" in a["url"])
    assert "métropole de Lyon" in french["text"] and french["language"] == "fr"

    # Second crawl: the feed answers 304 and no article page is requested again.
    before = len(newsroom.requested())
    out2 = tmp_path / "run2.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", db_url, "-o", str(out2))
    assert parse_summary(result.stderr)["new"] == 0
    assert read_jsonl(out2) == []
    later = newsroom.requests[before:]
    assert not [r for r in later if r[1] in ARTICLE_PATHS]
    feed_requests = [r for r in later if r[1] == "/feeds/main.rss"]
    assert feed_requests and ("If-None-Match" in feed_requests[0][2] or "If-Modified-Since" in feed_requests[0][2])

    # The newsroom publishes one more article: the third crawl stores exactly that one.
    publish_held_back(newsroom)
    before = len(newsroom.requested())
    out3 = tmp_path / "run3.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", db_url, "-o", str(out3),
                     "--watch", "Kim Jong Un")
    new = read_jsonl(out3)
    assert [a["title"] for a in new] == ["G7 finance ministers meet amid tariff dispute"]
    assert parse_summary(result.stderr)["new"] == 1
    later = [r[1] for r in newsroom.requests[before:]]
    assert not [p for p in later if p in ARTICLE_PATHS], later
    assert new[0]["matched"] == []


@pytest.mark.parametrize("feed", ["/feeds/main.atom", "/feeds/main.json", "/"])
def test_atom_json_feed_and_home_page_discovery(newsroom, sqlite_url, tmp_path, feed):
    out = tmp_path / "out.jsonl"
    result = run_cli("crawl", newsroom.url(feed), "--db", sqlite_url, "-o", str(out))
    assert {a["url"].split("/", 3)[3] for a in read_jsonl(out)} == {p.lstrip("/") for p in ARTICLE_PATHS}, \
        result.stderr


def test_a_page_url_is_crawled_as_one_article(newsroom, sqlite_url, tmp_path):
    out = tmp_path / "out.jsonl"
    run_cli("crawl", newsroom.url(SEED_PATH + "?utm_source=x&fbclid=y#top"), "--db", sqlite_url, "-o", "-")
    result = run_cli("crawl", newsroom.url(SEED_PATH), "--db", sqlite_url, "-o", str(out))
    assert read_jsonl(out) == []  # the same page, once its URL is canonicalised
    assert parse_summary(result.stderr)["new"] == 0


def test_bad_input_is_counted_and_the_rest_is_stored(newsroom, sqlite_url, tmp_path):
    from datetime import datetime, timezone

    bad = {"/bad/404": ("status", {"code": 404}), "/bad/500": ("status", {"code": 500}),
           "/bad/slow": ("slow", {"seconds": 4}), "/bad/binary": ("binary", {}),
           "/bad/empty": ("empty", {}), "/bad/garbage": ("garbage", {})}
    for path, (kind, options) in bad.items():
        newsroom.publish(path, b"<html></html>", f"Broken {path}", published=datetime(2024, 1, 1, tzinfo=timezone.utc))
        newsroom.fault(path, kind, **options)
    newsroom.publish("/bad/feed-item", b"", "x", feeds=("broken",))
    newsroom.fault("/feeds/broken.rss", "malformed_feed")
    out = tmp_path / "out.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), newsroom.url("/feeds/broken.rss"),
                     newsroom.url("/feeds/missing.rss"), "--db", sqlite_url, "-o", str(out),
                     "-s", "DOWNLOAD_TIMEOUT=1", "-s", "RETRY_TIMES=1", "-s", "RETRY_BACKOFF_BASE=0.05")
    summary = parse_summary(result.stderr)
    assert summary["new"] == len(ARTICLE_PATHS) == len(read_jsonl(out))
    assert summary["errors"] >= 7, result.stderr  # 404, 500, slow, binary, empty, malformed feed, missing feed
    for path in ("/bad/404", "/bad/500", "/bad/slow", "/bad/binary", "/bad/empty", "/feeds/broken.rss",
                 "/feeds/missing.rss"):
        assert result.stderr.count(newsroom.url(path)) >= 1, path
    # The 500 was retried (with backoff) before giving up, and logged once.
    assert newsroom.requested().count("/bad/500") == 2
    assert result.stderr.count(newsroom.url("/bad/500") + ":") == 1


def test_robots_txt_is_obeyed(newsroom, sqlite_url, tmp_path):
    newsroom.publish("/private/secret", (NEWSROOM_DATA / "wildfires.html").read_bytes(), "Secret", feeds=("priv",))
    run_cli("crawl", newsroom.url("/feeds/priv.rss"), "--db", sqlite_url, "-o", str(tmp_path / "o.jsonl"))
    assert "/private/secret" not in newsroom.requested()
    assert any("newswatch" in r[2].get("User-Agent", "") for r in newsroom.requests)


def test_no_more_requests_at_once_to_a_site_than_its_concurrency_allows(newsroom, sqlite_url):
    """Scrapy 2.19's own downloader starts every queued request for a host at once, up to
    CONCURRENT_REQUESTS (scrapy/scrapy#6982); newswatch's keeps to the per-domain limit."""
    for path in ARTICLE_PATHS:
        newsroom.fault(path, "slow", seconds=0.5)  # the pages' answers overlap
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", sqlite_url, "--no-send",
                     "-s", "CONCURRENT_REQUESTS=16", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2")
    assert parse_summary(result.stderr)["new"] == len(ARTICLE_PATHS) > 2
    assert newsroom.max_in_flight == 2


def test_scrapy_crawl_still_works(newsroom, tmp_path):
    db = f"sqlite:///{tmp_path / 'scrapy.db'}"
    out = tmp_path / "scrapy.jsonl"
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "feeds", "-a",
                             f"urls={newsroom.url('/feeds/main.rss')}", "-s", f"NEWSWATCH_DB={db}",
                             "-O", f"{out}:jsonlines"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == len(ARTICLE_PATHS)


def test_extract_command_prints_the_clean_seed_article():
    result = run_cli("extract", str(SEED_DATA / "seed-page.html"), "--url",
                     "https://www.actu-monde.example" + SEED_PATH)
    article = json.loads(result.stdout)
    expected = json.loads((SEED_DATA / "seed-page.expected.json").read_text("utf-8"))
    assert article["title"] == expected["title"]
    assert len(article["text"].split("\n\n")) == len(expected["paragraphs"])
    assert article["language"] == "en" and article["source_url"] == expected["source_url"]


def test_invalid_watch_query_is_refused_with_its_position(tmp_path):
    result = run_cli("crawl", "http://127.0.0.1:9/feed", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                     "--watch", '"unterminated', check=False)
    assert result.returncode == 2
    assert "position" in result.stderr


def test_a_crawl_opens_no_remote_code_endpoint(newsroom, sqlite_url):
    """Scrapy 2.19 starts by default an HTTP server that runs Python code sent to it;
    an unattended crawler must not, nor load it (and its HTTP stack, aiohttp). The
    telnet console (a Python shell on a port) is off, and not loaded either."""
    script = ("import sys\n"
              "from crawler.runner import build_settings, crawl_once\n"
              f"stats = crawl_once([{newsroom.url('/feeds/main.rss')!r}], build_settings(db={sqlite_url!r}))\n"
              "print(stats.get('item_scraped_count', 0), 'scrapy.extensions.remote_control' in sys.modules, "
              "'aiohttp' in sys.modules, 'scrapy.extensions.telnet' in sys.modules, "
              "'twisted.conch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    scraped, *loaded = result.stdout.split()
    assert int(scraped) > 0, result.stderr
    assert loaded == ["False"] * 4
    enabled = result.stderr.split("Enabled extensions:", 1)[1].split("]", 1)[0]
    assert "RemoteControl" not in enabled and "Telnet" not in enabled


def test_no_debug_record_is_made_during_a_crawl_logging_at_info(newsroom, sqlite_url):
    """Scrapy puts the root logger back to NOTSET when a crawler applies its settings and
    filters at its handler: every debug line of every library (Scrapy's per request,
    trafilatura's per page) would be built as a record and thrown away there."""
    script = ("import logging\n"
              "made = []\n"
              "factory = logging.getLogRecordFactory()\n"
              "def counting(*args, **kwargs):\n"
              "    record = factory(*args, **kwargs)\n"
              "    if record.levelno < logging.INFO and record.name.startswith(('trafilatura', 'scrapy.core')):\n"
              "        made.append(record.name)\n"
              "    return record\n"
              "logging.setLogRecordFactory(counting)\n"
              "from crawler.runner import build_settings, crawl_once\n"
              f"settings = build_settings(db={sqlite_url!r}, overrides={{'LOG_LEVEL': 'INFO', 'EXTRACT_WORKERS': 0}})\n"
              f"stats = crawl_once([{newsroom.url('/feeds/main.rss')!r}], settings)\n"
              "print(stats.get('item_scraped_count', 0), len(made), sorted(set(made)))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    scraped, made, names = result.stdout.split(" ", 2)
    assert int(scraped) > 0, result.stderr
    assert int(made) == 0, names
