"""The scheduler process: APScheduler 3 (``TwistedScheduler``) and Scrapy's ``CrawlerRunner``
on one Twisted reactor.

How it fits together (see also /work/shared/NOTES.md):

- The asyncio reactor Scrapy wants is installed *before* ``apscheduler.schedulers.twisted``
  is imported (that import would install Twisted's default reactor).
- The scheduler's timers run on the reactor; jobs run in an APScheduler
  ``ThreadPoolExecutor`` (not the reactor's thread pool, which Scrapy needs for DNS).
  A source's job blocks its worker thread in ``blockingCallFromThread(reactor,
  start_crawl)`` until the crawl ends, so ``max_instances=1`` really means one run of
  a source at a time; ``coalesce=True`` folds a backlog of due runs into one, and
  ``misfire_grace_time=None`` means a late run is run late, never skipped.
- After downtime the first run of a source is computed from ``sources.last_run_at``
  (:func:`first_run_time`): an overdue source runs at once, once.
- Each run is one crawl of one source (``urls=[url]``, ``names=[name]``) with the
  source's own settings (user agent, delay, concurrency) on a copy of the settings.
- An ``outbox`` job sends due alerts every ``DAEMON_DISPATCH_INTERVAL`` seconds and right
  after a run that stored new articles; a ``heartbeat`` job renews the scheduler lease
  and picks up ``newswatch reload`` requests.
- SIGTERM/SIGINT: no new runs, in-flight crawls get ``DAEMON_SHUTDOWN_GRACE`` seconds
  (then they are stopped, which records what they did), the outbox is flushed, the
  lease released, exit 0. A second signal exits at once (every write is a transaction).
  SIGHUP re-reads the schedules; a bad file is logged and the running ones kept.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from crawler.daemon.adaptive import AdaptiveState
from crawler.daemon.lock import SchedulerLock
from crawler.daemon.schedules import Schedules, SourceSchedule, format_duration, load_schedules, make_cron_trigger
from crawler.exceptions import ConfigError
from crawler.store import open_store
from crawler.store.repository import to_db_time, utcnow
from crawler.store.schema import runs, sources

logger = logging.getLogger(__name__)

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

DEFAULTS = {
    "DAEMON_SHUTDOWN_GRACE": 30.0,  # seconds in-flight crawls get after SIGTERM
    "DAEMON_FLUSH_TIMEOUT": 15.0,  # seconds to send due alerts before exiting
    "DAEMON_DISPATCH_INTERVAL": 1.0,  # seconds between outbox passes
    "DAEMON_HEARTBEAT": 5.0,  # seconds between lease renewals
    "DAEMON_LOCK_TIMEOUT": 30.0,  # a lease without heartbeat for this long may be taken over
    "DAEMON_MAX_THREADS": 32,  # job threads (one per running source, plus outbox/heartbeat)
}


def setting(settings, name: str) -> float:
    value = settings.get(name)
    if value in (None, ""):
        return DEFAULTS[name]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def first_run_time(source: SourceSchedule, last_run_at: datetime | None, now: datetime,
                   interval: float | None = None) -> datetime:
    """When a source's first run in this process is due (aware UTC).

    Never run: now (interval sources) or the next cron time. Otherwise the run after
    ``last_run_at``; if that was missed while the daemon was down, now: however many
    runs were missed, they are made up by one (coalesced).
    """
    now = aware(now)
    last = aware(last_run_at)
    if source.cron:
        trigger = make_cron_trigger(source.cron, source.timezone)
        if last is not None:
            after_last = trigger.get_next_fire_time(None, last + timedelta(microseconds=1))
            if after_last is not None and after_last <= now:
                return now
        return trigger.get_next_fire_time(None, now)
    every = interval or source.every
    if last is None:
        return now
    return max(now, last + timedelta(seconds=every))


def install_reactor() -> None:
    """Install Scrapy's asyncio reactor (before anything imports twisted.internet.reactor)."""
    from scrapy.utils.reactor import install_reactor as scrapy_install

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        name = f"{type(reactor).__module__}.{type(reactor).__name__}"
        if name != ASYNCIO_REACTOR:
            raise RuntimeError(f"the {name} reactor is installed already; the daemon needs {ASYNCIO_REACTOR}")
        return
    scrapy_install(ASYNCIO_REACTOR)


