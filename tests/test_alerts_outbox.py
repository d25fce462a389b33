"""The alert outbox on SQLite and PostgreSQL: once per story, retries, dead letters, digests, floods, crashes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from crawler.alerts.notifiers import NotifierRegistry
from crawler.alerts.outbox import Dispatcher, DispatchResult, alert_id, enqueue_alerts, next_digest_time
from crawler.alerts.subscriptions import add_subscription
from crawler.exceptions import ConfigError
from crawler.store.schema import alerts

from alerts_support import DrivenClock, WebhookReceiver, make_store, module_pg_store

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 14, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def alerts_pg_store(pg_server):
    yield from module_pg_store(pg_server)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    store, own = make_store(request, tmp_path)
    yield store
    if own:
        store.dispose()


@pytest.fixture
def receiver():
    server = WebhookReceiver(secret="s3cret").start()
    yield server
    server.stop()


def subscribe(store, name="korea", targets=(), **kwargs) -> dict:
    with store.begin() as conn:
        return add_subscription(conn, name, "korea", list(targets), secret="s3cret", **kwargs)


def article(n: int, source="Example News") -> dict:
    return {"title": f"Story {n} about Korea", "url": f"https://news.example.org/{n}", "source": source,
            "text": f"Text of story {n}: Korea said something. " * 5, "published": T0}


def enqueue(store, sub, n, now=T0, story=None, source="Example News", **kwargs) -> list[str]:
    with store.begin() as conn:
        return enqueue_alerts(conn, subscription=sub, article=article(n, source), story_id=story or f"story-{n}",
                              article_id=n, terms=["korea"], story_size=1, now=now, **kwargs)


def rows(store, **where) -> list[dict]:
    query = select(alerts).order_by(alerts.c.created_at, alerts.c.id)
    for key, value in where.items():
        query = query.where(alerts.c[key] == value)
    with store.begin() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def dispatcher(store, clock, **kwargs) -> Dispatcher:
    kwargs.setdefault("rng", random.Random(7))
    return Dispatcher(store, NotifierRegistry(), clock=clock, **kwargs)


# -- enqueue --------------------------------------------------------------------------

def test_one_alert_per_target_and_story(store, receiver, tmp_path):
    sub = subscribe(store, targets=[receiver.url, f"file://{tmp_path}/a.jsonl"])
    ids = enqueue(store, sub, 1)
    assert sorted(ids) == sorted(alert_id("korea", "story-1", t) for t in sub["targets"])
    assert enqueue(store, sub, 1) == []  # the same article again
    assert enqueue(store, sub, 2, story="story-1", source="Other Wire") == []  # a copy of the story
    assert len(rows(store)) == 2
    payload = rows(store)[0]["payload"]
    assert payload["id"] in ids and payload["title"] == "Story 1 about Korea" and payload["terms"] == ["korea"]
    assert payload["highlights"] and payload["snippet"][slice(*payload["highlights"][0])] == "Korea"


def test_enqueue_rolls_back_with_the_article_transaction(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    with pytest.raises(RuntimeError):
        with store.begin() as conn:
            enqueue_alerts(conn, subscription=sub, article=article(1), story_id="story-1", article_id=1,
                           terms=["korea"], story_size=1, now=T0)
            raise RuntimeError("storing the article failed")
    assert rows(store) == []


def test_paused_subscription_and_revisions(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    assert enqueue(store, dict(sub, paused=True), 1) == []
    assert len(enqueue(store, sub, 1)) == 1
    revised = dict(article(1), revision=2)
    with store.begin() as conn:
        assert enqueue_alerts(conn, subscription=sub, article=revised, story_id="story-1", article_id=1,
                              terms=[], story_size=1, now=T0) == []
        again = enqueue_alerts(conn, subscription=dict(sub, alert_revisions=True), article=revised,
                               story_id="story-1", article_id=1, terms=[], story_size=1, now=T0)
    assert again == [alert_id("korea", "story-1", receiver.url, revision=2)]
    # the pipeline's item for a changed page: revision_of and the new content hash
    changed = dict(article(1), revision_of=1, content_hash=1234)
    with store.begin() as conn:
        args = dict(article=changed, story_id="story-1", article_id=1, terms=[], story_size=1, now=T0)
        first = enqueue_alerts(conn, subscription=dict(sub, alert_revisions=True), **args)
        assert enqueue_alerts(conn, subscription=dict(sub, alert_revisions=True), **args) == []
    assert len(first) == 1 and rows(store, id=first[0])[0]["payload"]["revised"] is True


# -- sending, retries, dead letters ---------------------------------------------------

def test_dispatch_sends_once_with_signature(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    [aid] = enqueue(store, sub, 1)
    clock = DrivenClock(T0)
    result = dispatcher(store, clock).dispatch_due()
    assert (result.sent, result.retried, result.dead) == (1, 0, 0)
    assert list(receiver.delivered) == [aid] and receiver.bad_signatures == 0
    assert receiver.delivered[aid]["alerts"][0]["url"] == "https://news.example.org/1"
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["lease"]) == ("sent", 1, None)
    assert dispatcher(store, clock).dispatch_due().sent == 0
    assert len(receiver.requests) == 1


def test_retries_with_exponential_backoff_and_jitter(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    enqueue(store, sub, 1)
    receiver.respond(500, times=3)
    clock = DrivenClock(T0)
    outbox = dispatcher(store, clock, base_delay=10, max_delay=3600)
    delays = []
    for attempt in range(1, 4):
        assert outbox.dispatch_due().retried == 1
        [row] = rows(store)
        assert row["status"] == "pending" and row["attempts"] == attempt and "HTTP 500" in row["last_error"]
        delay = (row["next_attempt_at"] - naive(clock.now)).total_seconds()
        ceiling = 10 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
        delays.append(delay)
        clock.advance(delay - 1)
        assert outbox.dispatch_due() == DispatchResult()  # not due yet: nothing happens
        clock.advance(1)
    assert delays == sorted(delays)
    assert outbox.dispatch_due().sent == 1
    assert rows(store)[0]["status"] == "sent" and len(receiver.requests) == 4


def test_429_retry_after_is_honoured(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    enqueue(store, sub, 1)
    receiver.respond(429, {"Retry-After": "120"})
    clock = DrivenClock(T0)
    outbox = dispatcher(store, clock, base_delay=1)
    assert outbox.dispatch_due().retried == 1
    assert rows(store)[0]["next_attempt_at"] == naive(T0 + timedelta(seconds=120))
    clock.advance(119)
    assert outbox.dispatch_due().sent == 0 and len(receiver.requests) == 1
    clock.advance(1)
    assert outbox.dispatch_due().sent == 1


def test_dead_letter_after_max_attempts_then_retry_dead(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    [aid] = enqueue(store, sub, 1)
    receiver.respond(503, times=3)
    clock = DrivenClock(T0)
    outbox = dispatcher(store, clock, max_attempts=3, base_delay=5)
    results = []
    for _ in range(3):
        results.append(outbox.dispatch_due())
        clock.advance(3600)
    assert [(r.retried, r.dead) for r in results] == [(1, 0), (1, 0), (0, 1)]
    [dead] = outbox.list_alerts(status="failed")
    assert dead["id"] == aid and dead["attempts"] == 3 and "gave up after 3 attempts" in dead["last_error"]
    assert outbox.dispatch_due().sent == 0
    assert outbox.retry_dead() == 1
    assert outbox.dispatch_due().sent == 1
    assert outbox.list_alerts(status="dead") == [] and list(receiver.delivered) == [aid]


def test_refused_alert_is_dead_at_once_and_retry_dead_by_id(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    ids = enqueue(store, sub, 1) + enqueue(store, sub, 2)
    receiver.respond(410, times=2)
    clock = DrivenClock(T0)
    outbox = dispatcher(store, clock)
    assert outbox.dispatch_due().dead == 2
    assert outbox.retry_dead([ids[1]]) == 1
    assert outbox.dispatch_due().sent == 1
    assert {a["id"]: a["status"] for a in outbox.list_alerts()} == {ids[0]: "dead", ids[1]: "sent"}


def test_unknown_target_is_dead_with_its_name(store):
    with store.begin() as conn:
        conn.execute(alerts.insert().values(id="x" * 64, subscription="ghost", story_id="s", target="gopher://x/",
                                            kind="article", payload={}, status="pending", attempts=0,
                                            next_attempt_at=naive(T0), created_at=naive(T0)))
    outbox = dispatcher(store, DrivenClock(T0))
    assert outbox.dispatch_due().dead == 1
    assert "gopher" in outbox.list_alerts("dead")[0]["last_error"]


def test_jsonl_target_end_to_end(store, tmp_path):
    path = tmp_path / "alerts.jsonl"
    sub = subscribe(store, targets=[str(path)])
    ids = enqueue(store, sub, 1) + enqueue(store, sub, 2, now=T0 + timedelta(seconds=1))
    assert dispatcher(store, DrivenClock(T0 + timedelta(seconds=1))).dispatch_due().sent == 2
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ids


def test_two_dispatchers_never_send_the_same_alert(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    ids = [aid for n in range(30) for aid in enqueue(store, sub, n, flood_limit=0)]  # no flood batching
    clock = DrivenClock(T0)
    outboxes = [dispatcher(store, clock), dispatcher(store, clock)]
    results = [None, None]
    start = threading.Barrier(2)

    def work(i):
        start.wait()
        results[i] = outboxes[i].dispatch_due(limit=100)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results[0].sent + results[1].sent == 30
    assert len(receiver.requests) == 30 and receiver.repeats == 0  # no repeats even without dedupe
    assert sorted(receiver.delivered) == sorted(ids)


# -- digests --------------------------------------------------------------------------

@pytest.mark.parametrize("sub, now, expected", [
    # daily 08:00 Paris is 07:00 UTC in winter, 06:00 UTC in summer
    ({"mode": "daily", "digest_at": "08:00", "timezone": "Europe/Paris"}, "2026-01-14T09:00", "2026-01-15T07:00"),
    ({"mode": "daily", "digest_at": "08:00", "timezone": "Europe/Paris"}, "2026-01-14T06:59", "2026-01-14T07:00"),
    ({"mode": "daily", "digest_at": "08:00", "timezone": "Europe/Paris"}, "2026-01-14T07:00", "2026-01-15T07:00"),
    ({"mode": "daily", "digest_at": "08:00", "timezone": "Europe/Paris"}, "2026-07-01T12:00", "2026-07-02T06:00"),
    # across the spring DST change (29 March 2026) the local time is kept
    ({"mode": "daily", "digest_at": "08:00", "timezone": "Europe/Paris"}, "2026-03-28T08:00", "2026-03-29T06:00"),
    ({"mode": "daily", "digest_at": "18:30", "timezone": "America/New_York"}, "2026-01-14T23:00", "2026-01-14T23:30"),
    ({"mode": "weekly", "digest_day": "mon", "digest_at": "09:00", "timezone": "Asia/Tokyo"},
     "2026-01-14T09:00", "2026-01-19T00:00"),
    ({"mode": "weekly", "digest_day": "wed", "digest_at": "09:00", "timezone": "UTC"},
     "2026-01-14T08:00", "2026-01-14T09:00"),
    ({"mode": "hourly", "timezone": "UTC"}, "2026-01-14T09:00", "2026-01-14T10:00"),
    ({"mode": "hourly", "digest_at": "00:15", "timezone": "Asia/Kolkata"}, "2026-01-14T09:00", "2026-01-14T09:45"),
])
def test_next_digest_time(sub, now, expected):
    assert next_digest_time(sub, datetime.fromisoformat(now)) == datetime.fromisoformat(expected)


def test_next_digest_time_rejects_bad_values():
    with pytest.raises(ConfigError, match="time zone"):
        next_digest_time({"mode": "daily", "timezone": "Mars/Olympus_Mons"})
    with pytest.raises(ConfigError, match="HH:MM"):
        next_digest_time({"mode": "daily", "digest_at": "25:00"})


def test_daily_digest_is_one_message_at_local_time(store, receiver):
    sub = subscribe(store, targets=[receiver.url], mode="daily", digest_at="08:00", timezone="Europe/Paris")
    clock = DrivenClock(T0)  # 10:00 in Paris
    ids = []
    for n in range(3):
        ids += enqueue(store, sub, n, now=clock.advance(hours=2))
    assert enqueue(store, sub, 9, story="story-1", source="Other Wire", now=clock.advance(minutes=5)) == []
    assert {r["due_at"] for r in rows(store)} == {datetime(2026, 1, 15, 7, 0)}
    outbox = dispatcher(store, clock)
    clock.now = datetime(2026, 1, 15, 6, 59, tzinfo=timezone.utc)
    assert outbox.dispatch_due().sent == 0 and receiver.requests == []
    clock.now = datetime(2026, 1, 15, 7, 0, tzinfo=timezone.utc)
    assert outbox.dispatch_due().sent == 3
    [request] = receiver.requests
    document = request["json"]
    assert document["kind"] == "digest" and document["count"] == 3 and document["id"] not in ids
    assert [a["id"] for a in document["alerts"]] == ids
    assert document["alerts"][1]["also_reported_by"] == ["Other Wire"]
    assert {r["batch_id"] for r in rows(store)} == {document["id"]}


def test_digests_missed_while_down_are_sent_per_due_time(store, receiver):
    sub = subscribe(store, targets=[receiver.url], mode="daily", digest_at="08:00", timezone="Europe/Paris")
    enqueue(store, sub, 1, now=T0)
    enqueue(store, sub, 2, now=T0 + timedelta(hours=1))
    enqueue(store, sub, 3, now=T0 + timedelta(days=1))  # after the first digest time
    outbox = dispatcher(store, DrivenClock(T0 + timedelta(days=3)))  # the process was down
    assert outbox.dispatch_due().sent == 3
    assert sorted(r["json"]["count"] for r in receiver.requests) == [1, 2]


def test_failed_digest_is_retried_with_the_same_id(store, receiver):
    sub = subscribe(store, targets=[receiver.url], mode="hourly")
    for n in range(2):
        enqueue(store, sub, n)
    receiver.respond(500)
    clock = DrivenClock(T0 + timedelta(hours=1))
    outbox = dispatcher(store, clock, base_delay=10)
    assert outbox.dispatch_due().retried == 2
    enqueue(store, sub, 7, now=naive(clock.now) - timedelta(minutes=30))  # a straggler of the same hour
    clock.advance(3600)
    assert outbox.dispatch_due().sent == 3
    first = receiver.requests[0]
    later = {r["id"]: r["json"]["count"] for r in receiver.requests[1:]}
    assert len(receiver.requests) == 3 and first["json"]["count"] == 2
    assert later.pop(first["id"]) == 2  # the retry of the failed digest has its id
    assert list(later.values()) == [1]  # the straggler went as a message of its own


# -- floods ---------------------------------------------------------------------------

def test_flood_surplus_goes_as_one_batch(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    clock = DrivenClock(T0)
    for n in range(8):
        enqueue(store, sub, n, now=clock.advance(10), flood_limit=3, flood_window=600)
    kinds = [r["kind"] for r in rows(store)]
    assert kinds == ["article"] * 3 + ["batch"] * 5
    assert len({r["due_at"] for r in rows(store, kind="batch")}) == 1
    outbox = dispatcher(store, clock)
    assert outbox.dispatch_due().sent == 3 and len(receiver.requests) == 3
    clock.now = T0 + timedelta(seconds=40 + 600)
    assert outbox.dispatch_due().sent == 5
    batch = receiver.requests[-1]["json"]
    assert batch["kind"] == "batch" and batch["count"] == 5 and len(receiver.requests) == 4
    # after the window, instant alerts again
    clock.advance(3600)
    enqueue(store, sub, 99, now=clock.now, flood_limit=3, flood_window=600)
    assert rows(store)[-1]["kind"] == "article"


# -- crash safety ---------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from crawler.alerts.notifiers import NotifierRegistry
    from crawler.alerts.outbox import Dispatcher, enqueue_alerts
    from crawler.alerts.subscriptions import get_subscription
    from crawler.store.repository import Store

    url, stage = sys.argv[1], sys.argv[2]
    store = Store.from_url(url)
    with store.begin() as conn:
        sub = get_subscription(conn, "korea")
        for n in range(5):
            enqueue_alerts(conn, subscription=sub, article={"title": f"Story {n}", "url": f"https://x.org/{n}",
                           "text": "korea " * 20}, story_id=f"story-{n}", article_id=n, terms=["korea"],
                           story_size=1)
    print("enqueued", flush=True)
    if stage == "send":
        Dispatcher(store, NotifierRegistry()).dispatch_due()
    sys.stdin.read()  # wait to be killed
""")


