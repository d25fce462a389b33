"""The `feeds` spider: given source URLs (feeds, sitemaps, site home pages or article
pages), fetch every article they point at that the store does not have yet.

    scrapy crawl feeds -a urls=https://example.org/feed/,https://other.example/
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import scrapy
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError as TwistedTimeoutError

from crawler.dedupe.urls import canonicalize_url
from crawler.exceptions import FeedError
from crawler.spiders import parsing
from crawler.store import open_store
from crawler.store.repository import utcnow

logger = logging.getLogger(__name__)

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


async def _each(values):
    for value in values:
        yield value


class FeedsSpider(scrapy.Spider):
    """Follows feeds, sitemaps and pages to the articles they announce."""

    name = "feeds"

    def __init__(self, urls: str | list[str] | None = None, names: str | list[str] | None = None,
                 *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        self.source_urls: list[str] = list(urls or [])
        self.source_names: list[str | None] = list(names or [None] * len(self.source_urls))
        if not self.source_urls:
            raise ValueError("feeds spider needs urls: scrapy crawl feeds -a urls=URL[,URL...]")
        self._validators: dict[int, tuple[str | None, str | None]] = {}
        self._failed_sources: set[int] = set()  # sources whose validators must not be saved
        self._source_errors: dict[int, str] = {}
        self._logged: set[tuple[str, str]] = set()
        self.new_per_source: dict[int | None, int] = defaultdict(int)
        self.crawled_sources: list[int] = []  # indices of the sources started, in order

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.store = open_store(crawler.settings.get("NEWSWATCH_DB"))
        spider.max_sitemap_pages = crawler.settings.getint("SOURCES_SITEMAP_MAX_PAGES", 500)
        crawler.signals.connect(spider._on_closed, signal=scrapy.signals.spider_closed)
        return spider

    # -- sources --------------------------------------------------------------------

    async def start(self):
        plan = self.crawler.settings.get("SOURCES_PLAN")
        indices = self._taken_sources(plan) if plan else _each(range(len(self.source_urls)))
        async for index in indices:
            url = self.source_urls[index]
            source = self.store.get_source(url, self.source_names[index])
            self.crawled_sources.append(index)
            self.crawler.stats.inc_value("newswatch/sources")
            yield self._source_request(url, source, conditional=True)

    async def _taken_sources(self, plan: str):
        """A process of ``crawl --processes N``: the sources it takes, one unit at a
        time (see :mod:`crawler.shards`). Its own, each once fewer than
        ``SOURCES_TAKE_BELOW`` requests wait here; then, once it has nothing left to do,
        those no other process has started (a process busy with its own never takes
        another's: its owner may only be starting)."""
        from crawler.shards import SourceClaims

        settings = self.crawler.settings
        claims = SourceClaims.from_plan(plan, settings.getint("SOURCES_PLAN_PROCESS", 0))
        below = settings.getint("SOURCES_TAKE_BELOW") or settings.getint("CONCURRENT_REQUESTS", 16)
        started = False
        for unit in claims.order():
            if claims.taken(unit):
                continue
            home = claims.is_home(unit)
            if started or not home:
                await self._room_for_more(below if home else 0)
            if not claims.take(unit):
                continue
            started = True
            if not home:
                self.crawler.stats.inc_value("newswatch/sources/taken_over", len(claims.units[unit]))
                logger.info("Taking over %s from another process's share",
                            ", ".join(self.source_urls[i] for i in claims.units[unit]))
            for index in claims.units[unit]:
                yield index

    async def _room_for_more(self, below: int) -> None:
        """Return once fewer than ``below`` requests wait in this process (scheduled or
        being downloaded), or, with ``below=0``, once it has nothing at all to do (no
        request waiting, no response or item being processed); checking every 50 ms."""
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        engine = self.crawler.engine
        while True:
            scheduler = getattr(engine, "scheduler", None) or engine._slot.scheduler  # public from Scrapy 2.19
            if below > 0:
                waiting = (len(scheduler) if hasattr(scheduler, "__len__") else 0) + len(engine.downloader.active)
                if waiting < below:
                    return
            elif (not scheduler.has_pending_requests() and not engine.downloader.active
                  and engine.scraper.slot.is_idle()):
                return
            await maybe_deferred_to_future(deferLater(reactor, 0.05, lambda: None))

    def _source_request(self, url: str, source: dict, conditional: bool, discovered: bool = False):
        headers = {}
        if conditional and not discovered:
            if source.get("etag"):
                headers["If-None-Match"] = source["etag"]
            if source.get("last_modified"):
                headers["If-Modified-Since"] = source["last_modified"]
        return scrapy.Request(
            url, callback=self.parse_source, errback=self.on_source_error, headers=headers,
            dont_filter=True, priority=10,
            meta={"source_id": source["id"], "source_url": source["url"],
                  "source_name": source.get("name") or source["url"], "discovered": discovered,
                  "handle_httpstatus_list": [304]},
        )

    async def parse_source(self, response):
        meta = response.meta
        if response.status == 304:
            self.crawler.stats.inc_value("newswatch/sources/not_modified")
            return
        kind = parsing.sniff_kind(response.body, response.headers.get(b"Content-Type", b"").decode("latin-1"))
        if kind in ("feed", "jsonfeed"):
            for request in self._follow_feed(response, await self._feed_entries(response)):
                yield request
        elif kind == "sitemap":
            for request in self._parse_sitemap(response):
                yield request
        elif kind == "html":
            if meta.get("discovered"):
                return  # a guessed feed path answered with a page: not a feed
            if parsing.looks_like_article(response.body, response.url):
                for request in self.parse_article(response, entry=None):
                    yield request
                return
            feeds = parsing.discover_feeds(response.body, response.url)
            if feeds:
                self.crawler.stats.inc_value("newswatch/sources/discovered_feeds", len(feeds))
                guesses = feeds
            else:
                guesses = parsing.usual_feed_urls(response.url)
            source = {"id": meta["source_id"], "url": meta["source_url"], "name": meta["source_name"]}
            for feed_url in guesses:
                yield self._source_request(feed_url, source, conditional=False, discovered=True)
        else:
            if not meta.get("discovered"):
                self._count_error("source_not_recognised", response.url,
                                  "neither a feed, a sitemap nor an HTML page", meta["source_id"])

    async def _feed_entries(self, response) -> list[dict] | None:
        """The feed's entries (parsed in an extraction worker when there are workers), or
        None after counting the error."""
        try:
            workers = self.crawler.settings.getint("EXTRACT_WORKERS", 0)
            if workers > 0:
                from crawler.extract.workers import extraction_pool

                future = extraction_pool(workers).submit(parsing.feed_entries, response.body, response.url)
                return await asyncio.wrap_future(future)
            return parsing.feed_entries(response.body, response.url)
        except FeedError as exc:
            if not response.meta.get("discovered"):
                self._count_error("feed", response.url, str(exc), response.meta["source_id"])
            return None

    def _follow_feed(self, response, entries: list[dict] | None):
        if entries is None:
            return
        meta = response.meta
        self.crawler.stats.inc_value("newswatch/feeds/parsed")
        self.crawler.stats.inc_value("newswatch/feeds/entries", len(entries))
        if not meta.get("discovered"):
            etag = response.headers.get(b"ETag")
            modified = response.headers.get(b"Last-Modified")
            self._validators[meta["source_id"]] = (etag.decode("latin-1") if etag else None,
                                                   modified.decode("latin-1") if modified else None)
        yield from self._follow_entries(response, entries)

    def _parse_sitemap(self, response):
        meta = response.meta
        try:
            pages, children = parsing.parse_sitemap(response.body, response.url)
        except FeedError as exc:
            self._count_error("sitemap", response.url, str(exc), meta["source_id"])
            return
        source = {"id": meta["source_id"], "url": meta["source_url"], "name": meta["source_name"]}
        for child in children[:50]:
            yield self._source_request(child, source, conditional=False, discovered=True)
        entries = [{"url": url, "guid": None} for url in pages[: self.max_sitemap_pages]]
        yield from self._follow_entries(response, entries)

    def _follow_entries(self, response, entries: list[dict]):
        """Request the article pages the store does not know yet (by canonical URL or GUID)."""
        meta = response.meta
        for entry in entries:
            entry["canonical_url"] = canonicalize_url(entry["url"])
        known_urls = self.store.known_urls([e["canonical_url"] for e in entries])
        known_guids = self.store.known_guids([e["guid"] for e in entries if e.get("guid")])
        for entry in entries:
            if entry["canonical_url"] in known_urls or (entry.get("guid") and entry["guid"] in known_guids):
                self.crawler.stats.inc_value("newswatch/entries/known")
                continue
            yield scrapy.Request(
                entry["url"], callback=self.parse_article, errback=self.on_article_error,
                cb_kwargs={"entry": entry},
                meta={"source_id": meta["source_id"], "source_url": meta["source_url"],
                      "source_name": meta["source_name"]},
            )

    # -- articles -------------------------------------------------------------------

    def parse_article(self, response, entry: dict | None):
        meta = response.meta
        self.crawler.stats.inc_value("newswatch/pages/fetched")
        content_type = response.headers.get(b"Content-Type", b"").lower()
        if not isinstance(response, scrapy.http.TextResponse) or (
                content_type and not any(t in content_type for t in HTML_TYPES)):
            self._count_error("not_html", response.url,
                              f"not an HTML page (Content-Type: {content_type.decode('latin-1') or '?'})")
            return
        if not response.body.strip():
            self._count_error("empty", response.url, "empty response body")
            return
        yield {
            "url": response.url,
            "requested_url": response.request.url,
            "html": response.body,
            "encoding": response.encoding,
            "guid": (entry or {}).get("guid"),
            "feed_entry": entry,
            "source": meta.get("source_name"),
            "source_feed": meta.get("source_url"),
            "source_id": meta.get("source_id"),
        }

    # -- errors ---------------------------------------------------------------------

    def on_source_error(self, failure):
        request = failure.request
        if request.meta.get("discovered"):
            return  # a guessed feed URL that does not exist is not an error
        self._count_error(self._error_kind(failure), request.url, self._describe(failure),
                          request.meta.get("source_id"))

    def on_article_error(self, failure):
        request = failure.request
        kind = self._error_kind(failure)
        if kind in ("timeout", "http_5xx", "connection"):
            # Transient: keep the feed's validators so the entry is offered again next run.
            self._failed_sources.add(request.meta.get("source_id"))
        self._count_error(kind, request.url, self._describe(failure))

    @staticmethod
    def _error_kind(failure) -> str:
        if failure.check(HttpError):
            status = failure.value.response.status
            return "http_5xx" if status >= 500 else f"http_{status}"
        if failure.check(TwistedTimeoutError, TCPTimedOutError):
            return "timeout"
        if failure.check(DNSLookupError):
            return "dns"
        return "connection"

    @staticmethod
    def _describe(failure) -> str:
        if failure.check(HttpError):
            return f"HTTP {failure.value.response.status}"
        return f"{failure.type.__name__}: {failure.getErrorMessage()}"

    def _count_error(self, kind: str, url: str, message: str, source_id: int | None = None) -> None:
        self.crawler.stats.inc_value("newswatch/errors")
        self.crawler.stats.inc_value(f"newswatch/errors/{kind}")
        if source_id is not None:  # the source itself failed, not one of its articles
            self._failed_sources.add(source_id)
            self._source_errors[source_id] = f"{url}: {message}"
        if (kind, url) not in self._logged:
            self._logged.add((kind, url))
            logger.warning("%s: %s", url, message)

    def mark_source_incomplete(self, source_id: int | None) -> None:
        """An article of this source was not stored: offer its feed entries again next run."""
        if source_id is not None:
            self._failed_sources.add(source_id)

    def count_new_article(self, source_id: int | None) -> None:
        self.new_per_source[source_id] += 1

    def _on_closed(self, spider, reason):
        """Record each source's run; remember feed validators only when nothing was lost."""
        finished = reason == "finished"
        for index in self.crawled_sources:
            source = self.store.get_source(self.source_urls[index])
            sid = source["id"]
            values = {"last_run_at": utcnow(), "runs": (source["runs"] or 0) + 1,
                      "last_new_count": self.new_per_source.get(sid, 0),
                      "articles_total": (source["articles_total"] or 0) + self.new_per_source.get(sid, 0)}
            if self.new_per_source.get(sid):
                values["last_new_at"] = utcnow()
            if sid in self._source_errors:
                values["consecutive_failures"] = (source["consecutive_failures"] or 0) + 1
                values["last_error"] = self._source_errors[sid]
            elif finished:
                values["consecutive_failures"] = 0
                values["last_success_at"] = utcnow()
            if finished and sid in self._validators and sid not in self._failed_sources:
                values["etag"], values["last_modified"] = self._validators[sid]
            self.store.update_source(sid, **values)
