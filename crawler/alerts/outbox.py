"""The alert outbox: alerts are written with the article, a dispatcher sends them.

Life of an alert row (table ``alerts``, one row per subscription, story and target)::

    enqueue_alerts()          Dispatcher.dispatch_due()
    ────────────────► pending ──claim──► sending ──notifier ok──► sent
                         ▲                 │  │
                         │   retry/backoff │  └── refused, or attempts exhausted ──► dead
                         └─────────────────┘                                          │
                         └──────────────── Dispatcher.retry_dead() ◄──────────────────┘

- **Exactly one alert per (subscription, story)**: the row id is the SHA-256 of the
  subscription name, story id and target, and the insert ignores an existing id. A
  copy of an already alerted story only adds its source to ``also_reported_by`` of
  an alert still waiting (digests, flood batches).
- **Written with the article**: :func:`enqueue_alerts` takes the caller's connection,
  so the alert commits or rolls back with the article that caused it.
- **Claimed with a lease**: a dispatcher sets ``status='sending'``, a random
  ``lease`` token and ``next_attempt_at = now + lease time`` in one conditional
  UPDATE; a second dispatcher's UPDATE no longer matches. If the process dies while
  sending, the lease expires and the alert is sent again with the same id, so a
  receiver that drops repeated ids sees it once; nothing is lost.
- **Kinds**: ``article`` (instant, one message per alert), ``digest`` (collected
  until ``due_at``, the subscription's next digest time in its time zone, then sent
  as one message per subscription, target and due time), ``batch`` (flood control:
  past ``flood_limit`` instant alerts in ``flood_window`` seconds, the surplus waits
  for the end of the window and goes as one message), ``health`` (source health).
  A group's message id (``batch_id``) is fixed when it is first claimed and kept
  across retries.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from crawler.alerts.notifiers import DEAD, RETRY, SENT, Delivery, NotifierRegistry, Outcome, describe_target
from crawler.alerts.render import clean_line, make_snippet
from crawler.exceptions import ConfigError
from crawler.store.prepared import Prepared
from crawler.store.repository import to_db_time, utcnow
from crawler.store.schema import alerts, subscriptions

logger = logging.getLogger(__name__)

FLOOD_LIMIT = 20
FLOOD_WINDOW = 600.0
DIGEST_MODES = ("hourly", "daily", "weekly")
MODES = ("instant",) + DIGEST_MODES
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GROUP_KINDS = ("digest", "batch")


def alert_id(subscription: str, story_id: str, target: str, revision: int | str | None = None) -> str:
    """The stable id of the alert of ``story_id`` for ``subscription`` at ``target``.

    ``revision`` (a revision number above 1, or a content hash) makes the alert of a
    changed article distinct, for subscriptions with ``alert_revisions``.
    """
    parts = [subscription, str(story_id), target]
    if revision and revision != 1:
        parts.append(f"revision:{revision}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _batch_id(kind: str, subscription: str, target: str, due_at, ids: list[str]) -> str:
    key = "\x1f".join([kind, subscription, target, str(due_at)] + sorted(ids))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# -- digest times ---------------------------------------------------------------------

def parse_hhmm(value: str | None, field: str = "digest_at") -> time:
    """``"08:00"`` -> time(8, 0); ConfigError naming ``field`` otherwise."""
    try:
        hours, minutes = str(value).strip().split(":")
        parsed = time(int(hours), int(minutes))
        if len(minutes) != 2:
            raise ValueError
        return parsed
    except (ValueError, TypeError):
        raise ConfigError(f"{field}: expected a time HH:MM (e.g. 08:00), got {value!r}") from None


def get_zone(name: str | None, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{field}: unknown time zone {name!r} (expected an IANA name such as "
                          f"Europe/Paris)") from None


def parse_weekday(value: str | None, field: str = "digest_day") -> int:
    day = str(value or "").strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ConfigError(f"{field}: expected a day of the week (mon..sun), got {value!r}")
    return WEEKDAYS.index(day)


def _local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)


def next_digest_time(subscription: dict, now: datetime | None = None) -> datetime:
    """The next digest time of ``subscription`` strictly after ``now``, as naive UTC.

    ``mode`` hourly (at minute ``digest_at`` MM, default :00), daily (at ``digest_at``
    HH:MM, default 08:00) or weekly (on ``digest_day``, default Monday, at
    ``digest_at``), in the subscription's ``timezone``. Across a DST change the local
    wall-clock time is kept.
    """
    now = to_db_time(now or utcnow())
    mode = subscription.get("mode") or "instant"
    zone = get_zone(subscription.get("timezone"))
    local = now.replace(tzinfo=timezone.utc).astimezone(zone)
    if mode == "hourly":
        minute = parse_hhmm(subscription["digest_at"]).minute if subscription.get("digest_at") else 0
        candidate = local.replace(minute=minute, second=0, microsecond=0)
        utc = candidate.astimezone(timezone.utc).replace(tzinfo=None)
        while utc <= now:
            utc += timedelta(hours=1)
        return utc
    at = parse_hhmm(subscription.get("digest_at") or "08:00")
    if mode == "daily":
        day = local.date()
        while (when := _local_to_utc(day, at, zone)) <= now:
            day += timedelta(days=1)
        return when
    if mode == "weekly":
        weekday = parse_weekday(subscription.get("digest_day") or "mon")
        day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
        while (when := _local_to_utc(day, at, zone)) <= now:
            day += timedelta(days=7)
        return when
    raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")


# -- enqueue --------------------------------------------------------------------------

def _iso(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    return clean_line(value, 40)


def _source_name(article: dict) -> str:
    from urllib.parse import urlsplit

    for key in ("source", "source_name", "site_name"):
        if article.get(key):
            return clean_line(article[key], 200)
    try:
        return urlsplit(article.get("url") or "").hostname or ""
    except ValueError:
        return ""


def _article_fields(article: dict) -> dict:
    """The parts of an alert's payload that depend only on the article."""
    return {
        "title": clean_line(article.get("title") or "", 500),
        "url": clean_line(article.get("url") or article.get("canonical_url") or "", 2000),
        "source": _source_name(article),
        "site_name": clean_line(article.get("site_name") or "", 200),
        "language": article.get("language"),
        "published": _iso(article.get("published")),
        "revised": _revision_key(article) is not None,  # a changed version of an article seen before
    }


