"""StoryIndex: copies of one story share a story_id, independent reports do not; the
clusters and their ids do not depend on arrival order, survive restarts and expire."""

import itertools
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text

from crawler.dedupe.fingerprints import content_hash
from crawler.dedupe.stories import _LOCK_KEY, StoryIndex, story_info
from crawler.dedupe.urls import canonicalize_url
from crawler.store.articles import save_article
from crawler.store.repository import Store
from crawler.store.schema import articles, stories, story_bands

DATA = json.loads((Path(__file__).parent / "data" / "dedupe" / "articles.json").read_text(encoding="utf-8"))
ARTICLES = {a["key"]: a for a in DATA["articles"]}
EXPECTED = {key: name for name, keys in DATA["stories"].items() for key in keys}
T0 = datetime(2023, 9, 12, 8, 0)


@pytest.fixture
def store(db_url):
    store = Store.from_url(db_url)
    yield store
    store.dispose()


def add(store, index, key, now=T0):
    """What the store pipeline does with one new article: decide, insert, record."""
    item = dict(ARTICLES[key])
    item["canonical_url"] = canonicalize_url(item["url"])
    item["content_hash"] = content_hash(item["text"])
    with store.begin() as conn:
        decision = index.decide(conn, item)
        item["story_id"] = decision.story_id
        article_id = save_article(conn, item, decision.signature)
        index.record(conn, article_id, item, decision, now=now)
    return decision


def partition(store) -> dict[str, str]:
    """key -> story_id of every stored article."""
    by_url = {canonicalize_url(a["url"]): k for k, a in ARTICLES.items()}
    with store.begin() as conn:
        rows = conn.execute(select(articles.c.canonical_url, articles.c.story_id)).all()
    return {by_url[url]: story for url, story in rows}


def groups(assignment: dict[str, str]) -> set[frozenset]:
    out: dict[str, set] = {}
    for key, story in assignment.items():
        out.setdefault(story, set()).add(key)
    return {frozenset(v) for v in out.values()}


def clear(store):
    with store.begin() as conn:
        for table in (story_bands, articles, stories):
            conn.execute(delete(table))


def test_seed_repost_and_wire_are_one_story_other_reports_are_not(store):
    index = StoryIndex()
    decisions = {key: add(store, index, key) for key in ["seed", "other_story", "repost", "briefing_story",
                                                         "wire", "feed_only"]}
    assert decisions["seed"].is_new_story and decisions["other_story"].is_new_story
    assert not decisions["repost"].is_new_story and decisions["repost"].evidence == "body"
    assert decisions["wire"].evidence == "source"  # the seed credits the wire URL
    assert decisions["feed_only"].evidence in ("containment", "title")
    assert groups(partition(store)) == groups(EXPECTED)
    assert len(decisions["seed"].signature) == 512

    with store.begin() as conn:
        info = story_info(conn, partition(store)["seed"])
    assert info["size"] == 4
    assert info["first_article"]["canonical_url"] == "https://wire.example/news/582656-russia-beg-north-korea-support"
    assert info["title"] == ARTICLES["wire"]["title"]
    assert info["sites"] == ["actu-monde.example", "aggregator.example", "wire.example", "worldnewsdigest.example"]
    assert info["source_count"] == 4
    assert len(info["articles"]) == 4


def test_story_id_is_the_smallest_member_content_hash(store):
    index = StoryIndex()
    for key in ARTICLES:
        add(store, index, key)
    expected = {}
    for key, name in EXPECTED.items():
        h = content_hash(ARTICLES[key]["text"]) & 0xFFFF_FFFF_FFFF_FFFF
        expected[name] = min(expected.get(name, h), h)
    assert {k: s for k, s in partition(store).items()} == {k: "%016x" % expected[EXPECTED[k]] for k in EXPECTED}


