"""Subscription CRUD, validation and the schedules/*.toml sync, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from crawler.alerts.outbox import enqueue_alerts
from crawler.alerts.subscriptions import (
    add_subscription, get_subscription, list_subscriptions, remove_subscription, set_paused, sync_from_schedules,
    update_subscription,
)
from crawler.exceptions import ConfigError, QueryError
from crawler.store.repository import Store
from crawler.store.schema import alerts

from alerts_support import make_store, module_pg_store


@pytest.fixture(scope="module")
def alerts_pg_store(pg_server):
    yield from module_pg_store(pg_server)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def conn(request, tmp_path):
    store, own = make_store(request, tmp_path)
    with store.begin() as connection:
        yield connection
    if own:
        store.dispose()


@pytest.fixture
def sqlite_conn(sqlite_url):
    """Validation happens before any SQL: one backend is enough."""
    store = Store.from_url(sqlite_url)
    with store.begin() as connection:
        yield connection
    store.dispose()


def test_add_get_list_pause_remove(conn):
    sub = add_subscription(conn, "korea", 'korea OR "kim jong-un"', ["https://hooks.example.org/x"],
                           mode="daily", digest_at="8:05", timezone="Europe/Paris", languages=["EN", "fr"],
                           sources=["https://feeds.example.org/rss"], secret="s")
    assert sub["targets"] == ["https://hooks.example.org/x"]
    assert (sub["mode"], sub["digest_at"], sub["digest_day"], sub["timezone"]) == ("daily", "08:05", None,
                                                                                  "Europe/Paris")
    assert sub["languages"] == ["en", "fr"] and sub["origin"] == "cli" and sub["paused"] is False
    add_subscription(conn, "acme", "acme", ["mailto:me@example.org", "ntfy://acme-topic"], mode="weekly")
    assert get_subscription(conn, "acme")["digest_day"] == "mon"  # weekly defaults: Monday 08:00
    assert [s["name"] for s in list_subscriptions(conn)] == ["acme", "korea"]
    set_paused(conn, "acme", True)
    assert [s["name"] for s in list_subscriptions(conn, include_paused=False)] == ["korea"]
    set_paused(conn, "acme", False)
    assert len(list_subscriptions(conn, include_paused=False)) == 2
    assert remove_subscription(conn, "acme") is True
    assert remove_subscription(conn, "acme") is False
    assert get_subscription(conn, "acme") is None


def test_duplicate_name_is_refused(conn):
    add_subscription(conn, "korea", "korea", ["https://x.org/"])
    with pytest.raises(ConfigError, match="exists already"):
        add_subscription(conn, "korea", "other", ["https://x.org/"])


@pytest.mark.parametrize("kwargs, field, expected", [
    ({"mode": "monthly"}, "mode", "instant, hourly, daily, weekly"),
    ({"mode": "daily", "digest_at": "25:00"}, "digest_at", "HH:MM"),
    ({"mode": "daily", "digest_at": "8h"}, "digest_at", "HH:MM"),
    ({"mode": "weekly", "digest_day": "someday"}, "digest_day", "mon..sun"),
    ({"mode": "daily", "digest_day": "fri"}, "digest_day", "weekly"),
    ({"digest_at": "08:00"}, "digest_at", "digest modes"),
    ({"mode": "daily", "timezone": "Mars/Olympus_Mons"}, "timezone", "IANA"),
    ({"targets": []}, "targets", "at least one target"),
    ({"targets": ["gopher://x.org/"]}, "targets", "gopher"),
    ({"targets": ["mailto:nobody"]}, "targets", "not an e-mail address"),
    ({"targets": ["https:///nohost"]}, "targets", "host"),
    ({"query": "   "}, "query", "non-empty"),
    ({"name": "bad\x1b[31mname"}, "name", "printable"),
    ({"name": ""}, "name", "printable"),
])
def test_validation_names_the_field(sqlite_conn, kwargs, field, expected):
    conn = sqlite_conn
    values = {"name": "sub", "query": "korea", "targets": ["https://x.org/"]}
    values.update(kwargs)
    with pytest.raises(ConfigError) as info:
        add_subscription(conn, **values)
    assert field in str(info.value) and expected in str(info.value)
    assert list_subscriptions(conn) == []


def test_malformed_query_is_refused_with_position(sqlite_conn):
    conn = sqlite_conn
    pytest.importorskip("crawler.alerts.query")
    with pytest.raises(QueryError) as info:
        add_subscription(conn, "bad", "(korea", ["https://x.org/"])
    assert info.value.position == 6


def test_update_subscription(conn):
    add_subscription(conn, "korea", "korea", ["https://x.org/"], mode="daily", digest_at="07:00")
    sub = update_subscription(conn, "korea", mode="instant", targets=["https://y.org/"])
    assert (sub["mode"], sub["digest_at"], sub["targets"]) == ("instant", None, ["https://y.org/"])
    with pytest.raises(ConfigError, match="timezone"):
        update_subscription(conn, "korea", timezone="Nowhere/Land")
    with pytest.raises(ConfigError, match="no subscription"):
        update_subscription(conn, "missing", query="x")


def test_remove_deletes_its_alerts(conn):
    sub = add_subscription(conn, "korea", "korea", ["https://x.org/"])
    enqueue_alerts(conn, subscription=sub, article={"title": "t", "text": "korea"}, story_id="s1", article_id=1,
                   terms=["korea"], story_size=1, now=datetime(2026, 1, 1))
    assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == 1
    remove_subscription(conn, "korea")
    assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == 0


def test_sync_from_schedules_file_wins_and_removes_what_it_dropped(conn):
    add_subscription(conn, "cli-made", "acme", ["https://cli.example.org/"])
    add_subscription(conn, "shared", "old query", ["https://cli.example.org/"])
    declared = [
        {"name": "korea", "query": "korea", "targets": ["https://a.example.org/"], "file": "schedules/news.toml"},
        {"name": "shared", "query": "new query", "targets": ["https://b.example.org/"], "mode": "hourly",
         "file": "schedules/news.toml"},
        {"name": "tech", "query": "rust OR python", "targets": ["file:///tmp/tech.jsonl"],
         "file": "schedules/tech.toml"},
    ]
    report = sync_from_schedules(conn, declared)
    assert sorted(report["added"]) == ["korea", "tech"] and report["updated"] == ["shared"]
    shared = get_subscription(conn, "shared")
    assert (shared["query"], shared["mode"], shared["origin"]) == ("new query", "hourly",
                                                                   "schedules:schedules/news.toml")
    assert get_subscription(conn, "cli-made")["origin"] == "cli"

    # a pause made on the CLI survives a sync; the same declarations change nothing
    set_paused(conn, "korea", True)
    report = sync_from_schedules(conn, declared)
    assert report["updated"] == [] and sorted(report["unchanged"]) == ["korea", "shared", "tech"]
    assert get_subscription(conn, "korea")["paused"] is True

    # tech.toml deleted, korea edited: tech goes, korea follows the file, the CLI's stay
    declared = [dict(declared[0], query="korea OR pyongyang"), declared[1]]
    report = sync_from_schedules(conn, declared)
    assert report["removed"] == ["tech"] and report["updated"] == ["korea"]
    assert get_subscription(conn, "korea")["query"] == "korea OR pyongyang"
    assert sorted(s["name"] for s in list_subscriptions(conn)) == ["cli-made", "korea", "shared"]

    # nothing declared any more: every file-made subscription goes, the CLI one stays
    report = sync_from_schedules(conn, [])
    assert sorted(report["removed"]) == ["korea", "shared"]
    assert [s["name"] for s in list_subscriptions(conn)] == ["cli-made"]


def test_sync_validates_everything_before_writing(conn):
    declared = [
        {"name": "ok", "query": "korea", "targets": ["https://a.example.org/"], "file": "schedules/a.toml"},
        {"name": "bad", "query": "korea", "targets": ["https://a.example.org/"], "mode": "daily",
         "timezone": "Europe/Pariss", "file": "schedules/b.toml"},
    ]
    with pytest.raises(ConfigError) as info:
        sync_from_schedules(conn, declared)
    message = str(info.value)
    assert "schedules/b.toml" in message and "'bad'" in message and "timezone" in message
    assert list_subscriptions(conn) == []
    with pytest.raises(ConfigError, match="declared twice"):
        sync_from_schedules(conn, [declared[0], dict(declared[0], file="schedules/c.toml")])
