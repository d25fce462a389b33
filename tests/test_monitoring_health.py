"""Source health: one notice when a source starts failing or falls silent, one when it
recovers, none in between (time driven by an injected clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crawler.alerts.subscriptions import add_subscription
from crawler.monitoring import assess_health, update_source_health, usual_gap
from crawler.store import Store
from crawler.store.schema import alerts, articles

T0 = datetime(2026, 1, 5, 12, 0)


@pytest.fixture
def store(db_url):
    store = Store.from_url(db_url)
    yield store
    store.dispose()


def health_alerts(store) -> list[dict]:
    with store.begin() as conn:
        rows = conn.execute(select(alerts).where(alerts.c.kind == "health").order_by(alerts.c.created_at)).mappings()
        return [dict(r) for r in rows]


def run(store, source_id, ok: bool, now: datetime, **kw):
    """Record a run the way the spider does, then let the health check look at it."""
    row = store.get_source("http://127.0.0.1/feed")
    if ok:
        store.update_source(source_id, consecutive_failures=0, last_success_at=now, last_run_at=now)
    else:
        store.update_source(source_id, consecutive_failures=(row["consecutive_failures"] or 0) + 1,
                            last_error="http://127.0.0.1/feed: HTTP 500", last_run_at=now)
    return update_source_health(store, source_id, now=now, **kw)


def test_failing_source_raises_one_alert_and_one_recovery(store):
    source = store.get_source("http://127.0.0.1/feed", "wire")
    targets = ["http://127.0.0.1:9/hooks/ops", "file:///tmp/ops.jsonl"]
    events = []
    now = T0
    for ok in [True, False, False, False, False, False, False, True, True, False, True]:
        now += timedelta(minutes=5)
        events.append(run(store, source["id"], ok, now, targets=targets, failures=3))
    assert events == [None, None, None, "failing", None, None, None, "recovered", None, None, None]
    sent = health_alerts(store)
    assert [a["payload"]["event"] for a in sent] == ["failing", "failing", "recovered", "recovered"]
    assert sorted(a["target"] for a in sent[:2]) == sorted(a["target"] for a in sent[2:]) == sorted(targets)
    failing = sent[0]["payload"]
    assert failing["kind"] == "health" and failing["source"] == "wire" and failing["url"] == "http://127.0.0.1/feed"
    assert "3 runs in a row" in failing["title"] and "HTTP 500" in failing["snippet"]
    assert "recovered after 20m" in sent[2]["payload"]["title"]
    assert len({a["id"] for a in sent}) == 4  # stable, distinct ids
    assert store.get_source("http://127.0.0.1/feed")["health"] == "ok"


def test_without_health_targets_every_subscription_target_is_told(store):
    with store.begin() as conn:
        add_subscription(conn, "a", "korea", ["http://127.0.0.1:9/hooks/a"])
        add_subscription(conn, "b", "japan", ["http://127.0.0.1:9/hooks/b", "http://127.0.0.1:9/hooks/a"])
    source = store.get_source("http://127.0.0.1/feed", "wire")
    for minute in range(2):
        run(store, source["id"], False, T0 + timedelta(minutes=minute), targets=None, failures=2)
    assert sorted(a["target"] for a in health_alerts(store)) == ["http://127.0.0.1:9/hooks/a",
                                                                 "http://127.0.0.1:9/hooks/b"]


def add_articles(store, source_id, times):
    with store.begin() as conn:
        for i, when in enumerate(times):
            conn.execute(articles.insert().values(
                url=f"http://127.0.0.1/a{when:%H%M%S}{i}", canonical_url=f"http://127.0.0.1/a{when:%H%M%S}{i}",
                source_id=source_id, text="x", content_hash=i, story_id=f"s{i}-{when:%H%M%S}", fetched_at=when,
                authors=[]))
    store.update_source(source_id, last_new_at=max(times))


def test_silent_source_raises_one_alert_then_recovers_when_it_publishes(store):
    source = store.get_source("http://127.0.0.1/feed", "wire")
    add_articles(store, source["id"], [T0 + timedelta(minutes=10 * i) for i in range(8)])  # every 10 min
    last = T0 + timedelta(minutes=70)
    with store.begin() as conn:
        assert usual_gap(conn, source["id"]) == 600
    kw = dict(targets=["http://127.0.0.1:9/hooks/ops"], silence_factor=10, silence_min=3600)
    assert run(store, source["id"], True, last + timedelta(minutes=90), **kw) is None  # 90 min < 10 x 10 min
    assert run(store, source["id"], True, last + timedelta(minutes=101), **kw) == "silent"
    assert run(store, source["id"], True, last + timedelta(minutes=200), **kw) is None  # no second notice
    assert run(store, source["id"], False, last + timedelta(minutes=205), failures=1, **kw) is None  # still down
    add_articles(store, source["id"], [last + timedelta(minutes=210)])
    assert run(store, source["id"], True, last + timedelta(minutes=210), **kw) == "recovered"
    assert [a["payload"]["event"] for a in health_alerts(store)] == ["silent", "recovered"]
    assert "no new article since" in health_alerts(store)[0]["payload"]["title"]


def test_assess_health_needs_a_rhythm_before_calling_a_source_silent():
    row = {"consecutive_failures": 0, "last_new_at": T0, "health": "ok"}
    assert assess_health(row, failures=3, silence_factor=10, silence_min=60, gap=None,
                         now=T0 + timedelta(days=30)) == "ok"
    assert assess_health(row, failures=3, silence_factor=10, silence_min=60, gap=60,
                         now=T0 + timedelta(minutes=11)) == "silent"
    assert assess_health(dict(row, consecutive_failures=2), failures=3, silence_factor=10, silence_min=60, gap=60,
                         now=T0 + timedelta(minutes=11)) == "ok"  # below the threshold: unchanged
