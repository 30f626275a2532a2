"""What both benchmarks share: a real CI service in a temp dir, the floor image, and a record
of when Docker started each job's container.

The service is the e2e harness's `CIService` (real `ci-admin`, server and controller
processes); the floor is the same project baked into the job image and run with
`docker run --rm`, which is what "run my tests in a fresh container" costs at the least.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import JOB_IMAGE, CIService, check_docker_and_image, docker_client  # noqa: E402

FORTY = ROOT / "examples" / "forty"


@contextmanager
def running_service(*, env: dict[str, str] | None = None) -> Iterator[CIService]:
    problem = check_docker_and_image()
    if problem is not None:
        raise SystemExit(problem)
    with tempfile.TemporaryDirectory(prefix="ci-bench-") as scratch:
        service = CIService.create(Path(scratch) / "ci", env=env)
        try:
            controller = service.start_controller(wait=False)
            service.start_server()
            controller.wait_for_output("controller started")
            yield service
        finally:
            service.close()


@contextmanager
def floor_image(project: Path) -> Iterator[str]:
    """`JOB_IMAGE` with `project` copied into /workspace, removed afterwards."""
    tag = f"ci-bench-floor:{project.name}"
    dockerfile = f"FROM {JOB_IMAGE}\nCOPY --chown=1000:1000 . /workspace\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-f", "-", str(project)],
        input=dockerfile.encode(),
        check=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], check=False, capture_output=True)


def floor_command(tag: str) -> list[str]:
    return ["docker", "run", "--rm", "--network", "none", tag, "python", "-m", "pytest", "-q"]


class ContainerStarts:
    """Docker's own `create` and `start` events for one installation's job containers, by
    job id: `created_ns` is when we asked for the container, `started_ns` when it runs."""

    def __init__(self, installation_id: str) -> None:
        self._client = docker_client()
        self._events = self._client.events(  # pyright: ignore[reportUnknownMemberType]
            decode=True,
            filters={
                "type": "container",
                "event": ["create", "start"],
                "label": f"ci.installation={installation_id}",
            },
        )
        self.created_ns: dict[str, int] = {}
        self.started_ns: dict[str, int] = {}
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for event in self._events:  # pyright: ignore[reportUnknownVariableType]
            attributes = event.get("Actor", {}).get("Attributes", {})  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            job_id = attributes.get("ci.job_id")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if job_id:
                seen = self.started_ns if event.get("Action") == "start" else self.created_ns  # pyright: ignore[reportUnknownMemberType]
                seen[str(job_id)] = int(event["timeNano"])  # pyright: ignore[reportUnknownArgumentType]

    def close(self) -> None:
        self._events.close()  # pyright: ignore[reportUnknownMemberType]
        self._client.close()


def created_ns(service: CIService, job_id: str) -> int:
    """When the server stored the job (its `created_at`), in ns since the epoch."""
    [(created,)] = service.query("SELECT created_at FROM jobs WHERE id = ?", job_id)
    moment = datetime.fromisoformat(str(created))
    return int(moment.timestamp() * 1e9)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
