"""A pool of asyncpg connections to one PostgreSQL database, shared by a process's coroutines.

Unlike SQLite, PostgreSQL serves many transactions of one process at once, so there is no
process-wide lock: each piece of work takes a connection from the pool for as long as it
needs it. Single statements run in autocommit; `transaction()` is `BEGIN` … `COMMIT`, and
compare-and-set transitions are single `UPDATE ... WHERE status = ...` statements, which
PostgreSQL's row locks make atomic across processes.

Errors are converted where they enter: a database that cannot be reached, is shutting down or
has no connection slot left becomes `DatabaseUnavailableError` (the server answers 503 with
`Retry-After`); a URL that cannot be used at all becomes `StorageError` at open, with the
password left out of the message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ci_common.errors import (
    CIError,
    ConcurrentWriterError,
    DatabaseUnavailableError,
    JobNotFoundError,
    StorageError,
)
from ci_persistence.postgres.migrations import migrate

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
"""Seconds to reach the server and log in, at open and for every new pooled connection."""
HEALTH_TIMEOUT = 1.0
POOL_MIN = 1
POOL_MAX = 10
"""Connections per process: a server's streams share a few (one poll feeds every follower)."""
URL_SCHEMES = ("postgresql", "postgres")

_UNAVAILABLE_STATES = ("08", "53", "57P")
"""SQLSTATE classes of a database that is there but cannot serve now: connection exceptions,
insufficient resources (too many connections, disk full), operator intervention (shutdown)."""

Record = asyncpg.Record


def redact(url: str) -> str:
    """`url` without its password, fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "the URL in CI_DATABASE_URL"


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot serve right now (worth a retry later)."""
    if isinstance(exc, (OSError, TimeoutError, asyncpg.exceptions.ConnectionDoesNotExistError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(exc.sqlstate or "")
        return state.startswith(_UNAVAILABLE_STATES)
    return False


@contextmanager
def unavailable_converted() -> Generator[None]:
    """Raise the database's unavailability as `DatabaseUnavailableError`."""
    try:
        yield
    except Exception as exc:
        if is_unavailable(exc):
            raise DatabaseUnavailableError(
                f"the database is unavailable ({type(exc).__name__}: {exc}); "
                "try again in a few seconds"
            ) from exc
        raise


def check_url(url: str) -> None:
    """`StorageError` unless `url` is a usable `postgresql://` URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not a number
    except ValueError as exc:
        raise StorageError(f"CI_DATABASE_URL is not a valid URL ({exc})") from exc
    if parts.scheme not in URL_SCHEMES:
        raise StorageError(
            f"CI_DATABASE_URL must look like postgresql://user:password@host:5432/database, "
            f"not {redact(url)!r}"
        )


class PostgresDatabase:
    """The pool, and the few ways of using it that the repository modules need."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url

    @property
    def location(self) -> str:
        return redact(self.url)

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        """Connect, migrate, and return the pool; `StorageError` in one line otherwise."""
        check_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                timeout=CONNECT_TIMEOUT,
                command_timeout=None,
            )
        except Exception as exc:
            raise StorageError(
                f"cannot connect to the database at {redact(url)}: {_reason(exc)}; "
                "check CI_DATABASE_URL and that the server is running"
            ) from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, Exception) and not isinstance(exc, StorageError):
                raise StorageError(
                    f"cannot use the database at {redact(url)}: {_reason(exc)}"
                ) from exc
            raise
        return cls(pool, url)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch_all(self, sql: str, *args: Any) -> list[Record]:
        with unavailable_converted():
            return await self.pool.fetch(sql, *args)

    async def fetch_one(self, sql: str, *args: Any) -> Record | None:
        with unavailable_converted():
            return await self.pool.fetchrow(sql, *args)

    async def fetch_value(self, sql: str, *args: Any) -> Any:
        with unavailable_converted():
            return await self.pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one autocommitted statement; returns the number of rows it changed."""
        with unavailable_converted():
            status = await self.pool.execute(sql, *args)
        return _rows_changed(status)

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[asyncpg.pool.PoolConnectionProxy]:
        """One connection inside `BEGIN` … `COMMIT`, rolled back on any error. Should the
        connection break meanwhile, the pool discards it and the server rolls back."""
        with unavailable_converted():
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn

    async def check_writable(self) -> None:
        """A write that must be able to start within a second (`/health`), then rolled back."""
        try:
            async with self.pool.acquire(timeout=HEALTH_TIMEOUT) as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{int(HEALTH_TIMEOUT * 1000)}ms'")
                await conn.execute(
                    f"SET LOCAL statement_timeout = '{int(HEALTH_TIMEOUT * 1000)}ms'"
                )
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('health_probe', now()::text) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )
                raise _ProbeDone
        except _ProbeDone:
            return
        except Exception as exc:
            if is_unavailable(exc) or isinstance(exc, asyncpg.PostgresError):
                raise DatabaseUnavailableError(
                    f"the database cannot take a write ({_reason(exc)}); try again shortly"
                ) from exc
            raise


class _ProbeDone(Exception):
    """Leaves the health probe's transaction, rolling it back."""


def _rows_changed(status: str) -> int:
    """The row count of a command tag (`UPDATE 1`, `INSERT 0 1`, `DELETE 3`)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


async def job_missing_or_moved(
    conn: asyncpg.pool.PoolConnectionProxy, key: object, job_id: str, *, what: str
) -> CIError:
    """Why an append conditional on the job's last seq or index changed no row: the job is
    gone, or another writer appended meanwhile (`ConcurrentWriterError`)."""
    if await conn.fetchval("SELECT 1 FROM jobs WHERE id = $1", key) is None:
        return JobNotFoundError(job_id)
    return ConcurrentWriterError(f"job {job_id}: its {what} was appended to by another writer")
