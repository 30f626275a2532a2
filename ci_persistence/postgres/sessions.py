"""Connections of their own, outside the pool, for a lock or a listener that must live as long
as the process, and a watch that says when such a connection is gone.

The pool's connections come and go; a session-level advisory lock or a `LISTEN` belongs to one
session and ends with it. So these get a dedicated connection, named (`application_name`, so an
operator and a waiting standby see in `pg_stat_activity` who holds what), with TCP keep-alives
asked of the server so a peer that vanished with its machine is noticed in about 20 s.

`watch_connection` returns once the connection is gone: at once when asyncpg sees it close
(the server ended the session, the socket broke), or at the next ping (every
`PING_SECONDS`, `PING_TIMEOUT` to answer) when the network went silent.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from ci_common.errors import StorageError
from ci_persistence.postgres.database import CONNECT_TIMEOUT, check_url, redact

PING_SECONDS = 2.0
PING_TIMEOUT = 5.0
APPLICATION_NAME_BYTES = 63
"""PostgreSQL truncates longer names (NAMEDATALEN - 1)."""
_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "3",
    "tcp_keepalives_count": "3",
}


async def connect_session(url: str, *, name: str) -> asyncpg.Connection:
    """A new connection named `name`; `StorageError` in one line when it cannot be made."""
    check_url(url)
    try:
        return await asyncpg.connect(
            url,
            timeout=CONNECT_TIMEOUT,
            server_settings={
                "application_name": name.encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore"),
                **_KEEPALIVES,
            },
        )
    except Exception as exc:
        raise StorageError(
            f"cannot connect to the database at {redact(url)}: {exc}; "
            "check CI_DATABASE_URL and that the server is running"
        ) from exc


async def watch_connection(conn: asyncpg.Connection) -> str:
    """Wait until `conn` is lost; returns why, in words fit for a log line."""
    closed = asyncio.Event()

    def on_close(_conn: object) -> None:
        closed.set()

    conn.add_termination_listener(on_close)
    try:
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), PING_SECONDS)
            if closed.is_set() or conn.is_closed():
                break
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT)
            except TimeoutError:
                conn.terminate()
                return f"the database did not answer a ping within {PING_TIMEOUT:g} s"
            except Exception as exc:
                return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return "the database closed the connection"
    finally:
        conn.remove_termination_listener(on_close)


async def close_quietly(conn: asyncpg.Connection) -> None:
    """Close `conn`, ending its session (and what it holds), whatever state it is in."""
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), PING_TIMEOUT)
    except Exception:
        conn.terminate()
