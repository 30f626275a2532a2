"""The `Repository` contract: every backend must pass these, written against the protocol only."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ci_common.auth import generate_api_key
from ci_common.errors import (
    ApiKeyNotFoundError,
    ConcurrentWriterError,
    ConflictError,
    JobNotFoundError,
    UserNotFoundError,
)
from ci_common.models import ApiKeyId, JobConclusion, JobId, JobStatus, User, UserId
from ci_common.repository import Repository

from .conftest import OpenRepository


async def make_user(repo: Repository, email: str = "ada@example.org") -> User:
    return await repo.create_user(name="Ada", email=email)


# --- jobs -------------------------------------------------------------------------------------


async def test_new_job_is_queued_with_its_archive(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"PK-zip-bytes")

    assert job.status is JobStatus.QUEUED
    assert job.conclusion is None and job.success is None and job.exit_code is None
    assert job.started_at is None and job.finished_at is None
    assert job.last_log_seq == 0 and job.archive_bytes == len(b"PK-zip-bytes")
    assert await repo.get_archive(job.id) == b"PK-zip-bytes"
    assert (await repo.get_job(job.id)) == job


async def test_unknown_job_is_not_found(repo: Repository) -> None:
    with pytest.raises(JobNotFoundError):
        await repo.get_job(JobId("00000000-0000-4000-8000-000000000000"))


async def test_list_jobs_newest_first_filtered_by_user_and_status(repo: Repository) -> None:
    ada, bob = await make_user(repo), await make_user(repo, "bob@example.org")
    first = await repo.create_job(user_id=ada.id, archive=b"1")
    second = await repo.create_job(user_id=ada.id, archive=b"2")
    await repo.create_job(user_id=bob.id, archive=b"3")
    await repo.mark_running(first.id, container_id=None)

    assert [j.id for j in await repo.list_jobs(user_id=ada.id)] == [second.id, first.id]
    assert [j.id for j in await repo.list_jobs(user_id=ada.id, limit=1)] == [second.id]
    running = await repo.list_jobs(user_id=ada.id, status=JobStatus.RUNNING)
    assert [j.id for j in running] == [first.id]
    assert len(await repo.list_jobs()) == 3


async def test_active_jobs_oldest_first_without_completed(repo: Repository) -> None:
    user = await make_user(repo)
    jobs = [await repo.create_job(user_id=user.id, archive=b"x") for _ in range(3)]
    await repo.complete_job(jobs[1].id, conclusion=JobConclusion.ERROR, error="boom")

    assert [j.id for j in await repo.list_active_jobs()] == [jobs[0].id, jobs[2].id]


async def test_get_jobs_returns_only_existing(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    found = await repo.get_jobs([job.id, JobId("nope")])
    assert [j.id for j in found] == [job.id]
    assert await repo.get_jobs([]) == []


async def test_running_then_completed_records_everything(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")

    assert await repo.mark_running(job.id, container_id=None)
    await repo.set_container(job.id, "c0ffee")
    running = await repo.get_job(job.id)
    assert running.status is JobStatus.RUNNING and running.started_at is not None
    assert running.container_id == "c0ffee"

    assert await repo.complete_job(job.id, conclusion=JobConclusion.FAILURE, exit_code=1)
    done = await repo.get_job(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.conclusion is JobConclusion.FAILURE and done.success is False
    assert done.exit_code == 1 and done.finished_at is not None


async def test_transitions_happen_once(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")

    assert await repo.mark_running(job.id, container_id=None)
    assert not await repo.mark_running(job.id, container_id=None)
    assert await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    assert not await repo.complete_job(job.id, conclusion=JobConclusion.ERROR, error="late")
    assert not await repo.mark_running(job.id, container_id=None)
    assert (await repo.get_job(job.id)).conclusion is JobConclusion.SUCCESS


async def test_two_concurrent_claimers_one_wins(open_repo: OpenRepository) -> None:
    first, second = await open_repo(), await open_repo()
    user = await make_user(first)
    jobs = [await first.create_job(user_id=user.id, archive=b"x") for _ in range(20)]

    for job in jobs:
        wins = await asyncio.gather(
            first.mark_running(job.id, container_id=None),
            second.mark_running(job.id, container_id=None),
        )
        assert sorted(wins) == [False, True]


async def test_two_concurrent_finishers_one_wins(open_repo: OpenRepository) -> None:
    first, second = await open_repo(), await open_repo()
    user = await make_user(first)
    job = await first.create_job(user_id=user.id, archive=b"x")
    await first.mark_running(job.id, container_id=None)

    wins = await asyncio.gather(
        first.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0),
        second.complete_job(job.id, conclusion=JobConclusion.CANCELLED),
    )
    assert sorted(wins) == [False, True]


async def test_cancel_queued_job_ends_it_at_once(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")

    cancelled = await repo.request_cancel(job.id)
    assert cancelled.status is JobStatus.COMPLETED
    assert cancelled.conclusion is JobConclusion.CANCELLED
    assert cancelled.cancel_requested and cancelled.finished_at is not None
    assert not await repo.mark_running(job.id, container_id=None)
    assert await repo.request_cancel(job.id) == cancelled  # idempotent


async def test_cancel_running_job_flags_it_for_the_controller(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    await repo.mark_running(job.id, container_id=None)

    flagged = await repo.request_cancel(job.id)
    assert flagged.status is JobStatus.RUNNING and flagged.cancel_requested
    assert await repo.request_cancel(job.id) == flagged


async def test_cancel_completed_job_changes_nothing(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    before = await repo.get_job(job.id)

    assert await repo.request_cancel(job.id) == before


async def test_cancel_unknown_job_is_not_found(repo: Repository) -> None:
    with pytest.raises(JobNotFoundError):
        await repo.request_cancel(JobId("missing"))


async def test_archive_deleted_when_no_longer_needed(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    await repo.delete_archive(job.id)
    assert await repo.get_archive(job.id) is None
    await repo.delete_archive(job.id)  # twice is fine


async def test_an_archive_streams_in_from_a_file_and_out_into_one(repo: Repository) -> None:
    """Blocks both ways: an archive larger than any block arrives byte for byte."""
    user = await make_user(repo)
    archive = bytes(range(256)) * 4099  # about 1 MiB, not a multiple of any block size
    job = await repo.create_job(user_id=user.id, archive=io.BytesIO(archive))
    assert job.archive_bytes == len(archive)

    copied = io.BytesIO()
    assert await repo.copy_archive(job.id, copied) is True
    assert copied.getvalue() == archive == await repo.get_archive(job.id)

    await repo.delete_archive(job.id)
    nothing = io.BytesIO()
    assert await repo.copy_archive(job.id, nothing) is False
    assert nothing.getvalue() == b""


async def test_an_empty_archive_round_trips(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"")
    copied = io.BytesIO()
    assert await repo.copy_archive(job.id, copied) is True
    assert copied.getvalue() == b"" and job.archive_bytes == 0


async def test_a_job_for_an_unknown_user_stores_nothing(repo: Repository) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 -- each backend's integrity error
        await repo.create_job(user_id=UserId("user-999"), archive=io.BytesIO(b"zip"))
    assert await repo.list_jobs() == []


# --- logs -------------------------------------------------------------------------------------


async def test_log_chunks_get_increasing_seq_and_read_after(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")

    chunks = [await repo.append_log(job.id, f"line {i}\n", cursor=f"c{i}") for i in range(1, 6)]
    assert [c.seq for c in chunks] == [1, 2, 3, 4, 5]

    assert [c.data for c in await repo.read_logs(job.id)] == [f"line {i}\n" for i in range(1, 6)]
    assert [c.seq for c in await repo.read_logs(job.id, after_seq=3)] == [4, 5]
    assert [c.seq for c in await repo.read_logs(job.id, after_seq=1, limit=2)] == [2, 3]
    assert await repo.read_logs(job.id, after_seq=5) == []

    stored = await repo.get_job(job.id)
    assert stored.last_log_seq == 5 and stored.log_cursor == "c5"
    assert stored.log_bytes == sum(len(f"line {i}\n") for i in range(1, 6))


async def test_log_pages_are_bounded_by_bytes(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    other = await repo.create_job(user_id=user.id, archive=b"x")
    sizes = [3, 4, 10, 1, 1, 1, 2]
    for n, size in enumerate(sizes):
        await repo.append_log(job.id, "é" * (size // 2) + "x" * (size % 2), cursor=None)
        await repo.append_log(other.id, f"other {n}", cursor=None)

    async def page(after: int, max_bytes: int, limit: int | None = None) -> list[int]:
        chunks = await repo.read_logs(job.id, after_seq=after, max_bytes=max_bytes, limit=limit)
        return [chunk.seq for chunk in chunks]

    # Sizes count UTF-8 bytes ("é" is two); a page stops before the chunk that would overflow.
    assert await page(0, 7) == [1, 2]
    assert await page(0, 6) == [1]
    assert await page(2, 5) == [3]  # a chunk over the budget still comes, alone
    assert await page(3, 5) == [4, 5, 6, 7]
    assert await page(3, 2) == [4, 5]
    assert await page(3, 100, limit=2) == [4, 5]
    assert await page(0, 10**9) == list(range(1, 8))
    assert await page(7, 100) == []

    # Paging by bytes reads every chunk exactly once, in order.
    seen: list[int] = []
    while chunks := await repo.read_logs(job.id, after_seq=seen[-1] if seen else 0, max_bytes=8):
        seen += [chunk.seq for chunk in chunks]
    assert seen == list(range(1, 8))


async def test_logs_are_per_job(repo: Repository) -> None:
    user = await make_user(repo)
    one = await repo.create_job(user_id=user.id, archive=b"x")
    two = await repo.create_job(user_id=user.id, archive=b"x")
    await repo.append_log(one.id, "a", cursor=None)
    assert (await repo.append_log(two.id, "b", cursor=None)).seq == 1
    assert [c.data for c in await repo.read_logs(two.id)] == ["b"]


async def test_append_without_cursor_keeps_the_last_one(repo: Repository) -> None:
    user = await make_user(repo)
    job = await repo.create_job(user_id=user.id, archive=b"x")
    await repo.append_log(job.id, "a", cursor="kept")
    await repo.append_log(job.id, "note", cursor=None)
    assert (await repo.get_job(job.id)).log_cursor == "kept"


async def test_concurrent_appends_from_two_writers_never_share_a_seq(
    open_repo: OpenRepository,
) -> None:
    first, second = await open_repo(), await open_repo()
    user = await make_user(first)
    job = await first.create_job(user_id=user.id, archive=b"x")

    await asyncio.gather(
        *(first.append_log(job.id, f"a{i}", cursor=None) for i in range(25)),
        *(second.append_log(job.id, f"b{i}", cursor=None) for i in range(25)),
    )
    assert [c.seq for c in await first.read_logs(job.id)] == list(range(1, 51))


async def test_two_writers_each_appending_after_the_seq_they_know_never_both_store(
    open_repo: OpenRepository,
) -> None:
    """Two controllers following one job (one lost its lock and has not noticed): each appends
    after the last seq it stored, so when both try, one stores and the other is told."""
    first, second = await open_repo(), await open_repo()
    user = await make_user(first)
    job = await first.create_job(user_id=user.id, archive=b"x")
    await first.append_log(job.id, "both saw this\n", cursor="c1", after_seq=0)

    await first.append_log(job.id, "line 2\n", cursor="c2", after_seq=1)
    with pytest.raises(ConcurrentWriterError):
        await second.append_log(job.id, "line 2\n", cursor="c2", after_seq=1)

    stored = await first.get_job(job.id)
    assert [c.data for c in await first.read_logs(job.id)] == ["both saw this\n", "line 2\n"]
    assert (stored.last_log_seq, stored.log_cursor) == (2, "c2")
    with pytest.raises(JobNotFoundError):  # a missing job stays "not found"
        await first.append_log(JobId(str(uuid.uuid4())), "x", cursor=None, after_seq=0)


async def test_append_to_unknown_job_is_not_found(repo: Repository) -> None:
    with pytest.raises(JobNotFoundError):
        await repo.append_log(JobId("missing"), "x", cursor=None)


async def test_change_counter_moves_when_another_connection_commits(
    open_repo: OpenRepository,
) -> None:
    watcher, writer = await open_repo(), await open_repo()
    user = await make_user(writer)
    before = await watcher.change_counter()
    await writer.create_job(user_id=user.id, archive=b"x")
    assert await watcher.change_counter() != before


async def test_installation_id_is_stable(open_repo: OpenRepository) -> None:
    first, second = await open_repo(), await open_repo()
    installation = await first.installation_id()
    assert installation and await second.installation_id() == installation


# --- users and keys ---------------------------------------------------------------------------


async def test_users_create_get_list_and_deactivate(repo: Repository) -> None:
    ada = await make_user(repo)
    assert ada.active and ada.email == "ada@example.org"
    assert await repo.get_user(ada.id) == ada
    assert await repo.get_user_by_email("ada@example.org") == ada
    bob = await make_user(repo, "bob@example.org")
    assert [u.id for u in await repo.list_users()] == [ada.id, bob.id]

    assert not (await repo.set_user_active(ada.id, active=False)).active
    assert (await repo.set_user_active(ada.id, active=True)).active


async def test_duplicate_email_is_a_conflict_whatever_the_case(repo: Repository) -> None:
    await make_user(repo)
    with pytest.raises(ConflictError, match="already exists"):
        await make_user(repo, "ADA@example.org")


async def test_unknown_user_is_not_found(repo: Repository) -> None:
    with pytest.raises(UserNotFoundError):
        await repo.get_user(UserId("user-42"))
    with pytest.raises(UserNotFoundError):
        await repo.get_user_by_email("nobody@example.org")
    with pytest.raises(UserNotFoundError):
        await repo.set_user_active(UserId("user-42"), active=False)


async def test_api_keys_are_found_by_hash_and_revoked_once(repo: Repository) -> None:
    user = await make_user(repo)
    new_key = generate_api_key()
    expires = datetime.now(UTC) + timedelta(days=1)
    key = await repo.create_api_key(
        user_id=user.id,
        name="laptop",
        key_hash=new_key.key_hash,
        prefix=new_key.prefix,
        expires_at=expires,
    )
    assert key.prefix == new_key.prefix and key.revoked_at is None
    assert key.expires_at == expires

    found = await repo.find_api_key(new_key.key_hash)
    assert found is not None and found[0].id == key.id and found[1].id == user.id
    assert await repo.find_api_key("0" * 64) is None

    used = datetime.now(UTC)
    await repo.touch_api_key(key.id, used_at=used)
    assert (await repo.list_api_keys(user_id=user.id))[0].last_used_at == used

    revoked = await repo.revoke_api_key(key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(ConflictError, match="revoked already"):
        await repo.revoke_api_key(key.id)
    with pytest.raises(ApiKeyNotFoundError):
        await repo.revoke_api_key(ApiKeyId("key-999"))


async def test_key_for_unknown_user_is_refused(repo: Repository) -> None:
    new_key = generate_api_key()
    with pytest.raises(UserNotFoundError):
        await repo.create_api_key(
            user_id=UserId("user-7"),
            name="x",
            key_hash=new_key.key_hash,
            prefix=new_key.prefix,
            expires_at=None,
        )


async def test_list_keys_filters_by_user(repo: Repository) -> None:
    ada, bob = await make_user(repo), await make_user(repo, "bob@example.org")
    for user in (ada, bob, ada):
        k = generate_api_key()
        await repo.create_api_key(
            user_id=user.id, name="k", key_hash=k.key_hash, prefix=k.prefix, expires_at=None
        )
    assert len(await repo.list_api_keys()) == 3
    assert [k.user_id for k in await repo.list_api_keys(user_id=ada.id)] == [ada.id, ada.id]


# --- dashboard: admins and the session secret -------------------------------------------------


async def test_admins_are_made_at_creation_or_later_and_read_back(repo: Repository) -> None:
    plain = await make_user(repo)
    admin = await repo.create_user(name="Root", email="root@example.org", is_admin=True)

    assert (plain.is_admin, admin.is_admin) == (False, True)
    assert (await repo.set_user_admin(plain.id, is_admin=True)).is_admin is True
    assert (await repo.set_user_admin(admin.id, is_admin=False)).is_admin is False
    assert {(user.email, user.is_admin) for user in await repo.list_users()} == {
        ("ada@example.org", True),
        ("root@example.org", False),
    }
    with pytest.raises(UserNotFoundError):
        await repo.set_user_admin(UserId("00000000-0000-4000-8000-000000000000"), is_admin=True)
    with pytest.raises(UserNotFoundError):
        await repo.set_user_admin(UserId("not-a-uuid"), is_admin=True)


async def test_the_session_secret_is_random_and_shared_by_every_connection(
    open_repo: OpenRepository,
) -> None:
    first, second = await open_repo(), await open_repo()

    secret = await first.session_secret()

    assert len(secret) == 64 and int(secret, 16)
    assert await second.session_secret() == secret
