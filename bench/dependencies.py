"""Installing a project's dependencies: ours against a bare `docker run`, in the same run.

    .venv/bin/python bench/dependencies.py [--runs 3]

The project: ten small pure-Python dependencies in requirements.txt and ten tests that import
them. Every time is "submit to the first test line": from the moment the work is asked for to
the first line pytest prints about the tests (the `test_deps.py` progress line).

- cold, ours: `POST /submit-stream` of a variant of the project no earlier run had (the same
  packages under another cache key), so the controller installs them (uv, no cache) into a
  new image, then runs the tests in a fresh container;
- cold, floor: `docker run --rm` on the same job image of `uv pip install -r
  requirements.txt && python -m pytest` with the project mounted, uv's cache off (as in our
  builds): what installing and testing costs at the least;
- cold, pip: the same `docker run` with `pip install` (what the reference system does);
- warm, ours: the same project again (its image cached) against a project with the same tests
  and no dependencies (the target: < 100 ms more).

Needs Docker and a job image with uv (CI_JOB_IMAGE; scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from service import median, running_service

from harness import JOB_IMAGE, CIService, zip_project  # isort: skip

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


def until_first_test_line(service: CIService, project: Path) -> float:
    started = time.perf_counter()
    first: float | None = None
    for message in service.submit_stream(zip_project(project)):
        if message["type"] == "log" and first is None and FIRST_TEST_LINE in str(message["data"]):
            first = time.perf_counter() - started
        elif message["type"] == "complete":
            assert message["conclusion"] == "success", service.logs(str(message.get("job_id")))
    assert first is not None, "no test line in the log"
    return first


def floor(project: Path, installer: str) -> float:
    """`docker run --rm` of install + pytest on the job image, to the first test line."""
    install = {
        "uv": "uv pip install -q --python python -r requirements.txt",
        "pip": "python -m pip install -q --no-warn-script-location -r requirements.txt",
    }[installer]
    command = [
        "docker",
        "run",
        "--rm",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ci-bench-deps-") as scratch:
        project = write_project(Path(scratch) / "deps", with_dependencies=True)
        bare = write_project(Path(scratch) / "bare", with_dependencies=False)
        os.chmod(scratch, 0o755)
        with running_service() as service:
            until_first_test_line(service, bare)  # warm-up: first-use costs, the probe
            cold: dict[str, list[float]] = {"ours": [], "uv": [], "pip": []}
            for run in range(args.runs):
                write_project(project, with_dependencies=True, variant=run + 1)
                cold["ours"].append(until_first_test_line(service, project))
                cold["uv"].append(floor(project, "uv"))
                cold["pip"].append(floor(project, "pip"))
            warm: dict[str, list[float]] = {"ours": [], "bare": []}
            for _ in range(args.runs + 2):
                warm["ours"].append(until_first_test_line(service, project))
                warm["bare"].append(until_first_test_line(service, bare))
            controller_log = "".join(
                p.output() for p in service.processes if p.name == "controller"
            )
            claimed = controller_log.count(" claimed (")
            waited = [float(ms) for ms in re.findall(r" claimed \((\d+) ms after", controller_log)]
            builds = [float(s) for s in re.findall(r"built in (\d+\.\d+) s", controller_log)]

    print(
        f"dependencies bench: 10 pure-Python dependencies, {args.runs} cold runs, image {JOB_IMAGE}"
    )
    for name, label in (
        ("ours", "ours (POST /submit-stream, new image)"),
        ("uv", "floor: docker run uv pip install + pytest"),
        ("pip", "pip: docker run pip install + pytest"),
    ):
        print(f"  cold {label:44} median {median(cold[name]):.2f} s  runs {_fmt(cold[name])}")
    print(
        f"  of which the dependency build (check, install, commit): median {median(builds):.2f} s"
    )
    print(
        f"  cold ratio ours / uv floor: {median(cold['ours']) / median(cold['uv']):.2f}x "
        f"(target <= 1.3x); pip / uv: {median(cold['pip']) / median(cold['uv']):.2f}x"
    )
    added = (median(warm["ours"]) - median(warm["bare"])) * 1000
    for name, label in (("ours", "ours (cached image)"), ("bare", "no dependencies")):
        print(f"  warm {label:44} median {median(warm[name]):.3f} s  runs {_fmt(warm[name])}")
    print(f"  warm adds {added:.0f} ms over no dependencies (target < 100 ms)")
    print(f"  jobs that claimed a warm container: {claimed} of {1 + 3 * args.runs + 4}")
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
