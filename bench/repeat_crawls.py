"""Memory across repeated crawls in one process (issue 7: "flat across repeated crawls").

    python -m bench.repeat_crawls --db URL --groups 10 --out rss.json FEED_URL...

Runs the feeds spider with Scrapy's ``CrawlerRunner`` on one reactor, the way a daemon
does: the feeds are split into ``--groups`` groups, crawled one after the other into the
same database (so every crawl stores new articles), then the first group is crawled
``--again`` more times (nothing new: feeds only). After each crawl it records this
process's RSS (after ``gc.collect()``), its open file descriptors and threads.
``run_repeated`` (used by ``python -m bench --memory``) runs it against the served
newsroom and formats the result.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def _rss() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def crawl_repeatedly(feed_urls: list[str], db_url: str, groups: int, again: int) -> list[dict]:
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.crawler import CrawlerRunner
    from twisted.internet import defer, reactor

    from crawler.runner import build_settings
    from crawler.spiders.feeds import FeedsSpider

    settings = build_settings(db_url, overrides={"LOG_LEVEL": "WARNING", "PROGRESS_ENABLED": False})
    runner = CrawlerRunner(settings)
    size = max(1, -(-len(feed_urls) // groups))
    plan = [feed_urls[i:i + size] for i in range(0, len(feed_urls), size)]
    plan += [plan[0]] * again
    records: list[dict] = []
    failure: list[BaseException] = []

    @defer.inlineCallbacks
    def run_all():
        try:
            for number, urls in enumerate(plan, 1):
                started = time.monotonic()
                crawler = runner.create_crawler(FeedsSpider)
                yield runner.crawl(crawler, urls=urls)
                gc.collect()
                stats = crawler.stats.get_stats()
                records.append({"crawl": number, "feeds": len(urls), "seconds": round(time.monotonic() - started, 2),
                                "new": int(stats.get("newswatch/articles/new", 0) or 0),
                                "fetched": int(stats.get("newswatch/pages/fetched", 0) or 0),
                                "rss": _rss(), "fds": len(os.listdir("/proc/self/fd")),
                                "threads": len(os.listdir("/proc/self/task"))})
                del crawler, stats
        except BaseException as exc:  # noqa: BLE001 (reported by the caller)
            failure.append(exc)
        finally:
            reactor.stop()

    reactor.callWhenRunning(run_all)
    reactor.run(installSignalHandlers=False)
    if failure:
        raise failure[0]
    return records


def format_records(records: list[dict], peak_rss: int | None = None) -> str:
    lines = ["repeated crawls in one process (CrawlerRunner, one reactor, one database):",
             "crawl  feeds  new   fetched  seconds  RSS MB  fds  threads"]
    for r in records:
        lines.append(f"{r['crawl']:>5}  {r['feeds']:>5}  {r['new']:>4}  {r['fetched']:>7}  {r['seconds']:>7.1f}  "
                     f"{r['rss'] / 2**20:>6.0f}  {r['fds']:>3}  {r['threads']:>7}")
    if len(records) >= 4:
        base = records[2]
        last = records[-1]
        growth = last["rss"] - base["rss"]
        lines.append(f"RSS from crawl 3 to crawl {last['crawl']}: {growth / 2**20:+.1f} MB "
                     f"({100 * growth / base['rss']:+.1f}%); fds {base['fds']} -> {last['fds']}, "
                     f"threads {base['threads']} -> {last['threads']}")
    if peak_rss:
        lines.append(f"peak RSS of the process tree (with extraction workers): {peak_rss / 2**20:,.0f} MB")
    return "\n".join(lines)


def run_repeated(served, workdir: Path, groups: int = 10, again: int = 5, subscriptions: int = 1000) -> str:
    """Run this module against ``served`` (a ServedNewsroom) in a subprocess; the report."""
    from bench.harness import add_subscriptions, generate_queries, measure

    db_url = f"sqlite:///{workdir / 'repeat.db'}"
    add_subscriptions(db_url, generate_queries(served.room, subscriptions), (workdir / "alerts.jsonl").as_uri())
    out = workdir / "repeat.json"
    command = [sys.executable, "-m", "bench.repeat_crawls", "--db", db_url, "--groups", str(groups),
               "--again", str(again), "--out", str(out), *served.feed_urls()]
    measurement = measure([command])
    if measurement.returncodes != [0]:
        raise RuntimeError(f"repeat_crawls exited {measurement.returncodes}:\n{measurement.stderr[0][-4000:]}")
    return format_records(json.loads(out.read_text("utf-8")), measurement.peak_rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repeat_crawls", description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="+", metavar="FEED_URL")
    parser.add_argument("--db", required=True)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--again", type=int, default=5, help="crawls of the first group once all are stored")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    records = crawl_repeatedly(args.urls, args.db, args.groups, args.again)
    Path(args.out).write_text(json.dumps(records), "utf-8")
    print(format_records(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
