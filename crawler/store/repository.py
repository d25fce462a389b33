"""The Store: one object per database, thin methods over the schema.

Every method takes or opens a transaction; stages that must write together (the
article, its story and its alerts) share one through :meth:`Store.begin`.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from crawler.exceptions import ConfigError, StoreError, WriteLockBusy
from crawler.store import schema
from crawler.store.prepared import pg_query

logger = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite:///data/newswatch.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another process's transaction
# PostgreSQL advisory lock that serialises the writers of articles and their stories
# (on SQLite, the database's own write lock does it); held to the end of the transaction.
WRITE_LOCK_KEY = 0x6E77_5354
_WRITE_LOCKED = "newswatch.write_lock"  # conn.info: the transaction that holds the write lock


def utcnow() -> datetime:
    """Naive UTC now, the form every DateTime column stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def from_db_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def resolve_db_url(url: str | None = None) -> str:
    """``--db`` wins, then ``NEWSWATCH_DB``, then the SQLite file under ./data/.

    A bare file path is accepted and taken as a SQLite database.
    """
    url = url or os.environ.get("NEWSWATCH_DB") or DEFAULT_DB_URL
    if "://" not in url:
        url = "sqlite:///" + url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def holds_write_lock(conn: Connection) -> bool:
    """Whether ``conn``'s current transaction holds the write lock (see :func:`mark_write_locked`)."""
    transaction = conn.get_transaction()
    return transaction is not None and conn.info.get(_WRITE_LOCKED) is transaction


