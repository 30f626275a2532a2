"""The PostgreSQL backend's own behaviour: migrations under concurrent starts, refusing what it
cannot use in one line, unavailability as `DatabaseUnavailableError`, the controller's lock."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from ci_common.errors import DatabaseUnavailableError, StorageError
from ci_common.models import JobId
from ci_persistence import DatabaseLocation, open_repository_at
from ci_persistence.postgres import (
    AdvisoryLock,
    DatabaseLockHeldError,
    PostgresRepository,
    open_postgres_repository,
)
from ci_persistence.postgres.migrations import SCHEMA_VERSION, migrate


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    repos = await asyncio.gather(*(open_postgres_repository(postgres_url) for _ in range(4)))
    try:
        assert len({await repo.installation_id() for repo in repos}) == 1
    finally:
        for repo in repos:
            await repo.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [row["version"] for row in versions] == list(range(1, SCHEMA_VERSION + 1))


async def test_a_database_newer_than_the_code_is_refused(postgres_url: str) -> None:
    repo = await open_postgres_repository(postgres_url)
    await repo.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)", SCHEMA_VERSION + 1
        )
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="newer than this code"):
        await open_postgres_repository(postgres_url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://ci@127.0.0.1/ci", "must look like postgresql://"),
        ("postgresql://ci@127.0.0.1:port/ci", "not a valid URL"),
    ],
)
async def test_a_bad_url_is_one_line_saying_what_to_fix(url: str, says: str) -> None:
    with pytest.raises(StorageError, match=says) as raised:
        await open_repository_at(DatabaseLocation(path=Path("unused.db"), url=url))
    assert "\n" not in str(raised.value)


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    url = f"postgresql://ci:s3cret@127.0.0.1:{closed_port()}/ci"
    with pytest.raises(StorageError, match="cannot connect to the database") as raised:
        await open_postgres_repository(url)
    message = str(raised.value)
    assert "s3cret" not in message and "ci:***@127.0.0.1" in message
    assert "check CI_DATABASE_URL" in message and "\n" not in message


async def test_a_wrong_password_or_missing_database_is_refused_in_one_line(
    postgres_url: str,
) -> None:
    wrong = postgres_url.replace("://ci:", "://ci:wrong", 1)
    with pytest.raises(StorageError, match="password authentication failed"):
        await open_postgres_repository(wrong)
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StorageError, match="does not exist"):
        await open_postgres_repository(missing)


async def test_a_connection_lost_mid_query_is_unavailability_then_recovered(
    postgres_url: str,
) -> None:
    repo = await open_postgres_repository(postgres_url)
    admin = await asyncpg.connect(postgres_url)
    try:
        async with admin.transaction():  # the query waits on this lock until it is killed
            await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            waiting = asyncio.create_task(repo.list_users())
            await _lock_waiter(admin)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            with pytest.raises(DatabaseUnavailableError, match="try again"):
                await waiting
        assert await repo.list_users() == []  # a new connection next time
    finally:
        await admin.close()
        await repo.close()


async def _lock_waiter(admin: asyncpg.Connection) -> None:
    """Poll until a session of this database waits on a lock (within 5 s)."""
    for _ in range(250):
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the query never waited on the lock")


async def test_health_check_reports_a_locked_database(postgres_url: str) -> None:
    repo = await open_postgres_repository(postgres_url)
    holder = await asyncpg.connect(postgres_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseUnavailableError, match="cannot take a write"):
                await repo.check_writable()
        await repo.check_writable()
    finally:
        await holder.close()
        await repo.close()


async def test_only_one_holder_of_the_controller_lock(postgres_url: str) -> None:
    first = await AdvisoryLock.try_acquire(postgres_url, key=42, holder_hint="held")
    with pytest.raises(DatabaseLockHeldError, match="held"):
        await AdvisoryLock.try_acquire(postgres_url, key=42, holder_hint="held")
    await first.release()
    second = await AdvisoryLock.try_acquire(postgres_url, key=42, holder_hint="held")
    await second.release()


async def test_the_repository_says_where_it_is_without_the_password(postgres_url: str) -> None:
    repo = await open_repository_at(DatabaseLocation(path=Path("unused.db"), url=postgres_url))
    try:
        assert isinstance(repo, PostgresRepository)
        assert ":***@127.0.0.1" in repo.location and repo.location.endswith(
            postgres_url.rsplit("/", 1)[1]
        )
    finally:
        await repo.close()


async def test_a_cancelled_append_still_completes_and_leaves_nothing_open(
    postgres_url: str,
) -> None:
    """As on SQLite (test_cancellation): a write, once called, commits whole, even when its
    caller is cancelled while it waits for another transaction's row lock."""
    repo = await open_postgres_repository(postgres_url)
    admin = await asyncpg.connect(postgres_url)
    try:
        user = await repo.create_user(name="Ada", email="ada@example.org")
        job = await repo.create_job(user_id=user.id, archive=b"zip")
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", UUID(job.id))
            append = asyncio.create_task(repo.append_log(job.id, "kept", cursor="c1"))
            await _lock_waiter(admin)
            append.cancel()
        with pytest.raises(asyncio.CancelledError):
            await append

        assert [(c.seq, c.data) for c in await repo.read_logs(job.id)] == [(1, "kept")]
        assert (await repo.append_log(job.id, "next", cursor=None)).seq == 2
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
            )
            == 0
        )
    finally:
        await admin.close()
        await repo.close()


async def test_a_v1_database_upgrades_its_users_and_jobs_in_place(postgres_url: str) -> None:
    """The branch's first schema, with a user and a job, gains results, artifacts, admins and
    a session secret: nothing stored is lost, nobody becomes an admin by the upgrade."""
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await migrate(conn, target=1) == 1
        user_id = await conn.fetchval(
            "INSERT INTO users (id, name, email) VALUES (gen_random_uuid(), 'Ada', 'ada@x.org') "
            "RETURNING id"
        )
        job_id = await conn.fetchval(
            "INSERT INTO jobs (id, user_id, status) VALUES (gen_random_uuid(), $1, 'queued') "
            "RETURNING id",
            user_id,
        )
    finally:
        await conn.close()

    repo = await open_postgres_repository(postgres_url)
    try:
        [ada] = await repo.list_users()
        job = await repo.get_job(JobId(str(job_id)))
        assert ada.is_admin is False
        assert (job.tests_reported, job.rerun_node_ids, job.artifacts) == (0, (), ())
        assert len(await repo.session_secret()) == 64
    finally:
        await repo.close()
