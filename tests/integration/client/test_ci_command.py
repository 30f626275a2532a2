"""The real `ci` command against the real server and a real SQLite database; the test plays
the controller through the repository. Every command, exit codes for each conclusion, live
output, and a stream that survives a server restart with no line missing or doubled."""

from __future__ import annotations

import asyncio
import io
import json
import random
import signal
import zipfile
from pathlib import Path

import pytest

from ci_common.models import JobConclusion, JobId, JobStatus
from ci_persistence import SqliteRepository

from .conftest import (
    SAMPLE,
    TIMEOUT,
    Account,
    Cli,
    RestartableServer,
    create_account,
    run_job,
    wait_for_job,
)

LINES = ["collected 2 items\n", "test_a.py::test_one PASSED\n", "2 passed in 0.01s\n"]


def project_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("requirements.txt", "")
        archive.writestr("test_a.py", "def test_one():\n    pass\n")
    return buffer.getvalue()


async def new_job(repo: SqliteRepository, account: Account) -> JobId:
    return (await repo.create_job(user_id=account.user_id, archive=project_zip())).id


async def read_line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    async with asyncio.timeout(TIMEOUT):
        return (await stream.readline()).decode()


async def test_submit_async_uploads_the_project(
    cli: Cli, repo: SqliteRepository, alice: Account
) -> None:
    result = await cli.run("submit", "test", str(SAMPLE), "--async")
    assert result.exit_code == 0, result.stderr
    job = await wait_for_job(repo, alice.user_id)
    assert result.stdout == f"Job submitted: {job.id}\n"
    assert job.status is JobStatus.QUEUED
    archive = await repo.get_archive(job.id)
    assert archive is not None
    with zipfile.ZipFile(io.BytesIO(archive)) as uploaded:
        assert sorted(uploaded.namelist()) == [
            "inventory.py",
            "pytest.ini",
            "requirements.txt",
            "tests/test_inventory.py",
        ]


@pytest.mark.parametrize(
    ("conclusion", "pytest_code", "exit_code", "message"),
    [
        (JobConclusion.SUCCESS, 0, 0, "passed"),
        (JobConclusion.FAILURE, 1, 1, "some tests failed"),
        (JobConclusion.FAILURE, 5, 5, "no tests were collected"),
        (JobConclusion.ERROR, None, 70, "could not run: pip could not install nosuchpackage"),
        (JobConclusion.TIMED_OUT, None, 124, "timed out"),
        (JobConclusion.CANCELLED, None, 130, "was cancelled"),
    ],
)
async def test_submit_follows_the_job_and_exits_with_its_code(
    cli: Cli,
    repo: SqliteRepository,
    alice: Account,
    conclusion: JobConclusion,
    pytest_code: int | None,
    exit_code: int,
    message: str,
) -> None:
    process = await cli.start("submit", "test", str(SAMPLE))
    job = await wait_for_job(repo, alice.user_id)
    error = "pip could not install nosuchpackage" if conclusion is JobConclusion.ERROR else None
    await run_job(
        repo, job.id, lines=LINES, conclusion=conclusion, exit_code=pytest_code, error=error
    )
    async with asyncio.timeout(TIMEOUT):
        stdout, stderr = await process.communicate()
    assert process.returncode == exit_code, stderr.decode()
    assert stdout.decode() == "".join(LINES)
    assert f"Job submitted: {job.id}" in stderr.decode()
    assert message in stderr.decode()


async def test_output_appears_before_the_job_ends(
    cli: Cli, repo: SqliteRepository, alice: Account
) -> None:
    process = await cli.start("submit", "test", str(SAMPLE))
    job = await wait_for_job(repo, alice.user_id)
    await repo.mark_running(job.id, container_id=None)
    await repo.append_log(job.id, "first line\n", cursor=None)
    assert await read_line(process.stdout) == "first line\n"
    await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    async with asyncio.timeout(TIMEOUT):
        await process.wait()
    assert process.returncode == 0


