"""StorePipeline: articles arriving together share one transaction; a failing one is
the only one lost; each item's Deferred (StorePipeline.submit) fires with the stored item or its drop."""

import pytest
from scrapy.utils.test import get_crawler

from crawler.dedupe.stories import StoryIndex
from crawler.pipelines import AlreadyStored, StorePipeline
from crawler.store import Store
from crawler.store.schema import articles

WORDS = ("harbour council vote budget ferry tunnel mayor district school library river bridge "
         "tax market festival museum railway station airport hospital").split()


def _item(n, url=None):
    text = " ".join(WORDS[(n * 7 + i) % len(WORDS)] + str(n * 100 + i) for i in range(80))
    url = url or f"https://news.example/{n}"
    return {"url": url, "canonical_url": url, "title": f"Story {n}", "text": text,
            "content_hash": 1000 + n, "guid": None, "source": "news.example", "source_id": None}


def _pipeline(store, batch_size):
    crawler = get_crawler(settings_dict={"STORE_BATCH_SIZE": batch_size})
    crawler.spider = None
    return StorePipeline(crawler, store, StoryIndex(), batch_size=batch_size, batch_delay=60.0), crawler


def _stored_urls(store):
    with store.begin() as conn:
        return sorted(conn.execute(articles.select().with_only_columns(articles.c.url)).scalars())


def test_a_batch_is_stored_in_one_go_and_a_failing_article_is_the_only_one_lost(db_url):
    store = Store.from_url(db_url)
    pipeline, crawler = _pipeline(store, batch_size=3)
    first = _item(1)
    assert pipeline.store_many([first]) == [None]
    # The second repeats the first's canonical URL (as if another crawler stored it meanwhile).
    errors = pipeline.store_many([_item(2), _item(3, url=first["url"]), _item(4)])
    assert errors[0] is None and errors[2] is None and errors[1] is not None
    assert _stored_urls(store) == [f"https://news.example/{n}" for n in (1, 2, 4)]
    store.dispose()


def test_items_wait_for_their_batch_and_each_deferred_fires(db_url):
    store = Store.from_url(db_url)
    pipeline, crawler = _pipeline(store, batch_size=3)
    pipeline.store_many([_item(1)])
    results, failures = [], []
    for item in (_item(2), _item(3, url="https://news.example/1"), _item(4)):
        pipeline.submit(item).addCallbacks(results.append, failures.append)
        if len(results) + len(failures) == 0:
            assert _stored_urls(store) == ["https://news.example/1"]  # still waiting for the batch
    assert sorted(item["url"] for item in results) == ["https://news.example/2", "https://news.example/4"]
    assert len(failures) == 1 and failures[0].check(AlreadyStored)
    assert all(item["article_id"] and item["story_id"] for item in results)
    assert crawler.stats.get_value("newswatch/articles/new") == 2
    assert crawler.stats.get_value("newswatch/drops/already_stored") == 1
    store.dispose()


def test_what_still_waits_is_stored_when_the_spider_closes(db_url):
    store = Store.from_url(db_url)
    pipeline, _ = _pipeline(store, batch_size=10)
    fired = []
    pipeline.submit(_item(5)).addCallback(fired.append)
    assert not fired and _stored_urls(store) == []
    pipeline.close_spider()
    assert [item["url"] for item in fired] == ["https://news.example/5"]
    assert _stored_urls(store) == ["https://news.example/5"]
    store.dispose()


@pytest.mark.parametrize("batch_size", [1, 4])
def test_the_same_stories_whatever_the_batch_size(tmp_path, batch_size):
    store = Store.from_url(f"sqlite:///{tmp_path / 'b.db'}")
    pipeline, _ = _pipeline(store, batch_size=batch_size)
    items = [_item(n) for n in range(6)] + [dict(_item(0, url="https://copy.example/0"), content_hash=77)]
    for start in range(0, len(items), batch_size):
        assert pipeline.store_many(items[start:start + batch_size]) == [None] * len(items[start:start + batch_size])
    assert items[-1]["story_id"] == items[0]["story_id"]  # the copy joined the original's story
    assert len({item["story_id"] for item in items[:6]}) == 6
    store.dispose()


def test_dedupe_looks_up_on_one_connection_and_replaces_it_when_it_breaks(db_url):
    """DedupePipeline keeps one autocommit connection for its look-ups; on PostgreSQL a
    backend killed under it (a server restart, say) costs one retry, not the article."""
    from sqlalchemy import text

    from crawler.pipelines import AlreadyStored, DedupePipeline

    store = Store.from_url(db_url)
    pipeline, _ = _pipeline(store, batch_size=1)
    assert pipeline.store_many([_item(1)]) == [None]
    crawler = get_crawler(settings_dict={})
    dedupe = DedupePipeline(crawler, store)
    assert dedupe.process_item(_item(2))["duplicate_of"] is None
    first = dedupe._conn
    with pytest.raises(AlreadyStored):
        dedupe.process_item(_item(1))
    assert dedupe._conn is first  # the same connection, article after article
    if store.dialect == "postgresql":
        pid = first.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with store.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(AlreadyStored):
            dedupe.process_item(_item(1))
        assert dedupe._conn is not first
    dedupe.close_spider()
    store.dispose()


