"""A job's limits on a real engine: orphans are reaped (the pid limit is not used up by
zombies), and memory kills get a note whether they hit the tests or a process they
started."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from harness import CIService, MakeService

pytestmark = pytest.mark.e2e


def project(tmp_path: Path, test: str) -> Path:
    """A project with one test file, printing what it prints (`-s`) as it goes."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "requirements.txt").write_text("")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -s -p no:cacheprovider\n")
    (root / "test_limit.py").write_text(textwrap.dedent(test))
    return root


def last_line(log: str) -> str:
    return log.rstrip("\n").rsplit("\n", 1)[-1]


def test_orphans_are_reaped_so_700_of_them_fit_in_the_512_pid_limit(
    service: CIService, tmp_path: Path
) -> None:
    job_id = service.submit(
        project(
            tmp_path,
            """
            import subprocess

            def test_orphans():
                for _ in range(700):  # each leaves `true` to PID 1
                    subprocess.run(["sh", "-c", "true & exit 0"], check=True)
            """,
        )
    )

    job = service.wait_for_job(job_id)

    assert (job["conclusion"], job["exit_code"]) == ("success", 0), service.logs(job_id)
    assert "1 passed" in service.logs(job_id)


@pytest.mark.parametrize(
    ("test", "exit_code", "shown", "note"),
    [
        (
            """
            import subprocess, sys

            def test_hungry_child():
                child = subprocess.run([sys.executable, "-c", "b = b'x' * (512 << 20)"])
                assert child.returncode == 0
            """,
            1,
            "assert -9 == 0",
            "[ci] the kernel killed a process the tests started because it ran out of memory "
            "(CI_JOB_MEMORY=128m)",
        ),
        (
            """
            def test_hungry():
                print("allocating", flush=True)
                b = b"x" * (512 << 20)
            """,
            137,
            "allocating",
            "[ci] the tests ran out of memory (CI_JOB_MEMORY=128m) and were killed",
        ),
    ],
    ids=["a-process-they-started", "the-tests-themselves"],
)
def test_a_kill_for_memory_gets_a_note_saying_what_was_killed(
    make_service: MakeService, tmp_path: Path, test: str, exit_code: int, shown: str, note: str
) -> None:
    service = make_service(env={"CI_JOB_MEMORY": "128m"})
    job_id = service.submit(project(tmp_path, test))

    job = service.wait_for_job(job_id)

    log = service.logs(job_id)
    assert (job["conclusion"], job["exit_code"]) == ("failure", exit_code), log
    assert shown in log
    assert last_line(log) == note
