"""More of the `Repository` contract, on every backend (see conftest): what a submit asked of
its job, the ways jobs are found, log text of any kind, a job started over."""

from __future__ import annotations

from ci_common.job_options import JobOptions
from ci_common.models import GitInfo, JobConclusion, JobId
from ci_common.repository import Repository


async def test_a_jobs_options_are_stored_with_it_exactly(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    options = JobOptions(
        pytest_args=("-k", "not slow", "-x"),
        env={"ZED": "last", "ALPHA": "first", "EMPTY": ""},
        project="demo",
        git=GitInfo(commit="a" * 40, branch="main", dirty=True),
        python="3.13",
        extras=("test",),
        groups=(),
    )
    job = await repo.create_job(user_id=user.id, archive=b"zip", options=options)
    stored = await repo.get_job(job.id)

    assert stored == job
    assert stored.pytest_args == ("-k", "not slow", "-x")
    assert list(stored.env.items()) == [("ZED", "last"), ("ALPHA", "first"), ("EMPTY", "")]
    assert stored.git == options.git and stored.project == "demo" and stored.python == "3.13"
    assert (stored.extras, stored.groups) == (("test",), ())

    plain = await repo.create_job(user_id=user.id, archive=b"zip")
    assert (plain.pytest_args, plain.env, plain.git, plain.extras, plain.groups) == (
        (),
        {},
        None,
        None,
        None,
    )


async def test_jobs_are_listed_by_project_and_by_conclusion(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    demo = await repo.create_job(user_id=user.id, archive=b"1", options=JobOptions(project="demo"))
    other = await repo.create_job(user_id=user.id, archive=b"2", options=JobOptions(project="x"))
    await repo.complete_job(demo.id, conclusion=JobConclusion.FAILURE, exit_code=1)

    assert [j.id for j in await repo.list_jobs(project="demo")] == [demo.id]
    assert [j.id for j in await repo.list_jobs(user_id=user.id, project="x")] == [other.id]
    failed = await repo.list_jobs(conclusion=JobConclusion.FAILURE)
    assert [j.id for j in failed] == [demo.id]
    assert await repo.list_jobs(conclusion=JobConclusion.SUCCESS) == []


async def test_a_short_id_finds_the_users_jobs_starting_with_it(repo: Repository) -> None:
    ada = await repo.create_user(name="Ada", email="ada@example.org")
    bob = await repo.create_user(name="Bob", email="bob@example.org")
    jobs = [await repo.create_job(user_id=ada.id, archive=b"x") for _ in range(3)]
    bobs = await repo.create_job(user_id=bob.id, archive=b"x")
    job = jobs[0]

    assert await repo.find_job_ids(user_id=ada.id, prefix=job.id[:8]) == [job.id]
    assert await repo.find_job_ids(user_id=ada.id, prefix=job.id[:9]) == [job.id]  # with "-"
    assert await repo.find_job_ids(user_id=ada.id, prefix=job.id) == [job.id]
    assert await repo.find_job_ids(user_id=ada.id, prefix=bobs.id[:8]) == []
    every = await repo.find_job_ids(user_id=ada.id, prefix="", limit=10)
    assert every == sorted(j.id for j in jobs)
    assert await repo.find_job_ids(user_id=ada.id, prefix="", limit=2) == every[:2]
    assert await repo.find_job_ids(user_id=ada.id, prefix="zz") == []
    assert await repo.find_job_ids(user_id=ada.id, prefix=job.id + "0") == []


async def test_any_text_a_test_prints_comes_back_byte_for_byte(repo: Repository) -> None:
    """NUL, control characters, non-ASCII and astral characters: pytest's output is stored
    as written (PostgreSQL's text type cannot hold NUL, so its log data is bytes)."""
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"x")
    text = "nul:\x00 bell:\x07 esc:\x1b[31m é 漢字 🐍 \r\n"

    chunk = await repo.append_log(job.id, text, cursor=None)

    assert [c.data for c in await repo.read_logs(job.id)] == [text]
    assert [c.data for c in await repo.read_logs(job.id, max_bytes=1)] == [text]
    assert chunk.data == text
    assert (await repo.get_job(job.id)).log_bytes == len(text.encode())


async def test_a_running_job_is_started_over_once_more(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"x")
    assert await repo.restart_job(job.id) is None  # not running
    await repo.mark_running(job.id, container_id="c1")
    await repo.append_log(job.id, "a", cursor="cur")

    again = await repo.restart_job(job.id)

    assert again is not None and again.attempts == 2
    assert again.container_id is None and again.log_cursor is None
    assert await repo.restart_job(JobId("00000000-0000-4000-8000-000000000000")) is None
