"""The store's own small database layer: one interface over SQLite (aiosqlite) and PostgreSQL (asyncpg).

The stores write their SQL once, with ``:name`` placeholders, in the subset both databases accept
(``INSERT … ON CONFLICT DO NOTHING``, ``UPDATE … RETURNING``, times as fixed-format TEXT); a
:class:`Database` runs it on either. For asyncpg the placeholders are rewritten to ``$1 … $n`` once per
distinct statement (cached), and asyncpg's own statement cache keeps the prepared statement.

Why not SQLAlchemy Core (the obvious alternative, with both drivers under it): issue 9 budgets the CPU of
every command, and each command makes several store calls on the event loop. SQLAlchemy's compile,
parameter processing and result wrapping cost tens of microseconds per statement on top of the driver;
this layer adds a dictionary lookup and a tuple. The price is that the SQL must stay in the common
subset, and the few dialect differences (the migrations, the audit trail's multi-row insert) are spelled
out here and in :mod:`bot.store.migrations` instead of being generated.

Autocommit model: every statement outside :meth:`Database.transaction` is its own transaction, so a
single conditional ``UPDATE … RETURNING`` stays the atomic compare-and-set the flow relies on.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

import aiosqlite
import asyncpg
from asyncpg.pool import PoolConnectionProxy

Dialect = Literal["sqlite", "postgresql"]
Params = Mapping[str, object]

#: What a failing database raises, whichever it is (for callers that only need to know it failed).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)

#: A unique index refused a row. Only PostgreSQL's are caught by the stores: on SQLite the guards in the
#: statements themselves are enough (one writer at a time), and no such index exists there.
UNIQUE_VIOLATIONS: tuple[type[Exception], ...] = (asyncpg.UniqueViolationError,)


class Row(Protocol):
    """A result row, read by column name (``sqlite3.Row`` and ``asyncpg.Record`` both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Database(abc.ABC):
    """A connection (SQLite) or a pool of them (PostgreSQL), in the autocommit model."""

    dialect: Dialect

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Runs one statement; returns how many rows it changed."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row (None when there is none)."""
        row = await self.fetch_all(sql, params)
        return None if not row else _first(row[0])

    @abc.abstractmethod
    async def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """Inserts ``rows`` in their order, all or none: one write."""

    @abc.abstractmethod
    async def execute_script(self, script: str) -> None:
        """Runs several statements without parameters (a migration), inside the current transaction."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Database]:
        """A transaction: the statements run through the yielded database commit together or not at all.
        Not nestable."""

    async def ping(self) -> None:
        """Raises unless the database answers."""
        await self.fetch_value("SELECT 1")

    @abc.abstractmethod
    async def close(self) -> None: ...


def _first(row: Row) -> Any:
    return row[0]  # type: ignore[index]  # both row types also index by position


# --- SQLite ----------------------------------------------------------------------------------------------


class _SqliteStatements(Database):
    """Statements on one aiosqlite connection (the thread behind it runs them in submission order)."""

    dialect: Dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @property
    def connection(self) -> aiosqlite.Connection:
        """The aiosqlite connection itself, for tests that watch what is sent."""
        return self._connection

    async def _wait_for_transaction(self) -> None:
        """Nothing here: overridden where a transaction of another task may be open."""

    async def execute(self, sql: str, params: Params | None = None) -> int:
        await self._wait_for_transaction()
        cursor = await self._connection.execute(sql, params)
        return cursor.rowcount

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        await self._wait_for_transaction()
        # One hop to aiosqlite's thread for execute, fetch and close together.
        return list(await self._connection.execute_fetchall(sql, params))

    async def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        if not rows:
            return
        await self._wait_for_transaction()
        # A multi-row INSERT: in autocommit one statement is one transaction, all or nothing.
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(rows))}"
        await self._connection.execute(sql, [value for row in rows for value in row])

    async def execute_script(self, script: str) -> None:
        # executescript() would COMMIT first; splitting keeps the statements inside the open transaction.
        for statement in _statements(script):
            await self._connection.execute(statement)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Database]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


#: How long a SQLite statement waits for another process's lock before "database is locked".
_BUSY_TIMEOUT_MS = 5000


class SqliteDatabase(_SqliteStatements):
    """One SQLite file through one aiosqlite connection (WAL). A transaction holds the connection: the
    statements of other tasks wait until it ends instead of joining it."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__(connection)
        self._transaction_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            await connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            await _use_wal(connection)
            await connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def _wait_for_transaction(self) -> None:
        if self._transaction_lock.locked():
            async with self._transaction_lock:
                pass

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        async with self._transaction_lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteStatements(self._connection)
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")

    async def close(self) -> None:
        await self._connection.close()


async def _use_wal(connection: aiosqlite.Connection) -> None:
    """Switches the file to WAL (a no-op once it is). On a new file that takes an exclusive lock, and
    SQLite answers "database is locked" at once, without its busy handler, while another process opening
    the same new file holds a lock (replicas starting together): so this waits and tries again, within
    the busy timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or loop.time() >= deadline:
                raise
        await asyncio.sleep(0.01)


_STATEMENT_END = re.compile(r";\s*(?:\n|$)")


def _statements(script: str) -> list[str]:
    """A migration script's statements. Splits at a ``;`` that ends a line; a trigger body written
    ``BEGIN …; END;`` on one line stays whole."""
    return [statement.strip() for statement in _STATEMENT_END.split(script) if statement.strip()]


# --- PostgreSQL ----------------------------------------------------------------------------------------

#: Seconds a new PostgreSQL connection may take (asyncpg's default of 60 would hold start-up that long).
CONNECT_TIMEOUT = 10.0

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|::|:([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=2048)
def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with ``:name`` placeholders rewritten to asyncpg's ``$n``, and the names in ``$n`` order.
    Quoted text and ``::`` casts are left alone."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        return f"${order.setdefault(name, len(order) + 1)}"

    return _PLACEHOLDER.sub(number, sql), tuple(order)


def _arguments(names: tuple[str, ...], params: Params | None) -> list[object]:
    if not names:
        return []
    assert params is not None, "a statement with placeholders needs its parameters"
    return [params[name] for name in names]


def _rowcount(status: str) -> int:
    """The count at the end of a command tag (``UPDATE 3``, ``INSERT 0 1``; 0 for ``CREATE TABLE``)."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


# A string: asyncpg's classes are generic only in its stubs.
_Executor: TypeAlias = (
    "asyncpg.Pool[asyncpg.Record] | asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)


class _PostgresStatements(Database):
    dialect: Dialect = "postgresql"

    def __init__(self, executor: _Executor) -> None:
        self._executor = executor

    async def execute(self, sql: str, params: Params | None = None) -> int:
        text, names = numbered(sql)
        return _rowcount(await self._executor.execute(text, *_arguments(names, params)))

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        text, names = numbered(sql)
        return list(await self._executor.fetch(text, *_arguments(names, params)))

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        text, names = numbered(sql)
        return await self._executor.fetchrow(text, *_arguments(names, params))

    async def fetch_value(self, sql: str, params: Params | None = None) -> Any:
        text, names = numbered(sql)
        return await self._executor.fetchval(text, *_arguments(names, params))

    async def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        if not rows:
            return
        marks = ", ".join(f"${number}" for number in range(1, len(columns) + 1))
        # asyncpg's executemany is one pipelined, atomic operation: all rows or none, in their order.
        await self._executor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", [tuple(row) for row in rows]
        )

    async def execute_script(self, script: str) -> None:
        await self._executor.execute(script)  # without arguments: several statements in one go

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Database]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PostgresDatabase(_PostgresStatements):
    """A pool of asyncpg connections to one PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        super().__init__(pool)
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT)
        return cls(pool)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield _PostgresStatements(connection)

    async def close(self) -> None:
        await self._pool.close()
