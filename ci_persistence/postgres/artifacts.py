"""Files kept from a job's container in PostgreSQL (the `ArtifactRepository` half).

The shape is SQLite's (`ci_persistence.artifacts`): a `job_artifacts` row (path, size) and
the content as numbered `bytea` blocks of the same `ARTIFACT_BLOCK_BYTES` in
`artifact_blocks`, written one block per statement in one transaction (replacing an earlier
copy, so a controller that collects again after a restart stores each file once) and read
one block per query, so no process holds a file whole.
"""

from __future__ import annotations

import asyncio
from typing import IO

import asyncpg

from ci_common.errors import JobNotFoundError
from ci_common.models import Artifact, JobId
from ci_persistence.artifacts import ARTIFACT_BLOCK_BYTES
from ci_persistence.postgres.database import PostgresDatabase
from ci_persistence.postgres.ids import as_uuid
from ci_persistence.uncancellable import uncancellable


class PostgresArtifacts:
    """Implements `ci_common.ArtifactRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    @uncancellable
    async def store_artifact(
        self, job_id: JobId, *, path: str, size: int, content: IO[bytes]
    ) -> Artifact:
        key = as_uuid(job_id)
        if key is None:
            raise JobNotFoundError(job_id)
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    "DELETE FROM job_artifacts WHERE job_id = $1 AND path = $2", key, path
                )
                await conn.execute(
                    "INSERT INTO job_artifacts (job_id, path, size) VALUES ($1, $2, $3)",
                    key,
                    path,
                    size,
                )
                index, left = 0, size
                while left > 0:
                    block = await asyncio.to_thread(content.read, min(ARTIFACT_BLOCK_BYTES, left))
                    if not block:
                        raise ValueError(f"artifact {path}: content ended {left} bytes early")
                    await conn.execute(
                        "INSERT INTO artifact_blocks (job_id, path, idx, data) "
                        "VALUES ($1, $2, $3, $4)",
                        key,
                        path,
                        index,
                        block,
                    )
                    index, left = index + 1, left - len(block)
        except asyncpg.ForeignKeyViolationError as exc:
            raise JobNotFoundError(job_id) from exc
        return Artifact(job_id=job_id, path=path, size=size)

    async def list_artifacts(self, job_id: JobId) -> list[Artifact]:
        key = as_uuid(job_id)
        if key is None:
            return []
        rows = await self._db.fetch_all(
            'SELECT path, size FROM job_artifacts WHERE job_id = $1 ORDER BY path COLLATE "C"',
            key,
        )
        return [Artifact(job_id=job_id, path=row["path"], size=row["size"]) for row in rows]

    async def get_artifact(self, job_id: JobId, path: str) -> Artifact | None:
        key = as_uuid(job_id)
        if key is None:
            return None
        row = await self._db.fetch_one(
            "SELECT path, size FROM job_artifacts WHERE job_id = $1 AND path = $2", key, path
        )
        return None if row is None else Artifact(job_id=job_id, path=row["path"], size=row["size"])

    async def read_artifact_block(self, job_id: JobId, path: str, index: int) -> bytes | None:
        key = as_uuid(job_id)
        if key is None:
            return None
        data = await self._db.fetch_value(
            "SELECT data FROM artifact_blocks WHERE job_id = $1 AND path = $2 AND idx = $3",
            key,
            path,
            index,
        )
        return None if data is None else bytes(data)
