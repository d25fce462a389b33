"""The `newswatch` command.

    newswatch crawl URL... [--db DB] [--watch QUERY]... [-o FILE.jsonl|-] [--processes N]
    newswatch extract PATH_OR_URL [--url URL]
    newswatch subs add|list|show|rm|pause|resume|test|backtest ...
    newswatch alerts list [--failed] | retry [ID...] | send
    newswatch run | check | status | reload      (the daemon)
    newswatch bench extract DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.request
from pathlib import Path

from crawler.exceptions import ConfigError, NewswatchError

logger = logging.getLogger(__name__)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy database URL (default: $NEWSWATCH_DB or "
                                     "sqlite:///data/newswatch.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newswatch", description="Scheduled news scraping and monitoring.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crawl = commands.add_parser("crawl", help="crawl feeds, sitemaps, sites or pages now")
    crawl.add_argument("urls", nargs="+", metavar="URL")
    _add_db(crawl)
    crawl.add_argument("--watch", action="append", default=[], metavar="QUERY",
                       help="flag articles matching QUERY (repeatable)")
    crawl.add_argument("-o", "--output", metavar="FILE", help="write new articles as JSON lines ('-': stdout)")
    crawl.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a Scrapy/newswatch setting")
    crawl.add_argument("--no-send", action="store_true",
                       help="leave the alerts this crawl queued in the outbox (for the daemon)")
    crawl.add_argument("--processes", type=int, metavar="N",
                       help="split the sources over N crawler processes, each extracting in-process "
                            "(0: one per CPU; default: the CRAWL_PROCESSES setting, 1)")
    crawl.add_argument("--summary-file", help=argparse.SUPPRESS)  # a process of --processes N ...
    crawl.add_argument("--spread-host", action="append", default=[], metavar="HOST=N",
                       help=argparse.SUPPRESS)  # ... a host N of them may crawl at once
    crawl.set_defaults(func=cmd_crawl)

    extract = commands.add_parser("extract", help="print the clean article of a saved page or URL")
    extract.add_argument("target", metavar="PATH_OR_URL")
    extract.add_argument("--url", help="the page's URL, when PATH is a saved file")
    extract.set_defaults(func=cmd_extract)

    from crawler.alerts.commands import add_alert_commands
    from crawler.daemon.commands import add_daemon_commands

    add_alert_commands(commands)
    add_daemon_commands(commands)

    bench = commands.add_parser("bench", help="benchmarks")
    bench_kinds = bench.add_subparsers(dest="bench", required=True, metavar="KIND")
    bench_extract = bench_kinds.add_parser("extract", help="extraction quality and speed on a labelled set")
    bench_extract.add_argument("args", nargs=argparse.REMAINDER)
    bench_extract.set_defaults(func=cmd_bench_extract)
    return parser


def cmd_crawl(args) -> int:
    from crawler.alerts.query import parse_query

    for query in args.watch:
        try:
            parse_query(query)
        except NewswatchError as exc:
            raise ConfigError(f"--watch: {exc}") from exc
    several = len(args.urls) > 1  # one source is one process's work
    if several and args.processes is not None and args.processes != 1:
        # Decided before the crawler's imports (~0.4 s): this process only waits for the others.
        return _crawl_in_processes(args, args.processes)
    from crawler.runner import (build_settings, crawl_once, format_summary, parse_overrides, progress_enabled,
                                summarize)

    overrides = parse_overrides(args.set)
    overrides.setdefault("LOG_LEVEL", _log_level(args.verbose))
    overrides["PROGRESS_ENABLED"] = progress_enabled() and not args.summary_file
    settings = build_settings(args.db, args.watch, args.output, overrides)
    if several and args.processes is None and settings.getint("CRAWL_PROCESSES", 1) != 1:
        return _crawl_in_processes(args, settings.getint("CRAWL_PROCESSES", 1))
    if args.spread_host:  # a process of --processes N: its part of each shared host's politeness
        from crawler.shards import share_host_politeness

        spread = {}
        for pair in args.spread_host:
            host, _, sharing = pair.rpartition("=")
            spread[host] = int(sharing)
        share_host_politeness(settings, spread)
    from crawler.monitoring import flush_sentry, init_sentry
    from crawler.store import close_stores

    init_sentry()  # errors of this crawl reach Sentry when SENTRY_DSN is set
    try:
        stats = crawl_once(args.urls, settings)
    finally:
        flush_sentry()
        close_stores()  # the database file alone holds the crawl (SQLite: the log copied back)
    summary = summarize(stats)
    if args.summary_file:  # one of the processes of --processes N: the parent prints the total
        Path(args.summary_file).write_text(json.dumps(summary), encoding="utf-8")
        _exit_without_teardown()
    print(format_summary(summary), file=sys.stderr)
    if not args.no_send:
        _send_due_alerts(settings)
    return 0


def _exit_without_teardown() -> None:
    """End a crawl process of ``--processes N`` now that its work is saved.

    The store is closed, the feed export file too, Sentry flushed, the summary written:
    what the interpreter's exit would add is freeing the crawl's objects one by one
    (story index, matcher, extractor caches), ~0.3 s per process of a 2,500-page crawl,
    for memory the operating system takes back at once. The parent waits for the
    slowest of its processes, so that is time off every ``--processes`` crawl."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _crawl_in_processes(args, processes: int) -> int:
    """``newswatch crawl --processes N`` (see :mod:`crawler.shards`)."""
    from crawler.shards import crawl_in_processes

    if processes <= 0:
        processes = os.cpu_count() or 1
    code, summary = crawl_in_processes(args, processes)
    print("  ".join(f"{name}={value}" for name, value in summary.items()), file=sys.stderr)
    if not args.no_send:
        from crawler.runner import build_settings, parse_overrides

        _send_due_alerts(build_settings(args.db, args.watch, None, parse_overrides(args.set)))
    return code


def _send_due_alerts(settings) -> None:
    """Deliver what the crawl queued; what cannot go now stays in the outbox for later."""
    from crawler.alerts.outbox import Dispatcher
    from crawler.store import close_stores, open_store

    dispatcher = Dispatcher.from_settings(open_store(settings.get("NEWSWATCH_DB")), settings)
    try:
        result = dispatcher.dispatch_due(limit=10_000)
    finally:
        dispatcher.close()
        close_stores()
    if result.sent or result.retried or result.dead:
        print(f"alerts: sent={result.sent} retried={result.retried} dead={result.dead}", file=sys.stderr)


def read_target(target: str) -> tuple[bytes, str]:
    if target.startswith(("http://", "https://")):
        from crawler.settings import USER_AGENT

        request = urllib.request.Request(target, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (http/https only)
            return response.read(16 * 1024 * 1024), response.geturl()
    path = Path(target)
    if not path.is_file():
        raise ConfigError(f"{target}: no such file (give a saved page or an http(s) URL)")
    data = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        data = gzip.decompress(data)
    return data, path.resolve().as_uri()


def cmd_extract(args) -> int:
    from crawler.extract import extract_article

    html, url = read_target(args.target)
    article = extract_article(html, args.url or url)
    fields = ("url", "canonical_url", "title", "text", "published", "modified", "authors", "language",
              "site_name", "source_url")
    print(json.dumps({key: article.get(key) for key in fields}, ensure_ascii=False, indent=1))
    return 0


def cmd_bench_extract(args) -> int:
    from crawler.extract.benchmark import main as bench_main

    return bench_main(args.args)


def _log_level(verbose: int) -> str:
    return ("WARNING", "INFO", "DEBUG")[min(verbose, 2)]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=_log_level(args.verbose), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except NewswatchError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
