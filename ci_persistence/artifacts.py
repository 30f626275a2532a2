"""Files kept from a job's container (`junit.xml` and the user's patterns) in SQLite.

A file is stored as a row in `job_artifacts` (path, size) and its content as numbered blocks
of `ARTIFACT_BLOCK_BYTES` in `artifact_blocks`, so a download reads one block per query and a
server replica never holds a file whole, and a PostgreSQL backend can use the same shape. A
file is written in one transaction (it replaces an earlier copy, so a controller that collects
again after a restart stores each file once); the per-job cap (CI_MAX_ARTIFACTS_MB) bounds how
long that holds the write lock.
"""

from __future__ import annotations

from typing import IO

from ci_common.errors import JobNotFoundError
from ci_common.models import Artifact, JobId
from ci_persistence.database import SqliteDatabase, now_text
from ci_persistence.uncancellable import uncancellable

ARTIFACT_BLOCK_BYTES = 256 * 1024


class SqliteArtifacts:
    """Implements `ci_common.ArtifactRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    @uncancellable
    async def store_artifact(
        self, job_id: JobId, *, path: str, size: int, content: IO[bytes]
    ) -> Artifact:
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)) as cursor:
                if await cursor.fetchone() is None:
                    raise JobNotFoundError(job_id)
            await conn.execute(
                "DELETE FROM job_artifacts WHERE job_id = ? AND path = ?", (job_id, path)
            )
            await conn.execute(
                "INSERT INTO job_artifacts (job_id, path, size, created_at) VALUES (?, ?, ?, ?)",
                (job_id, path, size, now_text()),
            )
            index, left = 0, size
            while left > 0:
                block = content.read(min(ARTIFACT_BLOCK_BYTES, left))
                if not block:
                    raise ValueError(f"artifact {path}: content ended {left} bytes early")
                await conn.execute(
                    "INSERT INTO artifact_blocks (job_id, path, idx, data) VALUES (?, ?, ?, ?)",
                    (job_id, path, index, block),
                )
                index, left = index + 1, left - len(block)
        return Artifact(job_id=job_id, path=path, size=size)

    async def list_artifacts(self, job_id: JobId) -> list[Artifact]:
        rows = await self._db.fetch_all(
            "SELECT job_id, path, size FROM job_artifacts WHERE job_id = ? ORDER BY path",
            (job_id,),
        )
        return [
            Artifact(job_id=JobId(row["job_id"]), path=row["path"], size=row["size"])
            for row in rows
        ]

    async def get_artifact(self, job_id: JobId, path: str) -> Artifact | None:
        row = await self._db.fetch_one(
            "SELECT job_id, path, size FROM job_artifacts WHERE job_id = ? AND path = ?",
            (job_id, path),
        )
        return None if row is None else Artifact(job_id=job_id, path=row["path"], size=row["size"])

    async def read_artifact_block(self, job_id: JobId, path: str, index: int) -> bytes | None:
        row = await self._db.fetch_one(
            "SELECT data FROM artifact_blocks WHERE job_id = ? AND path = ? AND idx = ?",
            (job_id, path, index),
        )
        return None if row is None else bytes(row["data"])