class _OtherWriter:
    """Another process's write transaction, as the database sees it: on SQLite a second
    connection in BEGIN IMMEDIATE, on PostgreSQL a second session holding the store's
    advisory write lock in an open transaction."""

    def __init__(self, db_url):
        if db_url.startswith("sqlite"):
            import sqlite3

            self.conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None, check_same_thread=False)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg
            from sqlalchemy.engine import make_url

            from crawler.store.repository import WRITE_LOCK_KEY, resolve_db_url

            url = make_url(resolve_db_url(db_url))
            self.conn = psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)
            self.conn.execute("SELECT pg_advisory_xact_lock(%d)" % WRITE_LOCK_KEY)

    def end(self, how="COMMIT"):
        self.conn.execute(how)

    def close(self):
        self.conn.close()


def test_begin_writing_does_not_queue_behind_another_writer(db_url):
    from crawler.exceptions import WriteLockBusy

    store = Store.from_url(db_url)
    other = _OtherWriter(db_url)
    with pytest.raises(WriteLockBusy, match="another process is writing"):
        with store.begin_writing(wait=False):
            pass
    other.end()
    with store.begin_writing(wait=False) as conn:  # free now; and the connection waits again as before
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        else:  # held by this transaction, to its end
            with Store.from_url(db_url).engine.connect() as third:
                from crawler.store.repository import WRITE_LOCK_KEY

                assert third.exec_driver_sql("SELECT pg_try_advisory_lock(%d)" % WRITE_LOCK_KEY).scalar() is False
    other.close()
    store.dispose()


def test_a_batch_that_finds_the_lock_taken_goes_back_to_the_queue_and_is_stored_later(db_url):
    store = Store.from_url(db_url)
    pipeline, crawler = _pipeline(store, batch_size=2)
    other = _OtherWriter(db_url)
    results = []
    try:
        for n in (1, 2):
            pipeline.submit(_item(n)).addCallbacks(results.append, results.append)
        assert results == [] and len(pipeline._waiting) == 2  # the batch is back in the queue
        assert crawler.stats.get_value("newswatch/store/lock_busy") == 1
        pipeline.submit(_item(3)).addCallbacks(results.append, results.append)  # tried again, still busy
        assert results == [] and len(pipeline._waiting) == 3
    finally:
        other.end("ROLLBACK")
        other.close()
    assert _stored_urls(store) == []
    pipeline.flush()  # what the retry timer calls
    assert sorted(item["url"] for item in results) == [f"https://news.example/{n}" for n in (1, 2, 3)]
    assert _stored_urls(store) == [f"https://news.example/{n}" for n in (1, 2, 3)]
    store.dispose()


def test_past_its_patience_or_at_the_close_a_batch_waits_for_the_lock(db_url):
    import threading

    store = Store.from_url(db_url)
    pipeline, crawler = _pipeline(store, batch_size=10)
    other = _OtherWriter(db_url)
    pipeline.submit(_item(1))
    pipeline.flush()
    assert _stored_urls(store) == [] and crawler.stats.get_value("newswatch/store/lock_busy") == 1
    released = threading.Event()

    def release_when_asked():
        released.wait(30)
        other.end()

    thread = threading.Thread(target=release_when_asked)
    thread.start()
    released.set()  # whenever the commit comes, the waiting flush gets the lock after it
    pipeline.close_spider()
    thread.join()
    other.close()
    assert _stored_urls(store) == ["https://news.example/1"]
    store.dispose()


def test_the_index_expiry_at_the_close_waits_for_the_write_lock(db_url):
    """Expiring old index rows is a write like the batches: it takes the write lock, so a
    batch of another process that read the buckets once never sees rows vanish under it."""
    import threading
    from datetime import datetime

    from crawler.store.schema import story_bands

    store = Store.from_url(db_url)
    pipeline, _ = _pipeline(store, batch_size=1)
    with store.begin() as conn:
        conn.execute(story_bands.insert().values(band=1, article_id=1,
                                                 created_at=datetime(2020, 1, 1)))
    other = _OtherWriter(db_url)
    closing = threading.Thread(target=pipeline._close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # waiting for the other writer's transaction
    other.end()
    closing.join(30)
    assert not closing.is_alive()
    with store.begin() as conn:
        assert conn.execute(story_bands.select()).first() is None  # expired once the lock was free
    other.close()
    store.dispose()
