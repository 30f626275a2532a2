"""A job's limits on a real engine: orphans are reaped (the pid limit is not used up by
zombies), what a job writes stays within CI_JOB_DISK and off the engine's disk, memory
kills get a note whether they hit the tests or a process they started, and the tests see as
many CPUs as they may use."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import cast

import pytest
from harness import CIService, MakeService, docker_client, wait_until

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


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


def test_writes_past_ci_job_disk_fail_stay_off_the_engines_disk_and_the_job_says_why(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(env={"CI_JOB_DISK": "20m"})
    job_id = service.submit(
        project(
            tmp_path,
            """
            import os, time

            def fill(path):
                try:
                    with open(path, "wb") as f:
                        for _ in range(40):
                            f.write(bytes(1 << 20))
                except OSError as exc:
                    return exc.strerror
                return "no error"

            def test_fill():
                found = {place: fill(place + "/big") for place in ("/tmp", "/var/tmp", ".")}
                print("filled", found, flush=True)
                deadline = time.monotonic() + 60
                while not os.path.exists("release") and time.monotonic() < deadline:
                    time.sleep(0.05)
                with open("/tmp/one-more", "wb") as f:
                    f.write(b"x" * 4096)
            """,
        )
    )
    found = wait_until(
        lambda: next((ln for ln in service.logs(job_id).splitlines() if "filled" in ln), None),
        within=60,
        what="the test to fill its places",
    )
    assert ast.literal_eval(found.split("filled ", 1)[1]) == {
        place: "No space left on device" for place in ("/tmp", "/var/tmp", ".")
    }
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    # 60 MiB are written, all of it in memory: the container's writable layer on the
    # engine's disk has next to nothing.
    assert writable_layer_bytes(str(container_id)) < 4 * MIB
    release(str(container_id))

    job = service.wait_for_job(job_id)

    assert (job["conclusion"], job["exit_code"], job["error"]) == ("failure", 1, None)
    log = service.logs(job_id)
    assert "OSError: [Errno 28] No space left on device" in log
    assert last_line(log).startswith(
        "[ci] the tests filled the space they may write to: /workspace, /tmp and /var/tmp "
        "hold at most 20m each (CI_JOB_DISK;"
    )


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


def writable_layer_bytes(container_id: str) -> int:
    client = docker_client()
    try:
        [found] = cast(
            list[dict[str, object]],
            client.api.containers(  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
                all=True, size=True, filters={"id": container_id}
            ),
        )
        return int(cast(int, found.get("SizeRw", 0)))  # left out when 0
    finally:
        client.close()


def release(container_id: str) -> None:
    """Let the waiting test go on: the file it waits for, made in its workspace."""
    client = docker_client()
    try:
        run = client.api.exec_create(container_id, ["touch", "/workspace/release"])  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        client.api.exec_start(run)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
    finally:
        client.close()


def test_the_tests_see_the_cpus_the_job_may_use(service: CIService, tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """\
        import os

        def test_one_cpu():
            # CI_JOB_CPUS=1 (the default) on a machine with more: `pytest -n auto` starts one
            print("CPUs seen:", sorted(os.sched_getaffinity(0)), "of", os.cpu_count())
            assert len(os.sched_getaffinity(0)) == 1
        """,
    )

    job_id = service.submit(root)

    job = service.wait_for_job(job_id)
    assert (job["conclusion"], job["exit_code"]) == ("success", 0), service.logs(job_id)
