"""Python versions end to end, with the real `ci`, server, controller and Docker: a job asking
for 3.13 runs on the 3.13 image, a project whose requires-python rules out 3.11 runs on 3.13
without asking, and a version nobody offers is refused at submit time with the list. The
harness offers `ci-python:3.13` beside the default (`CI_JOB_IMAGES`); scripts/test builds it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from harness import CIService

pytestmark = pytest.mark.e2e

VERSION_TEST = """\
import os
import sys


def test_python():
    print("running on", sys.version_info[:3], "with", len(os.sched_getaffinity(0)), "CPUs")
    assert sys.version_info[:2] == {expected}
"""


def project(root: Path, *, expected: tuple[int, int], pyproject: str | None = None) -> Path:
    directory = root / "versioned"
    directory.mkdir()
    (directory / "test_version.py").write_text(VERSION_TEST.format(expected=expected))
    if pyproject is not None:
        (directory / "pyproject.toml").write_text(pyproject)
    return directory


def job_id_in(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"Job submitted: (\S+)", result.stderr)
    assert match, result.stdout + result.stderr
    return match.group(1)


def test_a_job_asking_for_3_13_runs_on_it(service: CIService, tmp_path: Path) -> None:
    directory = project(tmp_path, expected=(3, 13))

    result = service.run_ci("submit", "test", str(directory), "--python", "3.13")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    job_id = job_id_in(result)
    first_line = service.logs(job_id).splitlines()[0]
    assert re.fullmatch(r"\[ci\] Python 3\.13\.\d+ \(image ci-python:3\.13\)", first_line)
    assert service.job(job_id)["python"] == "3.13"
    status = service.run_ci("status", job_id)
    assert re.search(r"^python: +3\.13$", status.stdout, re.MULTILINE), status.stdout


def test_requires_python_picks_3_13_without_asking(service: CIService, tmp_path: Path) -> None:
    directory = project(
        tmp_path,
        expected=(3, 13),
        pyproject='[project]\nname = "modern"\nversion = "1"\nrequires-python = ">=3.12"\n',
    )

    result = service.run_ci("submit", "test", str(directory))

    assert result.returncode == 0, result.stdout + result.stderr
    assert service.job(job_id_in(result))["python"] == "3.13"


def test_an_unknown_version_is_refused_with_the_versions_there_are(
    service: CIService, tmp_path: Path
) -> None:
    directory = project(tmp_path, expected=(3, 12))

    result = service.run_ci("submit", "test", str(directory), "--python", "3.12")

    assert result.returncode == 65, result.stdout + result.stderr
    assert "Python 3.12 is not offered here; the versions there are: 3.11, 3.13" in result.stderr
    assert service.http.get("/jobs").json() == []
    runtimes = service.http.get("/runtimes").json()
    assert [(r["version"], r["image"], r["default"]) for r in runtimes] == [
        ("3.11", "ci-python:3.11", True),
        ("3.13", "ci-python:3.13", False),
    ]