def test_order_independence(store):
    # Every order of five articles on SQLite (120 runs); of four on PostgreSQL, whose
    # round trips are slower (24 runs), to keep the suite fast.
    keys = ["seed", "repost", "wire", "feed_only", "briefing_story"]
    if store.dialect != "sqlite":
        keys.remove("repost")
    index = StoryIndex()
    results, merges, sizes = set(), 0, set()
    for order in itertools.permutations(keys):
        clear(store)
        for key in order:
            decision = add(store, index, key)
            merges += bool(decision.merged_story_ids)
        assignment = partition(store)
        results.add(tuple(sorted(assignment.items())))
        with store.begin() as conn:
            info = story_info(conn, assignment["seed"])
            live = conn.execute(select(func.count()).select_from(stories)
                                .where(stories.c.merged_into.is_(None))).scalar_one()
        sizes.add((info["size"], info["first_article"]["canonical_url"], live))
    assert len(results) == 1, "the partition or the story ids depend on the arrival order"
    assert groups(dict(next(iter(results)))) == groups({k: EXPECTED[k] for k in keys})
    assert sizes == {(len(keys) - 1, "https://wire.example/news/582656-russia-beg-north-korea-support", 2)}
    assert merges > 0  # some orders had to merge stories and relabel their articles


def test_merged_story_ids_resolve(store):
    index = StoryIndex()
    # The feed-only version and the repost do not link to each other strongly enough
    # on their own ... but each links to the seed; arrange that the seed comes last.
    first = add(store, index, "feed_only")
    second = add(store, index, "other_story")
    final = add(store, index, "seed")
    with store.begin() as conn:
        assert StoryIndex.resolve(conn, first.story_id) == final.story_id
        assert StoryIndex.resolve(conn, second.story_id) == second.story_id
        info = story_info(conn, first.story_id)
    assert info["id"] == final.story_id and info["size"] == 2


def test_restart_persistence(store, db_url):
    add(store, StoryIndex(), "wire")
    store.dispose()
    reopened = Store.from_url(db_url)
    try:
        decision = add(reopened, StoryIndex(), "seed")
        assert not decision.is_new_story
        assert decision.story_id == partition(reopened)["wire"] or decision.merged_story_ids
        assert len(set(partition(reopened).values())) == 1
    finally:
        reopened.dispose()


def test_expiry(store):
    index = StoryIndex(window_days=30)
    first = add(store, index, "wire", now=T0)
    with store.begin() as conn:
        assert index.expire(conn, now=T0 + timedelta(days=29)) == 0
        dropped = index.expire(conn, now=T0 + timedelta(days=31))
        assert dropped == len(first.keys) > 32
        assert conn.execute(select(func.count()).select_from(story_bands)).scalar_one() == 0
    later = add(store, index, "repost", now=T0 + timedelta(days=31))
    assert later.is_new_story  # the wire story is no longer in the index
    with store.begin() as conn:
        assert story_info(conn, first.story_id)["size"] == 1  # the story itself is kept


def test_revision_stays_in_its_story(store):
    index = StoryIndex()
    add(store, index, "wire")
    item = dict(ARTICLES["wire"], text=ARTICLES["wire"]["text"] + "\n\nThis story has been updated.")
    item["canonical_url"] = canonicalize_url(item["url"])
    item["content_hash"] = content_hash(item["text"])
    with store.begin() as conn:
        stored_id = conn.execute(select(articles.c.id)).scalar_one()
        item["revision_of"] = stored_id
        decision = index.decide(conn, item)
        assert decision.revision_of == stored_id and not decision.is_new_story
        item["story_id"] = decision.story_id
        index.record(conn, save_article(conn, item, decision.signature), item, decision)
        assert story_info(conn, decision.story_id)["size"] == 1


