"""The controller's half of kept files and retention, on the in-memory runtime: what a
container's output directory holds is stored within the cap, with notes for what was not
kept; PID 1's collection run on the host; jobs past CI_RETENTION_DAYS are deleted."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, cast

from controller_world import World
from fake_runtime import FakeContainer
from test_container_output import docker_messages

from ci_common.job_options import JobOptions
from ci_common.models import JobConclusion, JobId
from ci_controller.artifacts import COLLECT_SOURCE
from ci_controller.bootstrap import bootstrap
from ci_controller.container_output import (
    END_CHANNEL,
    FILES_CHANNEL,
    OutputRecord,
    decode_frame,
    encode_records,
)
from ci_controller.job_plugins import JUNIT_PLUGIN, JUNIT_VARIABLE
from ci_controller.project import JOB_FILE, READY_MARKER, WORKSPACE
from ci_controller.runtime import PROJECT_MISSING_EXIT, ContainerState
from ci_persistence.database import to_text


def finishing_with(files: dict[str, bytes], code: int = 1) -> Callable[[FakeContainer], None]:
    def start(container: FakeContainer) -> None:
        container.files.update(files)
        container.emit(b"1 failed\n")
        container.exit(code)

    return start


async def stored(world: World, job_id: JobId) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for artifact in await world.repo.list_artifacts(job_id):
        blocks: list[bytes] = []
        while (
            block := await world.repo.read_artifact_block(
                artifact.job_id, artifact.path, len(blocks)
            )
        ) is not None:
            blocks.append(block)
        found[artifact.path] = b"".join(blocks)
    return found


async def test_the_output_directory_is_stored_and_the_manifest_becomes_notes(world: World) -> None:
    manifest = {"left_out": [["big.bin", 3_000_000]], "unmatched": ["nothing-*"]}
    world.runtime.on_start = finishing_with(
        {
            ".ci-output/junit.xml": b"<testsuites/>",
            ".ci-output/files/htmlcov/index.html": b"<p>hi</p>",
            ".ci-output/files/junit.xml": b"the project's own, shadowed by ours",
            ".ci-output/manifest.json": json.dumps(manifest).encode(),
            ".ci-output/elsewhere.txt": b"not a kept file",
        }
    )
    job = await world.submit(options=JobOptions(artifacts=("htmlcov/**",)))
    await world.reconciled(max_artifacts_mb=2)

    assert (await world.job(job)).conclusion is JobConclusion.FAILURE
    assert await stored(world, job.id) == {
        "junit.xml": b"<testsuites/>",
        "htmlcov/index.html": b"<p>hi</p>",
    }
    log = await world.log_text(job)
    assert "[ci] artifacts: no file matched 'nothing-*'\n" in log
    assert (
        "[ci] artifacts: 1 file(s) not kept, over the 2 MiB per job (CI_MAX_ARTIFACTS_MB): "
        "big.bin (3000000 bytes)" in log
    )


def last_word(code: int) -> bytes:
    """PID 1's last record, once the kept files are gathered: the code it exits with."""
    return encode_records(str(code).encode(), channel=END_CHANNEL)


async def test_the_kept_files_are_copied_out_while_the_container_goes_down(
    world: World,
) -> None:
    copied_while_running: list[bool] = []
    real_copy_out = world.runtime.copy_out

    async def copy_out(container_id: str, path: str, *, into: IO[bytes], max_bytes: int) -> bool:
        container = world.runtime.containers[container_id]
        copied_while_running.append(container.state is ContainerState.RUNNING)
        found = await real_copy_out(container_id, path, into=into, max_bytes=max_bytes)
        container.exit(1)  # the container finishes going down only now
        return found

    def start(container: FakeContainer) -> None:
        container.files[".ci-output/junit.xml"] = b"<testsuites/>"
        container.emit(b"1 failed\n")
        container.emit(last_word(1))  # ... and it does not exit by itself

    world.runtime.copy_out = copy_out
    world.runtime.on_start = start
    job = await world.submit()
    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.FAILURE
    assert copied_while_running == [True]
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}
    assert await world.test_output(job) == "1 failed\n"  # the word is no output


