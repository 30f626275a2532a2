"""Throughput: 10 jobs submitted at once with CI_MAX_PARALLEL_JOBS=2, against the same 10
`docker run --rm`s two at a time, in the same run.

    .venv/bin/python bench/throughput.py [--jobs 10] [--parallel 2]

Ours: from the first `POST /submit-async` until every job is completed (polling `GET /jobs`).
Also reports the most jobs the database ever had running at once (it must not exceed the
limit). Needs Docker and the job image (scripts/install-docker, scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from service import FORTY, floor_command, floor_image, running_service

from harness import CIService, zip_project  # isort: skip  (on sys.path via service)


def run_ours(service: CIService, *, jobs: int) -> float:
    archive = zip_project(FORTY)
    started = time.perf_counter()
    job_ids = {service.submit(archive) for _ in range(jobs)}
    while True:
        listed = service.http.get("/jobs", params={"limit": 100}).json()
        done = {job["id"] for job in listed if job["status"] == "completed"}
        if job_ids <= done:
            elapsed = time.perf_counter() - started
            break
        time.sleep(0.02)
    failed = [job for job in listed if job["id"] in job_ids and job["conclusion"] != "success"]
    assert not failed, failed
    return elapsed


def run_floor(tag: str, *, jobs: int, parallel: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(
            pool.map(
                lambda _: subprocess.run(floor_command(tag), check=True, capture_output=True),
                range(jobs),
            )
        )
    return time.perf_counter() - started


def most_at_once(service: CIService) -> int:
    """The largest number of jobs whose [started_at, finished_at] intervals overlap."""
    edges: list[tuple[datetime, int]] = []
    for started, finished in service.query("SELECT started_at, finished_at FROM jobs"):
        edges.append((datetime.fromisoformat(str(started)), 1))
        edges.append((datetime.fromisoformat(str(finished)), -1))
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()

    env = {"CI_MAX_PARALLEL_JOBS": str(args.parallel)}
    with floor_image(FORTY) as tag, running_service(env=env) as service:
        run_floor(tag, jobs=1, parallel=1)  # warm-up
        run_ours(service, jobs=1)
        floor = run_floor(tag, jobs=args.jobs, parallel=args.parallel)
        ours = run_ours(service, jobs=args.jobs)
        peak = most_at_once(service)

    print(f"throughput, {args.jobs} jobs of examples/forty, {args.parallel} at a time")
    print(f"  ours (submit-async, CI_MAX_PARALLEL_JOBS={args.parallel}): {ours:.2f} s")
    print(f"  floor ({args.jobs} x docker run --rm, {args.parallel} at a time): {floor:.2f} s")
    print(f"  ratio: {ours / floor:.2f}x  (target <= 1.25x)")
    print(f"  most jobs running at once: {peak} (limit {args.parallel})")


if __name__ == "__main__":
    main()
