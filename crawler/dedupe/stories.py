"""Near-duplicate stories: one ``story_id`` for every copy of the same story.

A :class:`StoryIndex` keeps a persistent LSH index in the store (table
``story_bands``: one row per lookup key and article) and the ``stories`` table.

Evidence that two articles are the same story (every test is symmetric in the pair):

- **body** — the exact Jaccard similarity of their word 4-shingle sets (cleaned,
  normalised body) is at least ``threshold``;
- **containment** — at least ``containment`` of the smaller text's shingles appear in
  the larger one and the smaller has at least ``min_shingles`` shingles (a copy with
  paragraphs dropped or boilerplate added);
- **title** — the normalised titles are equal (or their word sets overlap by
  ``title_similarity``) and at least ``title_containment`` of the smaller text's
  shingles appear in the larger: the truncated, feed-only version of an article;
- **source** — one's ``source_url`` is the other's canonical URL, or both name the
  same ``source_url`` (reposts crediting the original). Only article-like URLs count
  (a path with a segment of 8+ characters or with a digit), not a site's home page;
- **revision** — the same canonical URL (the pipeline stores a changed page as a new
  revision of the same article; it stays in its story).

Two reports of the same event written independently share a few quotes and names,
not most of their sentences: they fail every test above (see the hard negatives in
``tests/data/dedupe`` and ``bench/dedupe.py``).

Candidates come from the index only, never from a scan: 32 MinHash bands of 4 rows
(128 permutations; a pair with Jaccard 0.5 collides with probability 0.87, 0.6 → 0.99),
plus keys for the normalised title, the first 12 words, the canonical URL and the
credited source URL. At most ``max_candidates`` candidates (ranked by key hits) have
their text fetched and verified, so a decision costs a handful of indexed lookups
whatever the size of the index.

Stories are the connected components of that relation, and are labelled by a rule
that does not depend on the order of arrival: **a story's id is the smallest content
hash (xxh64 of the normalised body, 16 hex digits) of its members**. When a new article
links to several stories, or brings a smaller hash, the stories are merged and their
articles re-labelled in the same transaction; the old ``stories`` rows keep a
``merged_into`` pointer (:meth:`StoryIndex.resolve` follows it). Since exact copies share
a content hash, it does not matter which of two identical bodies the pipeline kept. The
*first article* of a story is the member published earliest (undated last, ties by
canonical URL).

Decisions are serialised per database (``pg_advisory_xact_lock`` on PostgreSQL, SQLite's
write lock) so that processes sharing a database see each other's articles; the lock is
taken after the new article's fingerprints are computed (pure work, no need to hold it)
and before the index is read, and held until the caller's transaction ends.

Cost of a decision (``bench/dedupe.py --scale``): fingerprinting the new text (~0.3-0.5 ms
for a 1,600-character article: normalisation by a code-point table, vectorised word and
shingle hashing, a 128 x n MinHash product), one bucket look-up of ~36 keys, and
verification of the few candidates. On PostgreSQL that is one round trip when no key is
shared (the transaction's BEGIN, the lock and the look-up in one message), two
otherwise (the candidates, without the text of those whose fingerprints are cached). In a
``Store.begin_writing`` transaction (the store pipeline's batches) the lock is taken when
the transaction begins, and the look-up is a prepared statement; recording the article
inserts its keys and reads its stories in one pipelined round trip. At
1M articles each key lands on a random leaf page of a ~1 GB index (an index-only scan),
so the wall time depends on whether those pages are in memory (PostgreSQL's
shared_buffers or the OS page cache; SQLite's ``mmap_size`` / ``cache_size``).

Limits of the determinism: components are the same for every arrival order as long as
(1) every linked pair is still inside the expiry window when the later one arrives,
(2) no key bucket or candidate list overflows (``max_bucket_rows``,
``max_candidates``), and (3) LSH retrieves the pair — which is probabilistic in the
pair but deterministic in the data (fixed hash seeds), so a pair is found in every
order or in none. (4) A revision is linked with the text it had when recorded; a
revised body is not re-compared with stories it was not already in.

The price of order independence is that a story id can change after it was emitted:
when stories merge, or a copy with a smaller content hash arrives (for a story of *n*
copies, about ln *n* changes over its life). Callers that emitted an old id resolve it
with :meth:`StoryIndex.resolve`; alerts should be keyed on the resolved id.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import numpy as np
import xxhash
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from crawler.dedupe.fingerprints import (
    HASH_SEED,
    NUM_PERM,
    SHINGLE_SIZE,
    key_hash,
    minhash_of_shingles,
    normalize_text,
    shingle_array,
    signature_to_bytes,
    to_signed64,
)
from crawler.dedupe.urls import canonicalize_url
from crawler.store.prepared import Prepared, pg_query
from crawler.store.repository import WRITE_LOCK_KEY, holds_write_lock, mark_write_locked
from crawler.store.schema import articles, stories, story_bands

logger = logging.getLogger(__name__)

_LOCK_KEY = WRITE_LOCK_KEY  # PostgreSQL advisory lock id: the store's write lock
_LEAD_WORDS = 12
_MIN_TITLE_WORDS = 4
# Weights used only to rank candidates before verification.
_WEIGHTS = {"band": 1, "lead": 8, "title": 8, "url": 64}


@dataclass(frozen=True)
class StoryDecision:
    """What :meth:`StoryIndex.decide` concluded for one article."""

    story_id: str
    signature: bytes
    similar_article_id: int | None
    similarity: float | None
    is_new_story: bool
    content_hash: int
    evidence: str | None = None  # "body", "containment", "title", "source" or "revision"
    revision_of: int | None = None  # the stored article with the same canonical URL
    merged_story_ids: tuple[str, ...] = ()
    keys: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True, eq=False)
class TextFingerprint:
    """What a decision needs from an article's title and text (:meth:`StoryIndex.text_fingerprint`)."""

    params: tuple  # (shingle size, permutations, bands) it was made with
    source: int  # hash of the title and text it was made from
    title_norm: str
    title_words: frozenset
    shingles: np.ndarray
    signature: np.ndarray
    content_hash: int
    keys: dict  # band, title and lead keys (the URL keys are added by decide)


