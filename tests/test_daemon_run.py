"""`newswatch run` as a real subprocess against the fake newsroom, which also receives the
webhooks: alerted once, clean SIGTERM, SIGKILL and restart, SIGHUP reload, source health,
one scheduler per database, bad schedules refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, publish_held_back, run_cli
from sqlalchemy import func, select

from crawler.daemon.lock import current_owner
from crawler.store import Store
from crawler.store.schema import alerts, articles, runs, sources

FAST = ["-s", "DAEMON_HEARTBEAT=1", "-s", "DAEMON_DISPATCH_INTERVAL=0.3", "-s", "RETRY_ENABLED=False",
        "-s", "DAEMON_SHUTDOWN_GRACE=20"]


def wait_for(condition, timeout: float = 60, interval: float = 0.2, what: str = "condition", daemon=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if daemon is not None and daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.process.returncode}) waiting for {what}\n{daemon.log()}")
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{daemon.log()}" if daemon else ""))


class DaemonProcess:
    """`python -m crawler.cli run` in a subprocess, its output in a log file."""

    def __init__(self, tmp_path: Path, schedules: Path, db_url: str, extra: list[str] | None = None,
                 env: dict | None = None):
        self.schedules = schedules
        self.db_url = db_url
        self.extra = FAST + list(extra or [])
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("NEWSWATCH_DB", None)
        self.log_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "DaemonProcess":
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "run", "--schedules", str(self.schedules), "--db", self.db_url,
             *self.extra], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def signal(self, sig) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


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


def write_schedules(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "news.toml").write_text(text, "utf-8")
    return directory


def g7_schedules(room, every: str = "1s", extra: str = "") -> str:
    return f"""
[[source]]
name = "room"
url = "{room.url('/feeds/main.rss')}"
every = "{every}"

[[subscription]]
name = "g7"
query = '"finance ministers"'
notify = ["{room.url('/hooks/g7')}"]
{extra}"""


class Db:
    def __init__(self, url: str):
        self.store = Store.from_url(url)

    def source(self, name: str) -> dict:
        with self.store.begin() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        return dict(row) if row else {}

    def runs(self, name: str) -> int:
        return self.source(name).get("runs") or 0

    def count(self, table, *where) -> int:
        with self.store.begin() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def hooks(room, path: str) -> list[dict]:
    return [h for h in list(room.hooks) if h["path"] == path]


def hook_ids(room, path: str, start: int = 0) -> list[str]:
    return [h["headers"].get("X-Newswatch-Alert-Id") for h in hooks(room, path)[start:]]


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

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()
    assert "Stopped cleanly" in daemon.log()
    assert current_owner(state.store) is None  # lease released
    assert state.count(runs, runs.c.status == "running") == 0


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
""")
    reloaded = run_cli("reload", "--db", db)  # sends SIGHUP to the pid in the lease
    assert "SIGHUP" in reloaded.stdout
    wait_for(lambda: newsroom.requested("/feeds/main.atom"), what="the new source's first request", daemon=daemon)
    wait_for(lambda: state.runs("room-atom") >= 1, what="the new source's run", daemon=daemon)

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
    health = f"""
[health]
notify = ["{newsroom.url('/hooks/health')}"]
failures = 2
"""
    schedules = write_schedules(tmp_path / "schedules", g7_schedules(newsroom, every="0.5s", extra=health))
    newsroom.fault("/feeds/main.rss", "status", code=500)
    daemon = daemons(tmp_path, schedules, db)
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
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()


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
