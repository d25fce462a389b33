"""CLI commands for subscriptions and the alert outbox:

    newswatch subs add|list|show|rm|pause|resume|test|backtest
    newswatch alerts list [--failed] | retry [ID...] | send
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

from crawler.exceptions import ConfigError


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy database URL (default: $NEWSWATCH_DB or sqlite:///data/newswatch.db)")


def add_alert_commands(commands) -> None:
    """Register `subs` and `alerts` on the `newswatch` parser."""
    subs = commands.add_parser("subs", help="manage keyword subscriptions")
    actions = subs.add_subparsers(dest="subs_action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a subscription")
    add.add_argument("name")
    add.add_argument("query")
    add.add_argument("--notify", action="append", required=True, metavar="TARGET",
                     help="webhook URL, mailto:, Apprise URL or a .jsonl file (repeatable)")
    add.add_argument("--mode", default="instant", help="instant, hourly, daily or weekly (digests)")
    add.add_argument("--at", dest="digest_at", help="digest time HH:MM (daily, weekly)")
    add.add_argument("--day", dest="digest_day", help="digest weekday (weekly): mon..sun")
    add.add_argument("--timezone", default="UTC", help="time zone of the digest time (e.g. Europe/Paris)")
    add.add_argument("--source", action="append", default=[], dest="sources", help="only these sources")
    add.add_argument("--lang", action="append", default=[], dest="languages", help="only these languages")
    add.add_argument("--secret", help="HMAC-SHA256 secret for webhook signatures")
    add.add_argument("--alert-revisions", action="store_true", help="alert again when a story is revised")
    _db(add)
    for name, text in (("list", "list subscriptions"), ("show", "show one subscription"),
                       ("rm", "remove a subscription"), ("pause", "stop alerting (queued alerts still go)"),
                       ("resume", "alert again")):
        action = actions.add_parser(name, help=text)
        if name != "list":
            action.add_argument("name")
        _db(action)

    test = actions.add_parser("test", help="try a query on saved pages or URLs, without storing anything")
    test.add_argument("query")
    test.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    test.add_argument("--json", action="store_true", help="one JSON line per page")

    backtest = actions.add_parser("backtest", help="what a subscription would have sent over stored articles")
    backtest.add_argument("name")
    backtest.add_argument("--since", default="7d", help="how far back (e.g. 7d, 12h)")
    backtest.add_argument("--json", action="store_true")
    _db(backtest)
    subs.set_defaults(func=cmd_subs)

    alerts = commands.add_parser("alerts", help="inspect and drive the alert outbox")
    alert_actions = alerts.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")
    listing = alert_actions.add_parser("list", help="list alerts, newest first")
    listing.add_argument("--failed", action="store_true", help="only dead-lettered alerts")
    listing.add_argument("--status", choices=["pending", "sending", "sent", "dead"])
    listing.add_argument("--limit", type=int, default=50)
    _db(listing)
    retry = alert_actions.add_parser("retry", help="queue dead alerts again (all, or the given ids)")
    retry.add_argument("ids", nargs="*")
    _db(retry)
    send = alert_actions.add_parser("send", help="send every due alert now, once")
    _db(send)
    alerts.set_defaults(func=cmd_alerts)


def _store(args):
    from crawler.store import open_store

    return open_store(getattr(args, "db", None))


def _print_subscription(sub: dict) -> None:
    from crawler.alerts.render import sanitize_terminal

    state = "paused" if sub["paused"] else "active"
    mode = sub["mode"] + (f" at {sub['digest_at']}" if sub.get("digest_at") else "") + \
        (f" on {sub['digest_day']}" if sub.get("digest_day") else "") + \
        (f" ({sub['timezone']})" if sub["mode"] != "instant" else "")
    print(f"{sanitize_terminal(sub['name'], True)}  [{state}, {mode}, from {sub['origin']}]")
    print(f"  query:   {sanitize_terminal(sub['query'], True)}")
    print(f"  notify:  {', '.join(sanitize_terminal(t, True) for t in sub['targets'])}")
    if sub.get("sources"):
        print(f"  sources: {', '.join(sub['sources'])}")
    if sub.get("languages"):
        print(f"  languages: {', '.join(sub['languages'])}")


def cmd_subs(args) -> int:
    from crawler.alerts import subscriptions as subs

    action = args.subs_action
    if action == "test":
        return _subs_test(args)
    if action == "backtest":
        return _subs_backtest(args)
    store = _store(args)
    with store.begin() as conn:
        if action == "add":
            sub = subs.add_subscription(conn, args.name, args.query, args.notify, mode=args.mode,
                                        digest_at=args.digest_at, digest_day=args.digest_day,
                                        timezone=args.timezone, sources=args.sources, languages=args.languages,
                                        secret=args.secret, alert_revisions=args.alert_revisions)
            _print_subscription(sub)
        elif action == "list":
            for sub in subs.list_subscriptions(conn):
                _print_subscription(sub)
        elif action == "show":
            sub = subs.get_subscription(conn, args.name)
            if sub is None:
                raise ConfigError(f"no subscription named {args.name!r}")
            _print_subscription(sub)
        elif action == "rm":
            if not subs.remove_subscription(conn, args.name):
                raise ConfigError(f"no subscription named {args.name!r}")
        elif action in ("pause", "resume"):
            _print_subscription(subs.set_paused(conn, args.name, action == "pause"))
    return 0


def _subs_test(args) -> int:
    from crawler.alerts.matcher import match_query
    from crawler.alerts.query import parse_query
    from crawler.alerts.render import sanitize_terminal
    from crawler.cli import read_target
    from crawler.exceptions import NewswatchError
    from crawler.extract import extract_article

    query = parse_query(args.query)
    status = 0
    for target in args.targets:
        try:
            html, url = read_target(target)
            article = extract_article(html, url)
        except (NewswatchError, OSError) as exc:
            status = 1
            if args.json:
                print(json.dumps({"path": target, "matched": False, "terms": [], "error": str(exc)}))
            else:
                print(f"{sanitize_terminal(target, True)}: error: {sanitize_terminal(str(exc), True)}")
            continue
        terms = match_query(query, article)
        if args.json:
            print(json.dumps({"path": target, "matched": terms is not None, "terms": terms or []},
                             ensure_ascii=False))
        else:
            verdict = "MATCH   " if terms is not None else "no match"
            detail = f"  terms: {', '.join(terms)}" if terms else ""
            print(f"{verdict} {sanitize_terminal(target, True)}{sanitize_terminal(detail, True)}")
    return status


def _subs_backtest(args) -> int:
    """Replay a subscription over stored articles: one line per story it would have alerted."""
    from crawler.alerts import subscriptions as subs
    from crawler.alerts.matcher import match_query
    from crawler.alerts.query import parse_query
    from crawler.alerts.render import sanitize_terminal
    from crawler.daemon.schedules import parse_duration
    from crawler.store.repository import utcnow

    store = _store(args)
    with store.begin() as conn:
        sub = subs.get_subscription(conn, args.name)
    if sub is None:
        raise ConfigError(f"no subscription named {args.name!r}")
    try:
        since = utcnow() - timedelta(seconds=parse_duration(args.since))
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    query = parse_query(sub["query"])
    seen_stories: set[str] = set()
    count = 0
    for article in store.iter_articles(since=since):
        if sub.get("languages") and article.get("language") not in sub["languages"]:
            continue
        terms = match_query(query, article)
        if terms is None or article["story_id"] in seen_stories:
            continue
        seen_stories.add(article["story_id"])
        count += 1
        if args.json:
            print(json.dumps({"story_id": article["story_id"], "url": article["url"], "title": article["title"],
                              "published": article["published"].isoformat() if article["published"] else None,
                              "terms": terms}, ensure_ascii=False))
        else:
            print(f"{sanitize_terminal(article['title'] or '', True)}\n  {article['url']}  [{', '.join(terms)}]")
    if not args.json:
        print(f"{count} alert(s) over the stored articles since {since:%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_alerts(args) -> int:
    from crawler.alerts.notifiers.base import describe_target
    from crawler.alerts.outbox import Dispatcher
    from crawler.alerts.render import sanitize_terminal
    from crawler.runner import build_settings

    store = _store(args)
    dispatcher = Dispatcher.from_settings(store, build_settings(getattr(args, "db", None)))
    try:
        if args.alerts_action == "list":
            status = "dead" if args.failed else args.status
            for alert in dispatcher.list_alerts(status=status, limit=args.limit):
                title = (alert.get("payload") or {}).get("title") or ""
                error = f"  last error: {alert['last_error']}" if alert.get("last_error") else ""
                print(f"{alert['id'][:16]}  {alert['status']:<7} {alert['attempts']} tries  "
                      f"{sanitize_terminal(alert['subscription'], True)} -> "
                      f"{sanitize_terminal(describe_target(alert['target']), True)}"
                      f"  {sanitize_terminal(title, True)[:80]}{sanitize_terminal(error, True)}")
        elif args.alerts_action == "retry":
            ids = [i for i in args.ids] or None
            if ids:
                ids = _expand_ids(dispatcher, ids)
            print(f"{dispatcher.retry_dead(ids)} alert(s) queued again")
        elif args.alerts_action == "send":
            result = dispatcher.dispatch_due()
            print(f"sent={result.sent} retried={result.retried} dead={result.dead}")
    finally:
        dispatcher.close()
    return 0


def _expand_ids(dispatcher, prefixes: list[str]) -> list[str]:
    """Alert ids may be given by the prefix `alerts list` prints."""
    dead = [a["id"] for a in dispatcher.list_alerts(status="dead", limit=100000)]
    found = []
    for prefix in prefixes:
        matches = [i for i in dead if i.startswith(prefix)]
        if not matches:
            raise ConfigError(f"no dead alert with id {prefix!r}")
        found.extend(matches)
    return found