def build_payload(subscription: dict, article: dict, *, story_id: str, article_id, terms: list[str],
                  story_size: int, alert_id: str, kind: str, article_fields: dict | None = None) -> dict:
    """The JSON document of one alert: what every notifier renders."""
    snippet, highlights = make_snippet(article.get("text") or "", list(terms or ()))
    return {
        "id": alert_id,
        "kind": kind,
        "subscription": subscription["name"],
        "story_id": story_id,
        "article_id": article_id,
        **(article_fields or _article_fields(article)),
        "snippet": snippet,
        "highlights": highlights,
        "terms": [clean_line(t, 200) for t in terms or ()],
        "story_size": int(story_size or 1),
        "also_reported_by": [],
    }


def _insert_new(conn, rows: list[dict]) -> list[str]:
    """Insert ``rows`` (in one statement where the database allows), skipping ids that
    exist already; returns the ids inserted."""
    if not rows:
        return []
    stmt = _INSERT_NEW.get(conn.dialect.name)
    if stmt is not None:  # one round trip for all of them on PostgreSQL
        return [row["id"] for row, returned in zip(rows, stmt.each(conn, rows)) if returned]
    created = []
    for row in rows:
        if conn.execute(select(alerts.c.id).where(alerts.c.id == row["id"])).first() is None:
            conn.execute(alerts.insert().values(**row))
            created.append(row["id"])
    return created


