"""At most one active controller per PostgreSQL database: a session advisory lock, and the
standbys that wait for it.

The lock is `pg_try_advisory_lock` on a connection of its own (`sessions.connect_session`),
held for the controller's life. PostgreSQL drops it when that session ends, however the
process died, so there is nothing stale to clean up (the file lock beside a SQLite database,
`ci_controller.singleton`, has the same property).

- `AdvisoryLock.try_acquire` takes it now or fails naming the holder.
- `AdvisoryLock.acquire` waits for it: it tries every `POLL_SECONDS` (a try is one cheap
  statement; a blocking `pg_advisory_lock` would leave the waiter unable to notice its own
  connection breaking), tells the caller once who holds it, and reconnects should its own
  connection break while it waits. A holder killed with `kill -9` loses its session at once
  (its socket closes), so a standby takes over within `POLL_SECONDS`; a holder whose machine
  vanished loses it when the server's TCP keep-alives give up (about 20 s).
- `AdvisoryLock.lost()` returns when the held lock's connection is gone. The lock went with it,
  and a standby may already hold it: the holder must stop acting at once.

Who holds it is read from `pg_locks` and `pg_stat_activity`: the holder's connection is named
`ci-controller pid <pid> on <host>` (`application_name`), and the server adds where it
connected from and since when.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

import asyncpg

from ci_common.errors import CIError, StorageError
from ci_common.models import DEFAULT_ENGINE
from ci_persistence.postgres.database import is_unavailable
from ci_persistence.postgres.sessions import close_quietly, connect_session, watch_connection

logger = logging.getLogger(__name__)

CONTROLLER_LOCK_KEY = 0x63695F63746C  # "ci_ctl"
POLL_SECONDS = 0.5
RECONNECT_SECONDS = 1.0

_HOLDER = """
SELECT a.application_name, host(a.client_addr) AS client, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


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
    async def try_acquire(
        cls, url: str, *, key: int, holder_hint: str, name: str = "ci-controller"
    ) -> AdvisoryLock:
        """Take the lock now or raise `DatabaseLockHeldError` with `holder_hint`."""
        conn = await connect_session(url, name=name)
        try:
            taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
        except BaseException:
            await close_quietly(conn)
            raise
        if not taken:
            await close_quietly(conn)
            raise DatabaseLockHeldError(holder_hint)
        return cls(conn, key)

    @classmethod
    async def acquire(
        cls,
        url: str,
        *,
        key: int,
        name: str,
        on_wait: Callable[[str], None],
        poll_seconds: float = POLL_SECONDS,
    ) -> AdvisoryLock:
        """Take the lock, waiting as long as another session holds it. `on_wait` is called
        once, with who holds it, when the first try fails."""
        told = False
        while True:
            try:
                conn = await connect_session(url, name=name)
            except StorageError as exc:
                if not told:
                    raise  # a bad URL or no database at all: say so at start
                logger.warning(
                    "waiting for the controller lock: %s; retrying in %g s", exc, RECONNECT_SECONDS
                )
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                while True:
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                        return cls(conn, key)
                    if not told:
                        told = True
                        on_wait(await describe_holder(conn, key))
                    await asyncio.sleep(poll_seconds)
            except Exception as exc:
                await close_quietly(conn)
                if not is_unavailable(exc) and not isinstance(exc, asyncpg.InterfaceError):
                    raise
                logger.warning(
                    "waiting for the controller lock: lost the database connection (%s); "
                    "reconnecting in %g s",
                    exc,
                    RECONNECT_SECONDS,
                )
                await asyncio.sleep(RECONNECT_SECONDS)
            except BaseException:
                await close_quietly(conn)
                raise

    async def lost(self) -> str:
        """Wait until the lock's connection is gone (and the lock with it); returns why."""
        return await watch_connection(self._conn)

    async def release(self) -> None:
        await close_quietly(self._conn)  # ending the session drops the lock


async def describe_holder(conn: asyncpg.Connection, key: int) -> str:
    """Who holds lock `key`, e.g. `ci-controller pid 12 on build-1, connected from 10.0.0.5
    since 2026-12-01 03:20:11 UTC`; "an unknown session" when it cannot be seen."""
    row = await conn.fetchrow(_HOLDER, key >> 32, key & 0xFFFFFFFF)
    if row is None:
        return "an unknown session (it let go meanwhile)"
    name = row["application_name"] or "an unnamed session"
    where = f", connected from {row['client']}" if row["client"] else ""
    since = row["backend_start"]
    when = f" since {since.strftime('%Y-%m-%d %H:%M:%S %Z')}" if since is not None else ""
    return f"{name}{where}{when}"
