"""Thin Scrapy adapters over the stages, in order (see ``ITEM_PIPELINES`` in settings):

    ExtractPipeline  100  HTML -> clean article, in worker processes
    DedupePipeline   200  canonical URL, exact duplicates, revisions
    MatchPipeline    300  watch queries and subscriptions
    StorePipeline    400  article + story + alerts, in one transaction

Each drops what it must with a :class:`DropItem` subclass naming the reason; stats count
drops under ``newswatch/drops/<reason>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import DropItem
from twisted.internet.defer import Deferred
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from crawler.alerts.matcher import Matcher
from crawler.alerts.query import parse_query
from crawler.dedupe.exact import find_duplicate
from crawler.dedupe.fingerprints import content_hash
from crawler.dedupe.stories import StoryIndex
from crawler.dedupe.urls import canonicalize_url
from crawler.exceptions import ConfigError, NotAnArticle, QueryError, WriteLockBusy
from crawler.extract import extract_article
from crawler.extract.workers import extraction_pool
from crawler.extract.templates import SiteTemplate, learn_from_page, load_template, page_lines, save_template
from crawler.store import open_store
from crawler.store.schema import alerts

logger = logging.getLogger(__name__)

OUTPUT_FIELDS = ["url", "canonical_url", "title", "text", "published", "modified", "authors", "language",
                 "site_name", "source_url", "story_id", "duplicate_of", "matched", "source"]


class NotAnArticleDrop(DropItem):
    reason = "not_an_article"


class ExtractionFailed(DropItem):
    reason = "extraction_failed"


class AlreadyStored(DropItem):
    reason = "already_stored"


def _count_drop(crawler, exc: DropItem) -> None:
    crawler.stats.inc_value(f"newswatch/drops/{getattr(exc, 'reason', 'other')}")


def site_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


class ExtractPipeline:
    """Turns the fetched page into a clean article, off the reactor thread.

    ``EXTRACT_WORKERS`` worker processes (default 2; 0 runs inline), shared by every
    crawl of the process (:mod:`crawler.extract.workers`)."""

    def __init__(self, crawler, store, workers: int, learn_templates: bool = True, save_every: int = 20):
        self.crawler = crawler
        self.store = store
        self.workers = workers
        self.learn_templates = learn_templates
        self.save_every = save_every
        self.pool: ProcessPoolExecutor | None = None
        self.templates: dict[str, SiteTemplate] = {}
        self._saving: set[Deferred] = set()  # template saves running in threads

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        pipeline = cls(crawler, open_store(settings.get("NEWSWATCH_DB")),
                       workers=settings.getint("EXTRACT_WORKERS", os.cpu_count() or 1),
                       learn_templates=settings.getbool("EXTRACT_LEARN_TEMPLATES", True),
                       save_every=settings.getint("EXTRACT_TEMPLATE_SAVE_EVERY", 20))
        crawler.signals.connect(pipeline.close, signal=signals.spider_closed)
        return pipeline

    def open_spider(self, spider=None):
        if self.workers > 0:
            self.pool = extraction_pool(self.workers)

    def close(self, spider=None):
        self.pool = None  # the workers stay for the process's next crawl
        if self._saving:  # saves still being written by their threads: after them
            from twisted.internet.defer import DeferredList

            return DeferredList(list(self._saving)).addBoth(lambda _: self._save_templates())
        self._save_templates()

    def _template(self, url: str) -> tuple[str, SiteTemplate | None]:
        """The learned template of the page's site, loaded from the store on first use."""
        site = site_of(url)
        if not self.learn_templates:
            return site, None
        template = self.templates.get(site)
        if template is None:
            with self.store.begin() as conn:
                template = self.templates[site] = load_template(conn, site)
        return site, template

    def _learn(self, site: str, template: SiteTemplate | None, article: dict) -> None:
        lines = article.pop("template_lines", None)
        if template is None:
            return
        if lines is None:
            learn_from_page(template, article)
        else:
            template.learn_lines(lines)
        if template.new_pages >= self.save_every:
            # Written by a thread: on the reactor thread it would wait for the database
            # (on SQLite, for the write lock the store's batch holds) and stall the crawl.
            from twisted.internet.threads import deferToThread

            saving = deferToThread(self._save_increments, site, template.take_increments())
            self._saving.add(saving)
            saving.addBoth(lambda _: self._saving.discard(saving))

    def _save_increments(self, site: str, increments: SiteTemplate) -> None:
        try:
            with self.store.begin() as conn:
                save_template(conn, site, increments)
        except Exception:
            logger.exception("could not save the learned template of %s", site)

    def _save_templates(self) -> None:
        for site, template in self.templates.items():
            self._save_increments(site, template.take_increments())

    async def process_item(self, item, spider=None):
        html, url = item.pop("html"), item["url"]
        site, template = self._template(url)
        learned = template.for_extraction() if template is not None else None  # small to pickle
        try:
            if self.pool is not None:
                loop = asyncio.get_running_loop()
                article = await loop.run_in_executor(self.pool, _extract, html, url, item.get("encoding"),
                                                     learned)
            else:
                article = _extract(html, url, item.get("encoding"), learned)
        except NotAnArticle as exc:
            drop = NotAnArticleDrop(str(exc))
            _count_drop(self.crawler, drop)
            raise drop
        except Exception as exc:  # a broken page must not stop the crawl
            logger.warning("%s: extraction failed: %s", url, exc)
            self.crawler.stats.inc_value("newswatch/errors")
            self.crawler.stats.inc_value("newswatch/errors/extraction")
            drop = ExtractionFailed(f"{url}: {exc}")
            _count_drop(self.crawler, drop)
            raise drop
        self._learn(site, template, article)
        entry = item.get("feed_entry") or {}
        for key, value in article.items():
            if key not in ("url",):
                item[key] = value
        if not item.get("published") and entry.get("published"):
            item["published"] = entry["published"]
        if not item.get("title") and entry.get("title"):
            item["title"] = entry["title"]
        self.crawler.stats.inc_value("newswatch/articles/extracted")
        return item


