"""CLI commands of the daemon::

    newswatch run    [--schedules DIR] [--db DB_URL] [-s NAME=VALUE]...
    newswatch check  [--schedules DIR]
    newswatch status [--schedules DIR] [--db DB_URL] [--json]
    newswatch reload [--db DB_URL]

``--schedules`` defaults to ``$NEWSWATCH_SCHEDULES``, else ``./schedules``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

from crawler.exceptions import ConfigError

logger = logging.getLogger(__name__)


def _schedules_dir(args) -> str:
    return args.schedules or os.environ.get("NEWSWATCH_SCHEDULES") or "schedules"


def _add_common(parser, db: bool = True) -> None:
    parser.add_argument("--schedules", metavar="DIR", help="directory of *.toml schedules (default: "
                                                           "$NEWSWATCH_SCHEDULES or ./schedules)")
    if db:
        parser.add_argument("--db", help="SQLAlchemy database URL (default: $NEWSWATCH_DB or "
                                         "sqlite:///data/newswatch.db)")


def add_daemon_commands(commands) -> None:
    """Register the daemon's subcommands on the `newswatch` parser."""
    run = commands.add_parser("run", help="run the scheduler: crawl every source on its schedule, send alerts")
    _add_common(run)
    run.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override a setting (e.g. DAEMON_SHUTDOWN_GRACE=10)")
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="validate the schedules without running them")
    _add_common(check, db=False)
    check.set_defaults(func=cmd_check)

    status = commands.add_parser("status", help="sources, subscriptions and alert backlog")
    _add_common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    reload = commands.add_parser("reload", help="make the running scheduler re-read its schedules")
    reload.add_argument("--db", help="SQLAlchemy database URL of the running scheduler")
    reload.set_defaults(func=cmd_reload)


def _configure_logging(verbose: int) -> None:
    """Timestamps, and the daemon's own INFO lines even without -v (Scrapy stays quiet)."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    if verbose == 0:
        for name in ("crawler.daemon", "crawler.monitoring", "crawler.alerts.outbox"):
            logging.getLogger(name).setLevel(logging.INFO)


def cmd_run(args) -> int:
    from crawler.daemon.service import Daemon

    _configure_logging(getattr(args, "verbose", 0))
    from crawler.runner import parse_overrides

    daemon = Daemon(_schedules_dir(args), db=args.db, overrides=parse_overrides(args.set))
    return daemon.run()


def cmd_check(args) -> int:
    from crawler.daemon.schedules import load_schedules

    schedules = load_schedules(_schedules_dir(args))
    for path in schedules.files:
        declared = [s for s in schedules.sources if s.file == path]
        subs = [s for s in schedules.subscriptions if s["file"] == path]
        print(f"{path}: ok ({len(declared)} source(s), {len(subs)} subscription(s))")
    for source in schedules.sources:
        state = "" if source.enabled else "  [disabled]"
        print(f"  source {source.name}: {source.describe()}  {source.url}{state}")
    for sub in schedules.subscriptions:
        print(f"  subscription {sub['name']}: {sub['mode']}, {len(sub['targets'])} target(s)  {sub['query']}")
    health = schedules.health
    targets = f"{len(health.notify)} target(s)" if health.notify is not None else "every subscription's targets"
    print(f"  health: failing after {health.failures} failed runs, notices to {targets}")
    return 0


def cmd_status(args) -> int:
    from crawler.daemon.schedules import load_schedules
    from crawler.daemon.status import collect_status, format_status
    from crawler.store import open_store

    schedules = None
    directory = args.schedules or os.environ.get("NEWSWATCH_SCHEDULES")
    if directory:
        try:
            schedules = load_schedules(directory)
        except ConfigError as exc:
            print(f"newswatch: warning: schedules not read: {exc}", file=sys.stderr)
    status = collect_status(open_store(args.db), schedules)
    if args.json:
        print(json.dumps(status, indent=1, ensure_ascii=False, default=str))
    else:
        print(format_status(status))
    return 0


def cmd_reload(args) -> int:
    from crawler.daemon.lock import current_owner, request_reload
    from crawler.store import open_store

    store = open_store(args.db)
    owner = current_owner(store)
    if owner is None:
        print("newswatch: no scheduler is running on this database", file=sys.stderr)
        return 1
    alive = owner.process_alive()
    if alive:
        os.kill(owner.pid, signal.SIGHUP)
        print(f"Sent SIGHUP to the scheduler (pid {owner.pid}): it re-reads its schedules now")
        return 0
    if alive is False:
        print(f"newswatch: the scheduler {owner.owner} is not running (stale lease)", file=sys.stderr)
        return 1
    request_reload(store)
    print(f"Reload requested from the scheduler on {owner.host}: it re-reads its schedules at its next heartbeat")
    return 0
