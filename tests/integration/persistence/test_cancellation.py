"""Cancellation and a held write lock never leave the connection inside a transaction.

aiosqlite runs statements on a thread, so a cancelled `BEGIN IMMEDIATE` still runs later;
before issue 9 that left the connection in a transaction nobody owned, and every later write
failed with "cannot start a transaction within a transaction". These tests hold SQLite's write
lock from a second, plain sqlite3 connection, exactly as another process would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_common.errors import DatabaseUnavailableError
from ci_common.models import Job
from ci_persistence import SqliteRepository, open_repository
from ci_persistence.database import BUSY_TIMEOUT_MS, SqliteDatabase


class LockHolder:
    """Another process's connection holding the write lock until `release()`."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self._conn.in_transaction:
            self._conn.rollback()
        self._conn.close()


@pytest.fixture
async def repo(tmp_path: Path) -> Iterator[SqliteRepository]:
    repository = await open_repository(tmp_path / "ci.db")
    yield repository  # pyright: ignore[reportReturnType] -- an async generator fixture
    await repository.close()


async def new_job(repo: SqliteRepository) -> Job:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    return await repo.create_job(user_id=user.id, archive=b"zip")


async def started(task: asyncio.Task[object]) -> None:
    """Let `task` run until it waits on the database thread (it cannot finish: lock held)."""
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert not task.done()


async def test_a_write_cancelled_while_waiting_for_the_lock_completes_once(
    repo: SqliteRepository, tmp_path: Path
) -> None:
    job = await new_job(repo)
    holder = LockHolder(tmp_path / "ci.db")
    try:
        task = asyncio.create_task(repo.append_log(job.id, "one\n", cursor="c1"))
        await started(task)  # pyright: ignore[reportArgumentType]
        task.cancel()
    finally:
        holder.release()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The write was under way, so it finished; the connection is usable for the next one.
    await repo.append_log(job.id, "two\n", cursor="c2")
    chunks = await repo.read_logs(job.id)
    assert [(c.seq, c.data) for c in chunks] == [(1, "one\n"), (2, "two\n")]
    assert (await repo.get_job(job.id)).log_cursor == "c2"


async def test_a_transaction_cancelled_during_begin_is_rolled_back(tmp_path: Path) -> None:
    db = await SqliteDatabase.open(tmp_path / "ci.db")
    holder = LockHolder(tmp_path / "ci.db")

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")

    try:
        task = asyncio.create_task(write())
        await started(task)  # pyright: ignore[reportArgumentType]
        task.cancel()
    finally:
        holder.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not db.conn.in_transaction
    assert await db.fetch_one("SELECT value FROM meta WHERE key = 'k'") is None
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert (await db.fetch_one("SELECT value FROM meta WHERE key = 'k'"))["value"] == "v"  # pyright: ignore[reportOptionalSubscript]
    await db.close()


async def test_a_connection_left_inside_a_transaction_recovers_on_next_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = await SqliteDatabase.open(tmp_path / "ci.db")
    await db.conn.execute("BEGIN IMMEDIATE")  # what a lost BEGIN used to leave behind
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert not db.conn.in_transaction
    assert "left inside a transaction" in caplog.text
    # Another process can write again: the stray transaction no longer holds the lock.
    other = sqlite3.connect(tmp_path / "ci.db", timeout=1)
    other.execute("INSERT INTO meta (key, value) VALUES ('other', 'v')")
    other.commit()
    other.close()
    await db.close()


async def test_a_lock_held_too_long_is_database_unavailable_then_passes(tmp_path: Path) -> None:
    db = await SqliteDatabase.open(tmp_path / "ci.db")
    holder = LockHolder(tmp_path / "ci.db")
    try:
        with pytest.raises(DatabaseUnavailableError, match="database is locked"):
            await db.check_writable()
    finally:
        holder.release()
    await db.check_writable()
    assert not db.conn.in_transaction
    # The probe's short busy timeout was put back for every other statement.
    row = await db.fetch_one("PRAGMA busy_timeout")
    assert row is not None and row[0] == BUSY_TIMEOUT_MS
    assert await db.fetch_one("SELECT value FROM meta WHERE key = 'health_probe'") is None
    await db.close()
