"""A job's log in SQLite: chunks appended with their cursor, read back a page at a time."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from ci_common.models import JobId, LogChunk
from ci_persistence.database import SqliteDatabase, from_text, job_missing_or_moved, to_text
from ci_persistence.uncancellable import uncancellable

# One page of a log, bounded by bytes: a walk along the job's chunks in seq order, carrying the
# running total of their UTF-8 sizes, that stops at the first chunk taking the total to the
# budget or past it. Only the page's chunks and that one are read, however long the log is (a
# window function over the rest of the log would read all of it for every page). The caller
# drops the last chunk when it overflows the budget, unless it is the only one.
_LOG_PAGE = """
WITH RECURSIVE page(seq, data, created_at, total) AS (
    SELECT seq, data, created_at, length(CAST(data AS BLOB)) FROM (
        SELECT seq, data, created_at FROM log_chunks
        WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT 1
    )
    UNION ALL
    SELECT chunk.seq, chunk.data, chunk.created_at,
           page.total + length(CAST(chunk.data AS BLOB))
    FROM page CROSS JOIN log_chunks AS chunk
    WHERE page.total < ?3 AND chunk.job_id = ?1
      AND chunk.seq = (SELECT MIN(seq) FROM log_chunks WHERE job_id = ?1 AND seq > page.seq)
    LIMIT ?4
)
SELECT ?1 AS job_id, seq, data, created_at, total FROM page ORDER BY seq
"""


def chunk_from_row(row: sqlite3.Row) -> LogChunk:
    created_at = from_text(row["created_at"])
    assert created_at is not None
    return LogChunk(
        job_id=JobId(row["job_id"]), seq=row["seq"], data=row["data"], created_at=created_at
    )


class SqliteLogs:
    """Implements the log half of `ci_common.JobRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    @uncancellable
    async def append_log(
        self, job_id: JobId, data: str, *, cursor: str | None, after_seq: int | None = None
    ) -> LogChunk:
        created_at = datetime.now(UTC)
        async with self._db.transaction() as conn:
            async with conn.execute(
                "UPDATE jobs SET last_log_seq = last_log_seq + 1, "
                "log_bytes = log_bytes + ?, log_cursor = COALESCE(?, log_cursor) "
                "WHERE id = ? AND coalesce(? = last_log_seq, 1) RETURNING last_log_seq",
                (len(data.encode()), cursor, job_id, after_seq),
            ) as result:
                row = await result.fetchone()
            if row is None:
                raise await job_missing_or_moved(conn, job_id, what="log")
            seq = int(row[0])
            await conn.execute(
                "INSERT INTO log_chunks (job_id, seq, data, created_at) VALUES (?, ?, ?, ?)",
                (job_id, seq, data, to_text(created_at)),
            )
        return LogChunk(job_id=job_id, seq=seq, data=data, created_at=created_at)

    async def read_logs(
        self,
        job_id: JobId,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[LogChunk]:
        row_limit = -1 if limit is None else limit
        if max_bytes is None:
            rows = await self._db.fetch_all(
                "SELECT job_id, seq, data, created_at FROM log_chunks "
                "WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (job_id, after_seq, row_limit),
            )
        else:
            rows = await self._db.fetch_all(_LOG_PAGE, (job_id, after_seq, max_bytes, row_limit))
            if len(rows) > 1 and rows[-1]["total"] > max_bytes:
                rows.pop()  # the chunk that told the walk to stop
        return [chunk_from_row(row) for row in rows]
