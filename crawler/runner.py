"""Building crawler settings and running one crawl, for the CLI and the daemon."""

from __future__ import annotations

import logging
import os
import sys

from scrapy.settings import Settings
from scrapy.utils.conf import closest_scrapy_cfg
from scrapy.utils.project import get_project_settings

from crawler.exceptions import ConfigError
from crawler.store import resolve_db_url

logger = logging.getLogger(__name__)

SUMMARY_KEYS = (
    ("sources", "newswatch/sources"),
    ("fetched", "newswatch/pages/fetched"),
    ("new", "newswatch/articles/new"),
    ("duplicates", "newswatch/articles/duplicate"),
    ("known", "newswatch/entries/known"),
    ("matches", "newswatch/articles/matched"),
    ("not_articles", "newswatch/drops/not_an_article"),
    ("errors", "newswatch/errors"),
)


def build_settings(db: str | None = None, watch: list[str] | None = None, output: str | None = None,
                   overrides: dict | None = None) -> Settings:
    """The project's settings (``settings.py`` beside ``scrapy.cfg``) or the package defaults,
    with the command line's choices on top."""
    if closest_scrapy_cfg():
        settings = get_project_settings()
    else:
        settings = Settings()
        settings.setmodule("crawler.settings", priority="project")
    settings.set("NEWSWATCH_DB", resolve_db_url(db or settings.get("NEWSWATCH_DB")), priority="cmdline")
    if watch:
        settings.set("NEWSWATCH_WATCH", list(watch), priority="cmdline")
    if output:
        uri = "stdout:" if output == "-" else output
        from crawler.pipelines import OUTPUT_FIELDS

        settings.set("FEEDS", {uri: {"format": "jsonlines", "fields": OUTPUT_FIELDS, "encoding": "utf8",
                                     "overwrite": False}}, priority="cmdline")
    for key, value in (overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    if settings.get("FRONTIER_REDIS_URL") or os.environ.get("NEWSWATCH_REDIS"):
        from crawler.frontier import use_redis_frontier  # scrapy-redis and redis only when used

        use_redis_frontier(settings)
    return settings


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``-s NAME=VALUE`` options of the CLI as a dict of settings."""
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"-s expects NAME=VALUE, got {pair!r}")
        overrides[name] = value
    return overrides


def summarize(stats: dict) -> dict[str, int]:
    return {name: int(stats.get(key, 0) or 0) for name, key in SUMMARY_KEYS}


def format_summary(summary: dict[str, int]) -> str:
    return "  ".join(f"{name}={value}" for name, value in summary.items())


def quiet_below(level: str | int) -> None:
    """Make loggers drop records below ``level`` where they are made, not at the handler.

    Scrapy sets the root logger to NOTSET and filters at its root handler, so every
    debug line of every library (Scrapy's per request, trafilatura's per page) is built
    as a record and thrown away there."""
    level = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(level, int):
        return
    logging.root.setLevel(level)
    scrapy_logger = logging.getLogger("scrapy")
    if scrapy_logger.level < level:
        scrapy_logger.setLevel(level)


def start_extraction_workers(settings: Settings) -> None:
    """Start the extraction workers now, if the crawl will use them: each loads the
    extractor and its language model (~1 s of CPU) while Scrapy starts up and fetches
    the feeds, instead of when the first feed waits for them."""
    workers = settings.getint("EXTRACT_WORKERS", 0)  # feeds are parsed by them too
    if workers <= 0:
        return
    import threading

    from crawler.extract.workers import extraction_pool

    def start() -> None:
        pool = extraction_pool(workers)
        for _ in range(workers):  # the pool starts a worker per task waiting, up to its size
            pool.submit(int)

    # Starting a worker waits for the forkserver: in a thread, beside Scrapy's start-up.
    threading.Thread(target=start, name="newswatch-workers-start", daemon=True).start()


def crawl_once(urls: list[str], settings: Settings, names: list[str] | None = None) -> dict:
    """Run one crawl in this process (blocking, starts and stops the reactor); the stats."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.feeds import FeedsSpider

    for handler in list(logging.root.handlers):  # Scrapy installs its own, honouring LOG_LEVEL
        logging.root.removeHandler(handler)
    start_extraction_workers(settings)
    process = CrawlerProcess(settings)
    level = settings.get("LOG_LEVEL") or "DEBUG"
    quiet_below(level)
    crawler = process.create_crawler(FeedsSpider)
    # Scrapy puts the root logger back to NOTSET when the crawler applies its settings
    # (install_scrapy_root_handler), after this point: again once the engine runs.
    crawler.signals.connect(lambda: quiet_below(level), signal=signals.engine_started, weak=False)
    process.crawl(crawler, urls=urls, names=names)
    process.start()
    return crawler.stats.get_stats() if crawler.stats else {}


def progress_enabled() -> bool:
    return sys.stderr.isatty()
