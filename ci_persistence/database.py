"""One aiosqlite connection per process, configured for several processes sharing the file.

WAL lets the server read while the controller writes; the busy timeout makes a writer wait for
another process's transaction instead of failing. The connection is in autocommit mode and
every multi-statement write takes `BEGIN IMMEDIATE`, so the write lock is taken up front and a
compare-and-set cannot be interleaved with another process's. Within the process, one asyncio
lock serialises use of the connection, because aiosqlite shares a single transaction state
between all coroutines that use it.

Cancellation never leaves the connection inside a transaction (`uncancellable` explains why it
could): statements outside a transaction, and `BEGIN`, `COMMIT` and `ROLLBACK`, run to
completion whatever happens to their caller, and a transaction whose body is interrupted is
rolled back. Should a connection still be found inside a transaction it does not own (a bug
of ours, or a driver's), the next use logs it and rolls it back instead of failing forever.

SQLite's own operational errors (locked past the busy timeout, disk full, I/O errors) become
`DatabaseUnavailableError`, which the server answers with a 503 and `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ci_common.errors import (
    CIError,
    ConcurrentWriterError,
    DatabaseUnavailableError,
    JobNotFoundError,
    StorageError,
)
from ci_persistence.migrations import migrate
from ci_persistence.uncancellable import run_to_completion

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
HEALTH_BUSY_TIMEOUT_MS = 1_000
WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024
"""What the WAL file is cut back to when it restarts after a checkpoint (SQLite otherwise
keeps its peak size)."""
OPEN_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
RECLAIM_PAGES_PER_CALL = 20_000
"""Free pages returned to the file system per `reclaim_space` (80 MB of 4 KiB pages): enough
to keep up with deleted uploads, small enough to hold the write lock only briefly."""

T = TypeVar("T")

Params = Iterable[Any]


def now_text() -> str:
    """UTC now as fixed-width ISO 8601, so text order is time order."""
    return to_text(datetime.now(UTC))


def to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class _LockedAtOpenError(Exception):
    """Opening met another process's lock where SQLite does not wait for it."""


class SqliteDatabase:
    """The open connection and the lock that guards it."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        # Processes opening a fresh file together race to switch it to WAL, which SQLite may
        # refuse with "database is locked" without waiting: try again shortly.
        for delay in OPEN_RETRY_DELAYS:
            try:
                return await cls._open_once(path)
            except _LockedAtOpenError:
                await asyncio.sleep(delay)
        try:
            return await cls._open_once(path)
        except _LockedAtOpenError as exc:
            raise StorageError(f"cannot use the database at {path}: {exc.__cause__}") from exc

    @classmethod
    async def _open_once(cls, path: Path) -> SqliteDatabase:
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
            await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect on a new file
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn)
            await _use_incremental_vacuum(conn, path)
        except sqlite3.OperationalError as exc:
            await conn.close()
            if "locked" in str(exc):
                raise _LockedAtOpenError from exc
            raise StorageError(f"cannot use the database at {path}: {exc}") from exc
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
        async def fetch(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
            async with conn.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())

        return await self._run(fetch)

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async def fetch(conn: aiosqlite.Connection) -> sqlite3.Row | None:
            async with conn.execute(sql, tuple(params)) as cursor:
                return await cursor.fetchone()

        return await self._run(fetch)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one autocommitted statement; returns the number of rows it changed."""

        async def run(conn: aiosqlite.Connection) -> int:
            async with conn.execute(sql, tuple(params)) as cursor:
                return cursor.rowcount

        return await self._run(run)

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[aiosqlite.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error or cancellation."""
        async with self._lock:
            await run_to_completion(self._leave_stray_transaction())
            try:
                await run_to_completion(self.conn.execute("BEGIN IMMEDIATE"))
            except BaseException as exc:
                # Cancelled while waiting for the lock: the BEGIN may have succeeded since.
                await run_to_completion(self.conn.rollback())
                _raise_converted(exc)
                raise
            try:
                yield self.conn
                await run_to_completion(self.conn.commit())
            except BaseException as exc:
                await run_to_completion(self.conn.rollback())
                _raise_converted(exc)
                raise

    async def reclaim_space(self) -> None:
        """Give freed pages back to the file system and let the WAL shrink.

        Deleted uploads and logs leave free pages that SQLite would otherwise keep forever, and
        the WAL keeps its peak size. With `auto_vacuum = INCREMENTAL` the free pages are cut off
        the file; a passive checkpoint (it neither waits for nor blocks readers, which a
        truncating one does to other processes' connections) copies the WAL back, and the
        next write restarts it, cut back to `WAL_SIZE_LIMIT_BYTES`."""

        async def reclaim(conn: aiosqlite.Connection) -> None:
            # The vacuum frees one page per step; the sqlite3 module would step it only once,
            # `executescript` steps it to the end.
            await conn.executescript(f"PRAGMA incremental_vacuum({RECLAIM_PAGES_PER_CALL})")
            async with conn.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                await cursor.fetchall()

        await self._run(reclaim)

    async def check_writable(self) -> None:
        """Take the write lock and let go of it at once; raise `DatabaseUnavailableError`
        when another process holds it for more than a second, or the file cannot be written."""

        async def probe(conn: aiosqlite.Connection) -> None:
            await conn.execute(f"PRAGMA busy_timeout = {HEALTH_BUSY_TIMEOUT_MS}")
            try:
                await conn.execute("BEGIN IMMEDIATE")
                await conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('health_probe', ?)",
                    (now_text(),),
                )
            finally:
                await conn.rollback()
                await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

        await self._run(probe)

    async def _run(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """`work` under the lock, to completion, with SQLite's errors converted."""

        async def locked() -> T:
            async with self._lock:
                await self._leave_stray_transaction()
                return await work(self.conn)

        try:
            return await run_to_completion(locked())
        except sqlite3.OperationalError as exc:
            _raise_converted(exc)
            raise

    async def _leave_stray_transaction(self) -> None:
        if self.conn.in_transaction:
            logger.error("the database connection was left inside a transaction; rolling it back")
            await self.conn.rollback()


async def _use_incremental_vacuum(conn: aiosqlite.Connection, path: Path) -> None:
    """Make a file created before `auto_vacuum = INCREMENTAL` use it: rebuilt once with
    `VACUUM`, which takes as long as copying the file. If another process is busy with it,
    the conversion waits for a later start."""
    async with conn.execute("PRAGMA auto_vacuum") as cursor:
        row = await cursor.fetchone()
    if row is None or int(row[0]) == 2:
        return
    logger.info("converting %s to incremental vacuum (once)", path)
    try:
        await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        logger.warning("could not convert %s to incremental vacuum yet: %s", path, exc)


def _raise_converted(exc: BaseException) -> None:
    """Raise SQLite's operational errors as `DatabaseUnavailableError`; return otherwise."""
    if isinstance(exc, sqlite3.OperationalError):
        raise DatabaseUnavailableError(
            f"the database is unavailable ({exc}); try again in a few seconds"
        ) from exc


async def job_missing_or_moved(conn: aiosqlite.Connection, job_id: str, *, what: str) -> CIError:
    """Why an append conditional on the job's last seq or index changed no row: the job is
    gone, or another writer appended meanwhile (`ConcurrentWriterError`)."""
    async with conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)) as result:
        if await result.fetchone() is None:
            return JobNotFoundError(job_id)
    return ConcurrentWriterError(f"job {job_id}: its {what} was appended to by another writer")
