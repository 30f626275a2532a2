"""What the queue looks like right now, as the database says: the facts behind `/metrics`.

Read from the repository at scrape time rather than counted in a process, so every server
replica and the controller report the same numbers whoever changed the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueueStats:
    """Jobs waiting and running, the oldest waiting one's submit time, and the log stored."""

    queued: int
    running: int
    oldest_queued_at: datetime | None
    log_bytes: int

    def oldest_queued_age(self, now: datetime) -> float:
        """Seconds the oldest queued job has waited at `now`; 0 with nothing queued."""
        if self.oldest_queued_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_queued_at).total_seconds())
