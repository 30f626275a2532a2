"""40 jobs over two Docker engines against one engine with the same per-engine capacity.

    .venv/bin/python bench/engines.py [--jobs 40] [--capacity 2] [--seconds 1.0]

Needs the second engine (`scripts/start-second-engine`). Each run is a fresh service (real
server and controllers, the e2e harness's `CIService`); the jobs are submitted at once and the
wall time is from the first submit to the last completion. Two workloads: tests that sleep
(the engines' capacity is the bound, so two engines ideally take half the time: ratio 0.5) and
tests that spin the CPU (on one machine both engines share its cores, so the ratio stays near
1 when the cores are already busy). Prints one line per run and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import CIService, check_docker_and_image, zip_project  # noqa: E402

SECOND_HOST = "unix:///var/run/docker-second.sock"
WORKLOADS = {
    "sleeping": "import time\n\ndef test_it():\n    time.sleep({seconds})\n",
    "cpu-bound": (
        "import time\n\ndef test_it():\n    end = time.monotonic() + {seconds}\n"
        "    while time.monotonic() < end:\n        sum(range(1000))\n"
    ),
}


def run(*, engines: int, jobs: int, capacity: int, upload: bytes) -> float:
    """Seconds from the first submit until every job has completed."""
    with tempfile.TemporaryDirectory(prefix="ci-bench-engines-") as scratch:
        service = CIService.create(Path(scratch) / "ci")
        try:
            env = {"CI_MAX_PARALLEL_JOBS": str(capacity), "CI_WARM_CONTAINERS": "false"}
            service.start_controller(env={**env, "CI_ENGINE_NAME": "default"})
            if engines == 2:
                service.start_controller(
                    env={**env, "CI_ENGINE_NAME": "second", "DOCKER_HOST": SECOND_HOST}
                )
            service.start_server()
            started = time.perf_counter()
            ids = [service.submit(upload) for _ in range(jobs)]
            done = [service.wait_for_job(job_id, within=600) for job_id in ids]
            wall = time.perf_counter() - started
            failed = [job for job in done if job["conclusion"] != "success"]
            if failed:
                raise SystemExit(f"{len(failed)} job(s) did not succeed: {failed[0]}")
            used = sorted({str(job["engine"]) for job in done})
            print(f"  {engines} engine(s) {used}: {wall:.1f} s", flush=True)
            return wall
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--capacity", type=int, default=2, help="jobs per engine at once")
    parser.add_argument("--seconds", type=float, default=1.0, help="each test's duration")
    args = parser.parse_args()
    problem = check_docker_and_image()
    if problem is not None:
        raise SystemExit(problem)
    with tempfile.TemporaryDirectory(prefix="ci-bench-project-") as scratch:
        for name, template in WORKLOADS.items():
            project = Path(scratch) / name
            project.mkdir()
            (project / "test_work.py").write_text(template.format(seconds=args.seconds))
            upload = zip_project(project)
            print(f"{name}: {args.jobs} jobs of {args.seconds:g} s, {args.capacity} per engine")
            one = run(engines=1, jobs=args.jobs, capacity=args.capacity, upload=upload)
            two = run(engines=2, jobs=args.jobs, capacity=args.capacity, upload=upload)
            print(f"{name}: two engines / one engine = {two / one:.2f} (ideal 0.5)", flush=True)


if __name__ == "__main__":
    main()
