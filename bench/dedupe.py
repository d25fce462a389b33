"""Benchmark of crawler.dedupe: story clustering quality, and decide cost at scale.

    .venv/bin/python bench/dedupe.py                      # quality + scale (10k, 100k, 1M)
    .venv/bin/python bench/dedupe.py --quality            # quality only, on SQLite and PostgreSQL
    .venv/bin/python bench/dedupe.py --quality --backends sqlite --thresholds 0.5   # ~10 s
    .venv/bin/python bench/dedupe.py --scale --sizes 10000,100000 --backends sqlite
    .venv/bin/python bench/dedupe.py --scale --sizes 1000000 --backends postgresql --keep bench_1m  # load once, reuse
    .venv/bin/python bench/dedupe.py --scale --sizes 1000000 --evict   # decisions reading the index from disk

Quality: a labelled set built from the real article bodies of
``shared/data/aeb-dev/ground-truth.json`` (60 pages, MIT). Long bodies are cut into
consecutive parts that become *different* stories on the same subject (hard negatives:
same people, places and vocabulary; one also quotes a sentence of its neighbour and, half
of the time, carries the same title). Each story gets copies: reposts with another
site's template (boilerplate lines, shared by every article of that site), changed
quote marks, one or two paragraphs dropped or added, light edits with a dateline, and a
truncated feed-only version. Every document goes through the real path (decide, insert,
record) in a shuffled order; "same story" is then judged on every pair of documents. Each
backend must give the same story ids.

Scale: the index is bulk-loaded with synthetic entries (random band keys, the same number
of keys per article as real ones) up to N articles, real articles are recorded on top,
and ``decide`` alone is timed (inside a transaction that is rolled back; as in the store
pipeline, the decision is the transaction's first statement, so its BEGIN is timed) for new articles
(each text made once, from paragraphs of three bodies, so that no decision finds the index
pages an earlier decision of the same text brought into memory) and for copies of stored
ones; wall and CPU time of this process, median and 95th percentile. On PostgreSQL most
of a decision at 1M is reading ~33 index leaf pages that are not in shared_buffers: the
wall time depends on whether the OS holds the index file in its page cache (``--prewarm``
reads it there before timing; without it, what this machine's kernel has kept; ``--evict``
drops it from the page cache first, so every decision reads its ~36 leaf pages from disk).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from crawler.dedupe.fingerprints import content_hash  # noqa: E402
from crawler.dedupe.stories import StoryIndex  # noqa: E402
from crawler.dedupe.urls import canonicalize_url  # noqa: E402
from crawler.store.articles import save_article  # noqa: E402
from crawler.store.repository import Store  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "aeb-dev" / "ground-truth.json"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/data/aeb-dev/ground-truth.json")
SEED_TESTS = ROOT / "tests" / "data" / "dedupe" / "articles.json"
SYNTHETIC_FIRST_ID = 10_000_000  # synthetic articles' ids, far above the real ones
PG_SERVER = os.environ.get("NEWSWATCH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# -- the labelled set -------------------------------------------------------------------

SITES = {
    "autoblog.example": ["Advertisement", "spot_img", "Source link", "Latest news", "Related news",
                         "Leave a comment. Your email address will not be published. Required fields are marked *"],
    "dailydigest.example": ["Share this article", "Follow us on Twitter and Facebook for the latest updates.",
                            "Sign up for our morning newsletter and get the day's top stories in your inbox, "
                            "free of charge, every weekday at 7 a.m. You can unsubscribe at any time."],
    "m.newsnow.example": ["Read more:", "© 2023 NewsNow Media Group. All rights reserved. This material may not "
                          "be published, broadcast, rewritten or redistributed."],
    "world-report.example": ["Editor's note: this article was updated with additional reporting.",
                             "Trending now", "Most read"],
}
SYNONYMS = {"said": "stated", "says": "states", "told": "informed", "big": "large", "new": "fresh",
            "also": "too", "but": "however", "about": "around", "because": "since", "more": "further",
            "people": "individuals", "company": "firm", "help": "assist", "start": "begin", "show": "display"}
DATELINES = ["WASHINGTON (Wire) —", "LONDON, Sept 12 (Wire) -", "NEW YORK —", "PARIS (AFP) -"]


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n+", body) if p.strip()]


def _title_of(paras: list[str]) -> str:
    words = re.split(r"\s+", paras[0])
    return " ".join(words[:11]).rstrip(",.;:")


def _chunks(paras: list[str], max_words: int = 450) -> list[list[str]]:
    """Consecutive parts of a body, each 120+ words: different stories on one subject."""
    out, cur, n = [], [], 0
    for p in paras:
        cur.append(p)
        n += len(p.split())
        if n >= max_words:
            out.append(cur)
            cur, n = [], 0
    if cur:
        if out and n < 120:
            out[-1].extend(cur)
        else:
            out.append(cur)
    return [c for c in out if sum(len(p.split()) for p in c) >= 60][:4]


def _sentences(paras: list[str]) -> list[str]:
    return [s for p in paras for s in re.split(r"(?<=[.!?])\s+", p) if len(s.split()) >= 8]


def _quotes(s: str, style: int) -> str:
    if style == 0:  # typographic -> straight
        for a, b in [("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"), ("«", '"'), ("»", '"')]:
            s = s.replace(a, b)
        return s
    s = re.sub(r'"(\w)', r"« \1", s)  # straight -> French guillemets
    return re.sub(r'(\S)"', r"\1 »", s).replace("'", "’")


def _edit(paras: list[str], rng: random.Random) -> list[str]:
    out = []
    for p in paras:
        words = p.split(" ")
        for i, w in enumerate(words):
            key = w.lower()
            if key in SYNONYMS and rng.random() < 0.5:
                words[i] = SYNONYMS[key]
        out.append(" ".join(words))
    out[0] = rng.choice(DATELINES) + " " + out[0]
    return out


def _variants(paras: list[str], title: str, rng: random.Random, filler: list[str]) -> list[tuple[str, str, str]]:
    """(kind, title, text) copies of one story."""
    out = []
    site_lines = list(SITES.values())
    n = len(paras)
    # repost: another template (its boilerplate lines), other quotes, one paragraph dropped
    chrome = rng.choice(site_lines)
    body = [_quotes(p, 0) for p in paras]
    if n >= 4:
        del body[rng.randrange(1, n)]
    out.append(("repost", _quotes(title, 0), "\n\n".join([chrome[0]] + body + chrome[1:])))
    # the same text, quote marks changed only
    out.append(("quotes", _quotes(title, 1), "\n\n".join(_quotes(p, 1) for p in paras)))
    if n >= 6:
        body = list(paras)
        for _ in range(2):
            del body[rng.randrange(1, len(body))]
        out.append(("drop2", title, "\n\n".join(body)))
    # an added paragraph (a related-story box left in by the extractor)
    body = list(paras)
    body.insert(rng.randrange(1, n + 1), rng.choice(filler))
    out.append(("added", title, "\n\n".join(body)))
    out.append(("edited", title, "\n\n".join(_edit(paras, rng))))
    # feed-only: the title and the first 25-45 words, cut mid-sentence
    words = " ".join(paras).split()
    cut = rng.randrange(25, 46)
    if len(words) > cut + 20:
        out.append(("feed_only", title, " ".join(words[:cut]) + " …"))
    return out


def build_labelled_set(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    bodies = [_paragraphs(v["articleBody"]) for _, v in sorted(corpus.items())]
    filler = [s for b in bodies for s in _sentences(b)]
    docs = []
    story_no = 0
    for b_no, paras in enumerate(bodies):
        if sum(len(p.split()) for p in paras) < 60:
            continue
        parts = _chunks(paras)
        titles = []
        for part_no, part in enumerate(parts):
            story = f"s{story_no}"
            story_no += 1
            title = _title_of(part)
            part = list(part)
            if part_no > 0:
                # a hard negative: the same subject, a sentence quoted from the part before,
                # and half of the time the same title
                shared = _sentences(parts[part_no - 1][1:])  # a quote, not the lead
                if shared:
                    part.insert(max(2, len(part) // 2), rng.choice(shared))  # the lead stays its own
                if rng.random() < 0.5:
                    title = titles[-1]
            titles.append(title)
            group = f"b{b_no}"
            docs.append({"story": story, "group": group, "kind": "original", "title": title,
                         "text": "\n\n".join(part)})
            for kind, vtitle, vtext in _variants(part, title, rng, filler):
                docs.append({"story": story, "group": group, "kind": kind, "title": vtitle, "text": vtext})
    # The newswatch seed case: three copies of one wire story and two independent reports.
    seed_set = json.loads(SEED_TESTS.read_text(encoding="utf-8"))
    names = {k: name for name, keys in seed_set["stories"].items() for k in keys}
    for a in seed_set["articles"]:
        docs.append({"story": "seed-" + names[a["key"]], "group": "seed", "kind": a["key"], "title": a["title"],
                     "text": a["text"], "source_url": a["source_url"], "url": a["url"],
                     "published": a["published"]})
    sites = list(SITES)
    for i, d in enumerate(docs):
        d.setdefault("url", f"https://{rng.choice(sites)}/news/{i:05d}-{d['story']}-{d['kind']}")
        d.setdefault("published", None)
        d.setdefault("source_url", None)
        d["canonical_url"] = canonicalize_url(d["url"])
        d["content_hash"] = content_hash(d["text"])
    return docs


def run_index(store: Store, index: StoryIndex, docs: list[dict]) -> list[str]:
    """Every document through decide/insert/record; returns the final story id of each."""
    ids = []
    for d in docs:
        item = dict(d)
        with store.begin() as conn:
            decision = index.decide(conn, item)
            item["story_id"] = decision.story_id
            ids.append(save_article(conn, item, decision.signature))
            index.record(conn, ids[-1], item, decision)
    with store.begin() as conn:
        final = dict(conn.execute(text("SELECT id, story_id FROM articles")).all())
    return [final[i] for i in ids]


def evaluate(docs: list[dict], predicted: list[str]) -> dict:
    tp = fp = fn = 0
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # positives: [found, total]
    fp_by: Counter = Counter()
    neg_by: Counter = Counter()
    for i, j in itertools.combinations(range(len(docs)), 2):
        a, b = docs[i], docs[j]
        truth = a["story"] == b["story"]
        same = predicted[i] == predicted[j]
        if truth:
            tp += same
            fn += not same
            if "original" in (a["kind"], b["kind"]):
                kind = b["kind"] if a["kind"] == "original" else a["kind"]
                by_kind[kind][0] += same
                by_kind[kind][1] += 1
        else:
            kind = "same subject" if a["group"] == b["group"] else "unrelated"
            neg_by[kind] += 1
            if same:
                fp += 1
                fp_by[kind] += 1
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "by_kind": dict(by_kind), "fp_by": dict(fp_by), "neg_by": dict(neg_by)}


def bench_quality(thresholds: list[float], backends: list[str]) -> None:
    docs = build_labelled_set()
    stories = len({d["story"] for d in docs})
    print(f"\n## Quality: {len(docs)} documents, {stories} stories "
          f"({len(docs) * (len(docs) - 1) // 2} pairs) from {CORPUS.name} + the seed set\n")
    print("| backend | threshold | order | precision | recall | TP | FP | FN | "
          "false merges (same subject / unrelated) |")
    print("|---|---|---|---|---|---|---|---|---|")
    details = None
    first_backend: dict[float, list] = {}
    for name, threshold in itertools.product(backends, thresholds):
        partitions = []
        for order_seed in (1, 2):
            order = list(range(len(docs)))
            random.Random(order_seed).shuffle(order)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    backend = Backend(name, tmp)
                except Exception as exc:  # PostgreSQL not running: say so, go on
                    print(f"| {name} | unavailable: {exc.__class__.__name__} | | | | | | | |")
                    break
                try:
                    t0 = time.perf_counter()
                    predicted_in_order = run_index(backend.store, StoryIndex(threshold=threshold),
                                                   [docs[i] for i in order])
                    elapsed = time.perf_counter() - t0
                finally:
                    backend.drop()
            predicted = [None] * len(docs)
            for pos, i in enumerate(order):
                predicted[i] = predicted_in_order[pos]
            partitions.append(predicted)
            r = evaluate(docs, predicted)
            print(f"| {name} | {threshold} | shuffle {order_seed} | {r['precision']:.4f} | {r['recall']:.4f} | "
                  f"{r['tp']} | {r['fp']} | {r['fn']} | {r['fp_by'].get('same subject', 0)} / {r['fp_by'].get('unrelated', 0)} |")
            if threshold == 0.5 and order_seed == 1 and details is None:
                details = r
        if len(partitions) < 2:
            continue
        same = partitions[0] == partitions[1]
        same_backends = partitions[0] == first_backend.setdefault(threshold, partitions[0])
        print(f"| | | both orders give identical story ids | {same} | | | | | "
              f"({elapsed / len(docs) * 1000:.2f} ms/doc) |")
        if name != backends[0]:
            print(f"| | | same story ids as on {backends[0]} | {same_backends} | | | | | |")
    if details:
        print("\nRecall per kind of copy (pairs original–copy, threshold 0.5, clusters):\n")
        print("| copy | found / pairs | recall |")
        print("|---|---|---|")
        for kind, (found, total) in sorted(details["by_kind"].items()):
            print(f"| {kind} | {found} / {total} | {found / total:.3f} |")
        print(f"\nNegative pairs: {details['neg_by'].get('same subject', 0)} on the same subject "
              f"(hard), {details['neg_by'].get('unrelated', 0)} unrelated.")


# -- scale ------------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Backend:
    def __init__(self, name: str, tmp: str, keep: str | None = None):
        self.name = name
        self.keep = keep if name == "postgresql" else None
        self.loaded = 0  # synthetic articles already in the index (a kept schema)
        if name == "sqlite":
            self.path = f"{tmp}/scale.db"
            self.url = f"sqlite:///{self.path}"
            self.schema = None
        else:
            self.schema = self.keep or "bench_" + uuid.uuid4().hex[:10]
            admin = create_engine(PG_SERVER)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {self.schema}"))
                self.loaded = int(conn.execute(text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                                    "WHERE nspname = :s"), {"s": self.schema}).scalar() or 0)
            admin.dispose()
            self.url = f"{PG_SERVER}?options=-csearch_path%3D{self.schema}"
        self.store = Store.from_url(self.url)

    def mark_loaded(self, count: int) -> None:
        """Remember in a kept schema how many synthetic articles it holds."""
        self.loaded = count
        if self.keep:
            with self.store.begin() as conn:
                conn.execute(text(f"COMMENT ON SCHEMA {self.schema} IS '{count}'"))

    def drop(self) -> None:
        self.store.dispose()
        if self.schema and not self.keep:
            admin = create_engine(PG_SERVER)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            admin.dispose()

    def prewarm(self) -> None:
        """Read the whole index into the operating system's page cache, as a server that
        has been deciding for a while holds it (this machine's kernel reclaims page cache
        that is not touched, so a freshly loaded 1M index is partly read from disk)."""
        if self.schema is None:
            with open(self.path, "rb") as f:
                while f.read(1 << 24):
                    pass
            return
        with self.store.begin() as conn:  # an index-only scan over every leaf page
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            conn.execute(text("SET LOCAL enable_bitmapscan = off"))
            conn.execute(text("SELECT count(*) FROM story_bands WHERE band >= -9223372036854775808")).scalar()

    def evict(self) -> None:
        """Drop the index's files from the operating system's page cache (posix_fadvise
        DONTNEED), so that each decision reads its index pages from disk: the coldest case.
        PostgreSQL's own shared_buffers (128 MB here, ~4% of a 1M index) are not cleared."""
        if self.schema is None:
            paths = [Path(self.path)]
        else:
            with self.store.begin() as conn:
                data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
                relations = conn.execute(text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = 'story_bands'::regclass "
                    "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'story_bands'::regclass)"
                )).scalars().all()
            paths = [p for rel in relations for p in sorted(data_dir.glob(rel + "*")) if p.is_file()]
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def size_mb(self) -> float:
        if self.schema is None:
            return os.path.getsize(self.path) / 2**20
        with self.store.begin() as conn:
            return conn.execute(text("SELECT pg_total_relation_size('story_bands')")).scalar_one() / 2**20

    def bulk_load(self, first_id: int, count: int, keys_per_article: int, created_at: str) -> None:
        """Synthetic index entries for ``count`` articles (random keys), generated by the
        database itself in one statement — no per-row Python, so this process's memory
        stays what the decisions need. SQLite inserts them in key order; PostgreSQL loads
        with the indexes dropped and builds them again afterwards, as a restore would."""
        rows = count * keys_per_article
        raw = self.store.engine.raw_connection()
        try:
            cur = raw.cursor()
            if self.schema is None:
                raw.close()
                self.store.engine.dispose()
                total = (first_id + count - SYNTHETIC_FIRST_ID) * keys_per_article
                # In a child process, so that SQLite's sort and cache memory is not counted
                # in this process's RSS.
                subprocess.run([sys.executable, "-c", _SQLITE_LOADER, self.path, str(total),
                                str(SYNTHETIC_FIRST_ID), str(keys_per_article), created_at], check=True)
                return
            else:
                cur.execute("ALTER TABLE story_bands DROP CONSTRAINT story_bands_pkey")
                cur.execute("DROP INDEX ix_story_bands_created_at")
                cur.execute(
                    "INSERT INTO story_bands (band, article_id, created_at) "
                    "SELECT ((random() - 0.5) * 1.8e19)::bigint, %s + x / %s, %s::timestamp "
                    "FROM generate_series(0, %s) AS x",
                    (first_id, keys_per_article, created_at, rows - 1))
                cur.execute("ALTER TABLE story_bands ADD PRIMARY KEY (band, article_id)")
                cur.execute("CREATE INDEX ix_story_bands_created_at ON story_bands (created_at)")
            raw.commit()
            if self.schema is not None:
                # What autovacuum does to a table loaded long ago: the visibility map lets
                # index-only scans skip the heap.
                raw.driver_connection.autocommit = True
                cur.execute("VACUUM ANALYZE story_bands")
                raw.driver_connection.autocommit = False
        finally:
            raw.close()


