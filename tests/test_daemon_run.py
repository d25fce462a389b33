"""`newswatch run` as a real subprocess against the fake newsroom, which also receives the
webhooks: alerted once, clean SIGTERM, SIGKILL and restart, SIGHUP reload, source health,
one scheduler per database, bad schedules refused."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import publish_held_back, run_cli
from daemon_helpers import (DaemonProcess, Db, SentryReceiver, g7_schedules, hook_ids, hooks, wait_for,
                            write_schedules)

from crawler.daemon.lock import current_owner
from crawler.store.schema import alerts, articles, runs

@pytest.fixture
def daemons():
    started: list[DaemonProcess] = []

    def start(*args, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(*args, **kwargs).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'daemon.db'}"
    return url


def test_new_matching_article_is_alerted_once_and_sigterm_exits_cleanly(tmp_path, newsroom, db, daemons):
    schedules = write_schedules(tmp_path / "schedules", g7_schedules(newsroom))
    daemon = daemons(tmp_path, schedules, db)
    state = Db(db)
    wait_for(lambda: state.runs("room") >= 1, what="the first run", daemon=daemon)
    assert hooks(newsroom, "/hooks/g7") == []  # nothing about G7 yet

    story = publish_held_back(newsroom)  # "G7 finance ministers meet amid tariff dispute"
    wait_for(lambda: hooks(newsroom, "/hooks/g7"), what="the G7 alert", daemon=daemon)
    runs_then = state.runs("room")
    wait_for(lambda: state.runs("room") >= runs_then + 3, what="three more runs", daemon=daemon)
    received = hooks(newsroom, "/hooks/g7")
    assert len(received) == 1, received
    body = json.loads(received[0]["body"])
    assert body["subscription"] == "g7" and body["alerts"][0]["title"] == story.title
    assert received[0]["headers"]["X-Newswatch-Alert-Id"] == body["id"]

    # A second scheduler on the same database is refused with a clear message.
    second = run_cli("run", "--schedules", str(schedules), "--db", db, check=False, timeout=60)
    assert second.returncode == 2
    assert "another scheduler is running on this database" in second.stderr

    status = run_cli("status", "--db", db, "--schedules", str(schedules))
    assert "Scheduler: running" in status.stdout
    assert "room" in status.stdout and "every 1s" in status.stdout
    assert "g7" in status.stdout and "Outbox: 0 pending" in status.stdout
    as_json = json.loads(run_cli("status", "--db", db, "--json").stdout)
    assert as_json["sources"][0]["consecutive_failures"] == 0 and as_json["sources"][0]["next_run_at"]

    # SIGTERM while a crawl is in flight: it may finish (grace period), is recorded, exit 0.
    newsroom.fault("/feeds/main.rss", "slow", times=1, seconds=2)
    asked = len(newsroom.requested("/feeds/main.rss"))
    wait_for(lambda: len(newsroom.requested("/feeds/main.rss")) > asked, what="the slow request", daemon=daemon)
    runs_before = state.count(runs)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()
    assert "1 crawl(s) in flight" in daemon.log() and "Stopped cleanly" in daemon.log()
    assert state.count(runs) == runs_before + 1  # the in-flight run finished and was recorded
    assert state.count(runs, runs.c.status != "ok") == 0
    assert current_owner(state.store) is None  # lease released


def test_sigkill_and_restart_lose_nothing_and_repeat_nothing(tmp_path, newsroom, db, daemons):
    from crawler.demo import make_article_page

    schedules = write_schedules(tmp_path / "schedules", g7_schedules(newsroom))
    extra = ["-s", "ALERTS_RETRY_BASE_DELAY=0.2", "-s", "ALERTS_RETRY_MAX_DELAY=0.5", "-s", "ALERTS_LEASE=3"]
    first = daemons(tmp_path, schedules, db, extra)
    state = Db(db)
    wait_for(lambda: state.runs("room") >= 1, what="the first run", daemon=first)

    newsroom.fault("/hooks/g7", "status", code=503)  # the receiver is down: the alert waits in the outbox
    publish_held_back(newsroom)
    wait_for(lambda: state.count(alerts, alerts.c.subscription == "g7") == 1, what="the queued alert", daemon=first)
    wait_for(lambda: hooks(newsroom, "/hooks/g7"), what="a refused delivery", daemon=first)
    first.signal(signal.SIGKILL)
    first.wait(30)

    # While the daemon is dead, another matching story is published.
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).replace(microsecond=0)
    newsroom.publish("/2024/06/01/finance-ministers-debt/", make_article_page(
        "Finance ministers agree on debt relief for island states",
        ["Finance ministers from twenty countries agreed on Saturday to suspend debt payments for island states "
         "hit by storms, a decision campaigners had sought for years.",
         "The deal covers loans worth several billion dollars and will be reviewed after two years, according to "
         "the communique published at the end of the meeting in Lisbon.",
         "Several delegations said the agreement should be extended to coastal countries in West Africa, where "
         "flooding has destroyed roads, schools and harbours this spring.",
         "Officials of the lending institutions said they would publish the list of eligible countries next month."],
        now), "Finance ministers agree on debt relief for island states", published=now)
    before = len(hooks(newsroom, "/hooks/g7"))
    newsroom.clear_faults()  # the receiver is back

    second = daemons(tmp_path, schedules, db, extra)  # takes over the dead daemon's lease at once
    wait_for(lambda: len(set(hook_ids(newsroom, "/hooks/g7", before))) >= 2, what="both alerts", daemon=second)
    runs_then = state.runs("room")
    wait_for(lambda: state.runs("room") >= runs_then + 3, what="three more runs", daemon=second)
    delivered = hook_ids(newsroom, "/hooks/g7", before)
    assert len(delivered) == len(set(delivered)) == 2, delivered  # each alert once, none lost
    assert state.count(alerts, alerts.c.subscription == "g7", alerts.c.status == "sent") == 2
    assert state.count(articles) == 7  # 5 at start + 2 published: each stored once
    second.signal(signal.SIGTERM)
    assert second.wait(60) == 0, second.log()


def test_schedule_change_is_picked_up_on_reload(tmp_path, newsroom, db, daemons):
    schedules = write_schedules(tmp_path / "schedules", g7_schedules(newsroom))
    daemon = daemons(tmp_path, schedules, db)
    state = Db(db)
    wait_for(lambda: state.runs("room") >= 1, what="the first run", daemon=daemon)
    assert newsroom.requested("/feeds/main.atom") == []

    write_schedules(schedules, g7_schedules(newsroom) + f"""
