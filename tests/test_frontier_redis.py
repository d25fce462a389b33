"""Scale-out: two crawlers sharing a Redis frontier and a PostgreSQL store fetch each page once."""

import os
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT, load_manifest, make_pg_schema_url, drop_pg_schema, parse_summary

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
REDIS_URL = os.environ.get("NEWSWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not answering at {REDIS_URL}")
        pytest.skip(f"Redis is not answering at {REDIS_URL}")
    prefix = "nwtest-" + uuid.uuid4().hex[:10]
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_two_crawlers_share_one_frontier(newsroom, pg_server, redis_prefix):
    client, prefix = redis_prefix
    schema, db = make_pg_schema_url(pg_server)
    try:
        command = [sys.executable, "-m", "crawler.cli", "crawl", newsroom.url("/feeds/main.rss"),
                   newsroom.url("/feeds/main.atom"), "--db", db, "-s", f"FRONTIER_REDIS_URL={REDIS_URL}",
                   "-s", f"FRONTIER_REDIS_PREFIX={prefix}"]
        crawlers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(2)]
        outputs = [c.communicate(timeout=240) for c in crawlers]
        assert [c.returncode for c in crawlers] == [0, 0], outputs
        summaries = [parse_summary(err) for _, err in outputs]
        articles = [e["path"] for e in load_manifest() if e["file"] != "g7.html"]
        assert sum(s["new"] for s in summaries) == len(articles), outputs
        for path in articles:  # RSS and Atom announce each page, two crawlers follow both feeds
            assert newsroom.requested().count(path) == 1, path
        assert client.exists(f"{prefix}:feeds:dupefilter")
        assert 0 < client.ttl(f"{prefix}:feeds:dupefilter") <= 600
    finally:
        drop_pg_schema(pg_server, schema)
