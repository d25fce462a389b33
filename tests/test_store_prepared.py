"""Prepared statements (crawler.store.prepared): the values they store are the ones
SQLAlchemy's own execute() would store, on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from crawler.store import Store
from crawler.store.prepared import Prepared
from crawler.store.schema import story_bands

INSERT_BAND = Prepared(insert(story_bands))


def test_executemany_converts_every_row_shared_values_once_and_distinct_values_each(db_url):
    store = Store.from_url(db_url)
    shared = datetime(2026, 11, 30, 1, 2, 3, 456789)
    rows = [{"band": n, "article_id": 1, "created_at": shared} for n in range(5)]
    # distinct datetimes, one of them equal to (but not the same object as) the shared one
    rows += [{"band": 100 + n, "article_id": 2, "created_at": shared + timedelta(seconds=n)} for n in range(4)]
    with store.begin() as conn:
        INSERT_BAND.executemany(conn, rows)
    with store.begin() as conn:
        stored = {row.band: row.created_at for row in conn.execute(select(story_bands))}
    expected = {row["band"]: row["created_at"] for row in rows}
    assert {band: value.replace(tzinfo=None) for band, value in stored.items()} == expected
    store.dispose()


def test_each_returns_every_runs_rows_in_order(db_url):
    """Prepared.each: one result per row of parameters, in their order, whatever each
    returns (no row, one, several); on PostgreSQL all of them in one pipeline."""
    from sqlalchemy import bindparam
    from sqlalchemy.dialects import postgresql, sqlite

    store = Store.from_url(db_url)
    dialect = postgresql if store.dialect == "postgresql" else sqlite
    insert_new = Prepared(dialect.insert(story_bands).on_conflict_do_nothing()
                          .returning(story_bands.c.band, story_bands.c.article_id))
    at = datetime(2026, 11, 30, 4, 0)
    rows = [{"band": b, "article_id": a, "created_at": at} for b, a in ((1, 1), (2, 1), (1, 1), (3, 2))]
    bands_of = Prepared(select(story_bands.c.band).where(story_bands.c.article_id == bindparam("article"))
                        .order_by(story_bands.c.band))
    with store.begin() as conn:
        assert insert_new.each(conn, rows) == [[(1, 1)], [(2, 1)], [], [(3, 2)]]  # the repeat inserted nothing
        assert bands_of.each(conn, [{"article": 1}, {"article": 9}, {"article": 2}]) == [[(1,), (2,)], [], [(3,)]]
        assert bands_of.each(conn, [{"article": 2}]) == [[(3,)]]
        assert bands_of.each(conn, []) == []
    store.dispose()
