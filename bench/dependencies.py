"""Installing a project's dependencies: ours against a bare `docker run`, in the same run.

    .venv/bin/python bench/dependencies.py [--runs 3]

The project: ten small pure-Python dependencies in requirements.txt and ten tests that import
them. Every time is "submit to the first test line": from the moment the work is asked for to
the first line pytest prints about the tests (the `test_deps.py` progress line).

- cold, ours: `POST /submit-stream` of a variant of the project no earlier run had (the same
  packages under another cache key), so the controller installs them (uv, no cache) in the
  job's own container and runs the tests there once its network is gone; the image later jobs
  reuse is built after the job, and the bench waits for it before the floors run, so the two
  never share the CPU;
- cold, floor: `docker run --rm` on the same job image of `uv pip install -r
  requirements.txt && python -m pytest` with the project mounted, uv's cache off (as in our
  builds), on the service's build network (the way our installs reach the index): what
  installing and testing costs at the least;
- cold, pip: the same `docker run` with `pip install` (what the reference system does);
- warm, ours: the same project again (its image cached) against a project with the same tests
  and no dependencies (the target: < 100 ms more);
- warm, floor: `docker run --rm` of pytest on an image that holds the project and its
  dependencies (the cached dependency image) against the same on the job image with the
  project without dependencies: what importing ten packages costs in the tests themselves,
  which no installer can take away. What we add is the difference of the two differences.

Each cold run also prints its phases, from Docker's events for the installation's containers
and the installer's own timings in the job log (`--phases` for every event).

Needs Docker and a job image with uv (CI_JOB_IMAGE; scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from service import floor_image, median, running_service

from harness import JOB_IMAGE, CIService, docker_client, zip_project  # isort: skip

DEPENDENCIES = {
    "six": "six",
    "toml": "toml",
    "tomli": "tomli",
    "attrs": "attrs",
    "idna": "idna",
    "colorama": "colorama",
    "wcwidth": "wcwidth",
    "itsdangerous": "itsdangerous",
    "more-itertools": "more_itertools",
    "sortedcontainers": "sortedcontainers",
}
FIRST_TEST_LINE = "test_deps.py"


def write_project(root: Path, *, with_dependencies: bool, variant: int = 0) -> Path:
    """The bench project; each `variant` installs the same (a marker that always holds, on
    the first line) under another cache key, so it finds no image and no warm container."""
    root.mkdir(parents=True, exist_ok=True)
    modules = list(DEPENDENCIES.values())
    if with_dependencies:
        names = list(DEPENDENCIES)
        names[0] += f' ; python_version >= "3.{variant}"'
        (root / "requirements.txt").write_text("\n".join(names) + "\n")
    tests = "".join(
        f"def test_{module}():\n"
        + (f"    import {module}\n    assert {module}\n" if with_dependencies else "    pass\n")
        for module in modules
    )
    (root / "test_deps.py").write_text(tests)
    return root


class Submitted:
    """One job as the bench saw it: wall-clock ns of the submit and the first test line, and
    its log."""

    def __init__(self) -> None:
        self.started_ns = 0
        self.first_ns = 0
        self.job_id = ""
        self.log = ""


def until_first_test_line(
    service: CIService, project: Path, *, seen: Submitted | None = None
) -> float:
    seen = seen if seen is not None else Submitted()
    seen.started_ns = time.time_ns()
    started = time.perf_counter()
    first: float | None = None
    for message in service.submit_stream(zip_project(project)):
        if message["type"] == "job_id":
            seen.job_id = str(message.get("job_id"))
        if message["type"] == "log":
            seen.log += str(message["data"])
        if message["type"] == "log" and first is None and FIRST_TEST_LINE in str(message["data"]):
            first = time.perf_counter() - started
            seen.first_ns = time.time_ns()
        elif message["type"] == "complete":
            assert message["conclusion"] == "success", service.logs(seen.job_id)
    assert first is not None, "no test line in the log"
    return first


class EngineEvents:
    """Docker's container events for one installation (create, start, die, commit, destroy,
    extract-to-dir), with their roles: where a cold job's time goes."""

    ACTIONS = ["create", "start", "die", "commit", "destroy", "extract-to-dir"]

    def __init__(self, installation_id: str) -> None:
        self._client = docker_client()
        self._events = self._client.events(  # pyright: ignore[reportUnknownMemberType]
            decode=True,
            filters={
                "type": "container",
                "event": self.ACTIONS,
                "label": f"ci.installation={installation_id}",
            },
        )
        self.seen: list[tuple[int, str, str, str]] = []
        """(ns since the epoch, action, container id, role)."""
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for event in self._events:  # pyright: ignore[reportUnknownVariableType]
            attributes = event.get("Actor", {}).get("Attributes", {})  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            self.seen.append(
                (
                    int(event["timeNano"]),  # pyright: ignore[reportUnknownArgumentType]
                    str(event.get("Action")).split(":")[0],  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                    str(event.get("id"))[:12],  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                    str(attributes.get("ci.role", "?")),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                )
            )

    def between(self, start_ns: int, end_ns: int) -> list[tuple[int, str, str, str]]:
        return sorted(e for e in self.seen if start_ns <= e[0] <= end_ns)

    def close(self) -> None:
        self._events.close()  # pyright: ignore[reportUnknownMemberType]
        self._client.close()


