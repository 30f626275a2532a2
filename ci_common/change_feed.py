"""Wake-ups pushed by the database, so a process need not poll for what it waits on.

A `ChangeFeed` says "job X changed" on one topic: `QUEUE` (a job was submitted or a cancel was
requested: what the controller acts on) or `JOBS` (a job's status, log or results moved: what a
server's SSE followers wait for). PostgreSQL has one (LISTEN/NOTIFY, the notice sent in the
same transaction as the change); SQLite has none, and its processes poll.

A feed only wakes its reader up; the reader still reads the facts from the database. So a
notice missed while the feed was down loses nothing as long as the reader polls meanwhile:
`on_live(False)` says to poll again, `on_live(True)` says the feed listens again (and that
anything committed while it did not may have gone unannounced: read once then).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from ci_common.models import JobId


class ChangeTopic(StrEnum):
    QUEUE = "queue"
    """A job was submitted, or a cancel requested (the controller's)."""
    JOBS = "jobs"
    """A job's status, log or test results moved (the servers')."""


class ChangeFeed(Protocol):
    """Notices of changes on one topic, for as long as `run` runs."""

    async def run(
        self, *, on_change: Callable[[JobId], None], on_live: Callable[[bool], None]
    ) -> None:
        """Until cancelled: `on_live(True)` once listening, `on_change(job_id)` per notice,
        `on_live(False)` when the feed broke (it reconnects by itself)."""
        ...