_STORY_FINGERPRINTS = StoryIndex()  # default parameters; StoryIndex.decide recomputes on a mismatch


def _extract(html: bytes, url: str, encoding: str | None, template: SiteTemplate | None) -> dict:
    """Runs in a worker process: the page bytes and the HTTP charset go to the extractor,
    which weighs them against the page's own declarations."""
    article = extract_article(html, url, template=template, encoding=encoding)
    # Computed here, off the reactor thread: the body hash for DedupePipeline, the story
    # index's fingerprint of the text for StorePipeline, the lines
    # the site's template learns from for ExtractPipeline._learn (the paragraph lists
    # served only that, so they are not sent back).
    fingerprint = _STORY_FINGERPRINTS.text_fingerprint(article.get("title"), article["text"])
    article["story_fingerprint"] = fingerprint
    article["content_hash"] = fingerprint.content_hash  # content_hash(text), from the same normalised body
    if template is not None:
        article["template_lines"] = page_lines(article)
    article.pop("paragraphs", None)
    article.pop("boilerplate_removed", None)
    return article


class DedupePipeline:
    """Canonicalises the URL and drops what the store already has (same URL and body).

    The look-up runs on the reactor thread for every article, on a connection kept for
    the crawl in autocommit mode: one statement per article, without a pool checkout,
    a liveness ping, BEGIN and COMMIT around it (four round trips on PostgreSQL). A
    connection that broke is replaced once."""

    def __init__(self, crawler, store):
        self.crawler = crawler
        self.store = store
        self._conn = None
        # The look-up runs on the driver's cursor (crawler.store.prepared): its errors
        # are the driver's own, not wrapped by SQLAlchemy.
        from sqlalchemy.exc import DBAPIError

        self._connection_errors = (DBAPIError, store.engine.dialect.loaded_dbapi.Error)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, open_store(crawler.settings.get("NEWSWATCH_DB")))

    def close_spider(self, spider=None):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _find_duplicate(self, canonical: str, guid, chash):
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                return find_duplicate(self._conn, canonical, guid, chash)
            except self._connection_errors:  # e.g. the server restarted: once more, on a new one
                self._conn.invalidate()
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise

    def process_item(self, item, spider=None):
        own = canonicalize_url(item["url"])
        declared = item.get("canonical_url")
        canonical = canonicalize_url(declared) if declared else own
        if site_of(canonical) != site_of(own):
            # A cross-domain canonical names the original: this page is a copy of it.
            item["source_url"] = item.get("source_url") or declared
            canonical = own
        item["canonical_url"] = canonical
        if item.get("content_hash") is None:  # computed by the extraction worker, normally
            item["content_hash"] = content_hash(item["text"])
        duplicate = self._find_duplicate(canonical, item.get("guid"), item["content_hash"])
        item["duplicate_of"] = None
        item["revision_of"] = None
        if duplicate is not None:
            if duplicate["match"] in ("url", "guid") and duplicate["content_hash"] == item["content_hash"]:
                drop = AlreadyStored(f"{item['url']} is stored already")
                _count_drop(self.crawler, drop)
                raise drop
            if duplicate["match"] in ("url", "guid"):
                item["revision_of"] = duplicate["id"]
            else:
                item["duplicate_of"] = duplicate["url"]
        return item


