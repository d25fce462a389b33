"""`newswatch crawl --processes N`: the sources split over N crawler processes sharing
one database, with the same articles stored once and one summary and output."""

from __future__ import annotations

from sqlalchemy import func, select

from conftest import NEWSROOM_DATA, load_manifest, parse_summary, read_jsonl, run_cli
from crawler.shards import _shared_hosts, split_sources
from crawler.store import open_store
from crawler.store.schema import articles

ARTICLE_PATHS = {e["path"] for e in load_manifest() if e["file"] != "g7.html"}


def test_split_sources_keeps_hosts_together_and_spreads_a_host_that_has_too_many():
    urls = ["https://a.example/feed", "https://b.example/feed", "https://a.example/other",
            "https://c.example/rss", "https://d.example/rss", "https://b.example/more"]
    shards = split_sources(urls, 2)
    assert sorted(i for shard in shards for i in shard) == list(range(len(urls)))
    for host in ("a.example", "b.example"):
        assert len([s for s in shards if any(host in urls[i] for i in s)]) == 1
    assert sorted(len(s) for s in shards) == [3, 3]
    assert split_sources(urls, 2) == shards  # deterministic
    assert _shared_hosts(urls, shards) == [1, 1]

    one_host = [f"http://127.0.0.1:8000/feeds/{n}.rss" for n in range(5)]
    shards = split_sources(one_host, 2)
    assert sorted(len(s) for s in shards) == [2, 3]
    assert _shared_hosts(one_host, shards) == [2, 2]  # each process halves its per-host concurrency
    assert split_sources(one_host[:1], 4) == [[0]]  # never more processes than sources


def test_crawl_in_two_processes_stores_each_article_once(newsroom, sqlite_url, tmp_path):
    # A second feed on the same host announces two of the articles again: both processes
    # may fetch them, one stores each.
    manifest = [e for e in load_manifest() if e["file"] != "g7.html"]
    for entry in manifest[:2]:
        newsroom.publish(entry["path"], (NEWSROOM_DATA / entry["file"]).read_bytes(), entry["title"],
                         feeds=("second",), content_type=f"text/html; charset={entry['charset']}")
    out = tmp_path / "out.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), newsroom.url("/feeds/second.rss"),
                     "--db", sqlite_url, "-o", str(out), "--processes", "2", "--watch", "wildfires Canada",
                     "--no-send")
    summary = parse_summary(result.stderr)
    assert result.stderr.count("sources=") == 1  # one summary, the total
    assert summary["sources"] == 2 and summary["errors"] == 0
    assert summary["new"] == len(ARTICLE_PATHS)
    lines = read_jsonl(out)
    assert len(lines) == len({a["canonical_url"] for a in lines}) == len(ARTICLE_PATHS)
    assert [a["matched"] for a in lines if "wildfires" in a["url"]] == [["wildfires Canada"]]
    with open_store(sqlite_url).begin() as conn:
        assert conn.execute(select(func.count()).select_from(articles)).scalar() == len(ARTICLE_PATHS)
    # The pages the two processes were sent to: every article at least once, each page of
    # the second feed at most twice.
    fetched = [p for p in newsroom.requested() if p in ARTICLE_PATHS]
    assert set(fetched) == ARTICLE_PATHS and len(fetched) <= len(ARTICLE_PATHS) + 2


def test_processes_creating_one_sqlite_database_at_once_all_succeed(tmp_path):
    """The processes of one crawl open a new database together: creating the schema is
    serialised by SQLite's write lock, so none finds a table half made by another."""
    import subprocess
    import sys

    from conftest import ROOT

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    go = tmp_path / "go"
    code = ("import os, sys, time\n"
            "from crawler.store import open_store\n"
            "print('ready', flush=True)\n"
            f"while not os.path.exists({str(go)!r}):\n"
            "    time.sleep(0.001)\n"
            f"open_store({url!r})\n")
    children = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for child in children:  # all imported, waiting: then they open the database together
        assert child.stdout.readline().strip() == "ready"
    go.touch()
    results = [(child.wait(timeout=120), child.stderr.read()) for child in children]
    for child in children:
        child.stdout.close()
        child.stderr.close()
    assert [code for code, _ in results] == [0] * 6, results