def test_concurrent_writers_see_each_other(store):
    """Two connections deciding at once are serialised, so copies still meet."""
    index = StoryIndex()
    barrier = threading.Barrier(2)
    errors = []

    def worker(keys):
        try:
            barrier.wait()
            for key in keys:
                add(store, index, key)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(keys,))
               for keys in (["seed", "feed_only"], ["wire", "repost"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(partition(store).values())) == 1


def test_a_home_page_credit_links_nothing_an_article_credit_does(store):
    index = StoryIndex()
    ARTICLES["other_home"] = dict(ARTICLES["other_story"], source_url="https://www.reuters.example/")
    ARTICLES["briefing_home"] = dict(ARTICLES["briefing_story"], source_url="https://reuters.example")
    ARTICLES["briefing_credit"] = dict(ARTICLES["briefing_story"], url="https://elsewhere.example/x/1",
                                       text="A short rewrite with nothing in common with the other texts.",
                                       source_url="https://globeherald.example/world/asia/"
                                                  "kim-jong-un-train-russia-putin-summit-2023-09-12?utm_source=rss")
    try:
        a = add(store, index, "other_home")
        b = add(store, index, "briefing_home")
        c = add(store, index, "briefing_credit")
    finally:
        for key in ("other_home", "briefing_home", "briefing_credit"):
            ARTICLES.pop(key)
    assert b.is_new_story and b.story_id != a.story_id
    assert c.evidence == "source" and c.similar_article_id is not None
    with store.begin() as conn:
        assert story_info(conn, a.story_id)["size"] == 2


def test_candidates_ranked_by_key_hits_and_bucket_overflow_logged(store, caplog):
    index = StoryIndex()
    for key in ["other_story", "briefing_story", "wire", "seed"]:  # the seed has the largest id
        add(store, index, key)
    # One candidate only: the seed, which shares most keys with its repost, wins it.
    narrow = StoryIndex(max_candidates=1)
    item = dict(ARTICLES["repost"], canonical_url=canonicalize_url(ARTICLES["repost"]["url"]))
    with store.begin() as conn:
        decision = narrow.decide(conn, item)
        seed_id = conn.execute(select(articles.c.id).where(
            articles.c.canonical_url == canonicalize_url(ARTICLES["seed"]["url"]))).scalar_one()
    assert decision.similar_article_id == seed_id and decision.evidence == "body"
    # Buckets larger than max_bucket_rows are cut, and the cut is logged.
    with caplog.at_level("WARNING", logger="crawler.dedupe.stories"), store.begin() as conn:
        StoryIndex(max_bucket_rows=3).decide(conn, item)
    assert "candidate buckets overflow" in caplog.text


def test_cached_candidate_fingerprints_follow_a_revised_text(store):
    index = StoryIndex()
    add(store, index, "seed")
    item = dict(ARTICLES["repost"], canonical_url=canonicalize_url(ARTICLES["repost"]["url"]))
    with store.begin() as conn:
        assert index.decide(conn, item).evidence == "body"  # the seed's fingerprints are cached now
    other = ARTICLES["other_story"]["text"]
    with store.begin() as conn:  # the seed's page now carries another text (same id, same URL)
        conn.execute(articles.update().values(text=other, content_hash=content_hash(other)))
    with store.begin() as conn:
        decision = index.decide(conn, item)
    assert decision.is_new_story and decision.evidence is None


def test_postgresql_decision_starts_the_callers_transaction_and_holds_the_lock(store):
    """decide sends the transaction's BEGIN with the lock and look-up (one message): the
    lock lasts until the caller's transaction ends, at the connection's isolation level."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL: advisory lock and psycopg's transaction handling")
    add(store, StoryIndex(), "seed")
    item = dict(ARTICLES["repost"], canonical_url=canonicalize_url(ARTICLES["repost"]["url"]))
    lock = text("SELECT pg_try_advisory_xact_lock(%d)" % _LOCK_KEY)
    for engine in (store.engine, store.engine.execution_options(isolation_level="REPEATABLE READ")):
        with engine.begin() as conn, store.engine.connect() as other:
            assert StoryIndex().decide(conn, item).evidence == "body"
            assert other.execute(lock).scalar() is False
            level = conn.execute(text("SELECT current_setting('transaction_isolation')")).scalar()
            assert level == ("repeatable read" if engine is not store.engine else "read committed")
        with store.engine.connect() as other:
            assert other.execute(lock).scalar() is True


def test_a_fingerprint_made_by_the_worker_gives_the_same_decision_and_a_stale_one_is_redone(store, db_url):
    """The extraction workers send each article's text fingerprint with it: the decision
    is the same as one computed from the text, and a fingerprint of another title or
    text, or of other parameters, is not used."""
    index = StoryIndex()
    for key in ("seed", "other_story"):
        add(store, index, key)
    repost = dict(ARTICLES["repost"], canonical_url=canonicalize_url(ARTICLES["repost"]["url"]))
    with store.begin() as conn:
        plain = index.decide(conn, dict(repost))
    made = index.text_fingerprint(repost["title"], repost["text"])
    assert made.content_hash == content_hash(repost["text"])
    with store.begin() as conn:
        assert index.decide(conn, dict(repost, story_fingerprint=made)) == plain
        # Made from another text (the title was replaced after extraction, say): recomputed.
        other = index.text_fingerprint(repost["title"], ARTICLES["other_story"]["text"])
        assert index.decide(conn, dict(repost, story_fingerprint=other)) == plain
        assert index._fingerprint_of(dict(repost, story_fingerprint=other)).source != other.source
        # Made with other parameters: recomputed.
        coarse = StoryIndex(bands=16).text_fingerprint(repost["title"], repost["text"])
        assert index.decide(conn, dict(repost, story_fingerprint=coarse)) == plain
    assert plain.evidence == "body" and not plain.is_new_story


def _add_batch(store, index, keys, now=T0):
    """What the store pipeline does with a batch: one write-locked transaction, the
    buckets read once (StoryIndex.prefetch), then decide, insert, record each."""
    items = []
    for key in keys:
        item = dict(ARTICLES[key])
        item["canonical_url"] = canonicalize_url(item["url"])
        item["content_hash"] = content_hash(item["text"])
        items.append(item)
    decisions = []
    with store.begin_writing() as conn:
        prefetched = index.prefetch(conn, items)
        try:
            for item in items:
                decision = index.decide(conn, item)
                item["story_id"] = decision.story_id
                article_id = save_article(conn, item, decision.signature)
                index.record(conn, article_id, item, decision, now=now)
                decisions.append(decision)
        finally:
            index.end_prefetch()
    return prefetched, decisions


def test_a_batch_decided_from_buckets_read_once_decides_as_one_look_up_each(store):
    """On PostgreSQL a store batch reads the index buckets of all its articles at once,
    then adds the keys it records: every decision (copies stored before the batch, copies
    within it, merges) is the one made with a look-up per article, in every order."""
    keys = ["seed", "wire", "feed_only", "briefing_story"]
    index = StoryIndex()
    for order in itertools.permutations(keys):
        clear(store)
        add(store, index, "other_story")
        add(store, index, order[0])  # one article of the story stored before the batch, too
        one_by_one = [add(store, StoryIndex(), key) for key in order[1:]]
        expected = partition(store)
        clear(store)
        add(store, index, "other_story")
        add(store, index, order[0])
        prefetched, batch = _add_batch(store, StoryIndex(), order[1:])
        assert prefetched == (store.dialect == "postgresql")
        assert partition(store) == expected
        assert [(d.story_id, d.evidence, d.is_new_story, d.merged_story_ids, d.similar_article_id is None)
                for d in batch] == [(d.story_id, d.evidence, d.is_new_story, d.merged_story_ids,
                                     d.similar_article_id is None) for d in one_by_one]
    assert groups(expected) == groups({k: EXPECTED[k] for k in keys + ["other_story"]})


def test_a_batch_with_an_item_that_cannot_be_fingerprinted_is_not_prefetched(store):
    """prefetch reads nothing when one item of the batch is malformed (its own decision
    raises later), so no decision is made from buckets that miss its keys."""
    index = StoryIndex()
    good = dict(ARTICLES["seed"], canonical_url=canonicalize_url(ARTICLES["seed"]["url"]))
    broken = {"title": "Bytes", "text": ARTICLES["wire"]["text"].encode(), "url": "https://b.example/news/2023-x"}
    with store.begin_writing() as conn:
        assert index.prefetch(conn, [good, broken]) is False
        assert index._prefetched_buckets(conn) is None
        if store.dialect == "postgresql":
            assert index.prefetch(conn, [good, dict(good, url="https://x.example/a/copy-2023")]) is True
            assert index._prefetched_buckets(conn) is not None
        index.end_prefetch()
        assert index._prefetched_buckets(conn) is None
