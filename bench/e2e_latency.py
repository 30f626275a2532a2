"""End-to-end latency of one job against the `docker run --rm` floor, in the same run.

    .venv/bin/python bench/e2e_latency.py [--runs 5] [--via-cli]

Ours: zip examples/forty (40 tests) and `POST /submit-stream` with httpx until the `complete`
event (or, with --via-cli, the whole `ci submit test` command). Floor: `docker run --rm` of
pytest on the job image with the project baked in. One warm-up of each, then the runs
alternate so both see the same machine. Also: dispatch latency, from the job's insert
(`created_at`) to Docker's `start` event for its container.

Needs Docker and the job image (scripts/install-docker, scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time

from service import (
    FORTY,
    ContainerStarts,
    created_ns,
    floor_command,
    floor_image,
    median,
    running_service,
)

from harness import BIN, CIService, zip_project  # isort: skip  (on sys.path via service)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run_ours(service: CIService, *, via_cli: bool) -> tuple[float, str]:
    """Seconds from start to the job's end as the client sees it, and the job id."""
    started = time.perf_counter()
    if via_cli:
        done = subprocess.run(
            [
                str(BIN / "ci"),
                "--server",
                service.base_url,
                "--api-key",
                service.api_key,
                "submit",
                "test",
                str(FORTY),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        assert done.returncode == 0, done.stdout + done.stderr
        found = UUID.search(done.stdout + done.stderr)
        assert found is not None, done.stdout + done.stderr
        return elapsed, found.group(0)
    job_id = ""
    for message in service.submit_stream(zip_project(FORTY)):
        if message["type"] == "job_id":
            job_id = str(message["job_id"])
        elif message["type"] == "complete":
            assert message["conclusion"] == "success", message
    return time.perf_counter() - started, job_id


def run_floor(tag: str) -> float:
    started = time.perf_counter()
    subprocess.run(floor_command(tag), check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--via-cli", action="store_true", help="time `ci submit test` instead")
    args = parser.parse_args()

    with floor_image(FORTY) as tag, running_service() as service:
        starts = ContainerStarts(service.installation_id())
        try:
            run_floor(tag)
            run_ours(service, via_cli=args.via_cli)  # warm-up (first-use costs)
            ours: list[float] = []
            floor: list[float] = []
            dispatch_ms: list[float] = []
            create_ms: list[float] = []
            for _ in range(args.runs):
                floor.append(run_floor(tag))
                elapsed, job_id = run_ours(service, via_cli=args.via_cli)
                ours.append(elapsed)
                deadline = time.monotonic() + 5
                while job_id not in starts.started_ns and time.monotonic() < deadline:
                    time.sleep(0.01)
                stored = created_ns(service, job_id)
                dispatch_ms.append((starts.started_ns[job_id] - stored) / 1e6)
                create_ms.append((starts.created_ns[job_id] - stored) / 1e6)
        finally:
            starts.close()

    flow = "ci submit test" if args.via_cli else "POST /submit-stream"
    print(f"e2e latency, examples/forty (40 tests), {args.runs} runs after a warm-up")
    print(f"  ours ({flow}):   median {median(ours):.3f} s  runs {_fmt(ours)}")
    print(f"  floor (docker run --rm): median {median(floor):.3f} s  runs {_fmt(floor)}")
    print(f"  ratio: {median(ours) / median(floor):.2f}x  (target <= 1.3x, aim 1.1x)")
    print(
        f"  dispatch (job stored -> container started): p50 {median(dispatch_ms):.0f} ms, "
        f"max {max(dispatch_ms):.0f} ms  (target p50 < 200 ms)"
    )
    print(
        f"    of which job stored -> container created (then started at once): "
        f"p50 {median(create_ms):.0f} ms; the rest is Docker's own start"
    )


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