@pytest.mark.parametrize("stage", ["send", "before-send"])
def test_sigkill_during_send_loses_nothing_and_repeats_nothing(store, stage):
    db_url = store.test_url
    receiver = WebhookReceiver(secret="s3cret", hold_first=(stage == "send")).start()
    try:
        subscribe(store, targets=[receiver.url])
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, stage], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
        try:
            assert child.stdout.readline().strip() == "enqueued"
            if stage == "send":
                assert receiver.arrived.wait(30), "the child never sent"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        receiver.release()
        statuses = sorted(r["status"] for r in rows(store))
        assert statuses == (["pending"] * 4 + ["sending"] if stage == "send" else ["pending"] * 5)
        # restart: a new dispatcher after the dead one's lease has expired
        clock = DrivenClock(datetime.now(timezone.utc) + timedelta(seconds=301))
        result = dispatcher(store, clock).dispatch_due()
        assert result.sent == 5
        assert len(receiver.delivered) == 5  # every alert delivered...
        assert receiver.repeats == (1 if stage == "send" else 0)  # ...the interrupted one repeated, and dropped
        assert all(r["status"] == "sent" for r in rows(store))
    finally:
        receiver.stop()


def test_lease_protects_a_send_in_progress(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    enqueue(store, sub, 1)
    clock = DrivenClock(T0)
    with store.begin() as conn:  # another dispatcher holds the lease
        conn.execute(update(alerts).values(status="sending", lease="other",
                                           next_attempt_at=naive(T0 + timedelta(seconds=300))))
    outbox = dispatcher(store, clock)
    assert outbox.dispatch_due().sent == 0
    clock.advance(300)
    assert outbox.dispatch_due().sent == 1 and len(receiver.requests) == 1


def test_a_sender_dying_every_time_ends_dead(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    enqueue(store, sub, 1)
    with store.begin() as conn:
        conn.execute(update(alerts).values(status="sending", lease="gone", attempts=3,
                                           next_attempt_at=naive(T0)))
    result = dispatcher(store, DrivenClock(T0), max_attempts=3).dispatch_due()
    assert result.dead == 1 and receiver.requests == []
    assert "lease expired" in rows(store)[0]["last_error"]


def test_rows_without_attempts_left_become_dead(store, receiver):
    sub = subscribe(store, targets=[receiver.url])
    enqueue(store, sub, 1)
    with store.begin() as conn:  # queued under a larger max_attempts
        conn.execute(update(alerts).values(attempts=5))
    outbox = dispatcher(store, DrivenClock(T0), max_attempts=3)
    assert outbox.dispatch_due().dead == 1 and receiver.requests == []
    assert outbox.retry_dead() == 1 and outbox.dispatch_due().sent == 1


def test_email_digest_end_to_end(store, request):
    import email
    import email.policy

    from aiosmtpd.controller import Controller

    from crawler.alerts.notifiers import EmailNotifier

    from alerts_support import SmtpCollector, free_port

    handler = SmtpCollector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    request.addfinalizer(controller.stop)
    sub = subscribe(store, targets=["mailto:reader@example.org"], mode="daily", digest_at="08:00",
                    timezone="Europe/Paris")
    with store.begin() as conn:
        enqueue_alerts(conn, subscription=sub, article={"title": "<img src=x onerror=alert(1)> Korea",
                                                        "text": "Seoul said <b>Korea</b> would", "url": "https://x.org/1"},
                       story_id="s1", article_id=1, terms=["korea"], story_size=3, now=T0)
    enqueue(store, sub, 2)
    registry = NotifierRegistry(notifiers={"email": EmailNotifier("127.0.0.1", controller.port)})
    outbox = Dispatcher(store, registry, clock=DrivenClock(datetime(2026, 1, 15, 7, 0, tzinfo=timezone.utc)))
    assert outbox.dispatch_due().sent == 2
    [envelope] = handler.messages
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;<mark>Korea</mark>&lt;/b&gt;" in html
    assert "digest, 2 stories" in message["Subject"]