_UV_TIMINGS = re.compile(
    r"^(Resolved|Prepared|Installed|Bytecode compiled|Audited) .* in ([\d.]+m?s)$", re.M
)


def phases(events: EngineEvents, seen: Submitted, *, every: bool) -> str:
    """A cold job's phases in ms since its submit: the engine's events by role, the
    installer's own timings, the first test line."""
    lines: list[str] = []
    firsts: dict[str, int] = {}
    for at, action, container, role in events.between(seen.started_ns, seen.first_ns):
        offset = (at - seen.started_ns) // 1_000_000
        firsts.setdefault(f"{role} {action}", offset)
        if every:
            lines.append(f"      {offset:6d} ms  {role:16} {action:14} {container}")
    summary = ", ".join(f"{name} {ms}" for name, ms in firsts.items())
    timings = "; ".join(" ".join(m) for m in _UV_TIMINGS.findall(seen.log))
    first = (seen.first_ns - seen.started_ns) // 1_000_000
    head = f"    phases (ms after submit): {summary}, first test line {first}\n    uv: {timings}"
    return "\n".join([head, *lines])


def cached_images(service: CIService, *, count: int, within: float = 120.0) -> None:
    """Wait until the controller has built `count` images after cold jobs (in the
    background, after each job), the warm container on the last one runs and the build
    containers are gone, so none of it competes with what is measured next."""
    deadline = time.monotonic() + within
    built: list[str] = []
    while len(built) < count:
        assert time.monotonic() < deadline, f"no image built after cold job {count}"
        time.sleep(0.1)
        log = "".join(p.output() for p in service.processes if p.name == "controller")
        built = re.findall(r"dependency image (\S+) built in [\d.]+ s, after the job", log)
    label = f"ci.installation={service.installation_id()}"
    client = docker_client()
    try:
        while True:
            assert time.monotonic() < deadline, f"the service did not settle after {built[-1]}"
            running = client.api.containers(filters={"label": label})  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            roles = {
                (c["Labels"].get("ci.role"), c["Image"])  # pyright: ignore[reportUnknownMemberType]
                for c in running  # pyright: ignore[reportUnknownVariableType]
            }
            building = client.api.containers(  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                all=True, filters={"label": [label, "ci.role=dependency-build"]}
            )
            if ("warm", built[-1]) in roles and not building:
                return
            time.sleep(0.1)
    finally:
        client.close()