def mark_write_locked(conn: Connection) -> None:
    """Note that ``conn``'s current transaction took the write lock, so later statements
    of the same transaction do not ask for it again."""
    conn.info[_WRITE_LOCKED] = conn.get_transaction()


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """``PRAGMA journal_mode=WAL``, tried again for up to the busy timeout.

    Switching a new database file to WAL needs it alone for a moment. When several
    processes open the file at once (the processes of ``crawl --processes``), SQLite
    answers the others "database is locked" at once, without the busy timeout's wait:
    seen in ~1 of 40 openings by 4 processes."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.05)


class Store:
    """Access to one database. Safe to share between threads."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._checkpointer = None
        self._checkpointer_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str | None = None) -> "Store":
        url = resolve_db_url(url)
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(f"database URL {url!r} is not usable: {exc}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        store.create_schema()
        return store

    def create_schema(self) -> None:
        """Create missing tables; safe when several processes start at once."""
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    if self.dialect == "postgresql":  # serialise concurrent CREATE TABLEs
                        conn.execute(text("SELECT pg_advisory_xact_lock(7263501)"))
                    elif self.dialect == "sqlite":  # the same: the write lock before looking
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    schema.metadata.create_all(conn)
                    self._add_missing_columns(conn)
                    self._add_missing_indexes(conn)
                return
            except SQLAlchemyError as exc:
                if attempt == 2:
                    raise StoreError(f"cannot open database {self.engine.url!r}: {exc}") from exc

    @staticmethod
    def _add_missing_columns(conn: Connection) -> None:
        """Upgrade a database made by an older newswatch: columns added since are created
        (nullable, as existing rows have no value for them)."""
        inspector = inspect(conn)
        for table in schema.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                logger.info("database upgraded: %s.%s added", table.name, column.name)

    @staticmethod
    def _add_missing_indexes(conn: Connection) -> None:
        """Indexes added since an older newswatch made the database (``create_all`` only
        makes the indexes of tables it creates); the ones they replace are dropped."""
        inspector = inspect(conn)
        for table in schema.metadata.sorted_tables:
            present = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in present:
                    index.create(conn)
                    logger.info("database upgraded: index %s added", index.name)
            for name in schema.RETIRED_INDEXES.get(table.name, ()):
                if name in present:
                    conn.execute(text(f"DROP INDEX {name}"))
                    logger.info("database upgraded: index %s dropped (replaced)", name)

    def drop_schema(self) -> None:
        schema.metadata.drop_all(self.engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def begin_writing(self, wait: bool = True) -> Iterator[Connection]:
        """A transaction that holds the database's write lock from its start: SQLite's
        (``BEGIN IMMEDIATE``), PostgreSQL's advisory lock ``WRITE_LOCK_KEY`` (the one
        that serialises story decisions, see :mod:`crawler.dedupe.stories`). Otherwise
        as :meth:`begin`.

        With ``wait=False`` it does not queue behind another process's write: it raises
        :class:`~crawler.exceptions.WriteLockBusy` at once, and the caller can do other
        work and try again (SQLite's own waiting sleeps in steps of up to 100 ms, and a
        PostgreSQL lock wait blocks the thread, either way for the whole of the other
        process's transaction).
        """
        if self.dialect == "postgresql":
            with self.begin() as conn:
                if wait:
                    pg_query(conn, "SELECT pg_advisory_xact_lock(%d)" % WRITE_LOCK_KEY, ())
                elif pg_query(conn, "SELECT pg_try_advisory_xact_lock(%d)" % WRITE_LOCK_KEY, (str,))[0][0] != "t":
                    raise WriteLockBusy(f"{self.engine.url.database}: another process is writing")
                mark_write_locked(conn)
                yield conn
            return
        if self.dialect != "sqlite":
            with self.begin() as conn:
                yield conn
            return
        checkpointer = self._checkpointer
        with self.engine.begin() as conn:
            if checkpointer is not None and not conn.connection.info.get("background_checkpoints"):
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does them
                conn.connection.info["background_checkpoints"] = True
            if wait:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                except OperationalError as exc:
                    if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                        raise
                    raise WriteLockBusy(f"{self.engine.url.database}: another process is writing") from None
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            mark_write_locked(conn)
            yield conn
        if checkpointer is not None:
            checkpointer.committed()

    def checkpoint_in_background(self) -> None:
        """SQLite: from now on, :meth:`begin_writing`'s commits leave WAL checkpoints (and
        their disk flush) to a thread of their own (:mod:`crawler.store.checkpoint`)."""
        path = self.engine.url.database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            return
        from crawler.store.checkpoint import WalCheckpointer

        with self._checkpointer_lock:
            if self._checkpointer is None:
                self._checkpointer = WalCheckpointer(path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)

    def dispose(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        self.engine.dispose()

    # -- sources ---------------------------------------------------------------------

    def get_source(self, url: str, name: str | None = None) -> dict:
        """The source row for ``url``, created on first sight."""
        t = schema.sources
        with self.begin() as conn:
            row = conn.execute(select(t).where(t.c.url == url)).mappings().first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(t.insert().values(url=url, name=name or url, created_at=utcnow(),
                                                       consecutive_failures=0, runs=0, articles_total=0,
                                                       health="ok"))
                except SQLAlchemyError:
                    pass  # another process created it meanwhile
                row = conn.execute(select(t).where(t.c.url == url)).mappings().one()
            elif name and row["name"] != name:
                conn.execute(update(t).where(t.c.id == row["id"]).values(name=name))
            return dict(row)

    def list_sources(self) -> list[dict]:
        with self.begin() as conn:
            return [dict(r) for r in conn.execute(select(schema.sources).order_by(schema.sources.c.name))
                    .mappings()]

    def save_validators(self, source_id: int, etag: str | None, last_modified: str | None) -> None:
        """Remember a feed's ETag/Last-Modified for the next conditional GET."""
        t = schema.sources
        with self.begin() as conn:
            conn.execute(update(t).where(t.c.id == source_id).values(etag=etag, last_modified=last_modified))

    def update_source(self, source_id: int, **values) -> None:
        t = schema.sources
        with self.begin() as conn:
            conn.execute(update(t).where(t.c.id == source_id).values(**values))

    # -- articles --------------------------------------------------------------------

    def known_urls(self, canonical_urls: list[str]) -> set[str]:
        """Which of these canonical URLs are stored already (one query per batch)."""
        t = schema.articles
        found: set[str] = set()
        urls = list(dict.fromkeys(canonical_urls))
        with self.begin() as conn:
            for i in range(0, len(urls), 500):
                chunk = urls[i:i + 500]
                found.update(conn.execute(select(t.c.canonical_url).where(t.c.canonical_url.in_(chunk))).scalars())
        return found

    def known_guids(self, guids: list[str]) -> set[str]:
        t = schema.articles
        found: set[str] = set()
        guids = [g for g in dict.fromkeys(guids) if g]
        with self.begin() as conn:
            for i in range(0, len(guids), 500):
                chunk = guids[i:i + 500]
                found.update(conn.execute(select(t.c.guid).where(t.c.guid.in_(chunk))).scalars())
        return found

    def count_articles(self) -> int:
        with self.begin() as conn:
            return conn.execute(select(func.count()).select_from(schema.articles)).scalar_one()

    def iter_articles(self, since: datetime | None = None) -> Iterator[dict]:
        t = schema.articles
        query = select(t).order_by(t.c.id)
        if since is not None:
            query = query.where(t.c.fetched_at >= to_db_time(since))
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield dict(row)


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(url: str | None = None) -> Store:
    """The shared :class:`Store` for ``url`` in this process."""
    url = resolve_db_url(url)
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = Store.from_url(url)
        return store


def close_stores() -> None:
    """Close every shared store of this process (:func:`open_store` opens them again).

    Their connections are closed, not left to the interpreter's exit: on SQLite the last
    connection to close copies the write-ahead log into the database file and removes
    it, so the ``.db`` file alone holds everything stored (a crawl that ended with its
    connections open left its last articles in ``-wal`` only, for whoever copied the
    database file alone to miss)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        try:
            store.dispose()
        except Exception:  # noqa: BLE001 (closing one store must not keep the others open)
            logger.exception("could not close the store %s", store.engine.url.render_as_string(hide_password=True))
