"""``newswatch status``: what the scheduler does and how each source is doing."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from crawler.alerts.render import clean_line
from crawler.daemon.lock import current_owner
from crawler.daemon.schedules import Schedules, format_duration
from crawler.store.repository import utcnow
from crawler.store.schema import alerts, runs, sources


def collect_status(store, schedules: Schedules | None = None, now: datetime | None = None) -> dict:
    """Everything ``status`` shows, as plain data (also its ``--json`` output)."""
    from crawler.alerts.subscriptions import list_subscriptions

    now = now or utcnow()
    owner = current_owner(store)
    scheduled = {s.url: s for s in (schedules.sources if schedules else [])}
    with store.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(sources).order_by(sources.c.name)).mappings()]
        subs = list_subscriptions(conn)
        counts = dict(conn.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status)).all())
        oldest = conn.execute(select(func.min(alerts.c.created_at))
                              .where(alerts.c.status.in_(("pending", "sending")), alerts.c.next_attempt_at <= now)
                              ).scalar_one()
        recent = {}
        for row in rows:
            news = list(conn.execute(select(runs.c.new).where(runs.c.source_id == row["id"])
                                     .order_by(runs.c.id.desc()).limit(10)).scalars())
            recent[row["id"]] = sum(news) / len(news) if news else None
    known = {r["url"] for r in rows}
    for url, schedule in scheduled.items():
        if url not in known:
            rows.append({"url": url, "name": schedule.name})
    result_sources = []
    for row in rows:
        schedule = scheduled.get(row["url"])
        result_sources.append({
            "name": row.get("name") or row["url"],
            "url": row["url"],
            "schedule": _describe(schedule, row, schedules),
            "next_run_at": _iso(row.get("next_run_at")) if not schedule or schedule.enabled else None,
            "poll_interval": row.get("poll_interval"),
            "last_run_at": _iso(row.get("last_run_at")),
            "last_success_at": _iso(row.get("last_success_at")),
            "consecutive_failures": row.get("consecutive_failures") or 0,
            "last_error": row.get("last_error"),
            "last_new_count": row.get("last_new_count"),
            "new_per_run_recent": recent.get(row.get("id")),  # mean over the last 10 runs
            "articles_total": row.get("articles_total") or 0,
            "runs": row.get("runs") or 0,
            "health": row.get("health") or "ok",
        })
    return {
        "scheduler": {
            "running": owner is not None and (now - owner.heartbeat_at).total_seconds() < 120,
            "owner": owner.owner if owner else None,
            "heartbeat_at": _iso(owner.heartbeat_at) if owner else None,
        },
        "sources": result_sources,
        "subscriptions": [{"name": s["name"], "query": s["query"], "mode": s["mode"], "targets": len(s["targets"]),
                           "paused": s["paused"], "origin": s["origin"]} for s in subs],
        "outbox": {"pending": counts.get("pending", 0), "sending": counts.get("sending", 0),
                   "sent": counts.get("sent", 0), "dead": counts.get("dead", 0),
                   "oldest_due_age": (now - oldest).total_seconds() if oldest else None},
    }


def _describe(schedule, row: dict, schedules) -> str:
    if schedule is not None:
        return schedule.describe() + ("" if schedule.enabled else " (disabled)")
    if schedules is not None:
        return "not in the schedules"
    return f"every {format_duration(row['poll_interval'])}" if row.get("poll_interval") else "-"


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat() if value else None


def _ago(value: str | None, now: datetime) -> str:
    if not value:
        return "never"
    when = datetime.fromisoformat(value).replace(tzinfo=None)
    seconds = (now - when).total_seconds()
    if seconds < 0:
        return "in " + format_duration(-seconds)
    return format_duration(seconds) + " ago"


def _new_per_run(source: dict) -> str:
    if source["last_new_count"] is None:
        return "-"
    mean = source.get("new_per_run_recent")
    return f"{source['last_new_count']} (avg {mean:.1f})" if mean is not None else str(source["last_new_count"])


def _next(value: str | None, now: datetime, running: bool) -> str:
    if not value:
        return "-"
    when = datetime.fromisoformat(value).replace(tzinfo=None)
    if when <= now:
        return "due now" if running else "due (scheduler not running)"
    return "in " + format_duration((when - now).total_seconds())


def format_status(status: dict, now: datetime | None = None) -> str:
    now = now or utcnow()
    lines = []
    sched = status["scheduler"]
    if sched["running"]:
        lines.append(f"Scheduler: running ({sched['owner']}, heartbeat {_ago(sched['heartbeat_at'], now)})")
    else:
        lines.append("Scheduler: not running")
    lines.append("")
    lines.append(f"Sources ({len(status['sources'])}):")
    header = ("SOURCE", "SCHEDULE", "NEXT RUN", "LAST SUCCESS", "FAILS", "NEW LAST RUN (AVG 10)", "RUNS", "HEALTH",
              "LAST ERROR")
    table = [header]
    for s in status["sources"]:
        interval = s.get("poll_interval")
        schedule = s["schedule"]
        if interval and "adaptive" in schedule:
            schedule += f" now {format_duration(interval)}"
        table.append((
            clean_line(s["name"], 30), schedule,
            _next(s["next_run_at"], now, sched["running"]),
            _ago(s["last_success_at"], now),
            str(s["consecutive_failures"]),
            _new_per_run(s),
            str(s["runs"]),
            s["health"],
            clean_line(s["last_error"] or "", 60),
        ))
    lines.extend(_table(table))
    lines.append("")
    lines.append(f"Subscriptions ({len(status['subscriptions'])}):")
    table = [("NAME", "MODE", "TARGETS", "STATE", "ORIGIN", "QUERY")]
    for sub in status["subscriptions"]:
        table.append((clean_line(sub["name"], 30), sub["mode"], str(sub["targets"]),
                      "paused" if sub["paused"] else "active", clean_line(sub["origin"], 30),
                      clean_line(sub["query"], 60)))
    lines.extend(_table(table))
    lines.append("")
    box = status["outbox"]
    oldest = f", oldest due for {format_duration(box['oldest_due_age'])}" if box["oldest_due_age"] else ""
    lines.append(f"Outbox: {box['pending']} pending, {box['sending']} sending, {box['dead']} dead, "
                 f"{box['sent']} sent{oldest}")
    return "\n".join(lines)


def _table(rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