async def test_a_clean_exit_pid_1_reported_ends_the_job_before_the_engine_sees_it(
    world: World,
) -> None:
    started: list[FakeContainer] = []

    def start(container: FakeContainer) -> None:
        started.append(container)
        container.files[".ci-output/junit.xml"] = b"<testsuites/>"
        container.emit(b"1 passed\n")
        container.emit(last_word(0))  # ... and the engine never reports the exit

    world.runtime.on_start = start
    job = await world.submit()
    await asyncio.wait_for(world.reconciled(), 10)  # waiting for the engine would never end

    done = await world.job(job)
    assert (done.conclusion, done.exit_code) == (JobConclusion.SUCCESS, 0)
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}
    assert await world.test_output(job) == "1 passed\n"
    assert [c.id for c in started if c.id in world.runtime.containers] == []  # removed


async def test_any_other_exit_waits_for_the_engine_which_knows_about_memory(
    world: World,
) -> None:
    def start(container: FakeContainer) -> None:
        container.emit(b"Killed\n")
        container.emit(last_word(137))
        container.exit(137, oom_killed=True)

    world.runtime.on_start = start
    job = await world.submit()
    await world.reconciled()

    assert (await world.job(job)).exit_code == 137
    assert "the tests ran out of memory" in await world.log_text(job)


async def test_without_pid_1_s_word_the_files_are_copied_after_the_exit(world: World) -> None:
    states: list[ContainerState] = []
    real_copy_out = world.runtime.copy_out

    async def copy_out(container_id: str, path: str, *, into: IO[bytes], max_bytes: int) -> bool:
        states.append(world.runtime.containers[container_id].state)
        return await real_copy_out(container_id, path, into=into, max_bytes=max_bytes)

    world.runtime.copy_out = copy_out
    world.runtime.on_start = finishing_with({".ci-output/junit.xml": b"<testsuites/>"}, code=137)
    job = await world.submit()
    await world.reconciled()

    assert states == [ContainerState.EXITED]
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}


async def test_a_controller_killed_before_storing_them_leaves_them_to_the_next(
    world: World,
) -> None:
    """Killed after the job's whole output (PID 1's word included) was stored but before its
    files were: the job is still running, so the next controller adopts it and stores them."""
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.files[".ci-output/junit.xml"] = b"<testsuites/>"
    output = container.emit(b"1 passed\n")
    word = container.emit(last_word(0))
    container.exit(0)
    await world.server.append_log(job.id, "1 passed\n", cursor=output.position.encode())
    await world.server.append_log(job.id, "", cursor=word.position.encode())

    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}
    assert await world.test_output(job) == "1 passed\n"


async def test_the_controller_stores_no_more_than_the_cap(world: World) -> None:
    world.runtime.on_start = finishing_with(
        {
            ".ci-output/junit.xml": b"x" * 600_000,
            ".ci-output/files/a.bin": b"a" * 600_000,  # written by the tests themselves
        }
    )
    job = await world.submit()
    await world.reconciled(max_artifacts_mb=1)

    assert set(await stored(world, job.id)) == {"junit.xml"}
    assert "a.bin (600000 bytes)" in await world.log_text(job)


def test_pid_1_copies_what_the_patterns_match_within_the_cap(tmp_path: Path) -> None:
    workspace = tmp_path / WORKSPACE
    (workspace / "htmlcov" / "deep").mkdir(parents=True)
    (workspace / "htmlcov" / "index.html").write_text("index")
    (workspace / "htmlcov" / "deep" / "page.html").write_text("page")
    (workspace / "coverage.xml").write_text("c" * 100)
    (workspace / "huge.bin").write_bytes(b"h" * 5000)
    (tmp_path / "secret").write_text("outside the workspace")
    (workspace / "escape").symlink_to(tmp_path / "secret")
    (tmp_path / ".ci-output").mkdir()
    (tmp_path / READY_MARKER).touch()
    request: dict[str, object] = {
        "pytest_args": [],
        "env": {},
        "artifacts": ["htmlcov/**", "coverage.xml", "huge.bin", "escape", "none-*"],
        "artifact_bytes": 1000,
    }
    (tmp_path / JOB_FILE).write_text(json.dumps(request))

    script = bootstrap(wait_seconds=5, root=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script, "sh", "-c", "exit 3"],
        check=False,
        timeout=30,
        capture_output=True,
    )

    assert done.returncode == 3
    # Small enough: the same files went out in PID 1's output, before its last word.
    records = [decode_frame(message) for message in docker_messages(done.stdout)]
    assert records[-1] == OutputRecord(channel=END_CHANNEL, data=b"3")
    sent = b"".join(record.data for record in records if record.channel == FILES_CHANNEL)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(sent))) as archive:
        assert sorted(member.name for member in archive if member.isfile()) == [
            ".ci-output/files/coverage.xml",
            ".ci-output/files/htmlcov/deep/page.html",
            ".ci-output/files/htmlcov/index.html",
            ".ci-output/manifest.json",
        ]
    output = tmp_path / ".ci-output"
    kept = sorted(
        str(p.relative_to(output / "files")) for p in (output / "files").rglob("*") if p.is_file()
    )
    assert kept == ["coverage.xml", "htmlcov/deep/page.html", "htmlcov/index.html"]
    assert json.loads((output / "manifest.json").read_text()) == {
        "left_out": [["huge.bin", 5000]],
        "unmatched": ["escape", "none-*"],
    }