async def test_wait_replays_with_all_and_is_forward_only_without(
    cli: Cli, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    await run_job(repo, job_id, lines=LINES, conclusion=JobConclusion.FAILURE, exit_code=1)
    replay = await cli.run("wait", job_id, "--all")
    assert (replay.exit_code, replay.stdout) == (1, "".join(LINES))
    forward = await cli.run("wait", job_id)
    assert (forward.exit_code, forward.stdout) == (1, "")


async def test_a_stream_survives_a_server_restart_without_gaps_or_duplicates(
    cli: Cli, repo: SqliteRepository, alice: Account, server: RestartableServer
) -> None:
    job_id = await new_job(repo, alice)
    await repo.mark_running(job_id, container_id=None)
    process = await cli.start("wait", job_id, "--all")
    lines = [f"line {n}\n" for n in range(1, 10)]
    for line in lines[:3]:
        await repo.append_log(job_id, line, cursor=None)
    for line in lines[:3]:
        assert await read_line(process.stdout) == line
    await asyncio.to_thread(server.stop)
    for line in lines[3:6]:
        await repo.append_log(job_id, line, cursor=None)
    await asyncio.to_thread(server.start)
    for line in lines[6:]:
        await repo.append_log(job_id, line, cursor=None)
    await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    async with asyncio.timeout(TIMEOUT):
        rest, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "".join(lines[:3]) + rest.decode() == "".join(lines)
    assert f"Lost the stream of job {job_id}" in stderr.decode()


async def test_list_status_and_logs(cli: Cli, repo: SqliteRepository, alice: Account) -> None:
    done = await new_job(repo, alice)
    await run_job(repo, done, lines=LINES, conclusion=JobConclusion.SUCCESS, exit_code=0)
    queued = await new_job(repo, alice)

    table = await cli.run("list")
    assert table.exit_code == 0
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == [
        "ID",
        "PROJECT",
        "COMMIT",
        "BRANCH",
        "STATUS",
        "CONCLUSION",
        "TESTS",
        "CREATED",
        "DURATION",
    ]
    assert [row[:6] for row in rows[1:]] == [
        [queued[:8], "-", "-", "-", "queued", "-"],
        [done[:8], "-", "-", "-", "completed", "success"],
    ]
    as_json = await cli.run("list", "--json", "--status", "completed", "--limit", "5")
    assert [job["id"] for job in json.loads(as_json.stdout)] == [done]

    status = await cli.run("status", done[:8])
    assert status.exit_code == 0
    assert f"job:        {done}" in status.stdout
    assert "exit code:  0" in status.stdout
    assert json.loads((await cli.run("status", done, "--json")).stdout)["conclusion"] == "success"

    logs = await cli.run("logs", done)
    assert (logs.exit_code, logs.stdout) == (0, "".join(LINES))


async def test_cancel_a_queued_job(cli: Cli, repo: SqliteRepository, alice: Account) -> None:
    job_id = await new_job(repo, alice)
    result = await cli.run("cancel", job_id)
    assert result.exit_code == 0
    assert "is cancelled" in result.stderr
    job = await repo.get_job(job_id)
    assert job.conclusion is JobConclusion.CANCELLED
    again = await cli.run("cancel", job_id)
    assert again.exit_code == 0


async def test_another_users_job_is_not_found(cli: Cli, repo: SqliteRepository) -> None:
    bob = await create_account(repo, "bob")
    job_id = await new_job(repo, bob)
    for command in (["status", job_id], ["logs", job_id], ["wait", job_id], ["cancel", job_id]):
        result = await cli.run(*command)
        assert result.exit_code == 66, command
        assert "not found" in result.stderr


async def test_a_wrong_key_is_rejected_with_77(cli: Cli) -> None:
    result = await cli.run("list", env={"CI_API_KEY": "ci_" + "x" * 43})
    assert result.exit_code == 77
    assert "rejected the API key" in result.stderr


async def test_the_flag_beats_the_environment(cli: Cli, alice: Account) -> None:
    result = await cli.run("list", "--api-key", "ci_" + "y" * 43)
    assert result.exit_code == 77
    fixed = await cli.run("--api-key", alice.key, "list", env={"CI_API_KEY": "ci_bad"})
    assert fixed.exit_code == 0


async def test_the_config_file_is_used_when_nothing_else_is_given(
    cli: Cli, server: RestartableServer, alice: Account
) -> None:
    env = {"CI_SERVER_URL": "", "CI_API_KEY": ""}
    assert (await cli.run("config", "set", "server_url", server.url, env=env)).exit_code == 0
    assert (await cli.run("config", "set", "api_key", alice.key, env=env)).exit_code == 0
    result = await cli.run("list", env=env)
    assert result.exit_code == 0, result.stderr
    show = await cli.run("config", "show", env=env)
    assert alice.key not in show.stdout
    assert "(config file)" in show.stdout


async def test_an_unreachable_server_exits_69(cli: Cli, server: RestartableServer) -> None:
    await asyncio.to_thread(server.stop)
    result = await cli.run("list")
    assert result.exit_code == 69
    assert f"cannot reach the CI server at {server.url}" in result.stderr


async def test_an_upload_over_the_servers_limit_is_refused_with_65(
    cli: Cli, server: RestartableServer, tmp_path: Path
) -> None:
    # The client's default is 50 MiB; this server only takes 1 MiB, and says so (/limits).
    await asyncio.to_thread(server.stop)
    server.settings = server.settings.model_copy(update={"max_upload_mb": 1})
    await asyncio.to_thread(server.start)
    project = tmp_path / "big"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "blob.bin").write_bytes(random.Random(0).randbytes(2 * 1024 * 1024))
    result = await cli.run("submit", "test", str(project), "--async")
    assert result.exit_code == 65
    assert "over the upload limit of 1.0 MiB" in result.stderr


async def test_ctrl_c_detaches_with_130_and_the_job_goes_on(
    cli: Cli, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    await repo.mark_running(job_id, container_id=None)
    process = await cli.start("wait", job_id, "--all")
    await repo.append_log(job_id, "first\n", cursor=None)
    assert await read_line(process.stdout) == "first\n"
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(TIMEOUT):
        _, stderr = await process.communicate()
    assert process.returncode == 130
    assert f"`ci wait {job_id}` reattaches" in stderr.decode()
    job = await repo.get_job(job_id)
    assert (job.status, job.cancel_requested) == (JobStatus.RUNNING, False)
