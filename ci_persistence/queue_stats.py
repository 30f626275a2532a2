"""The queue's numbers for `/metrics` from SQLite (`ci_common.QueueStatsRepository`).

One statement: the counts and the oldest queued job come from the `jobs_active` partial index
(only queued and running jobs); the log total sums `jobs.log_bytes`, kept per job as chunks are
appended, so no log chunk is read.
"""

from __future__ import annotations

from ci_common.queue_stats import QueueStats
from ci_persistence.database import SqliteDatabase, from_text

# Literal statuses, not parameters: only then can the planner use the partial index.
_STATS = """
SELECT
    (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS queued,
    (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS running,
    (SELECT MIN(created_at) FROM jobs WHERE status = 'queued') AS oldest_queued_at,
    (SELECT COALESCE(SUM(log_bytes), 0) FROM jobs) AS log_bytes
"""


class SqliteQueueStats:
    """Implements `ci_common.QueueStatsRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    async def queue_stats(self) -> QueueStats:
        row = await self._db.fetch_one(_STATS)
        assert row is not None  # an aggregate always returns one row
        return QueueStats(
            queued=int(row["queued"]),
            running=int(row["running"]),
            oldest_queued_at=from_text(row["oldest_queued_at"]),
            log_bytes=int(row["log_bytes"]),
        )