def test_pid_1_sends_no_files_past_the_inline_limit(tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec("import base64, io, json, os, tarfile\n" + COLLECT_SOURCE, namespace)
    pack_output = cast(Callable[[str, int], bytes], namespace["pack_output"])
    output = tmp_path / ".ci-output"
    output.mkdir()
    (output / "junit.xml").write_bytes(b"x" * 1000)

    assert pack_output(str(output), 999) == b""
    assert base64.b64decode(pack_output(str(output), 1000))  # a tar
    assert pack_output(str(tmp_path / "none"), 1000) == b""


async def test_a_job_started_again_waits_for_its_new_containers_word(world: World) -> None:
    """The first container's PID 1 ended (its project never came) with a word of its own: the
    second container's files are taken once its own PID 1 says they are gathered."""
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    first = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, first.id)
    first.emit(b"[ci] the project never reached the container\n")
    first.emit(last_word(PROJECT_MISSING_EXIT))
    first.exit(PROJECT_MISSING_EXIT)

    def start(container: FakeContainer) -> None:
        def finish() -> None:
            container.files[".ci-output/junit.xml"] = b"<testsuites/>"
            container.emit(b"1 passed\n")
            container.emit(last_word(0))
            container.exit(0)

        asyncio.get_running_loop().call_later(0.2, finish)

    world.runtime.on_start = start
    await world.reconciled()

    done = await world.job(job)
    assert (done.conclusion, done.attempts) == (JobConclusion.SUCCESS, 2)
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}


async def test_files_pid_1_sent_are_stored_without_a_copy(world: World) -> None:
    async def copy_out(container_id: str, path: str, *, into: IO[bytes], max_bytes: int) -> bool:
        raise AssertionError("the files came in the output: nothing to copy")

    def start(container: FakeContainer) -> None:
        container.emit(b"1 passed\n")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in ((".ci-output/junit.xml", b"<testsuites/>"),):
                member = tarfile.TarInfo(name)
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
        sent = encode_records(base64.b64encode(buffer.getvalue()), channel=FILES_CHANNEL)
        for message in sent.splitlines(keepends=True):
            container.emit(message)
        container.emit(last_word(0))

    world.runtime.copy_out = copy_out
    world.runtime.on_start = start
    job = await world.submit()
    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    assert await stored(world, job.id) == {"junit.xml": b"<testsuites/>"}


async def test_jobs_past_the_retention_period_are_deleted(world: World) -> None:
    world.runtime.on_start = finishing_with({".ci-output/junit.xml": b"<testsuites/>"}, code=0)
    old, recent = await world.submit(), await world.submit()
    await world.reconciled()
    with sqlite3.connect(world.settings.db_path) as conn:
        for job, days in ((old, 8), (recent, 6)):
            moment = to_text(datetime.now(UTC) - timedelta(days=days))
            conn.execute("UPDATE jobs SET finished_at = ? WHERE id = ?", (moment, job.id))

    expired = await world.controller(retention_days=7).expire_jobs()

    assert expired == 1
    assert [job.id for job in await world.repo.list_jobs()] == [recent.id]
    assert await world.repo.list_artifacts(old.id) == []


def test_our_junit_report_is_written_without_a_word_in_the_output(tmp_path: Path) -> None:
    plugins = Path(__file__).parents[3] / "ci_controller" / "job_plugin"
    (tmp_path / "test_a.py").write_text("def test_1():\n    pass\n")
    report = tmp_path.parent / "junit.xml"

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", JUNIT_PLUGIN, "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(plugins),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            JUNIT_VARIABLE: str(report),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout
    assert 'name="test_1"' in report.read_text()
    assert "generated xml file" not in done.stdout
