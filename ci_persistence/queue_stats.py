"""The queue's numbers for `/metrics` from SQLite (`ci_common.QueueStatsRepository`).

One statement: the counts and the oldest queued job come from the `jobs_active` partial index
(only queued and running jobs); the log total sums `jobs.log_bytes`, kept per job as chunks are
appended, so no log chunk is read.
"""

from __future__ import annotations

from ci_common.queue_stats import QueueStats
from ci_persistence.columns import QUEUE_STATS
from ci_persistence.database import SqliteDatabase, from_text


class SqliteQueueStats:
    """Implements `ci_common.QueueStatsRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    async def queue_stats(self) -> QueueStats:
        row = await self._db.fetch_one(QUEUE_STATS)
        assert row is not None  # an aggregate always returns one row
        return QueueStats(
            queued=int(row["queued"]),
            running=int(row["running"]),
            oldest_queued_at=from_text(row["oldest_queued_at"]),
            log_bytes=int(row["log_bytes"]),
        )
