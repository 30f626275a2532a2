"""LISTEN/NOTIFY: the PostgreSQL `ChangeFeed`.

Writers call `pg_notify(channel, job_id)` inside the statement or transaction that makes the
change (`jobs`, `test_results`), so a notice is delivered exactly when the change commits and
never for one rolled back. Channels, one per `ChangeTopic`:

- `ci_queue`: a job was inserted, or a cancel requested (the controller listens);
- `ci_jobs`: a job started, completed, was cancelled, or got log chunks or test results
  (each server's log hub listens).

`ChangeListener` holds a connection of its own (named, see `sessions`) with `LISTEN` on one
channel. When that connection breaks (`sessions.watch_connection`: at once for a closed
socket or an ended session, within a ping for a silent network) it reports `on_live(False)`,
so the reader polls again, and reconnects every `RECONNECT_SECONDS` until it listens again.
It logs the loss and the recovery once each, not once per failed try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from ci_common.change_feed import ChangeTopic
from ci_common.models import JobId
from ci_persistence.postgres.database import redact
from ci_persistence.postgres.sessions import close_quietly, connect_session, watch_connection

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


def channel_of(topic: ChangeTopic) -> str:
    return f"ci_{topic.value}"


QUEUE_CHANNEL = channel_of(ChangeTopic.QUEUE)
JOBS_CHANNEL = channel_of(ChangeTopic.JOBS)


class ChangeListener:
    """`ChangeFeed` of one topic over `LISTEN`; one per process and topic."""

    def __init__(self, url: str, *, topic: ChangeTopic, name: str) -> None:
        """`name`: the connection's `application_name` (who listens, for operators)."""
        self._url = url
        self._channel = channel_of(topic)
        self._name = name

    async def run(
        self, *, on_change: Callable[[JobId], None], on_live: Callable[[bool], None]
    ) -> None:
        def notified(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            on_change(JobId(str(payload)))

        outage: str | None = None
        while True:
            try:
                conn = await connect_session(self._url, name=self._name)
            except Exception as exc:
                outage = outage or self._lost(f"cannot connect: {exc}")
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                await conn.add_listener(self._channel, notified)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                await close_quietly(conn)
                outage = outage or self._lost(f"LISTEN failed: {exc}")
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            if outage is not None:
                logger.info("listening on %s again; polling stops", self._channel)
            else:
                logger.info("listening on %s at %s", self._channel, redact(self._url))
            on_live(True)
            try:
                reason = await watch_connection(conn)
            finally:
                on_live(False)
                await close_quietly(conn)
            outage = self._lost(reason)
            await asyncio.sleep(RECONNECT_SECONDS)

    def _lost(self, reason: str) -> str:
        logger.warning(
            "no wake-ups on %s (%s); polling the database until the listener reconnects",
            self._channel,
            reason,
        )
        return reason