[[source]]
name = "room-atom"
url = "{newsroom.url('/feeds/main.atom')}"
every = "1s"
adaptive = {{ floor = "0.5s", ceiling = "2s" }}
""")
    reloaded = run_cli("reload", "--db", db)  # sends SIGHUP to the pid in the lease
    assert "SIGHUP" in reloaded.stdout
    wait_for(lambda: newsroom.requested("/feeds/main.atom"), what="the new source's first request", daemon=daemon)
    wait_for(lambda: state.runs("room-atom") >= 1, what="the new source's run", daemon=daemon)
    # Adaptive polling: nothing new after its first run (the backlog), so it backs off to the ceiling.
    wait_for(lambda: state.source("room-atom").get("poll_interval") == 2, what="the back-off", daemon=daemon)
    assert "Source room-atom: polling every 2s (was 1s)" in daemon.log()

    # A broken file is refused on reload; the daemon keeps running the schedules it has.
    (schedules / "news.toml").write_text(g7_schedules(newsroom, every="soon"), "utf-8")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "Schedules not reloaded" in daemon.log(), what="the refusal", daemon=daemon)
    assert "news.toml:5: source 'room': every: expected a duration" in daemon.log()
    atom_runs = state.runs("room-atom")
    wait_for(lambda: state.runs("room-atom") >= atom_runs + 2, what="more runs of the kept source", daemon=daemon)

    # Removing the source stops it.
    write_schedules(schedules, g7_schedules(newsroom))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "1 removed" in daemon.log(), what="the removal", daemon=daemon)
    time.sleep(0)  # (no fixed waits: count runs of the other source instead)
    atom_runs = state.runs("room-atom")
    room_runs = state.runs("room")
    wait_for(lambda: state.runs("room") >= room_runs + 3, what="three runs of the remaining source", daemon=daemon)
    assert state.runs("room-atom") <= atom_runs + 1  # at most the run that was in flight
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()


def test_broken_source_raises_one_health_alert_and_one_recovery(tmp_path, newsroom, db, daemons):
    """Also checks the Sentry Crons check-ins of those runs (real envelopes, loopback receiver)."""
    sentry = SentryReceiver()
    health = f"""