_SQLITE_LOADER = """
import sqlite3, sys
path, total, first_id, per, created_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=DELETE")  # a bulk load: no WAL copy of every page
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-200000")
db.execute("CREATE TEMP TABLE keep AS SELECT * FROM story_bands WHERE article_id < ?", (first_id,))
db.execute("DROP INDEX IF EXISTS ix_story_bands_created_at")
db.execute("DELETE FROM story_bands")
db.execute("VACUUM")
# Rebuilt from scratch in key order (an append into an empty B-tree, full pages): the real
# articles' rows plus the synthetic ones.
db.execute("BEGIN")
db.execute(
    "INSERT INTO story_bands (band, article_id, created_at) SELECT * FROM ("
    " SELECT band, article_id, created_at FROM keep UNION ALL"
    " SELECT * FROM (WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
    " SELECT random(), ? + x / ?, ? FROM c)) ORDER BY 1, 2", (total - 1, first_id, per, created_at))
db.execute("CREATE INDEX ix_story_bands_created_at ON story_bands (created_at)")
db.execute("COMMIT")
db.execute("ANALYZE")
db.execute("PRAGMA journal_mode=WAL")
db.close()
"""


def time_decides(store: Store, index: StoryIndex, items: list[dict], rounds: int = 1) -> tuple[list[float], list[float]]:
    """Wall and process-CPU milliseconds of each decide (in a transaction rolled back).
    Only ``decide`` is inside the timed span: the transaction's start and rollback are not."""
    wall, cpu = [], []
    with store.engine.connect() as conn:
        for _ in range(rounds):
            for item in items:
                trans = conn.begin()
                t0, c0 = time.perf_counter(), time.process_time()
                index.decide(conn, item)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                trans.rollback()
    return wall, cpu