class MatchPipeline:
    """Matches the article against ``--watch`` queries (``NEWSWATCH_WATCH``) and the active
    subscriptions; ``matched`` lists the names of those that matched.

    Compiling many subscriptions costs seconds, so the compiled matcher is kept for the
    process (the daemon runs many crawls) and rebuilt only when the subscriptions changed."""

    _cache: dict[tuple, tuple[int, Matcher, dict]] = {}

    def __init__(self, crawler, store, watch: list[str]):
        self.crawler = crawler
        self.store = store
        self.matcher, self.subscriptions = self._compiled(store, tuple(watch))

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, open_store(crawler.settings.get("NEWSWATCH_DB")),
                   crawler.settings.getlist("NEWSWATCH_WATCH"))

    @classmethod
    def _compiled(cls, store, watch: tuple[str, ...]) -> tuple[Matcher, dict[str, dict]]:
        from crawler.alerts.subscriptions import list_subscriptions

        with store.begin() as conn:
            subs = {f"sub:{sub['name']}": sub for sub in list_subscriptions(conn, include_paused=False)}
        version = hash(tuple(sorted((name, sub["query"]) for name, sub in subs.items())))
        key = (str(store.engine.url), watch)
        cached = cls._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], subs
        matcher = Matcher()
        for query in watch:
            try:
                matcher.add(query, parse_query(query))
            except QueryError as exc:
                raise ConfigError(f"--watch {query!r}: {exc}") from exc
        for name, sub in list(subs.items()):
            try:
                matcher.add(name, parse_query(sub["query"]))
            except QueryError as exc:
                logger.error("subscription %r has a bad query, skipped: %s", sub["name"], exc)
                del subs[name]
        cls._cache[key] = (version, matcher, subs)
        return matcher, subs

    def process_item(self, item, spider=None):
        found = self.matcher.match(item)
        item["matched"] = [name for name in found if not name.startswith("sub:")]
        item["subscriptions_matched"] = {
            name[4:]: self.subscriptions[name] for name in found
            if name.startswith("sub:") and self._passes_filters(self.subscriptions[name], item)}
        item["matched"] += list(item["subscriptions_matched"])
        item["match_terms"] = {name[4:] if name.startswith("sub:") else name: terms
                               for name, terms in found.items()}
        if item["matched"]:
            self.crawler.stats.inc_value("newswatch/articles/matched")
        return item

    @staticmethod
    def _passes_filters(sub: dict, item: dict) -> bool:
        if sub.get("languages") and item.get("language") not in sub["languages"]:
            return False
        if sub.get("sources") and item.get("source") not in sub["sources"] and \
                item.get("source_feed") not in sub["sources"]:
            return False
        return True


