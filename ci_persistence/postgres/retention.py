"""Deleting what is older than the retention period in PostgreSQL, in small transactions.

The rules are SQLite's (`ci_persistence.retention`): the oldest job `completed` before the
cut-off goes with its log, its kept files, its upload and its results, `batch_rows` rows per
autocommitted statement and the job row last, so no statement holds many row locks or writes
much WAL at once, and the server's and the controller's writes interleave. Uploads are blocks
here too (`job_archive_blocks`), so they are deleted in batches as well. A job half deleted
when the controller stopped is finished by the next pass (it is still the oldest).
"""

from __future__ import annotations

from datetime import datetime

from ci_common.models import JobId, JobStatus
from ci_persistence.postgres.database import PostgresDatabase

_BATCHED_CHILDREN = (
    # Each statement deletes at most $2 rows of job $1.
    "DELETE FROM log_chunks WHERE job_id = $1 AND seq IN "
    "(SELECT seq FROM log_chunks WHERE job_id = $1 ORDER BY seq LIMIT $2)",
    "DELETE FROM test_results WHERE job_id = $1 AND idx IN "
    "(SELECT idx FROM test_results WHERE job_id = $1 ORDER BY idx LIMIT $2)",
    "DELETE FROM artifact_blocks WHERE job_id = $1 AND (path, idx) IN "
    "(SELECT path, idx FROM artifact_blocks WHERE job_id = $1 LIMIT $2)",
    "DELETE FROM job_archive_blocks WHERE job_id = $1 AND block IN "
    "(SELECT block FROM job_archive_blocks WHERE job_id = $1 ORDER BY block LIMIT $2)",
)


class PostgresRetention:
    """Implements `ci_common.RetentionRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    async def delete_expired_jobs(
        self, *, finished_before: datetime, max_jobs: int = 10, batch_rows: int = 200
    ) -> list[JobId]:
        deleted: list[JobId] = []
        for _ in range(max_jobs):
            key = await self._db.fetch_value(
                "SELECT id FROM jobs WHERE status = $1 AND finished_at < $2 "
                "ORDER BY finished_at LIMIT 1",
                JobStatus.COMPLETED.value,
                finished_before,
            )
            if key is None:
                break
            for statement in _BATCHED_CHILDREN:
                while await self._db.execute(statement, key, batch_rows) > 0:
                    pass
            await self._db.execute("DELETE FROM job_archives WHERE job_id = $1", key)
            await self._db.execute("DELETE FROM job_artifacts WHERE job_id = $1", key)
            await self._db.execute(
                "DELETE FROM jobs WHERE id = $1 AND status = $2", key, JobStatus.COMPLETED.value
            )
            deleted.append(JobId(str(key)))
        return deleted
