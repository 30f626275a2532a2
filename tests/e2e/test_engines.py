"""Two real Docker engines on one queue, one `ci-controller` each (`--engine`, `DOCKER_HOST`).

The second engine is `scripts/start-second-engine`'s (started by `scripts/test`). The tests
that use it hold a file lock, so the one that stops that engine never runs beside another.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from harness import REPO_ROOT, CIService, MakeService, wait_until, zip_project

pytestmark = pytest.mark.e2e

SECOND_SOCKET = Path("/var/run/docker-second.sock")
SECOND_HOST = f"unix://{SECOND_SOCKET}"
SECOND_PIDFILE = Path("/var/run/docker-second.pid")
CAPACITY = 2


@pytest.fixture
def second_engine(tmp_path: Path) -> Iterator[str]:
    """The second engine's address, held for this test alone."""
    with open("/tmp/ci-e2e-second-engine.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = subprocess.run(
            [str(REPO_ROOT / "scripts" / "start-second-engine")],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if started.returncode != 0:
            pytest.fail(f"no second engine: {started.stderr}", pytrace=False)
        yield SECOND_HOST


def start_engine(service: CIService, name: str, *, host: str | None = None) -> None:
    env = {"CI_MAX_PARALLEL_JOBS": str(CAPACITY), "CI_WARM_CONTAINERS": "false"}
    argv_env = {**env, "CI_ENGINE_NAME": name}
    if host is not None:
        argv_env["DOCKER_HOST"] = host
    service.start_controller(env=argv_env)


def project(tmp_path: Path, name: str, *, seconds: float) -> bytes:
    """A project whose one test sleeps `seconds`; no dependencies to download."""
    root = tmp_path / name
    root.mkdir()
    (root / "test_nap.py").write_text(
        f"import time\n\ndef test_nap():\n    time.sleep({seconds})\n"
    )
    return zip_project(root)


def pytest_began(service: CIService, job_id: str) -> Callable[[], bool]:
    """A check: pytest has begun the job's test (its progress line is in the log)."""
    return lambda: "test_nap.py" in service.logs(job_id)


def overlap(jobs: list[dict[str, object]]) -> int:
    """The most jobs that ran at one instant."""
    edges: list[tuple[datetime, int]] = []
    for job in jobs:
        edges.append((datetime.fromisoformat(str(job["started_at"])), 1))
        edges.append((datetime.fromisoformat(str(job["finished_at"])), -1))
    running = most = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        most = max(most, running)
    return most


def test_jobs_spread_over_two_engines_each_once_within_capacity(
    make_service: MakeService, second_engine: str, tmp_path: Path
) -> None:
    service = make_service(controller=False)
    start_engine(service, "default")
    start_engine(service, "second", host=second_engine)
    upload = project(tmp_path, "nap", seconds=0.5)
    job_ids = [service.submit(upload) for _ in range(6)]

    jobs = [service.wait_for_job(job_id, within=60) for job_id in job_ids]

    assert all(job["conclusion"] == "success" for job in jobs), jobs
    assert all(job["attempts"] == 1 for job in jobs)  # each started once
    for job_id in job_ids:
        assert service.logs(job_id).count("1 passed") == 1  # and ran once
    by_engine = {name: [j for j in jobs if j["engine"] == name] for name in ("default", "second")}
    assert by_engine["default"] and by_engine["second"], [j["engine"] for j in jobs]
    assert len(by_engine["default"]) + len(by_engine["second"]) == len(jobs)
    for name, ran in by_engine.items():
        assert overlap(ran) <= CAPACITY, name


def test_a_killed_engine_controller_restarted_adopts_its_job(
    make_service: MakeService, second_engine: str, tmp_path: Path
) -> None:
    service = make_service(controller=False)
    start_engine(service, "second", host=second_engine)
    job_id = service.submit(project(tmp_path, "nap", seconds=4))
    running = service.wait_for_status(job_id, "running", within=20)
    assert running["engine"] == "second"
    wait_until(pytest_began(service, job_id), within=20, what="the job's tests")
    [controller] = [p for p in service.processes if p.name == "controller"]
    controller.kill9()

    start_engine(service, "second", host=second_engine)  # the same engine's controller again
    done = service.wait_for_job(job_id, within=30)

    assert (done["conclusion"], done["engine"], done["attempts"]) == ("success", "second", 1)
    assert service.logs(job_id).count("1 passed") == 1


def test_an_engine_stopped_mid_job_ends_it_as_error_while_the_other_keeps_working(
    make_service: MakeService, second_engine: str, tmp_path: Path
) -> None:
    service = make_service(controller=False)
    start_engine(service, "second", host=second_engine)
    doomed = service.submit(project(tmp_path, "long", seconds=60))
    assert service.wait_for_status(doomed, "running", within=20)["engine"] == "second"
    start_engine(service, "default")
    wait_until(pytest_began(service, doomed), within=20, what="the job's tests")

    os.kill(int(SECOND_PIDFILE.read_text()), signal.SIGKILL)  # the engine is gone
    try:
        ended = service.wait_for_job(doomed, within=20)
        assert ended["conclusion"] == "error"
        assert "'second' was lost" in str(ended["error"])
        [second] = [p for p in service.processes if p.name == "controller"][:1]
        second.wait_for_output("reconcile pass failed")  # it claims nothing meanwhile

        after = service.submit(project(tmp_path, "after", seconds=0))
        done = service.wait_for_job(after, within=20)
        assert (done["conclusion"], done["engine"]) == ("success", "default")
    finally:
        subprocess.run(
            [str(REPO_ROOT / "scripts" / "start-second-engine")],
            capture_output=True,
            check=False,
            timeout=120,
        )
