"""Chaos: jobs run while the controller and the server are killed with SIGKILL again and again.

Twelve jobs print numbered lines in bursts (some then fail on purpose) while, for about
fifteen seconds, a seeded random schedule kills the controller or the server every 1 to 3
seconds and brings it back after a short pause. Afterwards every job must have completed as
its tests say (no job fails for a fault of ours), every line must be stored exactly once and
in order, and nothing of this installation may be left on the engine.

CI runs two seeds; `CI_CHAOS_SEEDS=1,2,3,...` runs others.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pytest
from harness import CIService, MakeService, wait_until

pytestmark = pytest.mark.e2e

SEEDS = [int(seed) for seed in os.environ.get("CI_CHAOS_SEEDS", "7,11").split(",")]
JOBS = 12
LINES = 60
CHAOS_SECONDS = 15.0


def write_project(root: Path, *, fails: bool) -> Path:
    root.mkdir()
    (root / "requirements.txt").write_text("")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -s -p no:cacheprovider\n")
    (root / "test_numbered.py").write_text(
        "import time\n\n\n"
        "def test_numbered() -> None:\n"
        f"    for first in range(1, {LINES + 1}, 4):\n"
        "        print('\\n'.join(f'line {n:03d}' for n in range(first, first + 4)), flush=True)\n"
        "        time.sleep(0.1)\n"
        f"    assert not {fails}, 'failing on purpose'\n"
    )
    return root


def numbered_lines(log: str) -> list[str]:
    return re.findall(r"line \d{3}", log)


def let_the_service_work(seconds: float) -> None:
    """The chaos schedule's gap between two kills (a schedule, not a synchronisation)."""
    time.sleep(seconds)


def alive(service: CIService, name: str) -> bool:
    return any(p.name == name and p.alive() for p in service.processes)


@pytest.mark.parametrize("seed", SEEDS)
def test_jobs_survive_random_kills_of_the_controller_and_the_server(
    make_service: MakeService, tmp_path: Path, seed: int
) -> None:
    service = make_service(env={"CI_MAX_PARALLEL_JOBS": "3"})
    passing = write_project(tmp_path / "passing", fails=False)
    failing = write_project(tmp_path / "failing", fails=True)
    expected = {
        service.submit(failing if number % 4 == 3 else passing): number % 4 != 3
        for number in range(JOBS)
    }

    chance = random.Random(seed)
    ends = time.monotonic() + CHAOS_SECONDS
    while time.monotonic() < ends:
        let_the_service_work(chance.uniform(1.0, 3.0))
        if chance.random() < 0.5:
            service.restart_server()
        else:
            for process in service.processes:
                if process.name == "controller" and process.alive():
                    process.kill9()
            let_the_service_work(chance.uniform(0.1, 0.8))
            service.start_controller()

    assert alive(service, "controller") and alive(service, "server")
    for job_id, should_pass in expected.items():
        job = service.wait_for_job(job_id, within=180)
        log = service.logs(job_id)
        assert job["conclusion"] == ("success" if should_pass else "failure"), (job, log)
        assert job["attempts"] in (1, 2, 3)
        assert numbered_lines(log) == [f"line {n:03d}" for n in range(1, LINES + 1)], log
    wait_until(lambda: service.job_containers() == [], within=30, what="no containers left")
