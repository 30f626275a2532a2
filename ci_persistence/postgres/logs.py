"""A job's log in PostgreSQL: chunks appended with their cursor (and a NOTIFY for the servers'
log hubs), read back a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime

from ci_common.errors import JobNotFoundError
from ci_common.models import JobId, LogChunk
from ci_persistence.postgres.database import PostgresDatabase, Record, job_missing_or_moved
from ci_persistence.postgres.ids import as_uuid
from ci_persistence.postgres.notifications import JOBS_CHANNEL
from ci_persistence.uncancellable import uncancellable

_NO_LIMIT = 2**31 - 1

# One page of a log bounded by bytes, as in SQLite: a walk along the job's chunks in seq order
# carrying the running total of their sizes, stopping at the first chunk that takes the total
# to the budget or past it (the caller drops that one unless it is alone).
_LOG_PAGE = """
WITH RECURSIVE page(seq, data, created_at, total, n) AS (
    (SELECT seq, data, created_at, octet_length(data)::bigint, 1 FROM log_chunks
     WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT 1)
    UNION ALL
    SELECT chunk.seq, chunk.data, chunk.created_at, page.total + octet_length(chunk.data),
           page.n + 1
    FROM page CROSS JOIN LATERAL (
        SELECT seq, data, created_at FROM log_chunks
        WHERE job_id = $1 AND seq > page.seq ORDER BY seq LIMIT 1
    ) AS chunk
    WHERE page.total < $3 AND page.n < $4
)
SELECT seq, data, created_at, total FROM page ORDER BY seq
"""


def chunk_from_record(job_id: JobId, row: Record) -> LogChunk:
    return LogChunk(
        job_id=job_id,
        seq=row["seq"],
        data=bytes(row["data"]).decode(),
        created_at=row["created_at"],
    )


class PostgresLogs:
    """Implements the log half of `ci_common.JobRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    @uncancellable
    async def append_log(
        self, job_id: JobId, data: str, *, cursor: str | None, after_seq: int | None = None
    ) -> LogChunk:
        key = as_uuid(job_id)
        if key is None:
            raise JobNotFoundError(job_id)
        encoded = data.encode()
        created_at = datetime.now(UTC)
        async with self._db.transaction() as conn:
            seq = await conn.fetchval(
                "WITH bumped AS ("
                "UPDATE jobs SET last_log_seq = last_log_seq + 1, log_bytes = log_bytes + $1, "
                "log_cursor = COALESCE($2, log_cursor) "
                "WHERE id = $3 AND ($5::integer IS NULL OR last_log_seq = $5) "
                "RETURNING last_log_seq, id) "
                "SELECT last_log_seq, pg_notify($4, id::text) FROM bumped",
                len(encoded),
                cursor,
                key,
                JOBS_CHANNEL,
                after_seq,
            )
            if seq is None:
                raise await job_missing_or_moved(conn, key, job_id, what="log")
            await conn.execute(
                "INSERT INTO log_chunks (job_id, seq, data, created_at) VALUES ($1, $2, $3, $4)",
                key,
                seq,
                encoded,
                created_at,
            )
        return LogChunk(job_id=job_id, seq=int(seq), data=data, created_at=created_at)

    async def read_logs(
        self,
        job_id: JobId,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[LogChunk]:
        key = as_uuid(job_id)
        if key is None:
            return []
        row_limit = _NO_LIMIT if limit is None else limit
        if max_bytes is None:
            rows = await self._db.fetch_all(
                "SELECT seq, data, created_at FROM log_chunks "
                "WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                key,
                after_seq,
                row_limit,
            )
        else:
            if row_limit <= 0:
                return []
            rows = await self._db.fetch_all(_LOG_PAGE, key, after_seq, max_bytes, row_limit)
            if len(rows) > 1 and rows[-1]["total"] > max_bytes:
                rows.pop()  # the chunk that told the walk to stop
        return [chunk_from_record(job_id, row) for row in rows]
