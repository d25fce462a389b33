"""The baseline of the throughput benchmark: a bare Scrapy spider that fetches feeds and
the pages they list, and runs ``trafilatura.extract`` on each page in its callback.

Nothing else: no store, no dedupe, no matching, no robots.txt. The same concurrency as
newswatch's defaults (``CONCURRENT_REQUESTS``, ``CONCURRENT_REQUESTS_PER_DOMAIN``), so
the difference measured is what newswatch adds. The benchmark runs two of these, each
with half of the feeds (one per core).

    python -m bench.baseline_spider --out stats.json URL [URL...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import scrapy
import trafilatura

logger = logging.getLogger(__name__)


class BaselineSpider(scrapy.Spider):
    """Feeds -> pages -> trafilatura.extract, counted."""

    name = "baseline"

    def __init__(self, urls: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.feed_urls = list(urls)
        self.pages = 0
        self.extracted = 0
        self.chars = 0
        self.first_response: float | None = None
        self.last_page: float | None = None

    async def start(self):
        for url in self.feed_urls:
            yield scrapy.Request(url, callback=self.parse_feed, dont_filter=True, priority=10)

    def parse_feed(self, response):
        if self.first_response is None:
            self.first_response = time.monotonic()
        links = response.xpath("//item/link/text()").getall()
        if not links:
            links = response.xpath("//*[local-name()='entry']/*[local-name()='link']"
                                   "[@rel='alternate' or not(@rel)]/@href").getall()
        for link in links:
            yield response.follow(link.strip(), callback=self.parse_page)

    def parse_page(self, response):
        self.pages += 1
        text = trafilatura.extract(response.text, url=response.url)
        if text:
            self.extracted += 1
            self.chars += len(text)
        self.last_page = time.monotonic()


SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
    "ROBOTSTXT_OBEY": False,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "DOWNLOAD_DELAY": 0,
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
}


def run(urls: list[str], settings: dict | None = None) -> dict:
    """Crawl ``urls`` in this process (starts and stops the reactor); the counts."""
    from scrapy.crawler import CrawlerProcess

    started = time.monotonic()
    process = CrawlerProcess({**SETTINGS, **(settings or {})})
    crawler = process.create_crawler(BaselineSpider)
    process.crawl(crawler, urls=urls)
    process.start()
    spider = crawler.spider
    return {"pages": spider.pages, "extracted": spider.extracted, "chars": spider.chars,
            "seconds": time.monotonic() - started,
            "errors": int(crawler.stats.get_value("log_count/ERROR", 0) or 0),
            "status_200": int(crawler.stats.get_value("downloader/response_status_count/200", 0) or 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_spider", description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("--out", help="write the counts as JSON here (default: stdout)")
    args = parser.parse_args(argv)
    result = run(args.urls)
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
