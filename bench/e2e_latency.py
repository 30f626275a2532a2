"""End-to-end latency of one job against the `docker run --rm` floor, in the same run.

    .venv/bin/python bench/e2e_latency.py [--runs 5] [--via-cli] [--warm both|on|off]

Ours: zip examples/forty (40 tests) and `POST /submit-stream` with httpx until the `complete`
event (or, with --via-cli, the whole `ci submit test` command). Floor: `docker run --rm` of
pytest on the job image with the project baked in. `ci` runs with its bytecode cached, as
installed (see `CLI_ENV`). One warm-up of each, then the runs
alternate so both see the same machine. Also: dispatch latency, from the job's insert
(`created_at`) to the moment its process begins in its container: Docker's `extract-to-dir`
event for the project's `put_archive`, whose last entry releases the waiting bootstrap. Both
paths end with that same call (a fresh container gets it right after its `start`, a warm one
when the job claims it), so the metric means the same with warm containers on and off
(`CI_WARM_CONTAINERS`); by default the whole measurement runs once with each.

Needs Docker and the job image (scripts/install-docker, scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time

from service import (
    FORTY,
    ContainerEvents,
    container_of,
    created_ns,
    floor_command,
    floor_image,
    median,
    running_service,
)

from harness import BIN, CIService, zip_project  # isort: skip  (on sys.path via service)


CLI_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
"""`ci` as installed for a user, with its modules' bytecode cached (the warm-up writes it): a
development shell's PYTHONDONTWRITEBYTECODE would have every run compile the client anew."""
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
            env=CLI_ENV,
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


def measure(tag: str, *, warm: bool, runs: int, via_cli: bool) -> None:
    env = {"CI_WARM_CONTAINERS": "true" if warm else "false"}
    with running_service(env=env) as service:
        events = ContainerEvents(service.installation_id())
        try:
            run_floor(tag)
            run_ours(service, via_cli=via_cli)  # warm-up (first-use costs)
            ours: list[float] = []
            floor: list[float] = []
            dispatch_ms: list[float] = []
            start_ms: list[float] = []
            for _ in range(runs):
                floor.append(run_floor(tag))
                elapsed, job_id = run_ours(service, via_cli=via_cli)
                ours.append(elapsed)
                stored = created_ns(service, job_id)
                container_id = container_of(service, job_id)
                began = events.at("extract-to-dir", container_id)
                assert began is not None, f"no put_archive seen for job {job_id}"
                dispatch_ms.append((began - stored) / 1e6)
                started = events.at("start", container_id, within=0)
                if started is not None and started > stored:  # started for this job
                    start_ms.append((started - stored) / 1e6)
        finally:
            events.close()

    flow = "ci submit test" if via_cli else "POST /submit-stream"
    print(f"e2e latency, examples/forty (40 tests), {runs} runs after a warm-up, ", end="")
    print(f"CI_WARM_CONTAINERS={env['CI_WARM_CONTAINERS']}")
    print(f"  ours ({flow}):   median {median(ours):.3f} s  runs {_fmt(ours)}")
    print(f"  floor (docker run --rm): median {median(floor):.3f} s  runs {_fmt(floor)}")
    print(f"  ratio: {median(ours) / median(floor):.2f}x  (target <= 1.3x, aim 1.1x)")
    print(
        f"  dispatch (job stored -> its process begins in its container): "
        f"p50 {median(dispatch_ms):.0f} ms, max {max(dispatch_ms):.0f} ms  "
        f"(target p50 < 200 ms)"
    )
    claimed = runs - len(start_ms)
    print(f"    jobs that ran in a warm container: {claimed} of {runs}")
    if start_ms:
        print(
            f"    of which job stored -> container started (fresh containers): "
            f"p50 {median(start_ms):.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--via-cli", action="store_true", help="time `ci submit test` instead")
    parser.add_argument(
        "--warm", choices=["both", "on", "off"], default="both", help="CI_WARM_CONTAINERS"
    )
    args = parser.parse_args()

    modes = {"both": [True, False], "on": [True], "off": [False]}[args.warm]
    with floor_image(FORTY) as tag:
        for warm in modes:
            measure(tag, warm=warm, runs=args.runs, via_cli=args.via_cli)


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
