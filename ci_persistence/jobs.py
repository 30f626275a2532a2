"""Jobs, their archives and their logs in SQLite (the `JobRepository` half).

Archives go in and out as streams, never whole in memory: `create_job` inserts a zero-filled
blob of the archive's size and fills it block by block with SQLite's incremental blob I/O,
and `copy_archive` reads it back the same way into a file. Both use a short-lived connection
of their own in a worker thread (aiosqlite has no blob API), so the shared connection is never
held for the copy; SQLite's locking and busy timeout order them with every other writer, as
for another process.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import uuid
from collections.abc import Generator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import BinaryIO

from ci_common.errors import DatabaseUnavailableError, JobNotFoundError
from ci_common.job_options import JobOptions
from ci_common.models import DEFAULT_ENGINE, Job, JobConclusion, JobId, JobStatus, UserId
from ci_persistence.columns import JOB_COLUMNS as _JOB_COLUMNS
from ci_persistence.database import (
    BUSY_TIMEOUT_MS,
    SqliteDatabase,
    from_text,
    now_text,
)
from ci_persistence.job_rows import job_from_columns, names_text
from ci_persistence.uncancellable import uncancellable

logger = logging.getLogger(__name__)

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
ARCHIVE_BLOCK_BYTES = 256 * 1024
COPY_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)


def job_from_row(row: sqlite3.Row) -> Job:
    return job_from_columns(row, moment=from_text)


class SqliteJobs:
    """Implements `ci_common.JobRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    @uncancellable
    async def create_job(
        self, *, user_id: UserId, archive: bytes | BinaryIO, options: JobOptions | None = None
    ) -> Job:
        source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
        try:
            job_id = await asyncio.to_thread(
                _insert_job, self._db.path, user_id, source, options or JobOptions()
            )
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"the database is unavailable ({exc}); try again in a few seconds"
            ) from exc
        return await self.get_job(JobId(job_id))

    async def get_job(self, job_id: JobId) -> Job:
        row = await self._db.fetch_one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise JobNotFoundError(job_id)
        return job_from_row(row)

    async def get_jobs(self, job_ids: Sequence[JobId]) -> list[Job]:
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        rows = await self._db.fetch_all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", job_ids
        )
        return [job_from_row(row) for row in rows]

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
        if conclusion is not None:
            clauses.append("conclusion = ?")
            params.append(conclusion.value)
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if project is not None:
            clauses.append("project = ?")
            params.append(project)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._db.fetch_all(
            f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id LIMIT ?",
            [*params, limit],
        )
        return [job_from_row(row) for row in rows]

    async def find_job_ids(self, *, user_id: UserId, prefix: str, limit: int = 2) -> list[JobId]:
        # A range on the primary key ("~" sorts after hex digits and "-"), not LIKE: an index
        # seek however many jobs the user has.
        rows = await self._db.fetch_all(
            "SELECT id FROM jobs WHERE id >= ? AND id < ? AND user_id = ? ORDER BY id LIMIT ?",
            (prefix, prefix + "~", user_id, limit),
        )
        return [JobId(row["id"]) for row in rows]

    async def list_active_jobs(self) -> list[Job]:
        rows = await self._db.fetch_all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN (?, ?) ORDER BY created_at, id",
            _ACTIVE,
        )
        return [job_from_row(row) for row in rows]

    async def mark_running(
        self, job_id: JobId, *, container_id: str | None, engine: str = DEFAULT_ENGINE
    ) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET status = ?, started_at = ?, container_id = ?, attempts = 1, "
            "engine = ? WHERE id = ? AND status = ?",
            (
                JobStatus.RUNNING.value,
                now_text(),
                container_id,
                engine,
                job_id,
                JobStatus.QUEUED.value,
            ),
        )
        return changed == 1

    async def requeue_job(self, job_id: JobId, *, engine: str) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET status = ?, started_at = NULL, engine = NULL, attempts = 0, "
            "log_cursor = NULL, results_cursor = NULL "
            "WHERE id = ? AND status = ? AND engine = ? AND container_id IS NULL",
            (JobStatus.QUEUED.value, job_id, JobStatus.RUNNING.value, engine),
        )
        return changed == 1

    async def restart_job(self, job_id: JobId) -> Job | None:
        changed = await self._db.execute(
            "UPDATE jobs SET container_id = NULL, log_cursor = NULL, results_cursor = NULL, "
            "attempts = attempts + 1 "
            "WHERE id = ? AND status = ?",
            (job_id, JobStatus.RUNNING.value),
        )
        return await self.get_job(job_id) if changed == 1 else None

    async def set_container(self, job_id: JobId, container_id: str) -> None:
        await self._db.execute(
            "UPDATE jobs SET container_id = ? WHERE id = ?", (container_id, job_id)
        )

    async def complete_job(
        self,
        job_id: JobId,
        *,
        conclusion: JobConclusion,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET status = ?, conclusion = ?, exit_code = ?, error = ?, "
            "finished_at = ? WHERE id = ? AND status IN (?, ?)",
            (
                JobStatus.COMPLETED.value,
                conclusion.value,
                exit_code,
                error,
                now_text(),
                job_id,
                *_ACTIVE,
            ),
        )
        return changed == 1

    @uncancellable
    async def request_cancel(self, job_id: JobId) -> Job:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET status = ?, conclusion = ?, finished_at = ?, "
                "cancel_requested = 1 WHERE id = ? AND status = ?",
                (
                    JobStatus.COMPLETED.value,
                    JobConclusion.CANCELLED.value,
                    now_text(),
                    job_id,
                    JobStatus.QUEUED.value,
                ),
            )
            await conn.execute(
                "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = ?",
                (job_id, JobStatus.RUNNING.value),
            )
        return await self.get_job(job_id)

    async def get_archive(self, job_id: JobId) -> bytes | None:
        row = await self._db.fetch_one("SELECT data FROM job_archives WHERE job_id = ?", (job_id,))
        return None if row is None else bytes(row["data"])

    async def copy_archive(self, job_id: JobId, into: BinaryIO) -> bool:
        # A side connection's blob can meet SQLITE_BUSY without its busy handler being asked
        # (seen right after another process was killed mid-write): retry briefly, then say so.
        for delay in COPY_RETRY_DELAYS:
            try:
                into.seek(0)
                into.truncate()
                return await asyncio.to_thread(_copy_archive, self._db.path, job_id, into)
            except sqlite3.OperationalError as exc:
                logger.warning("job %s: reading its upload failed (%s); retrying", job_id, exc)
                await asyncio.sleep(delay)
        try:
            return await asyncio.to_thread(_copy_archive, self._db.path, job_id, into)
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"cannot read the job's upload from the database ({exc}); the controller "
                "tries again at its next pass"
            ) from exc

    async def delete_archive(self, job_id: JobId) -> None:
        await self._db.execute("DELETE FROM job_archives WHERE job_id = ?", (job_id,))

    async def change_counter(self) -> int:
        row = await self._db.fetch_one("PRAGMA data_version")
        return int(row[0]) if row else 0

    async def installation_id(self) -> str:
        row = await self._db.fetch_one("SELECT value FROM meta WHERE key = 'installation_id'")
        assert row is not None, "migration 1 always writes the installation id"
        return str(row["value"])

    async def session_secret(self) -> str:
        row = await self._db.fetch_one("SELECT value FROM meta WHERE key = 'session_secret'")
        assert row is not None, "schema step 8 always writes the session secret"
        return str(row["value"])


@contextmanager
def _side_connection(path: Path) -> Generator[sqlite3.Connection]:
    """A connection of its own for one blob copy, configured like the shared one."""
    with closing(
        sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    ) as conn:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        yield conn


def _insert_job(path: Path, user_id: UserId, archive: BinaryIO, options: JobOptions) -> str:
    """The new job's id, its row and archive committed together. Blocking."""
    size = archive.seek(0, io.SEEK_END)
    archive.seek(0)
    job_id = str(uuid.uuid4())
    with _side_connection(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO jobs (id, user_id, status, created_at, archive_bytes, pytest_args, "
                "env, project, git, python, extras, dependency_groups, rerun_of, rerun_node_ids, "
                "artifacts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    user_id,
                    JobStatus.QUEUED.value,
                    now_text(),
                    size,
                    json.dumps(list(options.pytest_args)),
                    json.dumps(options.env),
                    options.project,
                    options.git.model_dump_json() if options.git else None,
                    options.python,
                    names_text(options.extras),
                    names_text(options.groups),
                    options.rerun_of,
                    json.dumps(list(options.rerun_node_ids)),
                    json.dumps(list(options.artifacts)),
                ),
            )
            rowid = conn.execute(
                "INSERT INTO job_archives (job_id, data) VALUES (?, zeroblob(?))", (job_id, size)
            ).lastrowid
            assert rowid is not None
            if size:
                with conn.blobopen("job_archives", "data", rowid, readonly=False) as blob:
                    while block := archive.read(ARCHIVE_BLOCK_BYTES):
                        blob.write(block)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return job_id


def _copy_archive(path: Path, job_id: JobId, into: BinaryIO) -> bool:
    """Write the stored archive into `into`; False when there is none. Blocking."""
    with _side_connection(path) as conn:
        conn.execute("BEGIN")  # one snapshot: the row found is the row read
        try:
            row = conn.execute(
                "SELECT rowid FROM job_archives WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return False
            with conn.blobopen("job_archives", "data", int(row[0])) as blob:
                while block := blob.read(ARCHIVE_BLOCK_BYTES):
                    into.write(block)
            return True
        finally:
            conn.execute("ROLLBACK")
