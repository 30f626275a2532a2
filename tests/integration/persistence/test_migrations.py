"""Schema migrations: from nothing, from an older schema in place, and refusing a newer one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from ci_common.errors import StorageError
from ci_common.models import JobId
from ci_persistence import SCHEMA_VERSION, migrate, open_repository
from ci_persistence.migrations import MIGRATIONS


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_empty_database_is_migrated_to_the_latest(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ci.db"
    repo = await open_repository(path)
    await repo.close()
    assert user_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_version_1_database_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=1) == 1
        await conn.execute(
            "INSERT INTO users (name, email, created_at) VALUES ('Ada', 'ada@x.org', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )
        await conn.execute(
            "INSERT INTO jobs (id, user_id, status, created_at) VALUES ('old-job', 1, 'running', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )
        for seq in (1, 2):
            await conn.execute(
                "INSERT INTO log_chunks (job_id, seq, data, created_at) VALUES "
                "('old-job', ?, 'abc', '2026-01-01T00:00:00.000000+00:00')",
                (seq,),
            )

    repo = await open_repository(path)
    try:
        job = await repo.get_job(JobId("old-job"))
        assert job.last_log_seq == 2 and job.log_bytes == 6 and job.archive_bytes == 0
        assert (await repo.append_log(job.id, "more", cursor=None)).seq == 3
        assert (await repo.get_user_by_email("ada@x.org")).name == "Ada"
    finally:
        await repo.close()
    assert user_version(path) == SCHEMA_VERSION


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this code"):
        await open_repository(path)


async def test_two_processes_opening_a_fresh_database_both_succeed(tmp_path: Path) -> None:
    import asyncio

    repos = await asyncio.gather(*(open_repository(tmp_path / "ci.db") for _ in range(4)))
    ids = {await repo.installation_id() for repo in repos}
    for repo in repos:
        await repo.close()
    assert len(ids) == 1


async def test_unusable_path_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="CI_DB_PATH"):
        await open_repository(blocker / "ci.db")


async def test_jobs_from_before_job_options_read_as_none_asked(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=3) == 3
        await conn.execute(
            "INSERT INTO users (name, email, created_at) VALUES ('Ada', 'ada@x.org', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )
        await conn.execute(
            "INSERT INTO jobs (id, user_id, status, created_at) VALUES ('old-job', 1, 'queued', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )

    repo = await open_repository(path)
    try:
        job = await repo.get_job(JobId("old-job"))
        assert (job.pytest_args, job.env, job.project, job.git) == ((), {}, None, None)
        assert [j.id for j in await repo.list_jobs(project="anything")] == []
    finally:
        await repo.close()


async def test_schema_4_database_gets_uuid_user_and_key_ids_with_every_reference_kept(
    tmp_path: Path,
) -> None:
    """The committed fixture was written by the code before UUIDs (integer ids)."""
    import shutil
    import uuid

    from ci_common.auth import hash_api_key

    fixtures = Path(__file__).parent / "fixtures"
    path = tmp_path / "ci.db"
    shutil.copy(fixtures / "v4_integer_ids.db", path)
    assert user_version(path) == 4

    repo = await open_repository(path)
    try:
        users = {user.email: user for user in await repo.list_users()}
        ada, bob = users["ada@example.org"], users["bob@example.org"]
        for user in (ada, bob):
            assert str(uuid.UUID(user.id)) == user.id
        assert (ada.name, ada.active, bob.active) == ("Ada Lovelace", True, False)

        found = await repo.find_api_key(
            hash_api_key("ci_fixture-ada-live-key-000000000000000000000")
        )
        assert found is not None and found[1] == ada and found[0].revoked_at is None
        found = await repo.find_api_key(
            hash_api_key("ci_fixture-bob-key-00000000000000000000000000")
        )
        assert found is not None and found[1] == bob
        keys = {key.name: key for key in await repo.list_api_keys(user_id=ada.id)}
        assert set(keys) == {"laptop", "old"} and keys["old"].revoked_at is not None
        assert all(str(uuid.UUID(key.id)) == key.id for key in keys.values())

        adas = await repo.list_jobs(user_id=ada.id)
        assert len(adas) == 2 and len(await repo.list_jobs(user_id=bob.id)) == 1
        logged = next(job for job in adas if job.project == "inventory")
        assert logged.pytest_args == ("-x",) and logged.last_log_seq == 2
        assert "".join(c.data for c in await repo.read_logs(logged.id)) == "line one\nline two\n"

        other = await repo.create_user(name="Cy", email="cy@example.org")
        assert (await repo.create_job(user_id=other.id, archive=b"x")).user_id == other.id
    finally:
        await repo.close()
    assert user_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        types = {row[1]: row[2] for row in conn.execute("PRAGMA table_info(jobs)")}
        assert types["user_id"] == "TEXT"
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert {"api_keys_user", "jobs_user_created", "jobs_active"} <= indexes


async def test_jobs_from_before_python_versions_read_as_the_default(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=4) == 4
        await conn.execute(
            "INSERT INTO users (name, email, created_at) VALUES ('Ada', 'ada@x.org', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )
        await conn.execute(
            "INSERT INTO jobs (id, user_id, status, created_at) VALUES ('old-job', 1, 'queued', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )

    repo = await open_repository(path)
    try:
        assert (await repo.get_job(JobId("old-job"))).python is None
        assert await repo.list_runtimes() == []
    finally:
        await repo.close()


async def test_users_from_before_admins_are_not_admins_and_a_session_secret_appears(
    tmp_path: Path,
) -> None:
    before_admins = next(
        version
        for version, step in enumerate(MIGRATIONS)
        if isinstance(step, str) and "is_admin" in step
    )
    path = tmp_path / "ci.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=before_admins) == before_admins
        await conn.execute(
            "INSERT INTO users (id, name, email, created_at) VALUES "
            "('0b6f5a4e-2a39-4b4e-9a55-6f1d2c3b4a51', 'Ada', 'ada@x.org', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )

    repo = await open_repository(path)
    try:
        [ada] = await repo.list_users()
        assert ada.is_admin is False
        assert (await repo.set_user_admin(ada.id, is_admin=True)).is_admin is True
        secret = await repo.session_secret()
        assert len(secret) == 64 and int(secret, 16)
    finally:
        await repo.close()
    again = await open_repository(path)
    try:
        assert await again.session_secret() == secret, "the secret outlives a restart"
    finally:
        await again.close()
