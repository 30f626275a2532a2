"""Jobs, their archives and their logs in PostgreSQL (the `JobRepository` half).

The semantics are SQLite's (`ci_persistence.jobs`); what differs is how:
- Uploads are rows of `job_archive_blocks` (bytea, `ARCHIVE_BLOCK_BYTES` each) under a
  `job_archives` row, written one block per statement inside the job's insert transaction and
  read back one block at a time through a cursor: never whole in memory, and every server
  replica and controller reach them through the database alone.
- A log chunk's seq comes from `UPDATE jobs SET last_log_seq = last_log_seq + 1 ... RETURNING`,
  in the transaction that inserts the chunk: the job's row lock orders concurrent appenders.
- Every change a process waits on is announced with `pg_notify` in the statement or transaction
  that makes it (`notifications`): a new job or a cancel request on `ci_queue`, a job's start,
  end, cancel and log chunks on `ci_jobs`.
- `change_counter` is a hash of the server's transaction snapshot: it changes whenever any
  transaction that wrote commits (spurious changes only cost the caller a re-read).
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

import asyncpg

from ci_common.errors import JobNotFoundError, UserNotFoundError
from ci_common.job_options import JobOptions
from ci_common.models import DEFAULT_ENGINE, Job, JobConclusion, JobId, JobStatus, UserId
from ci_persistence.columns import JOB_COLUMNS
from ci_persistence.job_rows import job_from_columns, names_text
from ci_persistence.postgres.database import PostgresDatabase, Record
from ci_persistence.postgres.ids import as_uuid, prefix_range
from ci_persistence.postgres.notifications import JOBS_CHANNEL, QUEUE_CHANNEL
from ci_persistence.uncancellable import uncancellable

ARCHIVE_BLOCK_BYTES = 1024 * 1024
_ACTIVE = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]


def job_from_record(row: Record) -> Job:
    return job_from_columns(row, moment=_moment)


def _moment(value: datetime | None) -> datetime | None:
    return value


class PostgresJobs:
    """Implements `ci_common.JobRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    @uncancellable
    async def create_job(
        self, *, user_id: UserId, archive: bytes | BinaryIO, options: JobOptions | None = None
    ) -> Job:
        owner = as_uuid(user_id)
        if owner is None:
            raise UserNotFoundError(str(user_id))
        options = options or JobOptions()
        source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
        size = source.seek(0, io.SEEK_END)
        source.seek(0)
        job_id = uuid.uuid4()
        try:
            async with self._db.transaction() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO jobs (id, user_id, status, archive_bytes, pytest_args, env, "
                    "project, git, python, extras, dependency_groups, rerun_of, rerun_node_ids, "
                    "artifacts) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                    f"RETURNING {JOB_COLUMNS}",
                    job_id,
                    owner,
                    JobStatus.QUEUED.value,
                    size,
                    json.dumps(list(options.pytest_args)),
                    json.dumps(options.env),
                    options.project,
                    options.git.model_dump_json() if options.git else None,
                    options.python,
                    names_text(options.extras),
                    names_text(options.groups),
                    as_uuid(options.rerun_of) if options.rerun_of else None,
                    json.dumps(list(options.rerun_node_ids)),
                    json.dumps(list(options.artifacts)),
                )
                await conn.execute(
                    "INSERT INTO job_archives (job_id, bytes) VALUES ($1, $2)", job_id, size
                )
                block = 0
                while data := await asyncio.to_thread(source.read, ARCHIVE_BLOCK_BYTES):
                    await conn.execute(
                        "INSERT INTO job_archive_blocks (job_id, block, data) VALUES ($1, $2, $3)",
                        job_id,
                        block,
                        data,
                    )
                    block += 1
                await conn.execute("SELECT pg_notify($1, $2)", QUEUE_CHANNEL, str(job_id))
        except asyncpg.ForeignKeyViolationError as exc:
            raise UserNotFoundError(str(user_id)) from exc
        assert row is not None
        return job_from_record(row)

    async def get_job(self, job_id: JobId) -> Job:
        key = as_uuid(job_id)
        row = None
        if key is not None:
            row = await self._db.fetch_one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", key)
        if row is None:
            raise JobNotFoundError(job_id)
        return job_from_record(row)

    async def get_jobs(self, job_ids: Sequence[JobId]) -> list[Job]:
        keys = [key for job_id in job_ids if (key := as_uuid(job_id)) is not None]
        if not keys:
            return []
        rows = await self._db.fetch_all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1::uuid[])", keys
        )
        return [job_from_record(row) for row in rows]

    async def list_jobs(
        self,
        *,
        user_id: UserId | None = None,
        status: JobStatus | None = None,
        project: str | None = None,
        limit: int = 50,
        conclusion: JobConclusion | None = None,
    ) -> list[Job]:
        clauses: list[str] = []
        params: list[object] = []

        def where(clause: str, value: object) -> None:
            params.append(value)
            clauses.append(clause.format(f"${len(params)}"))

        if conclusion is not None:
            where("conclusion = {}", conclusion.value)
        if user_id is not None:
            owner = as_uuid(user_id)
            if owner is None:
                return []
            where("user_id = {}", owner)
        if project is not None:
            where("project = {}", project)
        if status is not None:
            where("status = {}", status.value)
        filters = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        rows = await self._db.fetch_all(
            f"SELECT {JOB_COLUMNS} FROM jobs {filters} ORDER BY created_at DESC, id "
            f"LIMIT ${len(params)}",
            *params,
        )
        return [job_from_record(row) for row in rows]

    async def find_job_ids(self, *, user_id: UserId, prefix: str, limit: int = 2) -> list[JobId]:
        owner, bounds = as_uuid(user_id), prefix_range(prefix)
        if owner is None or bounds is None:
            return []
        rows = await self._db.fetch_all(
            "SELECT id FROM jobs WHERE id BETWEEN $1 AND $2 AND user_id = $3 ORDER BY id LIMIT $4",
            *bounds,
            owner,
            limit,
        )
        return [JobId(str(row["id"])) for row in rows]

    async def list_active_jobs(self) -> list[Job]:
        rows = await self._db.fetch_all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = ANY($1::text[]) "
            "ORDER BY created_at, id",
            _ACTIVE,
        )
        return [job_from_record(row) for row in rows]

    async def mark_running(
        self, job_id: JobId, *, container_id: str | None, engine: str = DEFAULT_ENGINE
    ) -> bool:
        """The claim: `SKIP LOCKED` lets a controller of another engine that is claiming the
        same job at this instant go on to the next one instead of waiting for this one."""
        key = as_uuid(job_id)
        if key is None:
            return False
        changed = await self._db.execute(
            "WITH changed AS ("
            "UPDATE jobs SET status = $1, started_at = now(), container_id = $2, attempts = 1, "
            "engine = $6 WHERE id = (SELECT id FROM jobs WHERE id = $3 AND status = $4 "
            "FOR UPDATE SKIP LOCKED) RETURNING id) "
            "SELECT pg_notify($5, id::text) FROM changed",
            JobStatus.RUNNING.value,
            container_id,
            key,
            JobStatus.QUEUED.value,
            JOBS_CHANNEL,
            engine,
        )
        return changed == 1

    async def requeue_job(self, job_id: JobId, *, engine: str) -> bool:
        key = as_uuid(job_id)
        if key is None:
            return False
        changed = await self._db.execute(
            "WITH changed AS ("
            "UPDATE jobs SET status = $1, started_at = NULL, engine = NULL, attempts = 0, "
            "log_cursor = NULL, results_cursor = NULL "
            "WHERE id = $2 AND status = $3 AND engine = $4 AND container_id IS NULL "
            "RETURNING id) "
            "SELECT pg_notify($5, id::text) FROM changed",
            JobStatus.QUEUED.value,
            key,
            JobStatus.RUNNING.value,
            engine,
            QUEUE_CHANNEL,
        )
        return changed == 1

    async def restart_job(self, job_id: JobId) -> Job | None:
        key = as_uuid(job_id)
        if key is None:
            return None
        row = await self._db.fetch_one(
            "UPDATE jobs SET container_id = NULL, log_cursor = NULL, results_cursor = NULL, "
            "attempts = attempts + 1 "
            f"WHERE id = $1 AND status = $2 RETURNING {JOB_COLUMNS}",
            key,
            JobStatus.RUNNING.value,
        )
        return None if row is None else job_from_record(row)

    async def set_container(self, job_id: JobId, container_id: str) -> None:
        key = as_uuid(job_id)
        if key is not None:
            await self._db.execute(
                "UPDATE jobs SET container_id = $1 WHERE id = $2", container_id, key
            )

    async def complete_job(
        self,
        job_id: JobId,
        *,
        conclusion: JobConclusion,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        key = as_uuid(job_id)
        if key is None:
            return False
        changed = await self._db.execute(
            "WITH changed AS ("
            "UPDATE jobs SET status = $1, conclusion = $2, exit_code = $3, error = $4, "
            "finished_at = now() WHERE id = $5 AND status = ANY($6::text[]) RETURNING id) "
            "SELECT pg_notify($7, id::text) FROM changed",
            JobStatus.COMPLETED.value,
            conclusion.value,
            exit_code,
            error,
            key,
            _ACTIVE,
            JOBS_CHANNEL,
        )
        return changed == 1

    @uncancellable
    async def request_cancel(self, job_id: JobId) -> Job:
        key = as_uuid(job_id)
        if key is not None:
            # One statement: a queued job ends as cancelled, a running one is flagged.
            # The controller and the servers' followers are told in the same statement.
            await self._db.execute(
                "WITH changed AS ("
                "UPDATE jobs SET cancel_requested = true, "
                "status = CASE WHEN status = $2 THEN $3 ELSE status END, "
                "conclusion = CASE WHEN status = $2 THEN $4 ELSE conclusion END, "
                "finished_at = CASE WHEN status = $2 THEN now() ELSE finished_at END "
                "WHERE id = $1 AND status = ANY($5::text[]) RETURNING id) "
                "SELECT pg_notify($6, id::text), pg_notify($7, id::text) FROM changed",
                key,
                JobStatus.QUEUED.value,
                JobStatus.COMPLETED.value,
                JobConclusion.CANCELLED.value,
                _ACTIVE,
                QUEUE_CHANNEL,
                JOBS_CHANNEL,
            )
        return await self.get_job(job_id)

    async def get_archive(self, job_id: JobId) -> bytes | None:
        copied = io.BytesIO()
        return copied.getvalue() if await self.copy_archive(job_id, copied) else None

    async def copy_archive(self, job_id: JobId, into: BinaryIO) -> bool:
        key = as_uuid(job_id)
        if key is None:
            return False
        # One snapshot: the header found is the blocks read, even if the job ends meanwhile.
        async with self._db.transaction() as conn:
            if await conn.fetchval("SELECT 1 FROM job_archives WHERE job_id = $1", key) is None:
                return False
            async for row in conn.cursor(
                "SELECT data FROM job_archive_blocks WHERE job_id = $1 ORDER BY block",
                key,
                prefetch=1,
            ):
                await asyncio.to_thread(into.write, row["data"])
        return True

    async def delete_archive(self, job_id: JobId) -> None:
        key = as_uuid(job_id)
        if key is not None:
            await self._db.execute("DELETE FROM job_archives WHERE job_id = $1", key)

    async def change_counter(self) -> int:
        value = await self._db.fetch_value(
            "SELECT hashtextextended(pg_current_snapshot()::text, 0)"
        )
        return int(value)

    async def installation_id(self) -> str:
        value = await self._db.fetch_value("SELECT value FROM meta WHERE key = 'installation_id'")
        assert value is not None, "migration 1 always writes the installation id"
        return str(value)

    async def session_secret(self) -> str:
        value = await self._db.fetch_value("SELECT value FROM meta WHERE key = 'session_secret'")
        assert value is not None, "schema step 4 always writes the session secret"
        return str(value)