def _source_hash(title: str | None, text: str | None) -> int:
    return xxhash.xxh64_intdigest(((title or "") + "\x00" + (text or "")).encode("utf-8", "surrogatepass"))


@dataclass
class _Doc:
    title_words: frozenset
    shingles: np.ndarray  # sorted unique uint64 shingle hashes
    canonical_url: str | None
    source_url: str | None
    title_norm: str


def _parse_published(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _first_key(published: datetime | None, canonical_url: str | None) -> tuple:
    """Sort key of the *first article* rule: earliest published, undated last, then URL."""
    return (published is None, published or datetime.min, canonical_url or "")


def _article_like(url: str | None) -> bool:
    if not url:
        return False
    path = urlsplit(url).path
    return any(len(seg) >= 8 or any(ch.isdigit() for ch in seg) for seg in path.split("/") if seg)


# Built once: these run for every stored article (see crawler.store.prepared).
# One statement for all of an article's keys: the server plans and executes once, not ~40 times.
_PG_BANDS_INSERT = ("INSERT INTO story_bands (band, article_id, created_at) "
                    "SELECT unnest(%s::bigint[]), %s, %s ON CONFLICT DO NOTHING")
# The limit is written in, not a parameter: the server's generic plan for a LIMIT $n is a
# sequential scan (it expects to stop early), one for LIMIT 5000 the primary key.
_PG_BUCKETS = "SELECT band, article_id FROM story_bands WHERE band = ANY(%%s::bigint[]) LIMIT %d"
_PG_STORY_ROWS = ("SELECT id, first_article_id, size, merged_into, first_seen_at FROM stories "
                  "WHERE id = ANY(%s::varchar[])")
_BANDS_INSERT = {
    "sqlite": Prepared(sqlite_insert(story_bands).on_conflict_do_nothing()),
    "": Prepared(story_bands.insert()),
}
_STORY_ROW = Prepared(select(stories.c.first_article_id, stories.c.size, stories.c.merged_into,
                             stories.c.first_seen_at).where(stories.c.id == bindparam("id")))
_FIRST_ARTICLE = Prepared(select(articles.c.id, articles.c.published, articles.c.canonical_url, articles.c.title)
                          .where(articles.c.id == bindparam("id")))
_STORY_VALUES = {name: bindparam(name) for name in
                 ("first_article_id", "title", "size", "updated_at", "first_seen_at")}
_STORY_UPDATE = Prepared(update(stories).where(stories.c.id == bindparam("id"))
                         .values(merged_into=None, **_STORY_VALUES))
_STORY_INSERT = Prepared(insert(stories).values(id=bindparam("id"), merged_into=None, **_STORY_VALUES))


def _story_id_of(content_hash: int) -> str:
    return "%016x" % (content_hash & 0xFFFF_FFFF_FFFF_FFFF)


class StoryIndex:
    """A near-duplicate index persisted in the store; see the module docstring."""

    def __init__(self, threshold: float = 0.5, num_perm: int = NUM_PERM, window_days: int = 30,
                 bands: int = 32, containment: float = 0.9, min_shingles: int = 50,
                 title_similarity: float = 0.8, title_containment: float = 0.8,
                 shingle_size: int = SHINGLE_SIZE, max_candidates: int = 20,
                 max_bucket_rows: int = 5000, cache_size: int = 2048):
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.threshold = threshold
        self.num_perm = num_perm
        self.window = timedelta(days=window_days)
        self.bands = bands
        self.rows = num_perm // bands
        self.containment = containment
        self.min_shingles = min_shingles
        self.title_similarity = title_similarity
        self.title_containment = title_containment
        self.shingle_size = shingle_size
        self.max_candidates = max_candidates
        self.max_bucket_rows = max_bucket_rows
        # Fingerprints of recently verified candidates: a story's stored copies are the
        # candidates of each new copy of it. By article id, with everything they are
        # computed from (the content hash stands for the text), so a revised article is
        # recomputed; bounded (a few KB per entry).
        self.cache_size = cache_size
        self._cache: OrderedDict[int, tuple[tuple, _Doc]] = OrderedDict()  # article id -> (key, doc)
        self._prefetched: tuple | None = None  # (transaction, {band: [article ids]}), see prefetch

    @classmethod
    def from_settings(cls, settings) -> "StoryIndex":
        return cls(threshold=settings.getfloat("DEDUPE_NEAR_THRESHOLD", 0.5),
                   window_days=settings.getint("DEDUPE_WINDOW_DAYS", 30))

    # -- keys ------------------------------------------------------------------------

    def text_fingerprint(self, title: str | None, text: str | None) -> TextFingerprint:
        """The part of a decision that depends only on the article's title and text: pure
        and the costliest part, so the extraction workers compute it (see
        ``crawler.pipelines._extract``) and :meth:`decide` takes it from the item."""
        body = normalize_text(text or "")
        title_norm = normalize_text(title or "")
        shingles = shingle_array(body, self.shingle_size)
        signature = minhash_of_shingles(shingles, self.num_perm)
        keys: dict[int, str] = {}
        if len(shingles):
            raw, size, digest = signature.astype("<u4").tobytes(), 4 * self.rows, xxhash.xxh64_intdigest
            hashes = np.array([digest(raw[band * size:(band + 1) * size], band + 1) for band in range(self.bands)],
                              dtype=np.uint64)
            keys = dict.fromkeys(hashes.view(np.int64).tolist(), "band")  # as signed BIGINTs
        title_words = frozenset(title_norm.split())
        if len(title_words) >= _MIN_TITLE_WORDS:
            keys[key_hash("title", title_norm)] = "title"
        lead = body.split(" ", _LEAD_WORDS)[:_LEAD_WORDS]
        if len(lead) == _LEAD_WORDS:
            keys[key_hash("lead", " ".join(lead))] = "lead"
        return TextFingerprint(params=self._params, source=_source_hash(title, text), title_norm=title_norm,
                               title_words=title_words, shingles=shingles, signature=signature,
                               content_hash=content_hash_of_normalized(body), keys=keys)

    @property
    def _params(self) -> tuple:
        return (self.shingle_size, self.num_perm, self.bands)

    def _fingerprint_of(self, article: dict) -> TextFingerprint:
        """The item's fingerprint when it was made from this title and text with these
        parameters, else one computed now."""
        title, text = article.get("title"), article.get("text")
        made = article.get("story_fingerprint")
        if isinstance(made, TextFingerprint) and made.params == self._params \
                and made.source == _source_hash(title, text):
            return made
        return self.text_fingerprint(title, text)

    def _doc(self, article: dict) -> tuple[_Doc, TextFingerprint]:
        fp = self._fingerprint_of(article)
        source = article.get("source_url")
        doc = _Doc(title_words=fp.title_words, shingles=fp.shingles,
                   canonical_url=article.get("canonical_url") or (
                       canonicalize_url(article["url"]) if article.get("url") else None),
                   source_url=canonicalize_url(source) if _article_like(source) else None,
                   title_norm=fp.title_norm)
        return doc, fp

    @staticmethod
    def _keys(doc: _Doc, fp: TextFingerprint) -> dict[int, str]:
        keys = dict(fp.keys)
        for url in (doc.canonical_url, doc.source_url):
            if url:
                keys[key_hash("url", url)] = "url"
        return keys

    # -- evidence --------------------------------------------------------------------

    def _same_story(self, a: _Doc, b: _Doc) -> tuple[str | None, float]:
        """(evidence, score) for the pair, evidence None when they are different stories."""
        inter = len(np.intersect1d(a.shingles, b.shingles, assume_unique=True))
        smaller = min(len(a.shingles), len(b.shingles))
        union = len(a.shingles) + len(b.shingles) - inter
        jaccard = inter / union if union else 0.0
        contained = inter / smaller if smaller else 0.0
        if a.canonical_url and a.canonical_url == b.canonical_url:
            return "revision", max(jaccard, contained)
        if a.source_url and (a.source_url == b.source_url or a.source_url == b.canonical_url) \
                or b.source_url and b.source_url == a.canonical_url:
            return "source", max(jaccard, contained)
        if jaccard >= self.threshold:
            return "body", jaccard
        if smaller >= self.min_shingles and contained >= self.containment:
            return "containment", contained
        if a.title_words and b.title_words and contained >= self.title_containment:
            if a.title_norm == b.title_norm or (
                    len(a.title_words & b.title_words) / len(a.title_words | b.title_words)
                    >= self.title_similarity):
                return "title", contained
        return None, max(jaccard, contained)

    # -- locking ---------------------------------------------------------------------

    @staticmethod
    def _lock(conn: Connection) -> None:
        """Serialise decisions across processes until the caller's transaction ends
        (nothing to do when it holds the store's write lock already, as
        ``Store.begin_writing`` transactions do)."""
        if holds_write_lock(conn):
            return
        if conn.dialect.name == "postgresql":
            pg_query(conn, "SELECT pg_advisory_xact_lock(%d)" % _LOCK_KEY, ())
        elif conn.dialect.name == "sqlite":
            # Any write statement takes SQLite's write lock (waiting up to busy_timeout),
            # held to the end of the transaction: once per transaction is enough (a store
            # batch decides many articles in one).
            conn.exec_driver_sql("UPDATE stories SET size = size WHERE id = ''")
        else:
            return
        mark_write_locked(conn)

    def _candidate_doc(self, article_id, title, text, length, canonical_url, source_url, chash) -> _Doc | None:
        """The candidate's fingerprints: cached, or computed from ``text`` (None when its
        text was not fetched and the cached entry is for another version of the article)."""
        key = (chash, length, title, canonical_url, source_url)
        cached = self._cache.get(article_id)
        if cached is not None and cached[0] == key:
            self._cache.move_to_end(article_id)
            return cached[1]
        if text is None:
            return None
        doc, _ = self._doc({"title": title, "text": text, "canonical_url": canonical_url,
                            "source_url": source_url})
        if self.cache_size > 0:
            self._cache[article_id] = (key, doc)
            self._cache.move_to_end(article_id)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return doc

    def _candidates(self, conn: Connection, keys: dict[int, str], doc: _Doc) -> list[tuple[tuple, _Doc]]:
        """Take the decision lock, then fetch the stored articles sharing the most keys:
        at most ``max_bucket_rows`` bucket rows, ranked by weighted key hits (ties by id),
        the first ``max_candidates`` with their fingerprints.

        The keys and ids are integers made here, written into the SQL as literals. On
        PostgreSQL the lock and the bucket look-up travel in one message (two statements:
        the look-up's snapshot is taken after the lock is granted), with the transaction's
        BEGIN when it has not started yet (see :func:`crawler.store.prepared.pg_query`), and a
        candidate whose fingerprints are cached is fetched without its text. In a transaction
        that holds the write lock already, the look-up is a prepared statement, or no
        statement at all when :meth:`prefetch` read the batch's buckets.
        """
        postgres = conn.dialect.name == "postgresql"
        if not keys:
            self._lock(conn)
            return []
        buckets = self._prefetched_buckets(conn)
        if buckets is not None:
            rows = [(band, article_id) for band in keys for article_id in buckets.get(band, ())]
            rows = rows[: self.max_bucket_rows]
        elif postgres and holds_write_lock(conn):
            # A prepared statement: planning the look-up of ~36 keys costs the server more
            # than running it (0.3 ms against 0.1 ms).
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(_PG_BUCKETS % self.max_bucket_rows, (list(keys),), prepare=True)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        elif postgres:
            rows = pg_query(conn, "SELECT pg_advisory_xact_lock(%d); SELECT band, article_id FROM story_bands "
                                  "WHERE band = ANY('{%s}'::bigint[]) LIMIT %d"
                            % (_LOCK_KEY, ",".join(map(str, keys)), self.max_bucket_rows), (int, int))
            mark_write_locked(conn)
        else:
            self._lock(conn)
            rows = conn.connection.execute("SELECT band, article_id FROM story_bands WHERE band IN (%s) LIMIT %d"
                                           % (", ".join("?" * len(keys)), self.max_bucket_rows),
                                           tuple(keys)).fetchall()
        if len(rows) >= self.max_bucket_rows:
            logger.warning("story index: candidate buckets overflow (%d rows) for %s",
                           len(rows), doc.canonical_url)
        hits: dict[int, int] = {}
        for band, article_id in rows:
            hits[article_id] = hits.get(article_id, 0) + _WEIGHTS[keys[band]]
        ranked = sorted(hits, key=lambda aid: (-hits[aid], aid))[: self.max_candidates]
        if not ranked:
            return []

        def fetch(ids: list[int], skip_text: list[int]) -> list[tuple]:
            sql = ("SELECT id, title, %s, length(text), canonical_url, source_url, story_id, content_hash "
                   "FROM articles WHERE id IN (%s)")
            if postgres:
                text = "CASE WHEN id IN (%s) THEN NULL ELSE text END" % ", ".join(map(str, skip_text)) \
                    if skip_text else "text"
                return pg_query(conn, sql % (text, ", ".join(map(str, ids))), (int, str, str, int, str, str, str, int))
            # SQLite: in this process, the text costs nothing to send; "?" lets it reuse the statement
            return conn.connection.execute(sql % ("text", ", ".join("?" * len(ids))), ids).fetchall()

        out = []
        for row in fetch(ranked, [aid for aid in ranked if aid in self._cache]):
            other = self._candidate_doc(*row[:6], row[7])
            if other is None:  # revised since its fingerprints were cached
                row = fetch([row[0]], [])[0]
                other = self._candidate_doc(*row[:6], row[7])
            out.append((row, other))
        return out

    def _prefetched_buckets(self, conn: Connection) -> dict | None:
        prefetched = self._prefetched
        if prefetched is None or prefetched[0] is not conn.get_transaction() or not holds_write_lock(conn):
            return None
        return prefetched[1]

    def prefetch(self, conn: Connection, articles: list[dict]) -> bool:
        """PostgreSQL, in a transaction that holds the write lock (``Store.begin_writing``):
        read the index buckets of all ``articles`` at once, so that deciding each of them
        in this transaction costs no look-up of its own (a round trip each, otherwise).
        :meth:`record` adds the keys it inserts meanwhile, so a decision sees what a
        look-up would have seen: the committed rows (no other writer can add any while the
        lock is held) and this transaction's own. Elsewhere, or when the buckets hold more
        rows than ``max_bucket_rows`` per article, nothing is read and each decision looks
        up its own. Returns whether the buckets were read; :meth:`end_prefetch` forgets them.
        """
        self._prefetched = None
        if conn.dialect.name != "postgresql" or len(articles) < 2 or not holds_write_lock(conn):
            return False
        keys: set[int] = set()
        for article in articles:
            try:
                doc, fp = self._doc(article)
            except Exception:  # a malformed item: each decision looks up its own (and reports it)
                return False
            article["story_fingerprint"] = fp  # made once (decide takes it from the item)
            keys.update(self._keys(doc, fp))
        limit = self.max_bucket_rows * len(articles)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(_PG_BUCKETS % limit, (sorted(keys),))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if len(rows) >= limit:
            return False
        buckets: dict[int, list[int]] = {}
        for band, article_id in rows:
            buckets.setdefault(band, []).append(article_id)
        self._prefetched = (conn.get_transaction(), buckets)
        return True

    def end_prefetch(self) -> None:
        self._prefetched = None

    # -- public API ------------------------------------------------------------------

    def decide(self, conn: Connection, article: dict) -> StoryDecision:
        """Which story ``article`` belongs to (reads only; call :meth:`record` after the insert)."""
        doc, fp = self._doc(article)
        signature, chash = fp.signature, fp.content_hash
        keys = self._keys(doc, fp)

        matches: list[tuple[str, float, int, str]] = []  # (evidence, score, id, story)
        revision_of = None
        for row, other in self._candidates(conn, keys, doc):
            article_id, story_id = row[0], row[6]
            evidence, score = self._same_story(doc, other)
            if evidence == "revision":
                revision_of = article_id
            if evidence is not None and story_id:
                matches.append((evidence, score, article_id, story_id))

        own_id = _story_id_of(chash)
        linked = sorted({story for *_, story in matches})
        story_id = min(linked + [own_id])
        best = max(matches, key=lambda m: (m[1], -m[2])) if matches else None
        return StoryDecision(
            story_id=story_id,
            signature=signature_to_bytes(signature),
            similar_article_id=best[2] if best else None,
            similarity=round(best[1], 4) if best else None,
            is_new_story=not linked,
            content_hash=chash,
            evidence=best[0] if best else None,
            merged_story_ids=tuple(s for s in linked if s != story_id),
            keys=tuple(keys),
            revision_of=revision_of,
        )

    def record(self, conn: Connection, article_id: int, article: dict, decision: StoryDecision,
               now: datetime | None = None) -> int:
        """Index the stored article and update (or create, or merge) its story; returns
        the story's size (copies) after it.

        ``now`` (naive UTC, default the current time) stamps the index entries; the
        expiry window counts from it. A revision (same canonical URL as a stored
        article) adds its new keys; its old ones stay until they expire.
        """
        now = now or _utcnow()
        story_ids = (decision.story_id, *decision.merged_story_ids)
        if conn.dialect.name == "postgresql":
            found = self._index_and_read_stories(conn, article_id, decision.keys, story_ids, now)
            buckets = self._prefetched_buckets(conn)
            if buckets is not None:  # what the insert added, as a look-up would now see it
                for key in decision.keys:
                    ids = buckets.setdefault(key, [])
                    if article_id not in ids:
                        ids.append(article_id)
        else:
            if decision.keys:
                _BANDS_INSERT[conn.dialect.name if conn.dialect.name in _BANDS_INSERT else ""].executemany(
                    conn, [{"band": k, "article_id": article_id, "created_at": now} for k in decision.keys])
            found = [(story_id, *row) for story_id in story_ids
                     if (row := _STORY_ROW.first(conn, {"id": story_id})) is not None]
        rows = {}
        for story_id, first_article_id, size, merged_into, first_seen_at in found:
            rows[story_id] = {"first_article_id": first_article_id, "size": size, "merged_into": merged_into,
                              "first_seen_at": _parse_published(first_seen_at)}
        if decision.merged_story_ids:
            conn.execute(update(articles).where(articles.c.story_id.in_(
                bindparam("old", expanding=True))).values(story_id=decision.story_id),
                {"old": list(decision.merged_story_ids)})
            conn.execute(update(stories).where(stories.c.id.in_(bindparam("old", expanding=True)))
                         .values(merged_into=decision.story_id, updated_at=now),
                         {"old": list(decision.merged_story_ids)})
            conn.execute(update(stories).where(stories.c.merged_into.in_(bindparam("old", expanding=True)))
                         .values(merged_into=decision.story_id),
                         {"old": list(decision.merged_story_ids)})

        # The first article: the earliest published among the current firsts and this one.
        firsts = sorted({r["first_article_id"] for r in rows.values() if r["first_article_id"] is not None})
        contenders = [(_first_key(_parse_published(article.get("published")), article.get("canonical_url")),
                       article_id, article.get("title"))]
        for first in firsts:
            row = _FIRST_ARTICLE.first(conn, {"id": first})
            if row is not None:
                contenders.append((_first_key(_parse_published(row[1]), row[2]), row[0], row[3]))
        _, first_id, first_title = min(contenders, key=lambda c: (c[0], c[1]))
        size = (decision.revision_of is None) + sum(r["size"] for r in rows.values() if r["merged_into"] is None)
        first_seen = min([r["first_seen_at"] for r in rows.values() if r["first_seen_at"] is not None] + [now])
        values = {"id": decision.story_id, "first_article_id": first_id, "title": first_title, "size": size,
                  "updated_at": now, "first_seen_at": first_seen}
        (_STORY_UPDATE if decision.story_id in rows else _STORY_INSERT).execute(conn, values).close()
        return size

    @staticmethod
    def _index_and_read_stories(conn: Connection, article_id: int, keys: tuple, story_ids: tuple,
                                now: datetime) -> list[tuple]:
        """PostgreSQL: the article's index rows inserted and its stories' rows read in one
        pipeline (one round trip instead of one per statement: every round trip is spent
        holding the write lock), both prepared on the server (planned once)."""
        driver = conn.connection.driver_connection
        inserting, reading = driver.cursor(), driver.cursor()
        try:
            with driver.pipeline():
                if keys:
                    inserting.execute(_PG_BANDS_INSERT, (list(keys), article_id, now), prepare=True)
                reading.execute(_PG_STORY_ROWS, (list(story_ids),), prepare=True)
            rows = reading.fetchall()
        finally:
            inserting.close()
            reading.close()
        order = {story_id: n for n, story_id in enumerate(story_ids)}
        return sorted(rows, key=lambda row: order[row[0]])

    def expire(self, conn: Connection, now: datetime | None = None) -> int:
        """Drop index entries recorded before the window; returns how many were dropped."""
        cutoff = (now or _utcnow()) - self.window
        result = conn.execute(delete(story_bands).where(story_bands.c.created_at < cutoff))
        logger.info("story index: expired %d entries older than %s", result.rowcount, cutoff)
        return result.rowcount

    @staticmethod
    def resolve(conn: Connection, story_id: str) -> str:
        """The current id of a story that may have been merged into another."""
        seen = set()
        while story_id not in seen:
            seen.add(story_id)
            target = conn.execute(select(stories.c.merged_into).where(stories.c.id == story_id)).scalar()
            if not target:
                break
            story_id = target
        return story_id


def content_hash_of_normalized(body: str) -> int:
    """:func:`crawler.dedupe.fingerprints.content_hash` of an already normalised text."""
    return to_signed64(xxhash.xxh64_intdigest(body.encode(), seed=HASH_SEED))


def story_info(conn: Connection, story_id: str) -> dict | None:
    """A story: its first article, size, every copy, and the distinct sites reporting it."""
    story_id = StoryIndex.resolve(conn, story_id)
    row = conn.execute(select(stories).where(stories.c.id == story_id)).mappings().first()
    if row is None:
        return None
    copies = [dict(r) for r in conn.execute(
        select(articles.c.id, articles.c.url, articles.c.canonical_url, articles.c.title,
               articles.c.site_name, articles.c.published, articles.c.source_url)
        .where(articles.c.story_id == story_id).order_by(articles.c.id)).mappings()]
    copies.sort(key=lambda c: _first_key(c["published"], c["canonical_url"]))
    sites = sorted({urlsplit(c["canonical_url"]).hostname or "" for c in copies} - {""})
    first = next((c for c in copies if c["id"] == row["first_article_id"]), copies[0] if copies else None)
    return {
        "id": story_id,
        "title": row["title"],
        "size": row["size"],
        "first_article": first,
        "first_seen_at": row["first_seen_at"],
        "updated_at": row["updated_at"],
        "articles": copies,
        "sites": sites,
        "source_count": len(sites),
    }


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


__all__ = ["StoryDecision", "StoryIndex", "TextFingerprint", "content_hash_of_normalized", "story_info"]
