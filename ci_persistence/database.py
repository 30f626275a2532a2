"""One aiosqlite connection per process, configured for several processes sharing the file.

WAL lets the server read while the controller writes; the busy timeout makes a writer wait for
another process's transaction instead of failing. The connection is in autocommit mode and
every multi-statement write takes `BEGIN IMMEDIATE`, so the write lock is taken up front and a
compare-and-set cannot be interleaved with another process's. Within the process, one asyncio
lock serialises use of the connection, because aiosqlite shares a single transaction state
between all coroutines that use it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from ci_common.errors import StorageError
from ci_persistence.migrations import migrate

BUSY_TIMEOUT_MS = 10_000

Params = Iterable[Any]


def now_text() -> str:
    """UTC now as fixed-width ISO 8601, so text order is time order."""
    return to_text(datetime.now(UTC))


def to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqliteDatabase:
    """The open connection and the lock that guards it."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(
                path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the database at {path}: {exc}; set CI_DB_PATH to a writable file"
            ) from exc
        conn.row_factory = sqlite3.Row
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn)
        except sqlite3.DatabaseError as exc:
            await conn.close()
            raise StorageError(f"cannot use the database at {path}: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    async def close(self) -> None:
        async with self._lock:
            await self.conn.close()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._lock, self.conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._lock, self.conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one autocommitted statement; returns the number of rows it changed."""
        async with self._lock, self.conn.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[aiosqlite.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error."""
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()