def floor(project: Path, installer: str, *, network: str) -> float:
    """`docker run --rm` of install + pytest on the job image, to the first test line, on
    `network`: the build network our installs use, so both reach the index the same way."""
    install = {
        "uv": "uv pip install -q --python python -r requirements.txt",
        "pip": "python -m pip install -q --no-warn-script-location -r requirements.txt",
    }[installer]
    command = [
        "docker",
        "run",
        "--rm",
        "--network",
        network,
        "-e",
        "UV_NO_CACHE=1",
        "-e",
        "PIP_NO_CACHE_DIR=1",
        "-v",
        f"{project}:/src:ro",
        JOB_IMAGE,
        "sh",
        "-c",
        f"cp -r /src/. /workspace && cd /workspace && {install} && python -m pytest",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first: float | None = None
    for line in process.stdout:
        if first is None and line.startswith(FIRST_TEST_LINE):
            first = time.perf_counter() - started
    assert process.wait() == 0 and first is not None, f"{installer} floor failed"
    return first


def docker_run_first_line(tag: str) -> float:
    """Seconds from `docker run --rm` of pytest on `tag` (network off) to the first test line,
    read as it comes (pytest writes the file name before the file's tests run). The
    dependency image carries the installation's label, which would make the controller
    remove the container as an orphan: overridden."""
    command = ["docker", "run", "--rm", "--network", "none", "--label", "ci.installation=bench"]
    command += [tag, "python", "-m", "pytest"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output, first = b"", None
    while chunk := os.read(process.stdout.fileno(), 4096):
        output += chunk
        if first is None and FIRST_TEST_LINE.encode() in output:
            first = time.perf_counter() - started
    code = process.wait()
    assert code == 0 and first is not None, f"{command} failed ({code}): {output!r}"
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="every engine event of cold runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ci-bench-deps-") as scratch:
        project = write_project(Path(scratch) / "deps", with_dependencies=True)
        bare = write_project(Path(scratch) / "bare", with_dependencies=False)
        os.chmod(scratch, 0o755)
        with running_service() as service:
            until_first_test_line(service, bare)  # warm-up: first-use costs, the probe
            events = EngineEvents(service.installation_id())
            cold: dict[str, list[float]] = {"ours": [], "uv": [], "pip": []}
            cold_phases: list[str] = []
            for run in range(args.runs):
                write_project(project, with_dependencies=True, variant=run + 1)
                seen = Submitted()
                cold["ours"].append(until_first_test_line(service, project, seen=seen))
                cached_images(service, count=run + 1)
                time.sleep(0.5)  # the engine's last events of the run reach the listener
                cold_phases.append(phases(events, seen, every=args.phases))
                network = f"ci-build-{service.installation_id()}"  # made by the first build
                cold["uv"].append(floor(project, "uv", network=network))
                cold["pip"].append(floor(project, "pip", network=network))
            events.close()
            warm: dict[str, list[float]] = {"ours": [], "bare": []}
            warm_seen = Submitted()
            for _ in range(args.runs + 2):
                warm["ours"].append(until_first_test_line(service, project, seen=warm_seen))
                warm["bare"].append(until_first_test_line(service, bare))
            cached = re.search(r"cached image (\S+) used", warm_seen.log)
            assert cached is not None, warm_seen.log
            floors: dict[str, list[float]] = {"deps": [], "bare": []}
            with (
                floor_image(project, base=cached.group(1)) as deps_tag,
                floor_image(bare) as bare_tag,
            ):
                for _ in range(args.runs + 2):
                    floors["deps"].append(docker_run_first_line(deps_tag))
                    floors["bare"].append(docker_run_first_line(bare_tag))
            controller_log = "".join(
                p.output() for p in service.processes if p.name == "controller"
            )
            claimed = controller_log.count(" claimed (")
            waited = [float(ms) for ms in re.findall(r" claimed \((\d+) ms after", controller_log)]
            builds = [
                float(s)
                for s in re.findall(r"built in (\d+\.\d+) s, after the job", controller_log)
            ]

    print(
        f"dependencies bench: 10 pure-Python dependencies, {args.runs} cold runs, image {JOB_IMAGE}"
    )
    for name, label in (
        ("ours", "ours (POST /submit-stream, new image)"),
        ("uv", "floor: docker run uv pip install + pytest"),
        ("pip", "pip: docker run pip install + pytest"),
    ):
        print(f"  cold {label:44} median {median(cold[name]):.2f} s  runs {_fmt(cold[name])}")
    print(f"  the image for later jobs, built after each cold job: median {median(builds):.2f} s")
    for run, text in enumerate(cold_phases, 1):
        print(f"  cold run {run}:\n{text}")
    print(
        f"  cold ratio ours / uv floor: {median(cold['ours']) / median(cold['uv']):.2f}x "
        f"(target <= 1.3x); pip / uv: {median(cold['pip']) / median(cold['uv']):.2f}x"
    )
    added = (median(warm["ours"]) - median(warm["bare"])) * 1000
    for name, label in (("ours", "ours (cached image)"), ("bare", "no dependencies")):
        print(f"  warm {label:44} median {median(warm[name]):.3f} s  runs {_fmt(warm[name])}")
    print(f"  warm adds {added:.0f} ms over no dependencies (target < 100 ms)")
    imports = (median(floors["deps"]) - median(floors["bare"])) * 1000
    for name, label in (
        ("deps", "floor: docker run on the dependency image"),
        ("bare", "floor: docker run, no dependencies"),
    ):
        print(f"  warm {label:44} median {median(floors[name]):.3f} s  runs {_fmt(floors[name])}")
    print(
        f"  the tests importing ten packages (floor difference): {imports:.0f} ms; "
        f"what we add beyond it: {added - imports:.0f} ms"
    )
    print(
        f"  jobs that claimed a warm container: {claimed} of {1 + args.runs + 2 * (args.runs + 2)}"
    )
    ours_waits, bare_waits = (
        waited[-2 * (args.runs + 2) :: 2],
        waited[-2 * (args.runs + 2) + 1 :: 2],
    )
    print(
        f"  warm, job stored -> container claimed: ours p50 {median(ours_waits):.0f} ms, "
        f"no dependencies p50 {median(bare_waits):.0f} ms"
    )


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