[health]
notify = ["{newsroom.url('/hooks/health')}"]
failures = 2
"""
    schedules = write_schedules(tmp_path / "schedules", g7_schedules(newsroom, every="0.5s", extra=health))
    newsroom.fault("/feeds/main.rss", "status", code=500)
    daemon = daemons(tmp_path, schedules, db, env={"SENTRY_DSN": sentry.dsn})
    state = Db(db)
    wait_for(lambda: hooks(newsroom, "/hooks/health"), what="the health alert", daemon=daemon)
    wait_for(lambda: (state.source("room").get("consecutive_failures") or 0) >= 5, what="more failed runs",
             daemon=daemon)
    received = hooks(newsroom, "/hooks/health")
    assert len(received) == 1
    alert = json.loads(received[0]["body"])["alerts"][0]
    assert alert["kind"] == "health" and alert["event"] == "failing" and alert["source"] == "room"
    assert "HTTP 500" in alert["snippet"]
    assert state.source("room")["health"] == "failing"

    newsroom.clear_faults()
    wait_for(lambda: len(hooks(newsroom, "/hooks/health")) >= 2, what="the recovery notice", daemon=daemon)
    runs_then = state.runs("room")
    wait_for(lambda: state.runs("room") >= runs_then + 3, what="three more runs", daemon=daemon)
    received = hooks(newsroom, "/hooks/health")
    assert [json.loads(h["body"])["alerts"][0]["event"] for h in received] == ["failing", "recovered"]
    assert state.source("room")["health"] == "ok"

    # Sentry Crons: every run opened a check-in and closed the same one, error then ok.
    wait_for(lambda: {c["status"] for c in sentry.checkins("newswatch-room")} >= {"in_progress", "error", "ok"},
             timeout=30, what="the check-ins")
    assert all(path == "/api/1/envelope/" for path in sentry.paths)
    checkins = sentry.checkins("newswatch-room")
    opened = [c for c in checkins if c["status"] == "in_progress"]
    closed = {c["check_in_id"]: c["status"] for c in checkins if c["status"] != "in_progress"}
    assert opened[0]["monitor_config"]["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}
    assert closed[opened[0]["check_in_id"]] == "error"  # the first runs failed ...
    assert list(closed.values())[-1] == "ok"  # ... the last ones succeeded
    sentry.close()

    # A crawl that hangs: the first SIGTERM waits for it, a second one exits at once.
    newsroom.fault("/feeds/main.rss", "hang", seconds=60)
    asked = len(newsroom.requested("/feeds/main.rss"))
    wait_for(lambda: len(newsroom.requested("/feeds/main.rss")) > asked, what="the hanging request", daemon=daemon)
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: "Stopping (SIGTERM)" in daemon.log(), what="the drain", daemon=daemon)
    assert daemon.process.poll() is None  # still waiting for the crawl
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 1
    assert "second SIGTERM: exiting now" in daemon.log()
    newsroom.release()


def test_bad_schedule_file_is_refused_at_start(tmp_path, db):
    schedules = write_schedules(tmp_path / "schedules", """
[[source]]
name = "x"
url = "http://127.0.0.1:9/feed"
cron = "0 8 * * mon"
timezone = "Mars/Olympus"
""")
    result = run_cli("run", "--schedules", str(schedules), "--db", db, check=False, timeout=60)
    assert result.returncode == 2
    assert f"{schedules / 'news.toml'}:6: source 'x': timezone: unknown time zone 'Mars/Olympus'" in result.stderr
