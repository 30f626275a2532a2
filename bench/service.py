"""What both benchmarks share: a real CI service in a temp dir, the floor image, and a record
of Docker's events for each job's container.

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
import time
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
def floor_image(project: Path, *, base: str = JOB_IMAGE) -> Iterator[str]:
    """`base` (the job image) with `project` copied into /workspace, removed afterwards."""
    tag = f"ci-bench-floor:{project.name}"
    dockerfile = f"FROM {base}\nCOPY --chown=1000:1000 . /workspace\n"
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


class ContainerEvents:
    """Docker's own events for one installation's containers, by container id: `create`,
    `start`, and `extract-to-dir` (the project's `put_archive`, whose last entry releases the
    bootstrap, which then starts the tests within 2 ms). The last is the moment a job's
    process begins, whether its container was started for it or was warm already."""

    def __init__(self, installation_id: str) -> None:
        self._client = docker_client()
        self._events = self._client.events(  # pyright: ignore[reportUnknownMemberType]
            decode=True,
            filters={
                "type": "container",
                "event": ["create", "start", "extract-to-dir"],
                "label": f"ci.installation={installation_id}",
            },
        )
        self.seen: dict[tuple[str, str], int] = {}
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for event in self._events:  # pyright: ignore[reportUnknownVariableType]
            key = (str(event.get("Action")), str(event.get("id")))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            self.seen.setdefault(key, int(event["timeNano"]))  # pyright: ignore[reportUnknownArgumentType]

    def at(self, action: str, container_id: str, *, within: float = 5.0) -> int | None:
        """When `action` happened to the container (ns since the epoch), or None."""
        deadline = time.monotonic() + within
        while (found := self.seen.get((action, container_id))) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return found

    def close(self) -> None:
        self._events.close()  # pyright: ignore[reportUnknownMemberType]
        self._client.close()


def container_of(service: CIService, job_id: str) -> str:
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    return str(container_id)


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
