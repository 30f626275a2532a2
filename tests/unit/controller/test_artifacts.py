"""The controller's half of kept files and retention, on the in-memory runtime: what a
container's output directory holds is stored within the cap, with notes for what was not
kept; PID 1's collection run on the host; jobs past CI_RETENTION_DAYS are deleted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.job_options import JobOptions
from ci_common.models import JobConclusion, JobId
from ci_controller.bootstrap import bootstrap
from ci_controller.job_plugins import JUNIT_PLUGIN, JUNIT_VARIABLE
from ci_controller.project import JOB_FILE, READY_MARKER, WORKSPACE
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
    request = {
        "pytest_args": [],
        "env": {},
        "artifacts": ["htmlcov/**", "coverage.xml", "huge.bin", "escape", "none-*"],
        "artifact_bytes": 1000,
    }
    (tmp_path / JOB_FILE).write_text(json.dumps(request))

    script = bootstrap(wait_seconds=5, root=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script, "sh", "-c", "exit 3"], check=False, timeout=30
    )

    assert done.returncode == 3
    output = tmp_path / ".ci-output"
    kept = sorted(
        str(p.relative_to(output / "files")) for p in (output / "files").rglob("*") if p.is_file()
    )
    assert kept == ["coverage.xml", "htmlcov/deep/page.html", "htmlcov/index.html"]
    assert json.loads((output / "manifest.json").read_text()) == {
        "left_out": [["huge.bin", 5000]],
        "unmatched": ["escape", "none-*"],
    }


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
