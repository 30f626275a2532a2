"""The queue's numbers for `/metrics` from PostgreSQL (see `ci_persistence.queue_stats`)."""

from __future__ import annotations

from ci_common.queue_stats import QueueStats
from ci_persistence.postgres.database import PostgresDatabase

# Literal statuses, not parameters: only then can the planner use the partial index.
_STATS = """
SELECT
    (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS queued,
    (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS running,
    (SELECT MIN(created_at) FROM jobs WHERE status = 'queued') AS oldest_queued_at,
    (SELECT COALESCE(SUM(log_bytes), 0) FROM jobs) AS log_bytes
"""


class PostgresQueueStats:
    """Implements `ci_common.QueueStatsRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    async def queue_stats(self) -> QueueStats:
        row = await self._db.fetch_one(_STATS)
        assert row is not None  # an aggregate always returns one row
        return QueueStats(
            queued=int(row["queued"]),
            running=int(row["running"]),
            oldest_queued_at=row["oldest_queued_at"],
            log_bytes=int(row["log_bytes"]),
        )