def _note_also_reported(conn, existing, article: dict, story_size: int) -> None:
    """A copy of an alerted story: name its source on the alerts still waiting to go."""
    waiting = [row for row in existing if row.status == "pending" and row.kind in GROUP_KINDS]
    if not waiting:
        return
    payloads = dict(conn.execute(_PAYLOADS, {"ids": [row.id for row in waiting]}).all())
    source = _source_name(article)
    for row in waiting:
        payload = dict(payloads.get(row.id) or {})
        names = list(payload.get("also_reported_by") or [])
        changed = False
        if source and source != payload.get("source") and source not in names:
            names.append(source)
            changed = True
        size = max(int(payload.get("story_size") or 1), int(story_size or 1))
        if changed or size != payload.get("story_size"):
            payload["also_reported_by"] = names
            payload["story_size"] = size
            conn.execute(update(alerts).where(alerts.c.id == row.id, alerts.c.status == "pending")
                         .values(payload=payload))


def enqueue_alerts(conn, *, subscription: dict, article: dict, story_id: str, article_id: int,
                   terms: list[str], story_size: int, now: datetime | None = None,
                   flood_limit: int = FLOOD_LIMIT, flood_window: float = FLOOD_WINDOW) -> list[str]:
    """Create the pending alerts of one matched article for one subscription (a row of
    ``subscriptions`` as a dict), in the caller's transaction; see :func:`enqueue_matches`."""
    return enqueue_matches(conn, article=article, matches=[(subscription, terms)], story_id=story_id,
                           article_id=article_id, story_size=story_size, now=now,
                           flood_limit=flood_limit, flood_window=flood_window)


# Built once: these run for every matched article.
# A story's alerts, by index ix_alerts_story_subscription, on the driver's cursor (an
# expanding IN over the matched subscriptions' names would be compiled again for every
# article); the payloads are read only for the alerts a copy is noted on.
_STORY_ALERTS = Prepared(select(alerts.c.id, alerts.c.subscription, alerts.c.status, alerts.c.kind)
                         .where(alerts.c.story_id == bindparam("story")))
