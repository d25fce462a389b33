"""WAL checkpoints from a thread of their own (crawler.store.checkpoint), on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from sqlalchemy import insert, select, func

from crawler.store import Store
from crawler.store.checkpoint import WalCheckpointer
from crawler.store.schema import sources


def test_the_checkpointer_copies_what_was_committed_when_stopped(tmp_path):
    path = str(tmp_path / "db.sqlite")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x TEXT)")
    checkpointer = WalCheckpointer(path, interval=60)  # only the stop's checkpoint, in this test
    for n in range(200):
        writer.execute("INSERT INTO t VALUES (?)", ("row %d " % n * 50,))
        checkpointer.committed()
    checkpointer.stop()
    assert checkpointer.checkpoints >= 1
    # Everything the writer committed is now in the database file itself.
    probe = sqlite3.connect(path)
    log_pages, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1:]
    probe.close()
    assert log_pages == copied
    writer.close()
    copy = sqlite3.connect(path)
    assert copy.execute("SELECT count(*) FROM t").fetchone()[0] == 200
    copy.close()


def test_a_store_with_background_checkpoints_writes_without_automatic_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'newswatch.db'}"
    store = Store.from_url(url)
    store.checkpoint_in_background()
    for n in range(300):
        with store.begin_writing() as conn:
            conn.execute(insert(sources).values(url=f"https://site{n}.example/feed", name=f"site {n}",
                                                created_at=datetime(2026, 11, 30)))
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    checkpointer = store._checkpointer
    store.dispose()  # stops the thread after a last checkpoint
    assert checkpointer.checkpoints >= 1
    reopened = Store.from_url(url)
    with reopened.begin() as conn:
        assert conn.execute(select(func.count()).select_from(sources)).scalar_one() == 300
    reopened.dispose()