def new_articles(docs: list[dict], count: int, seed: int) -> list[dict]:
    """``count`` articles unlike any other: paragraphs of three random bodies. Each is
    decided once, so its index pages are not warm from an earlier decision of the same text."""
    rng = random.Random(seed)
    paras = [p for d in docs if d["kind"] == "original" for p in _paragraphs(d["text"]) if len(p.split()) >= 20]
    out = []
    for i in range(count):
        picked = rng.sample(paras, 6)
        url = f"https://fresh.example/news/{seed}-{i:05d}-story"
        out.append({"title": " ".join(picked[0].split()[:10]), "text": "\n\n".join(picked), "url": url,
                    "canonical_url": canonicalize_url(url),  # as the pipeline's items carry it
                    "published": None, "source_url": None})
    return out


def scale_items(docs: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(stored originals, copies of stored stories, new articles) of the scale benchmark."""
    by_story = defaultdict(list)
    for d in docs:
        by_story[d["story"]].append(d)
    stories = sorted(by_story)
    random.Random(3).shuffle(stories)
    stored_stories = stories[: len(stories) // 2]
    stored = [d for s in stored_stories for d in by_story[s] if d["kind"] == "original"]
    copies = [d for s in stored_stories for d in by_story[s] if d["kind"] in ("repost", "edited", "feed_only")][:200]
    return stored, copies, new_articles(docs, 320, 11)


def measure(store: Store, index: StoryIndex, copies: list[dict], fresh: list[dict]) -> dict:
    """Median and p95 of decide's wall and CPU ms, for new articles and for copies."""
    gc.collect()
    time_decides(store, index, fresh[:20])  # warm the code paths and the connection
    out = {}
    # "warm": the same new texts decided again, their index pages now in the database's
    # cache — what a decision costs when the index is resident in memory.
    for name, items in (("new", fresh[20:]), ("copy", copies), ("warm", fresh[20:])):
        wall, cpu = time_decides(store, index, items)
        out[name] = (statistics.median(wall), float(np.percentile(wall, 95)),
                     statistics.median(cpu), float(np.percentile(cpu, 95)))
    return out


def bench_scale(sizes: list[int], backends: list[str], budget: float, keep: str | None = None,
                prewarm: bool = False, evict: bool = False) -> None:
    docs = build_labelled_set()
    stored, copies, fresh = scale_items(docs)
    index = StoryIndex()
    keys_per_article = 36  # 32 bands + title, lead, URL and source keys
    print(f"\n## Scale: decide() per article, {len(fresh) - 20} new articles and {len(copies)} copies of stored "
          f"ones, each decided once, timed over the index of N articles (synthetic entries, "
          f"{keys_per_article} keys each, plus {len(stored)} real articles)"
          + ("; the index read into the OS page cache before timing" if prewarm else "")
          + ("; the index evicted from the OS page cache before timing" if evict else "") + "\n")
    print("| backend | N articles | index rows | load s | new: median / p95 ms | CPU median / p95 | "
          "copy: median / p95 ms | CPU median / p95 | new, index pages cached: median / p95 ms | "
          "CPU median / p95 | index MB | process RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    total_start = time.perf_counter()
    for name in backends:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            try:
                backend = Backend(name, tmp, keep)
            except Exception as exc:  # PostgreSQL not running: say so, go on
                print(f"| {name} | unavailable: {exc.__class__.__name__} | | | | | | | | |")
                continue
            try:
                loaded, load_rate = backend.loaded, None
                if not loaded:
                    run_index(backend.store, index, stored)
                for n in sizes:
                    if n < loaded:
                        print(f"| {name} | {n:,} | skipped: the kept schema holds {loaded:,} | | | | | | | |")
                        continue
                    spent = time.perf_counter() - started
                    todo = n if name == "sqlite" else n - loaded  # SQLite rebuilds the table
                    if load_rate and todo / load_rate > budget / len(backends) - spent:
                        print(f"| {name} | {n:,} | skipped: loading would take ~{todo / load_rate:.0f} s, "
                              f"over the time budget | | | | | | | |")
                        break
                    t0 = time.perf_counter()
                    if n > loaded:
                        backend.bulk_load(SYNTHETIC_FIRST_ID + loaded, n - loaded, keys_per_article,
                                          "2023-09-12 08:00:00")
                        backend.mark_loaded(n)
                    load_s = time.perf_counter() - t0
                    load_rate = todo / load_s if todo else load_rate
                    loaded = n
                    if prewarm:
                        backend.prewarm()
                    fresh = new_articles(docs, 320, n)
                    if evict:
                        time_decides(backend.store, index, fresh[:20])  # code paths warm, index pages not
                        backend.evict()
                    m = measure(backend.store, index, copies, fresh)
                    with backend.store.begin() as conn:
                        rows = conn.execute(text("SELECT count(*) FROM story_bands")).scalar_one()
                    print(f"| {name} | {n:,} | {rows:,} | {load_s:.0f} | "
                          + " | ".join("%.2f / %.2f | %.2f / %.2f" % m[k] for k in ("new", "copy", "warm"))
                          + f" | {backend.size_mb():.0f} | {rss_mb():.0f} |", flush=True)
            finally:
                backend.drop()
    print(f"\nPeak process RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"total scale time {time.perf_counter() - total_start:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it, CPU times less)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--thresholds", default="0.4,0.5,0.6")
    parser.add_argument("--budget", type=float, default=600, help="seconds for the scale part")
    parser.add_argument("--keep", metavar="SCHEMA",
                        help="PostgreSQL: load into this schema and keep it; a later run with the same "
                             "SCHEMA reuses the articles already loaded (drop it by hand when done)")
    parser.add_argument("--prewarm", action="store_true",
                        help="read the index into the OS page cache before timing (see Backend.prewarm)")
    parser.add_argument("--evict", action="store_true",
                        help="drop the index from the OS page cache before timing (see Backend.evict)")
    args = parser.parse_args()
    both = not args.quality and not args.scale
    if args.quality or both:
        bench_quality([float(t) for t in args.thresholds.split(",")], args.backends.split(","))
    if args.scale or both:
        bench_scale([int(s) for s in args.sizes.split(",")], args.backends.split(","), args.budget, args.keep,
                    args.prewarm, args.evict)


if __name__ == "__main__":
    main()
