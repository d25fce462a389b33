"""Statements of the per-article hot path, compiled once per dialect and run on the
driver's own cursor.

SQLAlchemy's ``Connection.execute`` adds tens of microseconds of Python per call
(cache-key generation, execution context, result wrapping; ~3x the driver's own cost
for a one-row select here), and the store pipeline runs ~9 statements per article:
with these, StorePipeline went from 1.6-1.8 to 1.0 ms of CPU per article
(``python -m bench.stages``). A :class:`Prepared` statement is compiled by SQLAlchemy
once per dialect, keeps SQLAlchemy's type conversions (its bind processors: dates on
SQLite, JSON, ...) and the Python-side defaults of an INSERT's columns, and runs on the
DBAPI cursor of the caller's connection, inside the caller's transaction.

Only plain statements qualify: no ``expanding`` IN lists, no post-compile parameters.
Rows come back as the driver's tuples, without SQLAlchemy's result processing, so
select only columns whose driver value is what the caller wants (ids, strings,
integers; not dates on SQLite, which the driver returns as text). Errors are the
driver's own (``sqlite3.Error``, ``psycopg.Error``), not SQLAlchemy's wrappers: a caller
that tells errors apart (e.g. an IntegrityError meaning "stored meanwhile") keeps such
statements on ``Connection.execute``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert


class _Compiled:
    __slots__ = ("sql", "names", "processors", "positional", "_defaults", "_column_defaults")

    def __init__(self, statement: ClauseElement, conn: Connection):
        compiled = statement.compile(dialect=conn.dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a prepared statement cannot have expanding or post-compile parameters")
        self.sql = compiled.string
        self.positional = bool(compiled.positiontup is not None and conn.dialect.positional)
        self.names = list(compiled.positiontup or compiled.binds)
        self.processors = {name: proc for name, proc in compiled._bind_processors.items() if proc is not None}
        defaults = compiled.construct_params(_check=False)  # values bound in the statement itself
        self._defaults = {name: value for name, value in defaults.items() if value is not None}
        # An INSERT's columns left out get their Python-side defaults, as with execute().
        self._column_defaults = {}
        if isinstance(statement, Insert):
            for column in statement.table.columns:
                default = column.default
                if column.key in self.names and default is not None and (default.is_scalar or default.is_callable):
                    self._column_defaults[column.key] = default

    def params(self, values: dict, memo: dict | None = None) -> Sequence | dict:
        """The driver's parameters for ``values``. ``memo`` (one dict per executemany)
        keeps each bind's last converted value: rows that share a value object (one
        timestamp for all of an article's index keys) convert it once, not per row."""
        merged = {**self._defaults, **values} if self._defaults else values
        if self._column_defaults:
            missing = {name: (d.arg(None) if d.is_callable else d.arg)
                       for name, d in self._column_defaults.items() if merged.get(name) is None}
            if missing:
                merged = {**merged, **missing}
        processors = self.processors
        out = [] if self.positional else {}
        for name in self.names:
            value = merged.get(name)
            if value is not None and name in processors:
                if memo is None:
                    value = processors[name](value)
                else:
                    last = memo.get(name)
                    if last is not None and last[0] is value:
                        value = last[1]
                    else:
                        converted = processors[name](value)
                        memo[name] = (value, converted)
                        value = converted
            if self.positional:
                out.append(value)
            else:
                out[name] = value
        return out


class Prepared:
    """One statement, compiled once per dialect, run on the connection's DBAPI cursor."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None:
            compiled = self._compiled[conn.dialect.name] = _Compiled(self.statement, conn)
        return compiled

    def execute(self, conn: Connection, values: dict | None = None) -> Any:
        """Run with ``values`` (by bind name); the DBAPI cursor, to fetch from."""
        compiled = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(compiled.sql, compiled.params(values or {}))
        return cursor

    def all(self, conn: Connection, values: dict | None = None) -> list[tuple]:
        cursor = self.execute(conn, values)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def first(self, conn: Connection, values: dict | None = None) -> tuple | None:
        cursor = self.execute(conn, values)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def scalar(self, conn: Connection, values: dict | None = None) -> Any:
        row = self.first(conn, values)
        return None if row is None else row[0]

    def each(self, conn: Connection, rows: Sequence[dict]) -> list[list[tuple]]:
        """Run once per row of ``rows``; the result rows of each run, in order.

        On PostgreSQL all the runs travel in one round trip (psycopg sends an
        ``executemany`` as a pipeline); elsewhere they run one after the other."""
        if conn.dialect.name != "postgresql" or len(rows) < 2:
            return [self.all(conn, row) for row in rows]
        compiled = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        try:
            memo: dict = {}
            cursor.executemany(compiled.sql, [compiled.params(row, memo) for row in rows], returning=True)
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
            return results
        finally:
            cursor.close()

    def executemany(self, conn: Connection, rows: Iterable[dict]) -> None:
        """Run once per row of ``rows`` (no result)."""
        compiled = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        try:
            memo: dict = {}
            cursor.executemany(compiled.sql, [compiled.params(row, memo) for row in rows])
        finally:
            cursor.close()


def pg_query(conn: Connection, sql: str, types: tuple) -> list[tuple]:
    """Rows of the last statement of ``sql`` (values converted by ``types``, int or str).

    Sent by libpq as one simple-protocol message, with the BEGIN of the caller's
    transaction in front when it has not started yet: psycopg would send that BEGIN
    alone and wait for its answer (one more round trip), and its cursors cost more client
    time than the look-up itself. ``sql`` must hold only literals made by the caller (no outside text).
    """
    from psycopg import errors, pq

    driver = conn.connection.driver_connection
    pgconn = driver.pgconn
    if pgconn.transaction_status == pq.TransactionStatus.IDLE and not driver.autocommit:
        if (driver.isolation_level, driver.read_only, driver.deferrable) == (None, None, None):
            sql = "BEGIN; " + sql
        else:  # psycopg begins it, with the connection's transaction characteristics
            driver.execute("SELECT 1")
    result = pgconn.exec_(sql.encode())
    encoding = driver.info.encoding
    if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        raise errors.error_from_result(result, encoding=encoding)
    convert = [int if kind is int else (lambda value: value.decode(encoding)) for kind in types]
    rows = []
    for row in range(result.ntuples):
        values = [result.get_value(row, col) for col in range(len(types))]
        rows.append(tuple(None if v is None else f(v) for f, v in zip(convert, values)))
    return rows