_PAYLOADS = select(alerts.c.id, alerts.c.payload).where(alerts.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class _StoredAlert:
    id: str
    subscription: str
    status: str
    kind: str


# Distinct stories alerted in the window, counted up to the flood limit only: a flood must
# not make every later alert of its subscription slower.
_RECENT = Prepared(select(func.count()).select_from(
    select(alerts.c.story_id).distinct()
    .where(alerts.c.subscription == bindparam("name"), alerts.c.created_at >= bindparam("since"),
           or_(alerts.c.kind == "article", alerts.c.kind == "batch"))
    .limit(bindparam("limit")).subquery()))
# The batch still open for a flooded subscription (index ix_alerts_open_batch).
_OPEN_BATCH = (select(alerts.c.due_at)
               .where(alerts.c.subscription == bindparam("name"), alerts.c.kind == "batch",
                      alerts.c.status == "pending", alerts.c.due_at > bindparam("now"), alerts.c.batch_id.is_(None))
               .order_by(alerts.c.due_at).limit(1))
_INSERT_NEW = {name: Prepared(dialect.insert(alerts).on_conflict_do_nothing(index_elements=["id"])
                              .returning(alerts.c.id))
               for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}


def enqueue_matches(conn, *, article: dict, matches: list[tuple[dict, list[str]]], story_id: str,
                    article_id: int, story_size: int, now: datetime | None = None,
                    flood_limit: int = FLOOD_LIMIT, flood_window: float = FLOOD_WINDOW) -> list[str]:
    """Create the pending alerts of one article for every subscription it matched, in the
    caller's transaction: ``matches`` lists (subscription row as a dict, matched terms).

    One row per target of each subscription, unless the subscription already has an
    alert for ``story_id``; then the copy's source is noted on digest/batch alerts still
    waiting, and nothing is created. With ``alert_revisions`` a new revision of an
    article is alerted again. Existing alerts are looked up and new rows inserted with one
    statement each for all subscriptions; flood control adds, per instant subscription,
    one count that stops at the flood limit.
    Returns the ids of the alerts created.
    """
    matches = [(sub, terms) for sub, terms in matches if not sub.get("paused")]
    if not matches:
        return []
    now = to_db_time(now or utcnow())
    revision = _revision_key(article)
    names = {sub["name"] for sub, _ in matches}
    existing: dict[str, list[_StoredAlert]] = {}
    for row in _STORY_ALERTS.all(conn, {"story": story_id}):
        if row[1] in names:
            existing.setdefault(row[1], []).append(_StoredAlert(*row))

    wanted = []  # (subscription, terms, targets, revision or None)
    for sub, terms in matches:
        name = sub["name"]
        targets = list(dict.fromkeys(sub.get("targets") or ()))
        per_revision = bool(sub.get("alert_revisions")) and revision is not None
        rows = existing.get(name, [])
        if rows and not per_revision:
            _note_also_reported(conn, rows, article, story_size)
            continue
        if per_revision and any(row.id == alert_id(name, story_id, t, revision) for row in rows for t in targets):
            continue
        if targets:
            wanted.append((sub, terms, targets, revision if per_revision else None))
    if not wanted:
        return []

    instant = [sub["name"] for sub, *_ in wanted if (sub.get("mode") or "instant") not in DIGEST_MODES]
    floods = _flooded(conn, instant, now, flood_limit, flood_window)
    fields = _article_fields(article)
    rows = []
    for sub, terms, targets, rev in wanted:
        name = sub["name"]
        if (sub.get("mode") or "instant") in DIGEST_MODES:
            kind, due_at = "digest", next_digest_time(sub, now)
        else:
            kind, due_at = floods.get(name, ("article", None))
        payload = None
        for target in targets:
            aid = alert_id(name, story_id, target, rev)
            if payload is None:
                payload = build_payload(sub, article, story_id=story_id, article_id=article_id, terms=terms,
                                        story_size=story_size, alert_id=aid, kind=kind, article_fields=fields)
            rows.append(dict(id=aid, subscription_id=sub.get("id"), subscription=name, story_id=story_id,
                             article_id=article_id, target=target, kind=kind, payload=dict(payload, id=aid),
                             status="pending", attempts=0, next_attempt_at=due_at or now, due_at=due_at,
                             created_at=now))
    created = _insert_new(conn, rows)
    if created:
        logger.debug("Queued %d alert(s) of story %s for %d subscription(s)", len(created), story_id, len(wanted))
    return created


def _revision_key(article: dict) -> int | str | None:
    """What tells this revision of an article from the first one, or None for a first version."""
    try:
        number = int(article.get("revision") or 1)
    except (TypeError, ValueError):
        number = 1
    if number > 1:
        return number
    if article.get("revision_of"):  # the pipeline's item: a changed page, not numbered yet
        return f"h{article.get('content_hash') or article.get('fetched_at') or ''}"
    return None


def _flooded(conn, names: list[str], now: datetime, limit: int, window: float) -> dict[str, tuple]:
    """{name: ('batch', when)} for the subscriptions among ``names`` that had ``limit``
    instant alerts (distinct stories) in the last ``window`` seconds: their surplus
    waits for the end of the window and goes as one message."""
    if not names or not limit or limit <= 0:
        return {}
    since = now - timedelta(seconds=window)
    flooded = {}
    counts = _RECENT.each(conn, [{"name": name, "since": since, "limit": limit} for name in names])
    for name, ((count,),) in zip(names, counts):  # counted in one round trip on PostgreSQL
        if count < limit:
            continue
        open_batch = conn.execute(_OPEN_BATCH, {"name": name, "now": now}).scalar()
        flooded[name] = ("batch", open_batch or now + timedelta(seconds=window))
    return flooded


# -- dispatch -------------------------------------------------------------------------

@dataclass
class DispatchResult:
    """Alerts (rows) sent, rescheduled for retry, and moved to dead by one pass."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __iadd__(self, other: "DispatchResult") -> "DispatchResult":
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        return self


class Dispatcher:
    """Sends due alerts through their notifiers; safe to run in several processes at once.

    ``clock`` returns the current time (aware or naive UTC) so tests drive time;
    ``rng`` supplies the backoff jitter. The delay before retry ``n`` is
    ``min(max_delay, base_delay * 2**(n-1))``, jittered into its upper half, unless
    the receiver gave a ``Retry-After``. After ``max_attempts`` attempts an alert is
    dead until :meth:`retry_dead`.
    """

    def __init__(self, store, notifiers: NotifierRegistry | None = None, *, max_attempts: int = 8,
                 base_delay: float = 30.0, max_delay: float = 6 * 3600.0, lease: float = 300.0,
                 clock: Callable[[], datetime] | None = None, rng: random.Random | None = None):
        self.store = store
        self.notifiers = notifiers or NotifierRegistry()
        self.max_attempts = max(1, int(max_attempts))
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.lease = float(lease)
        self.clock = clock or utcnow
        self.rng = rng or random.Random()

    @classmethod
    def from_settings(cls, store, settings=None, **kwargs) -> "Dispatcher":
        """``ALERTS_MAX_ATTEMPTS``, ``ALERTS_RETRY_BASE_DELAY``, ``ALERTS_RETRY_MAX_DELAY``, ``ALERTS_LEASE``."""
        settings = settings or {}

        def number(key, default):
            value = settings.get(key)
            try:
                return float(value) if value not in (None, "") else default
            except (TypeError, ValueError):
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None

        kwargs.setdefault("notifiers", NotifierRegistry(settings))
        return cls(store, max_attempts=int(number("ALERTS_MAX_ATTEMPTS", 8)),
                   base_delay=number("ALERTS_RETRY_BASE_DELAY", 30.0),
                   max_delay=number("ALERTS_RETRY_MAX_DELAY", 6 * 3600.0),
                   lease=number("ALERTS_LEASE", 300.0), **kwargs)

    def now(self) -> datetime:
        return to_db_time(self.clock())

    # -- public ---------------------------------------------------------------------

    def dispatch_due(self, now: datetime | None = None, limit: int = 100) -> DispatchResult:
        """Send every alert due at ``now`` (at most ``limit`` rows); one pass, no waiting."""
        if now is not None:
            now = to_db_time(now)
            tick = lambda: now  # noqa: E731 - a pass at a given time stays at that time
        else:
            tick = self.now  # leases and retry times start when each send does
        result = DispatchResult()
        result.dead += self._expire_exhausted(tick())
        candidates = self._due(tick(), limit)
        subscription_cache: dict[str, dict | None] = {}
        handled = 0
        tried: set = set()
        for candidate in candidates:
            if handled >= limit:
                break
            group = candidate.batch_id or (candidate.subscription, candidate.target, candidate.kind, candidate.due_at) \
                if candidate.kind in GROUP_KINDS else candidate.id
            if group in tried:
                continue  # claimed (or lost) with an earlier candidate of its group
            tried.add(group)
            try:
                claim = self._claim(candidate, tick())
            except SQLAlchemyError as exc:  # e.g. a deadlock with another dispatcher: leave it to them
                logger.warning("Could not claim alert %s, skipped this pass: %s", candidate.id, clean_line(exc, 300))
                continue
            if claim is None:
                continue  # taken by another dispatcher, or part of a group sent already
            token, rows = claim
            handled += len(rows)
            result += self._deliver(token, rows, tick, subscription_cache)
        if result.sent or result.retried or result.dead:
            logger.info("Alerts dispatched: %d sent, %d to retry, %d dead", result.sent, result.retried,
                        result.dead)
        return result

    def retry_dead(self, ids: list[str] | None = None) -> int:
        """Put dead alerts back in the queue: all, or these alert ids (with the rest of their
        digest/batch) or message ids of a digest/batch; returns how many rows."""
        now = self.now()
        with self.store.begin() as conn:
            condition = alerts.c.status == "dead"
            if ids is not None:
                ids = list(ids)
                if not ids:
                    return 0
                batches = [b for b in conn.execute(select(alerts.c.batch_id).where(alerts.c.id.in_(ids)))
                           .scalars() if b]
                condition = and_(condition, or_(alerts.c.id.in_(ids), alerts.c.batch_id.in_(batches + ids)))
            moved = conn.execute(update(alerts).where(condition).values(
                status="pending", attempts=0, next_attempt_at=now, lease=None)).rowcount
        if moved:
            logger.info("%d dead alert(s) queued again", moved)
        return moved

    def list_alerts(self, status: str | None = None, limit: int = 100, subscription: str | None = None) -> list[dict]:
        """Alerts, newest first; ``status`` 'pending', 'sending', 'sent', 'dead' (or 'failed')."""
        query = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit)
        if status:
            query = query.where(alerts.c.status == ("dead" if status == "failed" else status))
        if subscription:
            query = query.where(alerts.c.subscription == subscription)
        with self.store.begin() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def close(self) -> None:
        self.notifiers.close()

    # -- claiming -------------------------------------------------------------------

    def _due(self, now: datetime, limit: int):
        # For digests and batches next_attempt_at starts at due_at; for 'sending' rows it
        # is the lease expiry: one condition covers both.
        query = (
            select(alerts.c.id, alerts.c.kind, alerts.c.subscription, alerts.c.target, alerts.c.due_at,
                   alerts.c.batch_id)
            .where(alerts.c.status.in_(("pending", "sending")), alerts.c.next_attempt_at <= now)
            .order_by(alerts.c.next_attempt_at, alerts.c.created_at, alerts.c.id)
            .limit(limit)
        )
        with self.store.begin() as conn:
            return conn.execute(query).all()

    def _expire_exhausted(self, now: datetime) -> int:
        """Due alerts with no attempt left are dead: leases that expired on the last attempt
        (the sender died each time), or rows left over from a larger ``max_attempts``."""
        exhausted = and_(alerts.c.next_attempt_at <= now, alerts.c.attempts >= self.max_attempts)
        with self.store.begin() as conn:
            moved = conn.execute(
                update(alerts).where(exhausted, alerts.c.status == "sending")
                .values(status="dead", lease=None,
                        last_error=f"the sender stopped during attempt {self.max_attempts} (lease expired)")
            ).rowcount
            moved += conn.execute(
                update(alerts).where(exhausted, alerts.c.status == "pending")
                .values(status="dead", last_error=f"no attempt left (max_attempts={self.max_attempts})")
            ).rowcount
        if moved:
            logger.warning("%d alert(s) dead: no attempt left", moved)
        return moved

    def _claim(self, candidate, now: datetime) -> tuple[str, list] | None:
        token = secrets.token_hex(16)
        if candidate.kind in GROUP_KINDS:
            if candidate.batch_id:
                which = alerts.c.batch_id == candidate.batch_id
            else:
                which = and_(alerts.c.subscription == candidate.subscription, alerts.c.target == candidate.target,
                             alerts.c.kind == candidate.kind, alerts.c.due_at == candidate.due_at,
                             alerts.c.batch_id.is_(None))
        else:
            which = alerts.c.id == candidate.id
        with self.store.begin() as conn:
            claimed = conn.execute(
                update(alerts)
                .where(which, alerts.c.status.in_(("pending", "sending")), alerts.c.next_attempt_at <= now,
                       alerts.c.attempts < self.max_attempts)
                .values(status="sending", lease=token, attempts=alerts.c.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=self.lease))
            ).rowcount
            if not claimed:
                return None
            rows = conn.execute(select(alerts).where(alerts.c.lease == token)
                                .order_by(alerts.c.created_at, alerts.c.id)).all()
            if candidate.kind in GROUP_KINDS and not rows[0].batch_id:
                batch = _batch_id(candidate.kind, candidate.subscription, candidate.target, candidate.due_at,
                                  [r.id for r in rows])
                conn.execute(update(alerts).where(alerts.c.lease == token).values(batch_id=batch))
                rows = conn.execute(select(alerts).where(alerts.c.lease == token)
                                    .order_by(alerts.c.created_at, alerts.c.id)).all()
        return token, rows

    # -- sending --------------------------------------------------------------------

    def _subscription(self, name: str, cache: dict) -> dict | None:
        if name not in cache:
            with self.store.begin() as conn:
                row = conn.execute(select(subscriptions).where(subscriptions.c.name == name)).mappings().first()
            cache[name] = dict(row) if row else None
        return cache[name]

    def _deliver(self, token: str, rows: list, tick: Callable[[], datetime], cache: dict) -> DispatchResult:
        first = rows[0]
        subscription = self._subscription(first.subscription, cache) or {}
        delivery = Delivery(
            id=first.batch_id if first.kind in GROUP_KINDS and first.batch_id else first.id,
            target=first.target,
            kind=first.kind,
            subscription=first.subscription,
            items=[dict(r.payload or {}) for r in rows],
            secret=subscription.get("secret"),
            alert_ids=[r.id for r in rows],
        )
        try:
            notifier = self.notifiers.for_target(first.target)
        except Exception as exc:  # unknown scheme, SMTP not configured: no point retrying
            outcome = Outcome(DEAD, f"{type(exc).__name__}: {clean_line(exc, 500)}")
            logger.error("Alert %s to %s cannot be sent: %s", delivery.id, describe_target(first.target),
                         outcome.error)
        else:
            outcome = notifier.run(delivery)
        return self._record(token, rows, outcome, tick())

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def _record(self, token: str, rows: list, outcome: Outcome, now: datetime) -> DispatchResult:
        attempts = max(r.attempts for r in rows)
        mine = alerts.c.lease == token
        result = DispatchResult()
        if outcome.status == SENT:
            values = dict(status="sent", sent_at=now, lease=None, last_error=None)
            result.sent = len(rows)
        elif outcome.status == RETRY and attempts < self.max_attempts:
            delay = outcome.delay if outcome.delay is not None else self._backoff(attempts)
            values = dict(status="pending", lease=None, last_error=outcome.error,
                          next_attempt_at=now + timedelta(seconds=max(0.0, delay)))
            result.retried = len(rows)
        else:
            error = outcome.error or "failed"
            if outcome.status == RETRY:
                error = f"gave up after {attempts} attempts: {error}"
            values = dict(status="dead", lease=None, last_error=error)
            result.dead = len(rows)
        try:
            with self.store.begin() as conn:
                updated = conn.execute(update(alerts).where(mine).values(**values)).rowcount
        except SQLAlchemyError as exc:
            # The lease expires and the message goes again, with the same id for receivers to drop.
            logger.error("Could not record the outcome (%s) of message %s: %s", outcome.status,
                         rows[0].batch_id or rows[0].id, clean_line(exc, 300))
            return DispatchResult()
        if updated != len(rows):
            logger.warning("Lost the lease on %d of %d alert(s) of message %s while sending (lease too short?)",
                           len(rows) - updated, len(rows), rows[0].batch_id or rows[0].id)
        if result.dead:
            logger.error("Alert %s to %s is dead: %s", rows[0].batch_id or rows[0].id,
                         describe_target(rows[0].target), values["last_error"])
        return result
