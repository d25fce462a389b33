"""A one-line progress display on stderr while a crawl runs (only on a terminal).

With ``PROGRESS_FILE`` the counters go to that file instead (JSON, replaced whole at
every redraw): each process of ``newswatch crawl --processes N`` writes one, and the
parent draws their sum (:func:`crawler.shards.crawl_in_processes`).
"""

from __future__ import annotations

import json
import os
import sys

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.runner import format_summary, summarize


class ProgressExtension:
    """Redraws the crawl's counters every ``PROGRESS_INTERVAL`` seconds when stderr is a tty."""

    def __init__(self, crawler, interval: float, path: str | None = None):
        self.crawler = crawler
        self.interval = interval
        self.path = path  # PROGRESS_FILE: the counters as JSON, for the parent of --processes
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get("PROGRESS_FILE")
        if not path and (not crawler.settings.getbool("PROGRESS_ENABLED") or not sys.stderr.isatty()):
            raise NotConfigured  # quietly: most runs are not on a terminal
        ext = cls(crawler, crawler.settings.getfloat("PROGRESS_INTERVAL", 0.5), path or None)
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider):
        self.loop = task.LoopingCall(self.draw)
        self.loop.start(self.interval, now=True)

    def draw(self):
        summary = summarize(self.crawler.stats.get_stats())
        if self.path:
            write_counters(self.path, summary)
            return
        sys.stderr.write("\r\x1b[2K" + format_summary(summary))
        sys.stderr.flush()

    def closed(self, spider, reason):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.path:
            self.draw()  # the final counters
            return
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()


def write_counters(path: str, summary: dict) -> None:
    """``summary`` as JSON at ``path``, replaced whole (a reader never sees half of it)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(summary, handle)
        os.replace(temporary, path)
    except OSError:  # a progress display must never stop a crawl
        pass


def read_counters(paths) -> dict[str, int]:
    """The sum of the counters in the files at ``paths`` (missing or unreadable ones: none)."""
    total: dict[str, int] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                counters = json.load(handle)
        except (OSError, ValueError):
            continue
        for key, value in counters.items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return total
