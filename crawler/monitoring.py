"""Telling someone when things break: Sentry (errors and Crons check-ins) and source health.

Sentry is on when ``SENTRY_DSN`` is set (:func:`init_sentry`), off otherwise; every
function here is then a no-op.

- **Errors** in spiders and pipelines reach Sentry once, through
  :class:`SentryExtension` (Scrapy's ``spider_error`` and ``item_error`` signals), with
  the source and the URL as tags and context. Scrapy's own "Spider error processing"
  log line is kept out of Sentry so the error is not reported twice. Other
  ``logger.error`` calls (notifiers that crash or give up, the daemon) are reported by
  sentry-sdk's logging integration.
- **Crons**: the daemon reports a check-in per scheduled run of each source
  (:func:`checkin`: ``in_progress``, then ``ok`` or ``error``), monitor slug
  ``newswatch-<source>``, with the source's schedule as monitor config, so Sentry
  notices a run that never happens.

**Source health** (:func:`update_source_health`): after each run the daemon checks the
source; it is *failing* after ``failures`` failed runs in a row, and *silent* when no
new article came for ``silence_factor`` times its usual gap between articles (the
median gap of its last 20 articles, at least 5 of them needed) and at least
``silence_min``. The first change from ``ok`` to failing or silent queues ONE alert
of kind ``health`` in the outbox; nothing more is sent while the source stays
unhealthy; the first successful run with a new article (failing: any successful
run) queues one ``recovered`` notice. The state lives in ``sources.health`` and
``sources.health_since``, changed by a conditional UPDATE in the same transaction as
the alert, so restarts and concurrent runs never repeat one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from datetime import datetime

from scrapy import signals
from scrapy.exceptions import NotConfigured
from sqlalchemy import select, update

from crawler.store.repository import to_db_time, utcnow
from crawler.store.schema import alerts, articles, sources

logger = logging.getLogger(__name__)

HEALTH_SUBSCRIPTION = "health"
_sentry_on = False


# -- Sentry ---------------------------------------------------------------------------

def init_sentry(dsn: str | None = None, *, environment: str | None = None, release: str | None = None,
                **options) -> bool:
    """Configure sentry-sdk from ``dsn`` or ``$SENTRY_DSN``; False (and nothing done) when unset."""
    global _sentry_on
    dsn = dsn if dsn is not None else os.environ.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or os.environ.get("SENTRY_ENVIRONMENT") or "production",
        release=release or os.environ.get("SENTRY_RELEASE") or _version(),
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        traces_sample_rate=0,
        send_default_pii=False,
        **options,
    )
    # The extension reports these errors with their source and URL; the log line would repeat them.
    ignore_logger("scrapy.core.scraper")
    _sentry_on = True
    logger.info("Sentry reporting on (%s)", re.sub(r"//[^@/]*@", "//…@", dsn))
    return True


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return "newswatch@" + version("newswatch")
    except Exception:
        return None


def sentry_enabled() -> bool:
    return _sentry_on


def flush_sentry(timeout: float = 5.0) -> None:
    if _sentry_on:
        import sentry_sdk

        sentry_sdk.flush(timeout=timeout)


def capture_failure(failure, *, source: str | None = None, url: str | None = None, stage: str = "spider",
                    extra: dict | None = None) -> None:
    """Report a Twisted Failure (or exception) to Sentry with the source and URL as context."""
    if not _sentry_on:
        return
    import sentry_sdk

    value = getattr(failure, "value", failure)
    if hasattr(failure, "getTracebackObject"):
        exc_info = (failure.type, failure.value, failure.getTracebackObject())
    else:
        exc_info = (type(value), value, value.__traceback__)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", stage)
        if source:
            scope.set_tag("source", source)
        if url:
            scope.set_tag("url", url[:200])
        scope.set_context("newswatch", {"source": source, "url": url, "stage": stage, **(extra or {})})
        sentry_sdk.capture_exception(exc_info)


class SentryExtension:
    """Scrapy extension: spider and pipeline errors to Sentry, once, with source and URL.

    Enabled when :func:`init_sentry` configured Sentry (``NotConfigured`` otherwise).
    """

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        if not _sentry_on:
            raise NotConfigured  # quietly: Sentry is off unless SENTRY_DSN is set
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_error, signal=signals.spider_error)
        crawler.signals.connect(extension.item_error, signal=signals.item_error)
        return extension

    def spider_error(self, failure, response, spider):
        meta = getattr(response, "meta", None) or {}
        capture_failure(failure, source=meta.get("source_name") or getattr(spider, "name", None),
                        url=getattr(response, "url", None), stage="spider",
                        extra={"spider": getattr(spider, "name", None)})
        self.crawler.stats.inc_value("newswatch/sentry/reported")

    def item_error(self, item, response, spider, failure):
        get = getattr(item, "get", lambda key, default=None: default)
        meta = getattr(response, "meta", None) or {}
        capture_failure(failure, source=get("source") or meta.get("source_name"),
                        url=get("url") or getattr(response, "url", None), stage="pipeline",
                        extra={"spider": getattr(spider, "name", None)})
        self.crawler.stats.inc_value("newswatch/sentry/reported")


def monitor_slug(source_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", source_name.lower()).strip("-")
    return f"newswatch-{slug}"[:50]


def monitor_config(every: float | None = None, cron: str | None = None, timezone: str = "UTC",
                   max_runtime_minutes: int = 30) -> dict:
    """Sentry Crons monitor config for a source's schedule (intervals rounded up to minutes)."""
    if cron:
        schedule = {"type": "crontab", "value": cron}
    else:
        minutes = max(1, int(-(-(every or 60) // 60)))
        schedule = {"type": "interval", "value": minutes, "unit": "minute"}
    return {"schedule": schedule, "timezone": timezone, "checkin_margin": 5, "max_runtime": max_runtime_minutes}


def checkin(source_name: str, status: str, check_in_id: str | None = None, duration: float | None = None,
            config: dict | None = None) -> str | None:
    """A Sentry Crons check-in for the source's monitor; the check-in id (None when Sentry is off)."""
    if not _sentry_on:
        return None
    from sentry_sdk.crons import capture_checkin

    try:
        return capture_checkin(monitor_slug=monitor_slug(source_name), check_in_id=check_in_id, status=status,
                               duration=duration, monitor_config=config)
    except Exception:  # monitoring must never stop a crawl
        logger.debug("Sentry check-in failed", exc_info=True)
        return None


# -- source health ----------------------------------------------------------------------

OK, FAILING, SILENT = "ok", "failing", "silent"


def usual_gap(conn, source_id: int, sample: int = 20, minimum: int = 5) -> float | None:
    """The median gap (seconds) between the source's last ``sample`` new articles, or None."""
    times = list(conn.execute(select(articles.c.fetched_at).where(articles.c.source_id == source_id)
                              .order_by(articles.c.fetched_at.desc()).limit(sample)).scalars())
    if len(times) < minimum:
        return None
    gaps = sorted((a - b).total_seconds() for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2]


def assess_health(source: dict, *, failures: int, silence_factor: float, silence_min: float,
                  gap: float | None, now: datetime) -> str:
    """'failing', 'silent' or 'ok' for a ``sources`` row after a run."""
    if (source.get("consecutive_failures") or 0) >= failures:
        return FAILING
    if (source.get("consecutive_failures") or 0) > 0:
        return source.get("health") or OK  # a failure below the threshold changes nothing yet
    last_new = source.get("last_new_at")
    if gap is not None and last_new is not None:
        silent_for = (now - last_new).total_seconds()
        if silent_for > max(silence_factor * gap, silence_min):
            return SILENT
    return OK


def _health_payload(source: dict, event: str, message: str, alert_id: str, now: datetime) -> dict:
    from crawler.alerts.render import clean_line

    return {
        "id": alert_id,
        "kind": "health",
        "event": event,  # failing, silent, recovered
        "subscription": HEALTH_SUBSCRIPTION,
        "source": clean_line(source.get("name") or source["url"], 200),
        "url": clean_line(source["url"], 2000),
        "title": clean_line(message, 500),
        "snippet": clean_line(source.get("last_error") or "", 1000),
        "highlights": [],
        "consecutive_failures": source.get("consecutive_failures") or 0,
        "last_success_at": source["last_success_at"].isoformat() + "Z" if source.get("last_success_at") else None,
        "at": now.isoformat() + "Z",
        "story_size": 1,
        "also_reported_by": [],
    }


def health_targets(conn, configured: list[str] | None) -> list[str]:
    """``[health] notify`` when given, else every target of every active subscription."""
    if configured is not None:
        return list(configured)
    from crawler.alerts.subscriptions import list_subscriptions

    targets: list[str] = []
    for sub in list_subscriptions(conn, include_paused=False):
        targets.extend(sub["targets"])
    return list(dict.fromkeys(targets))


def update_source_health(store, source_id: int, *, targets: list[str] | None, failures: int = 3,
                         silence_factor: float = 10.0, silence_min: float = 6 * 3600.0,
                         now: datetime | None = None) -> str | None:
    """Re-assess one source and queue a health alert on a change; the event queued, or None."""
    now = to_db_time(now or utcnow())
    with store.begin() as conn:
        row = conn.execute(select(sources).where(sources.c.id == source_id)).mappings().first()
        if row is None:
            return None
        source = dict(row)
        previous = source.get("health") or OK
        gap = usual_gap(conn, source_id) if previous != FAILING else None
        state = assess_health(source, failures=failures, silence_factor=silence_factor, silence_min=silence_min,
                              gap=gap, now=now)
        if state == previous:
            return None
        if previous != OK and state != OK:
            return None  # still unhealthy (e.g. silent, then failing): no second alert
        if previous == SILENT and not (source.get("last_new_at") and source.get("health_since")
                                       and source["last_new_at"] >= source["health_since"]):
            return None  # a silent source recovers when it publishes again
        changed = conn.execute(update(sources).where(sources.c.id == source_id, sources.c.health == previous)
                               .values(health=state, health_since=now)).rowcount
        if not changed:
            return None  # another run recorded the change first
        name = source.get("name") or source["url"]
        if state == FAILING:
            event = FAILING
            message = f"Source {name} is failing: {source['consecutive_failures']} runs in a row"
        elif state == SILENT:
            event = SILENT
            since = source["last_new_at"]
            message = f"Source {name} is silent: no new article since {since:%Y-%m-%d %H:%M} UTC"
        else:
            event = "recovered"
            down = (now - source["health_since"]).total_seconds() if source.get("health_since") else None
            message = f"Source {name} recovered" + (f" after {_human(down)}" if down else "")
        queued = _enqueue_health(conn, source, event, message, health_targets(conn, targets), now)
    logger.warning("%s (%d notice(s) queued)", message, queued)
    return event


def _human(seconds: float) -> str:
    from crawler.daemon.schedules import format_duration

    return format_duration(seconds)


def _enqueue_health(conn, source: dict, event: str, message: str, targets: list[str], now: datetime) -> int:
    story = "health-" + hashlib.sha1(source["url"].encode("utf-8")).hexdigest()[:32]
    queued = 0
    for target in targets:
        key = "\x1f".join(["health", source["url"], event, now.isoformat(), target])
        aid = hashlib.sha256(key.encode("utf-8")).hexdigest()
        payload = _health_payload(source, event, message, aid, now)
        conn.execute(alerts.insert().values(
            id=aid, subscription_id=None, subscription=HEALTH_SUBSCRIPTION, story_id=story, article_id=None,
            target=target, kind="health", payload=payload, status="pending", attempts=0, next_attempt_at=now,
            due_at=None, created_at=now))
        queued += 1
    return queued


def silence_threshold(gap: float | None, silence_factor: float, silence_min: float) -> float | None:
    return None if gap is None else max(silence_factor * gap, silence_min)


__all__ = ["SentryExtension", "assess_health", "capture_failure", "checkin", "flush_sentry", "health_targets",
           "init_sentry", "monitor_config", "monitor_slug", "sentry_enabled", "update_source_health", "usual_gap"]
