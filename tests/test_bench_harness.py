"""The throughput benchmark's generated newsroom and harness, at a small size: the pages
are what the benchmark claims (distinct, realistic size, behind feeds), the baseline
fetches every page, and a crawl stores every article exactly once. No speed is asserted."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import sys
from datetime import datetime, timezone

import pytest

from conftest import ROOT

if str(ROOT) not in sys.path:  # bench/ is not an installed package: run from the checkout
    sys.path.insert(0, str(ROOT))

from bench.harness import ServedNewsroom, add_subscriptions, generate_queries, measure, run_baseline, run_newswatch
from bench.newsroom_gen import PER_FEED, Newsroom

EPOCH = datetime(2026, 11, 1, tzinfo=timezone.utc)
ARTICLES, TEMPLATES = 60, 3


@pytest.fixture(scope="module")
def room():
    return Newsroom(ARTICLES, TEMPLATES, epoch=EPOCH)


@pytest.fixture(scope="module")
def served():
    with ServedNewsroom(ARTICLES, TEMPLATES, epoch=EPOCH) as newsroom:
        yield newsroom


def test_pages_are_deterministic_distinct_and_realistically_sized(room):
    again = Newsroom(ARTICLES, TEMPLATES, epoch=EPOCH)
    assert [room.page(i) for i in (0, 31, 59)] == [again.page(i) for i in (0, 31, 59)]
    assert len({a.path for a in room.articles}) == ARTICLES
    assert len({a.title for a in room.articles}) == ARTICLES
    sizes = {}
    for article in room.articles:
        page = room.page(article.index)
        assert page.count(b"<p>") >= 8 and b"<script" in page and b"<nav" in page and b"comments" in page
        sizes.setdefault(article.site, []).append(len(page))
    # Templates span the 30-120 KB range: the smallest site near 30 KB, the largest near 120 KB.
    assert 26_000 < min(sizes[0]) and max(sizes[0]) < 45_000
    assert 100_000 < min(sizes[TEMPLATES - 1]) and max(sizes[TEMPLATES - 1]) < 130_000


def test_bodies_share_almost_no_shingles(room):
    from crawler.dedupe.fingerprints import shingles

    sets = [shingles("\n\n".join(room.paragraphs(i))) for i in range(ARTICLES)]
    worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2))
    assert worst < 0.1, worst


def test_every_article_is_in_exactly_one_feed_of_at_most_50(room):
    from crawler.spiders.parsing import parse_feed

    base = "http://127.0.0.1:9"
    listed = []
    kinds = set()
    for name in room.feeds:
        content_type, body = room.feed(name, base)
        kinds.add(content_type.split(";")[0])
        entries = parse_feed(body, f"{base}/feeds/{name}")
        assert 0 < len(entries) <= PER_FEED
        listed += [e.url for e in entries]
    assert sorted(listed) == sorted(room.url(i, base) for i in range(ARTICLES))
    big = Newsroom(5000, 20, epoch=EPOCH)
    assert len(big.feeds) == 100 and {len(v) for v in big.feeds.values()} == {PER_FEED}
    assert {big.feed_kind(name) for name in big.feeds} == {"rss", "atom"}


def test_generated_queries_are_distinct_and_valid(room):
    from crawler.alerts.query import parse_query

    queries = generate_queries(room, 300)
    assert len(set(queries)) == 300
    for query in queries:
        parse_query(query)


def test_measure_sees_memory_and_cpu_of_child_processes():
    code = ("import multiprocessing as m, time\n"
            "def work():\n    b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)\n"
            "if __name__ == '__main__':\n    p = m.Process(target=work); p.start(); p.join()\n"
            "    sum(i * i for i in range(3_000_000))\n")
    result = measure([[sys.executable, "-c", code]])
    assert result.returncodes == [0]
    assert result.peak_rss > 80 * 2**20  # the grandchild's pages are counted
    assert result.cpu > 0.1


def test_baseline_fetches_every_page_once(served, tmp_path):
    before = served.requests()
    result = run_baseline(served, tmp_path)
    after = served.requests()
    assert result.pages == ARTICLES and result.extra["extracted"] == ARTICLES
    fetched = {path: after[path] - before[path] for path in served.article_paths()}
    assert set(fetched.values()) == {1}, fetched
    assert sum(after[p] - before[p] for p in served.room.feed_paths()) == len(served.room.feeds)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_crawl_stores_every_article_exactly_once(served, tmp_path, processes, db_url):
    """Contenders 2, 2a and 3 at a small size, on both backends."""
    queries = generate_queries(served.room, 50)
    before = served.requests()
    result = run_newswatch(served, db_url, tmp_path, queries, "crawl", ["--no-send", "--processes", processes])
    after = served.requests()
    assert result.extra["errors"] == 0
    assert result.extra["articles"] == result.extra["urls"] == result.extra["new"] == ARTICLES
    assert result.extra["stories"] == ARTICLES  # near-duplicate detection clustered nothing
    assert {path: after[path] - before[path] for path in served.article_paths()} == \
        {path: 1 for path in served.article_paths()}
    lines = [json.loads(line) for line in (tmp_path / "articles.jsonl").read_text("utf-8").splitlines()]
    assert sorted(a["url"] for a in lines) == sorted(served.base_url + p for p in served.article_paths())
    titles = {a.title for a in served.room.articles}
    assert {a["title"] for a in lines} == titles


def test_ratio_line_gives_the_ratio_of_medians_and_the_ratio_within_each_run():
    from bench.__main__ import ratio_line
    from bench.harness import Measurement, Result

    def result(wall, cpu):
        return Result("run", 1000, Measurement(wall, cpu, 0, 0, [0]))

    newswatch = [result(4.0, 8.0), result(5.0, 9.0), result(4.0, 8.0)]  # 250, 200, 250 pages/s
    baseline = [result(3.0, 6.0), result(4.0, 7.0), result(3.6, 6.0)]  # 333, 250, 278 pages/s
    line = ratio_line("ratio 2/1", newswatch, baseline, 0.85)
    assert line.startswith("ratio 2/1: 0.90 by pages/s, 0.75 by CPU per page (target >= 0.85) OK")
    assert line.endswith("within each run: 0.75, 0.80, 0.90")
    assert "BELOW TARGET" in ratio_line("r", newswatch, baseline, 0.95)
    assert "within each run" not in ratio_line("r", newswatch[:1], baseline[:1], 0.85)
    assert ratio_line("r", [], baseline, 0.85) == "r: not measured"


def test_ceiling_line_says_what_2_over_1_the_peer_target_needs():
    from bench.__main__ import ceiling_line
    from bench.harness import Measurement, Result

    def result(pages, wall, cpu):
        return Result("run", pages, Measurement(wall, cpu, 0, 0, [0]))

    baseline = [result(1000, 4.0, 8.0), result(1000, 5.0, 9.0)]  # 250, 200 pages/s: median 225
    peer = [result(100, 2.0, 4.0), result(100, 2.5, 5.0)]  # 50, 40 pages/s: median 45
    line = ceiling_line(baseline, peer)
    # 225 / 45 = 5; CPU per page: 8.5 ms against 45 ms
    assert line.startswith("ratio 1/4 (baseline / news-please): 5.00 by pages/s, 5.29 by CPU per page; ")
    assert "2/4 >= 10 needs 2/1 >= 2.00" in line
    assert ceiling_line([], peer).endswith("not measured")


@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_database_file_alone_holds_what_the_crawl_stored(tmp_path, processes):
    """SQLite keeps recent commits in the write-ahead log (``-wal``) until a checkpoint;
    the crawl closes its connections at the end, which copies the log into the database
    file. A copy of the ``.db`` file alone (a backup, a file sent to a colleague) has
    every article, in one process (with its extraction workers) as in two. (Before, a
    crawl of a few hundred pages left megabytes of articles in ``-wal`` only.)"""
    from conftest import parse_summary, run_cli

    db = tmp_path / "crawl.db"
    with ServedNewsroom(300, 20) as newsroom:
        add_subscriptions(f"sqlite:///{db}", generate_queries(newsroom.room, 20), (tmp_path / "alerts.jsonl").as_uri())
        result = run_cli("crawl", *newsroom.feed_urls(), "--db", f"sqlite:///{db}", "-o", str(tmp_path / "out.jsonl"),
                         "--no-send", "--processes", processes)
    assert parse_summary(result.stderr)["new"] == 300
    # Looked at before anything opens the database again (the last connection to close
    # would copy the log back itself).
    assert not db.with_name("crawl.db-wal").exists()
    copy = tmp_path / "copy" / "crawl.db"
    copy.parent.mkdir()
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 300
    finally:
        conn.close()