class StorePipeline:
    """Stores the article, its story and its alerts in one transaction.

    Articles arriving close together share a transaction: up to ``STORE_BATCH_SIZE``
    of them, or those that arrived within ``STORE_BATCH_DELAY`` seconds of the first
    (each item waits at most that long). A commit costs more than an article's rows,
    so this is most of what batching saves. If any article of a batch fails, the batch
    is rolled back and its articles are stored one by one, so only the failing one is
    lost. ``STORE_BATCH_SIZE = 1`` stores each article as it comes.

    With ``STORE_THREAD`` (default) batches are written by one thread of their own, in
    order, so the reactor goes on fetching while the database works (and, on
    PostgreSQL, while it waits for the server)."""

    LOCK_RETRY_DELAY = 0.005  # seconds between tries of a batch that found the write lock taken
    LOCK_PATIENCE = 1.0  # seconds of such tries before the batch waits for the lock

    def __init__(self, crawler, store, story_index: StoryIndex, flood_limit: int = 20,
                 flood_window: float = 600.0, batch_size: int = 1, batch_delay: float = 0.1,
                 use_thread: bool = False):
        self.crawler = crawler
        self.store = store
        self.story_index = story_index
        self.flood_limit = flood_limit
        self.flood_window = flood_window
        self.batch_size = max(1, batch_size)
        self.batch_delay = max(0.0, batch_delay)
        self._waiting: list[tuple[dict, object, Deferred]] = []
        self._timer = None
        self.use_thread = use_thread
        self._thread = None  # a one-thread pool: batches are stored one after the other
        self._writing: set[Deferred] = set()
        self._busy_since: float | None = None  # when the waiting batch first found the lock taken

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        return cls(crawler, open_store(settings.get("NEWSWATCH_DB")), StoryIndex.from_settings(settings),
                   flood_limit=settings.getint("ALERTS_FLOOD_LIMIT", 20),
                   flood_window=settings.getfloat("ALERTS_FLOOD_WINDOW", 600.0),
                   batch_size=settings.getint("STORE_BATCH_SIZE", 1),
                   batch_delay=settings.getfloat("STORE_BATCH_DELAY", 0.1),
                   use_thread=settings.getbool("STORE_THREAD", True))

    def open_spider(self, spider=None):
        self.store.checkpoint_in_background()  # SQLite: commits never wait for a disk flush
        if self.use_thread and self.batch_size > 1:
            from twisted.python.threadpool import ThreadPool

            self._thread = ThreadPool(minthreads=1, maxthreads=1, name="newswatch-store")
            self._thread.start()

    def close_spider(self, spider=None):
        """Store what still waits; forget index entries older than the window, so the
        index stays bounded."""
        self.flush(wait=True)
        if self._writing:
            from twisted.internet.defer import DeferredList

            return DeferredList(list(self._writing)).addBoth(lambda _: self._close())
        self._close()

    def _close(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        try:
            # Under the write lock, like the batches: a batch that read the index's
            # buckets once (StoryIndex.prefetch) must not see rows vanish meanwhile.
            with self.store.begin_writing() as conn:
                expired = self.story_index.expire(conn)
            if expired:
                logger.info("near-duplicate index: %d old entries expired", expired)
        except Exception:
            logger.exception("could not expire the near-duplicate index")

    async def process_item(self, item, spider=None):
        if self.batch_size == 1:
            error = self.store_many([item])[0]
            return self._finish(item, spider, error)
        from scrapy.utils.defer import maybe_deferred_to_future

        return await maybe_deferred_to_future(self.submit(item, spider))

    def submit(self, item, spider=None) -> Deferred:
        """Queue ``item`` for the next batch; the Deferred fires with the stored item, or
        fails with its drop or error."""
        done = Deferred()
        self._waiting.append((item, spider, done))
        if len(self._waiting) >= self.batch_size:
            self.flush()
        elif self._timer is None:
            from twisted.internet import reactor

            self._timer = reactor.callLater(self.batch_delay, self.flush)
        return done

    def flush(self, wait: bool = False) -> None:
        """Store the waiting articles now, in one transaction.

        On the reactor thread, a batch does not queue behind another process's write
        (waiting for SQLite's write lock or PostgreSQL's advisory one would block the
        reactor for the other's whole transaction): it goes
        back to the queue, the reactor fetches and extracts meanwhile, and the batch,
        grown by then, is tried again every ``LOCK_RETRY_DELAY`` seconds; after
        ``LOCK_PATIENCE`` seconds, or with ``wait``, it waits for the lock."""
        from twisted.internet import reactor

        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        items = [item for item, _, _ in waiting]
        if self._thread is None:
            now = time.monotonic()
            patient = wait or (self._busy_since is not None and now - self._busy_since > self.LOCK_PATIENCE)
            try:
                errors = self.store_many(items, wait=patient)
            except WriteLockBusy:
                self._waiting = waiting + self._waiting
                self._busy_since = self._busy_since or now
                self.crawler.stats.inc_value("newswatch/store/lock_busy")
                self._timer = reactor.callLater(self.LOCK_RETRY_DELAY, self.flush)
                return
            self._busy_since = None
            self._settle(waiting, errors)
            return
        from twisted.internet.threads import deferToThreadPool

        writing = deferToThreadPool(reactor, self._thread, self.store_many, items)
        self._writing.add(writing)
        writing.addCallbacks(lambda errors: self._settle(waiting, errors),
                             lambda failure: self._settle(waiting, [failure.value] * len(waiting)))
        writing.addBoth(lambda _: self._writing.discard(writing))

    def _settle(self, waiting, errors) -> None:
        for (item, spider, done), error in zip(waiting, errors):
            try:
                done.callback(self._finish(item, spider, error))
            except Exception:
                done.errback()

    def store_many(self, items: list[dict], wait: bool = True) -> list[Exception | None]:
        """Store ``items`` in one transaction; per item, None or the exception that kept
        it out of the store. ``wait=False``: raise WriteLockBusy rather than wait for
        another process's write to end (nothing is stored then)."""
        try:
            with self.store.begin_writing(wait) as conn:
                self.story_index.prefetch(conn, items)  # PostgreSQL: one look-up for the batch
                try:
                    for item in items:
                        self._store(conn, item)
                finally:
                    self.story_index.end_prefetch()
            return [None] * len(items)
        except WriteLockBusy:
            raise
        except Exception as exc:  # find which one: each on its own
            if len(items) == 1:
                return [exc]
        errors: list[Exception | None] = []
        for item in items:
            try:
                with self.store.begin() as conn:
                    self._store(conn, item)
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    def _finish(self, item, spider, error: Exception | None):
        """Count the stored article, or turn the error into the right drop (raised)."""
        item.pop("story_fingerprint", None)  # StoryIndex's working data, not for the output
        if isinstance(error, IntegrityError):
            # Another crawler sharing this database stored the same page a moment ago.
            drop = AlreadyStored(f"{item['url']} was stored meanwhile by another crawler")
            _count_drop(self.crawler, drop)
            raise drop
        if error is not None:
            logger.error("%s: could not store the article", item.get("url"),
                         exc_info=(type(error), error, error.__traceback__))
            self.crawler.stats.inc_value("newswatch/errors")
            self.crawler.stats.inc_value("newswatch/errors/store")
            spider = spider or self.crawler.spider
            if spider is not None and hasattr(spider, "mark_source_incomplete"):
                spider.mark_source_incomplete(item.get("source_id"))
            raise error
        key = "newswatch/articles/duplicate" if item.get("duplicate_of") else "newswatch/articles/new"
        self.crawler.stats.inc_value(key)
        spider = spider or self.crawler.spider
        if spider is not None and hasattr(spider, "count_new_article"):
            spider.count_new_article(item.get("source_id"))
        return item

    def _store(self, conn, item) -> None:
        from crawler.store import articles as article_rows

        decision = self.story_index.decide(conn, item)
        item["story_id"] = decision.story_id
        article_id = article_rows.save_article(conn, item, decision.signature)
        story_size = self.story_index.record(conn, article_id, item, decision)
        if decision.merged_story_ids:
            # Stories this article joined together: their alerts now belong to the merged
            # story, so a subscription already alerted for either is not alerted again.
            conn.execute(update(alerts).where(alerts.c.story_id.in_(decision.merged_story_ids))
                         .values(story_id=decision.story_id))
        item["article_id"] = article_id
        self._enqueue_alerts(conn, item, article_id, story_size)

    def _enqueue_alerts(self, conn, item, article_id, story_size: int) -> None:
        subscriptions = item.get("subscriptions_matched") or {}
        matches = [(sub, item["match_terms"].get(name, [])) for name, sub in subscriptions.items()
                   if not item.get("revision_of") or sub.get("alert_revisions")]
        if not matches:
            return
        from crawler.alerts.outbox import enqueue_matches

        enqueue_matches(conn, article=item, matches=matches, story_id=item["story_id"], article_id=article_id,
                        story_size=story_size, flood_limit=self.flood_limit, flood_window=self.flood_window)
