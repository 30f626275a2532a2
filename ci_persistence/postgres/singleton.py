"""At most one controller per PostgreSQL database: a session advisory lock.

`pg_try_advisory_lock` on a connection of its own, held for the controller's life. PostgreSQL
drops the lock when that session ends, however the process died, so there is nothing stale to
clean up (the file lock beside a SQLite database, `ci_controller.singleton`, has the same
property). Should the connection itself break, the lock is gone with it; taking it back, and a
standby that waits for it, come with the controller's high availability (issue 14).
"""

from __future__ import annotations

import hashlib

import asyncpg

from ci_common.errors import CIError, StorageError
from ci_common.models import DEFAULT_ENGINE
from ci_persistence.postgres.database import CONNECT_TIMEOUT, check_url, redact

CONTROLLER_LOCK_KEY = 0x63695F63746C  # "ci_ctl"


def controller_lock_key(engine: str) -> int:
    """The advisory lock key of `engine`'s controller: `CONTROLLER_LOCK_KEY` for the default
    engine (as before engines), else 63 bits of the name's SHA-256, so each engine has one."""
    if engine == DEFAULT_ENGINE:
        return CONTROLLER_LOCK_KEY
    digest = hashlib.sha256(f"ci-controller:{engine}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class DatabaseLockHeldError(CIError):
    """Another session holds the lock."""


class AdvisoryLock:
    """A held session-level advisory lock and the connection that holds it."""

    def __init__(self, conn: asyncpg.Connection, key: int) -> None:
        self._conn = conn
        self._key = key

    @classmethod
    async def try_acquire(cls, url: str, *, key: int, holder_hint: str) -> AdvisoryLock:
        """Take the lock now or raise `DatabaseLockHeldError` with `holder_hint`."""
        check_url(url)
        try:
            conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            raise StorageError(
                f"cannot connect to the database at {redact(url)}: {exc}; "
                "check CI_DATABASE_URL and that the server is running"
            ) from exc
        try:
            taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
        except BaseException:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            raise DatabaseLockHeldError(holder_hint)
        return cls(conn, key)

    async def release(self) -> None:
        if not self._conn.is_closed():
            await self._conn.close()  # ending the session drops the lock
