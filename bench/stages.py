"""CPU cost per article of each stage of the pipeline, on one thread, without Scrapy's
engine: what the crawler's main thread (the reactor) pays per article besides fetching.

    python -m bench.stages [--articles 300] [--subscriptions 1000] [--db URL]

Extracts generated pages first (as the workers would), then times the stages that run on
the reactor thread — ``DedupePipeline``, ``MatchPipeline``, ``StorePipeline`` (stories,
article row, alerts) — and, for scale, the workers' ``_extract`` itself (extraction, body hash, story fingerprint), as ms of CPU
(``time.process_time``) and of wall time per article. On PostgreSQL the difference is
the waits for the server (its round trips).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--batch", type=int, help="articles per store transaction (default: STORE_BATCH_SIZE)")
    args = parser.parse_args(argv)

    from scrapy.utils.reactor import install_reactor
    from scrapy.utils.test import get_crawler

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")

    from bench.harness import add_subscriptions, generate_queries
    from bench.newsroom_gen import Newsroom
    from crawler import pipelines
    from crawler.pipelines import _extract
    from crawler.runner import build_settings
    from crawler.spiders.feeds import FeedsSpider

    workdir = Path(tempfile.mkdtemp(prefix="newswatch-stages-"))
    db_url = args.db or f"sqlite:///{workdir / 'stages.db'}"
    room = Newsroom(args.articles, 20)
    add_subscriptions(db_url, generate_queries(room, args.subscriptions), (workdir / "alerts.jsonl").as_uri())
    base = "http://127.0.0.1:8000"
    overrides = {"EXTRACT_WORKERS": 0, "LOG_LEVEL": "WARNING"}
    if args.batch:
        overrides["STORE_BATCH_SIZE"] = args.batch
    settings = build_settings(db_url, overrides=overrides)
    crawler = get_crawler(FeedsSpider, settings.copy_to_dict())
    crawler.spider = None

    items = []
    started = time.process_time()
    for article in room.articles:
        html = room.page(article.index, base)
        item = {"url": room.url(article.index, base), "requested_url": room.url(article.index, base),
                "html": html, "encoding": "utf-8", "guid": f"{article.site}-{article.index}",
                "feed_entry": {"url": room.url(article.index, base), "title": article.title},
                "source": f"site{article.site:02d}", "source_feed": f"{base}/feeds/{article.feed}",
                "source_id": None}
        item.update({k: v for k, v in _extract(html, item["url"], "utf-8", None).items() if k != "url"})
        item.pop("html")
        items.append(item)
    costs = {"_extract (worker: extraction, hashes, story fingerprint)": time.process_time() - started}
    walls = {}

    stages = [("DedupePipeline", pipelines.DedupePipeline.from_crawler(crawler)),
              ("MatchPipeline", pipelines.MatchPipeline.from_crawler(crawler)),
              ("StorePipeline", pipelines.StorePipeline.from_crawler(crawler))]
    for name, _ in stages:
        costs[name] = walls[name] = 0.0
    store = stages.pop()[1]
    stored = 0
    batch = settings.getint("STORE_BATCH_SIZE", 1)
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        for i, item in enumerate(chunk):
            for name, stage in stages:
                started, wall = time.process_time(), time.perf_counter()
                chunk[i] = item = stage.process_item(item)
                costs[name] += time.process_time() - started
                walls[name] += time.perf_counter() - wall
        started, wall = time.process_time(), time.perf_counter()
        errors = store.store_many(chunk)
        costs["StorePipeline"] += time.process_time() - started
        walls["StorePipeline"] += time.perf_counter() - wall
        stored += errors.count(None)
    print(f"{stored} articles, {args.subscriptions} subscriptions, {db_url.split(':')[0]}; "
          f"alerts queued: {crawler.stats.get_value('newswatch/articles/matched', 0)} matched articles")
    print(f"  {'ms per article':56s} {'CPU':>7s} {'wall':>7s}")
    for name, seconds in costs.items():
        wall = f"{1000 * walls[name] / len(items):7.2f}" if name in walls else f"{'':7s}"
        print(f"  {name:56s} {1000 * seconds / len(items):7.2f} {wall}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
