"""Kept files stored in blocks and read back exactly; retention deletes old jobs with all
they stored, in small transactions, and the file shrinks back."""

from __future__ import annotations

import io
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg

from ci_common.models import JobConclusion, JobId
from ci_common.repository import Repository
from ci_common.test_results import TestOutcome, TestReport
from ci_persistence import DatabaseLocation, open_repository
from ci_persistence.artifacts import ARTIFACT_BLOCK_BYTES
from ci_persistence.database import to_text


async def read_whole(repo: Repository, job_id: JobId, path: str) -> bytes:
    blocks: list[bytes] = []
    while (block := await repo.read_artifact_block(job_id, path, len(blocks))) is not None:
        blocks.append(block)
    return b"".join(blocks)


async def test_a_kept_file_is_read_back_exactly_block_by_block(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"zip")
    content = os.urandom(2 * ARTIFACT_BLOCK_BYTES + 17)

    await repo.store_artifact(
        job.id, path="htmlcov/a.bin", size=len(content), content=io.BytesIO(content)
    )
    await repo.store_artifact(job.id, path="junit.xml", size=0, content=io.BytesIO(b""))

    assert [(a.path, a.size) for a in await repo.list_artifacts(job.id)] == [
        ("htmlcov/a.bin", len(content)),
        ("junit.xml", 0),
    ]
    assert await read_whole(repo, job.id, "htmlcov/a.bin") == content
    assert await read_whole(repo, job.id, "junit.xml") == b""
    assert await repo.get_artifact(job.id, "nope") is None


async def test_storing_a_file_again_replaces_it(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"zip")
    big = os.urandom(3 * ARTIFACT_BLOCK_BYTES)
    await repo.store_artifact(job.id, path="a", size=len(big), content=io.BytesIO(big))

    await repo.store_artifact(job.id, path="a", size=3, content=io.BytesIO(b"new"))

    assert [(a.path, a.size) for a in await repo.list_artifacts(job.id)] == [("a", 3)]
    assert await read_whole(repo, job.id, "a") == b"new"


async def sql(
    location: DatabaseLocation, statement: str, *args: object
) -> list[tuple[object, ...]]:
    """One statement straight on the test's database, of either backend (`?` placeholders)."""
    if location.url is None:
        with sqlite3.connect(location.path) as conn:
            return conn.execute(statement, args).fetchall()
    numbered = statement
    for index in range(len(args)):
        numbered = numbered.replace("?", f"${index + 1}", 1)
    conn = await asyncpg.connect(location.url)
    try:
        return [tuple(row) for row in await conn.fetch(numbered, *args)]
    finally:
        await conn.close()


async def backdate(location: DatabaseLocation, job_id: JobId, days: float) -> None:
    moment = datetime.now(UTC) - timedelta(days=days)
    if location.url is None:
        await sql(location, "UPDATE jobs SET finished_at = ? WHERE id = ?", to_text(moment), job_id)
    else:
        await sql(location, "UPDATE jobs SET finished_at = ? WHERE id = ?", moment, UUID(job_id))


async def rows(location: DatabaseLocation, table: str) -> int:
    [(count,)] = await sql(location, f"SELECT COUNT(*) FROM {table}")
    assert isinstance(count, int)
    return count


async def test_retention_deletes_old_completed_jobs_with_everything_they_stored(
    location: DatabaseLocation, repo: Repository
) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    old, recent, running = [
        await repo.create_job(user_id=user.id, archive=b"zip") for _ in range(3)
    ]
    for job in (old, recent):
        for index in range(250):
            await repo.append_log(job.id, f"line {index}\n", cursor=None)
        content = os.urandom(ARTIFACT_BLOCK_BYTES * 2)
        await repo.store_artifact(job.id, path="f", size=len(content), content=io.BytesIO(content))
        reports = [
            TestReport(nodeid=f"t.py::test_{index}", outcome=TestOutcome.PASSED, phase="call")
            for index in range(250)
        ]
        await repo.record_test_results(job.id, reports, cursor=None)
        await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    await repo.mark_running(running.id, container_id=None)
    await backdate(location, old.id, days=31)
    await backdate(location, recent.id, days=29)

    cutoff = datetime.now(UTC) - timedelta(days=30)
    deleted = await repo.delete_expired_jobs(finished_before=cutoff, batch_rows=100)

    assert deleted == [old.id]
    assert {job.id for job in await repo.list_jobs()} == {recent.id, running.id}
    assert await repo.read_logs(old.id) == []
    assert await repo.list_artifacts(old.id) == []
    assert await repo.get_archive(old.id) is None
    assert len(await repo.read_logs(recent.id)) == 250
    assert await rows(location, "artifact_blocks") == 2  # the recent job's
    assert await repo.list_test_results(old.id) == []
    assert await rows(location, "test_results") == 250
    assert await repo.delete_expired_jobs(finished_before=cutoff) == []


async def test_retention_gives_the_space_back(tmp_path: Path) -> None:
    """SQLite only: PostgreSQL's autovacuum reuses the space, `reclaim_space` does nothing."""
    path = tmp_path / "ci.db"
    location = DatabaseLocation(path=path)
    repo = await open_repository(path)
    user = await repo.create_user(name="Ada", email="ada@example.org")
    content = os.urandom(4 * 1024 * 1024)
    for _ in range(5):
        job = await repo.create_job(user_id=user.id, archive=b"zip")
        await repo.store_artifact(job.id, path="f", size=len(content), content=io.BytesIO(content))
        await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        await backdate(location, job.id, days=40)
    await repo.reclaim_space()
    full = path.stat().st_size
    assert full > 5 * len(content)

    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert len(await repo.delete_expired_jobs(finished_before=cutoff, batch_rows=3)) == 5
    await repo.reclaim_space()
    await repo.create_user(name="Bob", email="bob@example.org")

    assert path.stat().st_size < full / 5
    await repo.close()
