"""A one-line progress display on stderr while a crawl runs (only on a terminal)."""

from __future__ import annotations

import sys

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.runner import format_summary, summarize


class ProgressExtension:
    """Redraws the crawl's counters every ``PROGRESS_INTERVAL`` seconds when stderr is a tty."""

    def __init__(self, crawler, interval: float):
        self.crawler = crawler
        self.interval = interval
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("PROGRESS_ENABLED") or not sys.stderr.isatty():
            raise NotConfigured  # quietly: most runs are not on a terminal
        ext = cls(crawler, crawler.settings.getfloat("PROGRESS_INTERVAL", 0.5))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider):
        self.loop = task.LoopingCall(self.draw)
        self.loop.start(self.interval, now=True)

    def draw(self):
        summary = summarize(self.crawler.stats.get_stats())
        sys.stderr.write("\r\x1b[2K" + format_summary(summary))
        sys.stderr.flush()

    def closed(self, spider, reason):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()
