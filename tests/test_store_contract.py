"""The Store contract, on every backend (SQLite and PostgreSQL)."""

from datetime import datetime

from crawler.store import Store
from crawler.store.articles import save_article
from crawler.store import schema
from sqlalchemy import select


def _item(url, text="Body text.", **extra):
    return {"url": url, "canonical_url": url, "title": "T", "text": text, "content_hash": hash(text) & 0x7FFFFFFF,
            "story_id": "s-1", "published": "2024-05-21T10:01:00+02:00", "authors": ["A B"], **extra}


def test_sources_are_created_once_and_remember_validators(db_url):
    store = Store.from_url(db_url)
    first = store.get_source("https://a.example/feed", "A")
    again = store.get_source("https://a.example/feed")
    assert first["id"] == again["id"] and again["name"] == "A"
    store.save_validators(first["id"], '"etag-1"', "Tue, 12 Sep 2023 06:35:12 GMT")
    restarted = Store.from_url(db_url)
    row = restarted.get_source("https://a.example/feed")
    assert (row["etag"], row["last_modified"]) == ('"etag-1"', "Tue, 12 Sep 2023 06:35:12 GMT")
    store.dispose()
    restarted.dispose()


def test_known_urls_and_guids_and_revisions(db_url):
    store = Store.from_url(db_url)
    with store.begin() as conn:
        article_id = save_article(conn, _item("https://a.example/1", guid="g-1"), None)
    assert store.known_urls(["https://a.example/1", "https://a.example/2"]) == {"https://a.example/1"}
    assert store.known_guids(["g-1", "g-2", None]) == {"g-1"}
    with store.begin() as conn:
        same_id = save_article(conn, _item("https://a.example/1", text="Changed body.", revision_of=article_id), None)
        row = conn.execute(select(schema.articles).where(schema.articles.c.id == article_id)).mappings().one()
        history = conn.execute(select(schema.article_revisions)).mappings().all()
    assert same_id == article_id and row["revision"] == 2 and row["text"] == "Changed body."
    assert [h["text"] for h in history] == ["Body text."]
    assert row["published"] == datetime(2024, 5, 21, 8, 1)  # stored as UTC
    assert store.count_articles() == 1
    store.dispose()


def test_a_failed_transaction_writes_nothing(db_url):
    store = Store.from_url(db_url)
    try:
        with store.begin() as conn:
            save_article(conn, _item("https://a.example/x"), None)
            raise RuntimeError("crash between article and alerts")
    except RuntimeError:
        pass
    assert store.count_articles() == 0
    store.dispose()


def test_a_database_from_an_older_version_is_upgraded(db_url):
    from sqlalchemy import text

    store = Store.from_url(db_url)
    store.get_source("https://a.example/feed")
    with store.begin() as conn:  # as if made before the `health_since` column existed
        conn.execute(text("ALTER TABLE sources DROP COLUMN health_since"))
    store.dispose()
    upgraded = Store.from_url(db_url)
    upgraded.update_source(upgraded.get_source("https://a.example/feed")["id"],
                           health_since=datetime(2024, 1, 1))
    assert upgraded.get_source("https://a.example/feed")["health_since"] == datetime(2024, 1, 1)
    upgraded.dispose()


def test_indexes_added_since_are_created_on_an_older_database(db_url):
    from sqlalchemy import inspect, text

    store = Store.from_url(db_url)
    with store.begin() as conn:  # as if made before the alerts' lease index existed
        conn.execute(text("DROP INDEX ix_alerts_leased"))
        assert "ix_alerts_leased" not in {i["name"] for i in inspect(conn).get_indexes("alerts")}
    store.dispose()
    upgraded = Store.from_url(db_url)
    with upgraded.begin() as conn:
        assert "ix_alerts_leased" in {i["name"] for i in inspect(conn).get_indexes("alerts")}
    upgraded.dispose()


def test_indexes_an_older_version_made_and_newer_ones_replace_are_dropped(db_url):
    from sqlalchemy import inspect, text

    from crawler.store.schema import RETIRED_INDEXES

    store = Store.from_url(db_url)
    with store.begin() as conn:  # the alerts' indexes as an older newswatch made them
        for name in ("ix_alerts_story_subscription", "ix_alerts_leased", "ix_alerts_batched"):
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("CREATE INDEX ix_alerts_subscription_story ON alerts (subscription, story_id)"))
        conn.execute(text("CREATE INDEX ix_alerts_story ON alerts (story_id)"))
        conn.execute(text("CREATE INDEX ix_alerts_lease ON alerts (lease)"))
        conn.execute(text("CREATE INDEX ix_alerts_batch ON alerts (batch_id)"))
    store.dispose()
    upgraded = Store.from_url(db_url)
    with upgraded.begin() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes("alerts")}
    upgraded.dispose()
    assert {"ix_alerts_story_subscription", "ix_alerts_leased", "ix_alerts_batched"} <= names
    assert not names & set(RETIRED_INDEXES["alerts"])


def test_the_outbox_look_ups_use_their_indexes(db_url):
    """The partial indexes serve "= ?" and "IN (...)" look-ups with bound values."""
    from sqlalchemy import select, text

    from crawler.store.schema import alerts

    queries = {
        "ix_alerts_leased": select(alerts.c.id).where(alerts.c.lease == "token"),
        "ix_alerts_batched": select(alerts.c.id).where(alerts.c.batch_id.in_(["a", "b"])),
        "ix_alerts_story_subscription": select(alerts.c.id).where(alerts.c.story_id == "s",
                                                                   alerts.c.subscription.in_(["x", "y"])),
    }
    store = Store.from_url(db_url)
    with store.begin() as conn:
        for index, query in queries.items():
            compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
            if conn.dialect.name == "sqlite":
                params = tuple(compiled.params[name] for name in compiled.positiontup)
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params).all()
                described = " ".join(str(row[-1]) for row in plan)
            else:  # an empty table: make the planner say whether it *can* use the index
                conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = conn.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params).all()
                described = " ".join(row[0] for row in plan)
            assert index in described, f"{index} not used: {described}"
    store.dispose()