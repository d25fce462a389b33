"""Subscriptions: a named query, where to send its alerts, and when (table ``subscriptions``).

They come from two places: the CLI (``newswatch subs add``, ``origin='cli'``) and
``schedules/*.toml`` files (``origin='schedules:<file>'``), synced at start-up by
:func:`sync_from_schedules`. **The file wins** for the subscriptions it declares:
each sync overwrites their query, targets, mode and filters with the file's values
(a CLI edit of a declared subscription lasts until the next sync); only ``paused``
is kept from the database unless the file sets it. A subscription that disappears
from its file is deleted; subscriptions made on the CLI are never touched by a sync.

A row as a dict: ``name, query, targets (list), mode ('instant', 'hourly', 'daily',
'weekly'), digest_at ('HH:MM'), digest_day ('mon'..'sun'), timezone (IANA), sources,
languages (lists; empty = all), secret (webhook HMAC key), alert_revisions, paused,
origin, created_at``. Invalid values raise :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import logging
from typing import Iterable

from sqlalchemy import delete, select, update

from crawler.alerts.notifiers import check_target
from crawler.alerts.outbox import DIGEST_MODES, MODES, get_zone, parse_hhmm, parse_weekday
from crawler.alerts.render import sanitize_terminal
from crawler.exceptions import ConfigError, QueryError
from crawler.store.repository import utcnow
from crawler.store.schema import subscriptions

logger = logging.getLogger(__name__)

FIELDS = ("query", "targets", "mode", "digest_at", "digest_day", "timezone", "sources", "languages", "secret",
          "alert_revisions")


def _check_query(query: str, where: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{where}query: expected a non-empty query")
    try:
        from crawler.alerts.query import parse_query
    except ImportError:  # the query language is not installed yet: checked when matching
        return
    try:
        parse_query(query)
    except QueryError as exc:  # keep the position, name the field
        raise QueryError(f"{where}query: {exc.bare_message}", exc.query, exc.position) from None


def _string_list(value, field: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    try:
        items = [str(v).strip() for v in value]
    except TypeError:
        raise ConfigError(f"{where}{field}: expected a list of strings, got {value!r}") from None
    return [v for v in dict.fromkeys(items) if v]


def validate_subscription(values: dict, where: str = "") -> dict:
    """A normalised copy of ``values`` (one subscription); ConfigError naming the bad field.

    ``where`` prefixes messages (e.g. ``"schedules/news.toml: subscription 'x': "``).
    """
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or sanitize_terminal(name) != name \
            or "\n" in name:
        raise ConfigError(f"{where}name: expected 1-200 printable characters, got {name!r}")
    where = where or f"subscription {name!r}: "
    _check_query(values.get("query"), where)

    mode = (values.get("mode") or "instant").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{where}mode: expected one of {', '.join(MODES)}, got {values.get('mode')!r}")
    digest_at = values.get("digest_at")
    digest_day = values.get("digest_day")
    if digest_at not in (None, ""):
        at = parse_hhmm(digest_at, f"{where}digest_at")
        digest_at = f"{at.hour:02d}:{at.minute:02d}"
    else:
        digest_at = "08:00" if mode in ("daily", "weekly") else None
    if digest_day not in (None, ""):
        digest_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[parse_weekday(digest_day, f"{where}digest_day")]
    else:
        digest_day = "mon" if mode == "weekly" else None
    if mode not in DIGEST_MODES and values.get("digest_at"):
        raise ConfigError(f"{where}digest_at: only for digest modes ({', '.join(DIGEST_MODES)}), "
                          f"but mode is {mode!r}")
    if mode != "weekly" and values.get("digest_day"):
        raise ConfigError(f"{where}digest_day: only for mode 'weekly', but mode is {mode!r}")
    zone = values.get("timezone") or "UTC"
    get_zone(zone, f"{where}timezone")

    targets = _string_list(values.get("targets"), "targets", where)
    if not targets:
        raise ConfigError(f"{where}targets: expected at least one target (https://…, mailto:…, "
                          f"file:///….jsonl or an Apprise URL)")
    for target in targets:
        try:
            check_target(target)
        except ConfigError as exc:
            raise ConfigError(f"{where}targets: {exc}") from None

    secret = values.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise ConfigError(f"{where}secret: expected a non-empty string")
    return {
        "name": name,
        "query": values["query"].strip(),
        "targets": targets,
        "mode": mode,
        "digest_at": digest_at,
        "digest_day": digest_day,
        "timezone": zone,
        "sources": _string_list(values.get("sources"), "sources", where),
        "languages": [lang.lower() for lang in _string_list(values.get("languages"), "languages", where)],
        "secret": secret,
        "alert_revisions": bool(values.get("alert_revisions", False)),
    }


def add_subscription(conn, name: str, query: str, targets: Iterable[str], mode: str = "instant",
                     digest_at: str | None = None, digest_day: str | None = None, timezone: str = "UTC",
                     sources: Iterable[str] = (), languages: Iterable[str] = (), secret: str | None = None,
                     alert_revisions: bool = False, origin: str = "cli") -> dict:
    """Create a subscription; ConfigError if the name is taken or a field is invalid."""
    values = validate_subscription(dict(name=name, query=query, targets=list(targets or ()), mode=mode,
                                        digest_at=digest_at, digest_day=digest_day, timezone=timezone,
                                        sources=sources, languages=languages, secret=secret,
                                        alert_revisions=alert_revisions))
    if get_subscription(conn, name) is not None:
        raise ConfigError(f"subscription {name!r} exists already (remove it first, or pick another name)")
    conn.execute(subscriptions.insert().values(**values, paused=False, origin=origin, created_at=utcnow()))
    return get_subscription(conn, name)


def update_subscription(conn, name: str, **changes) -> dict:
    """Change some fields of an existing subscription (validated as a whole)."""
    current = get_subscription(conn, name)
    if current is None:
        raise ConfigError(f"no subscription named {name!r}")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ConfigError(f"subscription {name!r}: cannot change {', '.join(sorted(unknown))}")
    if "mode" in changes:  # digest times of the old mode do not carry over
        changes.setdefault("digest_at", None)
        changes.setdefault("digest_day", None)
    values = validate_subscription({**current, **changes})
    conn.execute(update(subscriptions).where(subscriptions.c.name == name).values(**values))
    return get_subscription(conn, name)


def _as_dict(row) -> dict:
    sub = dict(row)
    for key in ("targets", "sources", "languages"):
        sub[key] = list(sub.get(key) or [])
    sub["paused"] = bool(sub.get("paused"))
    sub["alert_revisions"] = bool(sub.get("alert_revisions"))
    return sub


def list_subscriptions(conn, include_paused: bool = True) -> list[dict]:
    query = select(subscriptions).order_by(subscriptions.c.name)
    if not include_paused:
        query = query.where(subscriptions.c.paused.is_(False))
    return [_as_dict(row) for row in conn.execute(query).mappings()]


def get_subscription(conn, name: str) -> dict | None:
    row = conn.execute(select(subscriptions).where(subscriptions.c.name == name)).mappings().first()
    return _as_dict(row) if row else None


def remove_subscription(conn, name: str) -> bool:
    """Delete a subscription and (by cascade) its alerts; False if there was none."""
    from crawler.store.schema import alerts

    found = get_subscription(conn, name)
    if found is None:
        return False
    conn.execute(delete(alerts).where(alerts.c.subscription == name))  # SQLite may run without FK cascade
    conn.execute(delete(subscriptions).where(subscriptions.c.name == name))
    return True


def set_paused(conn, name: str, paused: bool) -> dict:
    """Pause (no new alerts; queued ones still go) or resume a subscription."""
    if not conn.execute(update(subscriptions).where(subscriptions.c.name == name)
                        .values(paused=bool(paused))).rowcount:
        raise ConfigError(f"no subscription named {name!r}")
    return get_subscription(conn, name)


def sync_from_schedules(conn, declared: list[dict], origin_prefix: str = "schedules") -> dict[str, list[str]]:
    """Make the database agree with the subscriptions declared in ``schedules/*.toml``.

    Each dict of ``declared`` is one subscription (the fields of
    :func:`add_subscription`, plus ``origin``/``file`` naming its file, and optionally
    ``paused``). Declared subscriptions are created or overwritten (the file wins);
    subscriptions whose origin starts with ``origin_prefix`` and that no file declares
    any more are deleted; others (the CLI's) are left alone. All declarations are
    validated before anything is written. Returns the names ``added``, ``updated``,
    ``removed`` and ``unchanged``.
    """
    prepared: dict[str, tuple[dict, str, bool | None]] = {}
    for entry in declared:
        source = entry.get("origin") or entry.get("file")
        source = str(source) if source else ""
        origin = source if source.startswith(origin_prefix + ":") else \
            f"{origin_prefix}:{source}" if source else origin_prefix
        where = f"{source or origin_prefix}: subscription {entry.get('name')!r}: "
        values = validate_subscription(entry, where)
        if values["name"] in prepared:
            raise ConfigError(f"{where}declared twice (also in {prepared[values['name']][1]})")
        paused = entry.get("paused")
        prepared[values["name"]] = (values, origin, None if paused is None else bool(paused))

    report: dict[str, list[str]] = {"added": [], "updated": [], "removed": [], "unchanged": []}
    existing = {sub["name"]: sub for sub in list_subscriptions(conn)}
    for name, (values, origin, paused) in prepared.items():
        current = existing.get(name)
        if current is None:
            conn.execute(subscriptions.insert().values(**values, paused=bool(paused), origin=origin,
                                                       created_at=utcnow()))
            report["added"].append(name)
            continue
        wanted = dict(values, origin=origin)
        if paused is not None:
            wanted["paused"] = paused
        if all(current.get(k) == v for k, v in wanted.items()):
            report["unchanged"].append(name)
            continue
        if not current["origin"].startswith(origin_prefix):
            logger.info("Subscription %r made on the CLI is now declared in %s: the file wins",
                        name, origin)
        conn.execute(update(subscriptions).where(subscriptions.c.name == name).values(**wanted))
        report["updated"].append(name)
    for name, current in existing.items():
        if name not in prepared and current["origin"].startswith(origin_prefix):
            remove_subscription(conn, name)
            report["removed"].append(name)
    if report["added"] or report["updated"] or report["removed"]:
        logger.info("Subscriptions synced from %s: %d added, %d updated, %d removed", origin_prefix,
                    len(report["added"]), len(report["updated"]), len(report["removed"]))
    return report