class _QuietOverlap(logging.Filter):
    """A source whose run outlasts its interval is normal: don't warn on every skipped tick."""

    def filter(self, record):
        return "maximum number of running instances reached" not in record.getMessage()


class Daemon:
    """``newswatch run``: one scheduler per database, crawling each source on its schedule."""

    def __init__(self, schedules_dir: str | Path, db: str | None = None, overrides: dict | None = None):
        from crawler.runner import build_settings

        self.schedules_dir = Path(schedules_dir)
        self.schedules: Schedules = load_schedules(self.schedules_dir)
        overrides = dict(overrides or {})
        overrides.setdefault("TELNETCONSOLE_ENABLED", False)
        self.settings = build_settings(db, overrides=overrides)
        self.store = open_store(self.settings.get("NEWSWATCH_DB"))
        self.lock = SchedulerLock(self.store, lease=setting(self.settings, "DAEMON_LOCK_TIMEOUT"))
        self.stopping = False
        self.exit_code = 0
        self.adaptive: dict[str, AdaptiveState] = {}
        self.inflight: set = set()
        self._active_jobs = 0
        self._jobs_lock = threading.Lock()
        self._signals = 0
        self.runs_done = 0
        self.dispatcher = None
        self.scheduler = None
        self.runner = None

    # -- start ------------------------------------------------------------------------

    def run(self) -> int:
        """Take the lease, schedule everything, run until a signal; the exit code."""
        install_reactor()
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.twisted import TwistedScheduler
        from scrapy.crawler import CrawlerRunner
        from twisted.internet import reactor

        from crawler.alerts.outbox import Dispatcher
        from crawler.monitoring import init_sentry
        from crawler.store import close_stores

        self.lock.acquire()
        try:
            init_sentry()  # crawler.monitoring.SentryExtension (in EXTENSIONS) switches on with it
            self.dispatcher = Dispatcher.from_settings(self.store, self.settings)
            self._sync_subscriptions(self.schedules)
            self.runner = CrawlerRunner(self.settings)
            threads = int(min(setting(self.settings, "DAEMON_MAX_THREADS"), len(self.schedules.sources) + 4))
            self.scheduler = TwistedScheduler(
                reactor=reactor, timezone=timezone.utc,
                # Crawls wait in "default"; the outbox, heartbeat and reloads never queue behind them.
                executors={"default": ThreadPoolExecutor(max(4, threads)), "service": ThreadPoolExecutor(3)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
            logging.getLogger("apscheduler.scheduler").addFilter(_QuietOverlap())
            logging.getLogger("apscheduler.executors.default").addFilter(_QuietOverlap())
            self._schedule_sources(self.schedules, previous=None)
            self.scheduler.add_job(self._dispatch, "interval", id="__outbox", name="outbox", executor="service",
                                   seconds=setting(self.settings, "DAEMON_DISPATCH_INTERVAL"),
                                   next_run_time=datetime.now(timezone.utc))
            self.scheduler.add_job(self._heartbeat, "interval", id="__heartbeat", name="heartbeat", executor="service",
                                   seconds=setting(self.settings, "DAEMON_HEARTBEAT"))
            self._install_signal_handlers()  # before the reactor runs: an early SIGHUP must not kill us
            reactor.callWhenRunning(self.scheduler.start)
            logger.info("Scheduler started (pid %d): %d source(s), %d subscription(s) from %s",
                        os.getpid(), len([s for s in self.schedules.sources if s.enabled]),
                        len(self.schedules.subscriptions), self.schedules_dir)
            reactor.run(installSignalHandlers=False)
        finally:
            if self.lock.held:
                self.lock.release()
        with self._jobs_lock:
            stuck = self._active_jobs
        close_stores()  # the database file alone holds what the daemon stored (SQLite: the log copied back)
        if stuck:  # a job thread still waits on the stopped reactor: don't hang at exit
            logger.warning("%d job thread(s) still running at exit", stuck)
            logging.shutdown()
            os._exit(self.exit_code)
        return self.exit_code

    def _sync_subscriptions(self, schedules: Schedules) -> None:
        from crawler.alerts.subscriptions import sync_from_schedules

        declared = [dict(sub, origin=f"schedules:{Path(sub['file']).name}") for sub in schedules.subscriptions]
        with self.store.begin() as conn:
            sync_from_schedules(conn, declared)

    # -- scheduling ---------------------------------------------------------------------

    def _job_id(self, name: str) -> str:
        return f"source:{name}"

    def _trigger(self, source: SourceSchedule, interval: float | None = None):
        from apscheduler.triggers.interval import IntervalTrigger

        if source.cron:
            trigger = make_cron_trigger(source.cron, source.timezone)
            trigger.jitter = source.jitter or None
            return trigger
        return IntervalTrigger(seconds=interval or source.every, jitter=source.jitter or None, timezone=timezone.utc)

    def _schedule_sources(self, schedules: Schedules, previous: Schedules | None) -> dict[str, list[str]]:
        """Make the scheduler's jobs match ``schedules``; the names added, changed and removed."""
        report = {"added": [], "changed": [], "removed": []}
        wanted = {s.name: s for s in schedules.sources if s.enabled}
        before = {s.name: s for s in (previous.sources if previous else []) if s.enabled}
        for name in before:
            if name not in wanted:
                if self.scheduler.get_job(self._job_id(name)):
                    self.scheduler.remove_job(self._job_id(name))
                self.adaptive.pop(name, None)
                row = self.store.get_source(before[name].url)
                self.store.update_source(row["id"], next_run_at=None)
                report["removed"].append(name)
        now = datetime.now(timezone.utc)
        for name, source in wanted.items():
            old = before.get(name)
            if old is not None and old.trigger_key() == source.trigger_key() and old.url == source.url:
                continue
            row = self.store.get_source(source.url, source.name)
            interval = source.every
            if source.adaptive:
                # The interval learned before a restart is kept (within the current bounds).
                floor, ceiling = source.adaptive
                if row.get("poll_interval") and (old is None or old.every == source.every):
                    interval = min(max(float(row["poll_interval"]), floor), ceiling)
                self.adaptive[name] = AdaptiveState(interval=interval)
            next_run = first_run_time(source, row.get("last_run_at"), now, interval)
            self.scheduler.add_job(self._run_source, self._trigger(source, interval), args=[name],
                                   id=self._job_id(name), name=name, next_run_time=next_run, replace_existing=True)
            self.store.update_source(row["id"], next_run_at=to_db_time(next_run), poll_interval=interval)
            report["changed" if old else "added"].append(name)
            logger.info("Source %s: %s, next run %s", name, source.describe(),
                        "now" if next_run <= now else f"at {next_run:%H:%M:%S} UTC")
        return report

    # -- one run --------------------------------------------------------------------------

    def _run_source(self, name: str) -> None:
        """The job of one source (in a pool thread): crawl, record, check health, adapt."""
        from twisted.internet import reactor
        from twisted.internet.threads import blockingCallFromThread

        from crawler.monitoring import checkin, monitor_config

        source = self.schedules.source(name)
        if source is None or self.stopping:
            return
        with self._jobs_lock:
            self._active_jobs += 1
        try:
            row = self.store.get_source(source.url, source.name)
            started = utcnow()
            started_clock = time.monotonic()
            config = monitor_config(source.every if not source.cron else None, source.cron, source.timezone)
            check_id = checkin(name, "in_progress", config=config)
            stats, crash = None, None
            try:
                stats = blockingCallFromThread(reactor, self._start_crawl, source)
            except Exception as exc:  # the crawl could not start or crashed outside Scrapy's handling
                crash = f"{type(exc).__name__}: {exc}"
                logger.error("Run of source %s crashed: %s", name, crash, exc_info=True)
            if stats is None and crash is None:
                checkin(name, "ok", check_id, duration=0.0)  # refused: shutting down
                return
            duration = time.monotonic() - started_clock
            self._record_run(source, row["id"], started, duration, stats, crash, name, check_id)
        finally:
            with self._jobs_lock:
                self._active_jobs -= 1

    def _start_crawl(self, source: SourceSchedule):
        """On the reactor: start the crawl of ``source``; a Deferred firing with its stats."""
        if self.stopping:
            return None
        from scrapy.crawler import Crawler

        from crawler.spiders.feeds import FeedsSpider

        settings = self.settings.copy()
        for key, value in source.settings_overrides().items():
            settings.set(key, value, priority=50)  # above the command line's -s: the source knows best
        crawler = Crawler(FeedsSpider, settings)
        deferred = self.runner.crawl(crawler, urls=[source.url], names=[source.name])
        self.inflight.add(deferred)

        def done(result):
            self.inflight.discard(deferred)
            return result

        deferred.addBoth(done)
        deferred.addCallback(lambda _: dict(crawler.stats.get_stats() if crawler.stats else {}))
        return deferred

    def _record_run(self, source: SourceSchedule, source_id: int, started: datetime, duration: float,
                    stats: dict | None, crash: str | None, name: str, check_id) -> None:
        from crawler.monitoring import checkin, update_source_health

        stats = stats or {}
        row = self.store.get_source(source.url)
        if crash is not None:
            self.store.update_source(source_id, last_run_at=utcnow(), last_error=crash[:2000],
                                     consecutive_failures=(row.get("consecutive_failures") or 0) + 1)
            row = self.store.get_source(source.url)
        reason = stats.get("finish_reason")
        new = int(stats.get("newswatch/articles/new", 0) or 0)
        if crash is None and reason not in (None, "finished"):
            status = "cancelled"
        elif crash is None and not row.get("consecutive_failures"):
            status = "ok"
        else:
            status = "error"
        with self.store.begin() as conn:
            conn.execute(runs.insert().values(
                source_id=source_id, started_at=started, finished_at=utcnow(), status=status,
                fetched=int(stats.get("newswatch/pages/fetched", 0) or 0), new=new,
                errors=int(stats.get("newswatch/errors", 0) or 0),
                error=(crash or row.get("last_error")) if status == "error" else None, duration=duration))
        checkin(name, "error" if status == "error" else "ok", check_id, duration=duration)
        self.runs_done += 1
        level = logging.WARNING if status == "error" else logging.INFO
        logger.log(level, "Run of %s: %s, %d new article(s) in %.1fs%s", name, status, new, duration,
                   f" ({row.get('last_error')})" if status == "error" else "")
        health = self.schedules.health
        try:
            update_source_health(self.store, source_id, targets=health.notify, failures=health.failures,
                                 silence_factor=health.silence_factor, silence_min=health.silence_min)
        except Exception:
            logger.exception("Health check of source %s failed", name)
        interval = self._adapt(source, new, row, started)
        job = self.scheduler.get_job(self._job_id(name))
        values = {"poll_interval": interval}
        if job is not None and job.next_run_time is not None:
            values["next_run_at"] = to_db_time(job.next_run_time)
        self.store.update_source(source_id, **values)
        if new and not self.stopping:
            self._poke_outbox()  # alerts of the new articles leave now, not at the next tick

    def _adapt(self, source: SourceSchedule, new: int, row: dict, started: datetime) -> float | None:
        """Adaptive polling: move the interval towards the publishing rate (see adaptive.py)."""
        state = self.adaptive.get(source.name)
        if state is None or not source.adaptive:
            return source.every
        previous_run = state.last_started
        state.last_started = started
        if previous_run is None or (row.get("runs") or 0) <= 1:
            return state.interval  # the first run finds the backlog, not the rhythm
        before = state.interval
        after = state.observe(new, (started - previous_run).total_seconds(), *source.adaptive)
        if abs(after - before) > 0.05 * before and not self.stopping:
            self.scheduler.reschedule_job(self._job_id(source.name), trigger=self._trigger(source, after))
            logger.info("Source %s: polling every %s (was %s)", source.name, format_duration(after),
                        format_duration(before))
        return after

    # -- outbox, heartbeat, reload ------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            self.dispatcher.dispatch_due()
        except Exception:
            logger.exception("Outbox pass failed")

    def _poke_outbox(self) -> None:
        job = self.scheduler.get_job("__outbox")
        if job is not None:
            job.modify(next_run_time=datetime.now(timezone.utc))

    def _heartbeat(self) -> None:
        from twisted.internet import reactor

        try:
            if not self.lock.heartbeat():
                logger.error("Another scheduler took over this database's lease: stopping")
                self.exit_code = 1
                reactor.callFromThread(self.begin_shutdown, "lease lost")
                return
            if self.lock.take_reload_request():
                self.reload()
        except Exception:
            logger.exception("Heartbeat failed")

    def request_reload(self) -> None:
        """Re-read the schedules in a job thread (from SIGHUP)."""
        if self.stopping or self.scheduler is None:
            return
        self.scheduler.add_job(self.reload, id="__reload", name="reload", executor="service", replace_existing=True)

    def reload(self) -> bool:
        """Re-read the schedules; keep the running ones if the new files are bad."""
        try:
            schedules = load_schedules(self.schedules_dir)
            self._sync_subscriptions(schedules)
        except ConfigError as exc:
            logger.error("Schedules not reloaded, keeping the running ones: %s", exc)
            return False
        previous, self.schedules = self.schedules, schedules
        report = self._schedule_sources(schedules, previous)
        logger.info("Schedules reloaded: %d source(s) added, %d changed, %d removed; %d subscription(s)",
                    len(report["added"]), len(report["changed"]), len(report["removed"]),
                    len(schedules.subscriptions))
        return True

    # -- signals and shutdown -----------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self, signum, frame) -> None:
        from twisted.internet import reactor

        logger.info("SIGHUP: re-reading schedules")
        reactor.callFromThread(self.request_reload)

    def _on_signal(self, signum, frame) -> None:
        from twisted.internet import reactor

        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            sys.stderr.write(f"newswatch: second {name}: exiting now\n")
            sys.stderr.flush()
            os._exit(1)
        reactor.callFromThread(self.begin_shutdown, name)

    def begin_shutdown(self, reason: str) -> None:
        """On the reactor: stop scheduling, drain crawls, flush the outbox, stop."""
        if self.stopping:
            return
        self.stopping = True
        logger.info("Stopping (%s): no new runs; %d crawl(s) in flight get up to %s (a second signal exits now)",
                    reason, len(self.inflight), format_duration(setting(self.settings, "DAEMON_SHUTDOWN_GRACE")))
        try:
            self.scheduler.pause()
        except Exception:
            pass
        self._drain().addErrback(lambda f: logger.error("Shutdown: %s", f.getErrorMessage())) \
            .addBoth(lambda _: self._stop_reactor())

    def _stop_reactor(self) -> None:
        from twisted.internet import reactor

        if reactor.running:
            reactor.stop()

    def _drain(self):
        from twisted.internet import defer, reactor
        from twisted.internet.threads import deferToThread

        from crawler.monitoring import flush_sentry

        def sleep(seconds):
            return defer.ensureDeferred(_sleep(seconds))

        async def _sleep(seconds):
            from twisted.internet.task import deferLater

            await deferLater(reactor, seconds, lambda: None)

        async def drain():
            grace = setting(self.settings, "DAEMON_SHUTDOWN_GRACE")
            deadline = time.monotonic() + grace
            while self.inflight and time.monotonic() < deadline:
                await sleep(0.1)
            if self.inflight:
                logger.warning("Grace period over: stopping %d crawl(s)", len(self.inflight))
                self.runner.stop()
                stop_deadline = time.monotonic() + 10
                while self.inflight and time.monotonic() < stop_deadline:
                    await sleep(0.1)
            jobs_deadline = time.monotonic() + 10
            while self._active_jobs and time.monotonic() < jobs_deadline:
                await sleep(0.05)  # the jobs record their runs
            try:
                self.scheduler.shutdown(wait=False)
            except Exception:
                pass
            await deferToThread(self._flush_outbox)
            await deferToThread(flush_sentry, 5.0)
            logger.info("Stopped cleanly after %d run(s)", self.runs_done)

        return defer.ensureDeferred(drain())

    def _flush_outbox(self) -> None:
        """Send what is due before exiting (bounded by ``DAEMON_FLUSH_TIMEOUT``)."""
        deadline = time.monotonic() + setting(self.settings, "DAEMON_FLUSH_TIMEOUT")
        while time.monotonic() < deadline:
            try:
                result = self.dispatcher.dispatch_due()
            except Exception:
                logger.exception("Outbox flush failed")
                return
            if not (result.sent or result.retried or result.dead):
                return
        try:
            self.dispatcher.close()
        except Exception:
            pass


def read_schedules_sources(store) -> dict[str, dict]:
    """Every ``sources`` row by name (for ``newswatch status``)."""
    from sqlalchemy import select

    with store.begin() as conn:
        return {row["name"] or row["url"]: dict(row) for row in conn.execute(select(sources)).mappings()}
