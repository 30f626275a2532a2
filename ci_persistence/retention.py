"""Deleting what is older than the retention period, in small transactions.

A finished job (`completed` before the cut-off) goes with everything stored for it: its log,
its kept files, its upload if one is left, and rows other tables hold for it (deleted with
the job row by `ON DELETE CASCADE`). A job's log and files can be tens of megabytes, so they
are deleted `batch_rows` rows per transaction, the job row last: each transaction holds the
write lock for milliseconds, and the server and the controller's log writes interleave. A
job that was half deleted when the controller stopped is finished by the next pass (it is
still the oldest). Freed pages go back to the file system with `reclaim_space`.
"""

from __future__ import annotations

from datetime import datetime

from ci_common.models import JobId, JobStatus
from ci_persistence.database import SqliteDatabase, to_text

_BATCHED_CHILDREN = (
    # (table, the rows of one batch of one job): each statement deletes at most ?2 rows.
    (
        "log_chunks",
        "DELETE FROM log_chunks WHERE job_id = ?1 AND seq IN "
        "(SELECT seq FROM log_chunks WHERE job_id = ?1 ORDER BY seq LIMIT ?2)",
    ),
    (
        "test_results",
        "DELETE FROM test_results WHERE job_id = ?1 AND idx IN "
        "(SELECT idx FROM test_results WHERE job_id = ?1 ORDER BY idx LIMIT ?2)",
    ),
    (
        "artifact_blocks",
        "DELETE FROM artifact_blocks WHERE rowid IN "
        "(SELECT rowid FROM artifact_blocks WHERE job_id = ?1 LIMIT ?2)",
    ),
)


class SqliteRetention:
    """Implements `ci_common.RetentionRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    async def delete_expired_jobs(
        self, *, finished_before: datetime, max_jobs: int = 10, batch_rows: int = 200
    ) -> list[JobId]:
        deleted: list[JobId] = []
        for _ in range(max_jobs):
            row = await self._db.fetch_one(
                "SELECT id FROM jobs WHERE status = ? AND finished_at < ? "
                "ORDER BY finished_at LIMIT 1",
                (JobStatus.COMPLETED.value, to_text(finished_before)),
            )
            if row is None:
                break
            job_id = JobId(row["id"])
            for _table, statement in _BATCHED_CHILDREN:
                while await self._db.execute(statement, (job_id, batch_rows)) > 0:
                    pass
            await self._db.execute("DELETE FROM job_archives WHERE job_id = ?", (job_id,))
            await self._db.execute("DELETE FROM job_artifacts WHERE job_id = ?", (job_id,))
            await self._db.execute(
                "DELETE FROM jobs WHERE id = ? AND status = ?",
                (job_id, JobStatus.COMPLETED.value),
            )
            deleted.append(job_id)
        return deleted
