"""The shared crawl frontier for scale-out: Scrapy's scheduler queue and request
fingerprints in Redis (scrapy-redis), so crawlers on several machines following the same
sources fetch each page once.

Switched on by ``FRONTIER_REDIS_URL`` (or ``$NEWSWATCH_REDIS``). The stored-article check
in the spider remains the lasting dedupe; the Redis fingerprints only cover pages in
flight, and expire after ``FRONTIER_DUPEFILTER_TTL`` seconds so a page that failed is
offered again by a later run.
"""

from __future__ import annotations

import os
import warnings

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings
from scrapy_redis.dupefilter import RFPDupeFilter


def use_redis_frontier(settings: Settings) -> None:
    url = settings.get("FRONTIER_REDIS_URL") or os.environ.get("NEWSWATCH_REDIS")
    if not url:
        return
    # scrapy-redis 0.9 still passes `spider=` to the stats collector.
    warnings.filterwarnings("ignore", category=ScrapyDeprecationWarning, module="scrapy_redis")
    prefix = settings.get("FRONTIER_REDIS_PREFIX", "newswatch")
    settings.set("REDIS_URL", url, priority="cmdline")
    settings.set("SCHEDULER", "scrapy_redis.scheduler.Scheduler", priority="cmdline")
    settings.set("DUPEFILTER_CLASS", "crawler.frontier.ExpiringRFPDupeFilter", priority="cmdline")
    settings.set("SCHEDULER_DUPEFILTER_CLASS", "crawler.frontier.ExpiringRFPDupeFilter", priority="cmdline")
    settings.set("SCHEDULER_PERSIST", True, priority="cmdline")  # other crawlers may still be working
    settings.set("SCHEDULER_QUEUE_KEY", f"{prefix}:%(spider)s:requests", priority="cmdline")
    settings.set("SCHEDULER_DUPEFILTER_KEY", f"{prefix}:%(spider)s:dupefilter", priority="cmdline")


class ExpiringRFPDupeFilter(RFPDupeFilter):
    """scrapy-redis' fingerprint set, forgotten ``FRONTIER_DUPEFILTER_TTL`` seconds after its
    last addition (a page that failed is not shut out for ever)."""

    ttl = 600

    @classmethod
    def from_crawler(cls, crawler):
        dupefilter = super().from_crawler(crawler)
        dupefilter.ttl = crawler.settings.getint("FRONTIER_DUPEFILTER_TTL", cls.ttl)
        return dupefilter

    @classmethod
    def from_spider(cls, spider):
        dupefilter = super().from_spider(spider)
        dupefilter.ttl = spider.settings.getint("FRONTIER_DUPEFILTER_TTL", cls.ttl)
        return dupefilter

    def request_seen(self, request) -> bool:
        fingerprint = self.request_fingerprint(request)
        pipe = self.server.pipeline()
        pipe.sadd(self.key, fingerprint)
        pipe.expire(self.key, self.ttl)
        added, _ = pipe.execute()
        return added == 0
