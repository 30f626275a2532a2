"""The queue's numbers for `/metrics` from PostgreSQL (see `ci_persistence.queue_stats`)."""

from __future__ import annotations

from ci_common.queue_stats import QueueStats
from ci_persistence.columns import QUEUE_STATS
from ci_persistence.postgres.database import PostgresDatabase


class PostgresQueueStats:
    """Implements `ci_common.QueueStatsRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    async def queue_stats(self) -> QueueStats:
        row = await self._db.fetch_one(QUEUE_STATS)
        assert row is not None  # an aggregate always returns one row
        return QueueStats(
            queued=int(row["queued"]),
            running=int(row["running"]),
            oldest_queued_at=row["oldest_queued_at"],
            log_bytes=int(row["log_bytes"]),
        )
