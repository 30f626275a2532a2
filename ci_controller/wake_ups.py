"""When the controller's loop wakes before its next full pass: a change in the database.

A change is heard from the database's change feed while it listens (PostgreSQL's NOTIFY), and
otherwise found by polling the repository's cheap change counter every `CHANGE_POLL_SECONDS`;
a worker that ends, and the stop request, wake the loop too. Kept apart from `controller` so
the reconcile loop reads as wait, then react or reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from ci_common.change_feed import ChangeFeed
from ci_common.models import JobId
from ci_common.repository import JobRepository

logger = logging.getLogger(__name__)

CHANGE_POLL_SECONDS = 0.02


class WakeUps:
    """The loop's one wake-up event, and what sets it."""

    def __init__(self, repo: JobRepository, changes: ChangeFeed | None) -> None:
        self._repo = repo
        self._changes = changes
        self.event = asyncio.Event()
        self._polling = asyncio.Event()
        """Set while changes must be polled for: no feed, or the feed is down."""
        self._polling.set()

    def wake(self) -> None:
        self.event.set()

    @contextlib.asynccontextmanager
    async def watching(self, stop: asyncio.Event) -> AsyncGenerator[None]:
        """Listen, poll while the feed is down, and wake on `stop`, for the block's length."""
        tasks = [
            asyncio.create_task(self._poll(), name="watch database"),
            asyncio.create_task(self._wake_on(stop), name="watch stop"),
        ]
        if self._changes is not None:
            tasks.append(
                asyncio.create_task(
                    self._changes.run(on_change=self._changed, on_live=self._feed_live),
                    name="listen for changes",
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    def _changed(self, _job_id: JobId) -> None:
        self.event.set()

    def _feed_live(self, live: bool) -> None:
        """The change feed listens (stop polling; anything before may have gone unannounced,
        so look once) or broke (poll until it is back)."""
        if live:
            self._polling.clear()
            self.event.set()
        else:
            self._polling.set()

    async def _poll(self) -> None:
        last = await self._repo.change_counter()
        while True:
            await self._polling.wait()
            await asyncio.sleep(CHANGE_POLL_SECONDS)
            if not self._polling.is_set():
                continue
            try:
                current = await self._repo.change_counter()
            except Exception:
                logger.exception("cannot read the database's change counter")
                continue
            if current != last:
                last = current
                self.event.set()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.event.set()
