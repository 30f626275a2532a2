"""Files a job keeps, end to end with the real `ci`, server, controller and Docker: junit.xml
for every job (also beside a project's own `--junitxml`), the user's `--artifact` patterns
downloaded byte for byte, the per-job cap, another user's job hidden; and a job whose tests
are killed by a signal keeps its exit code, its partial last line, and makes `ci` exit 137."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import httpx
import pytest
from harness import CIService, MakeService

pytestmark = pytest.mark.e2e

COVERAGE = bytes(range(256)) * 40  # binary, not text: kept byte for byte
WRITES_FILES = """\
import os
from pathlib import Path


def test_writes_reports():
    Path("coverage.xml").write_bytes(bytes(range(256)) * 40)
    for name in ("index.html", "deep/page.html"):
        path = Path("htmlcov", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<p>{name}</p>")
    Path("big.bin").write_bytes(os.urandom(3 * 1024 * 1024))


def test_fails():
    assert 1 + 1 == 3
"""


def ci(service: CIService, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return service.run_ci(*args, cwd=cwd)


def job_id_in(output: str) -> str:
    match = re.search(r"Job submitted: (\S+)", output)
    assert match, output
    return match.group(1)


def project_with(root: Path, name: str, files: dict[str, str]) -> Path:
    project = root / name
    project.mkdir()
    for path, text in files.items():
        (project / path).write_text(text)
    return project


def outcomes_in(junit: bytes) -> dict[str, str]:
    """Test name → outcome (`passed` or the first child's tag) in a JUnit report."""
    cases: dict[str, str] = {}
    for case in ElementTree.fromstring(junit).iter("testcase"):
        children = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        cases[case.attrib["name"]] = children[0] if children else "passed"
    return cases


def test_junit_and_the_users_patterns_are_kept_and_downloaded_byte_identical(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(env={"CI_MAX_ARTIFACTS_MB": "2"})
    project = project_with(tmp_path, "reports", {"test_reports.py": WRITES_FILES})

    result = ci(
        service,
        "submit",
        "test",
        str(project),
        "--async",
        "--artifact",
        "coverage.xml",
        "--artifact",
        "htmlcov/**",
        "--artifact",
        "big.bin",
        "--artifact",
        "nothing-*.txt",
    )
    assert result.returncode == 0, result.stderr
    job_id = job_id_in(result.stdout)
    waited = ci(service, "wait", job_id)
    assert waited.returncode == 1, waited.stdout + waited.stderr

    listed = service.http.get(f"/jobs/{job_id}/artifacts").json()
    assert {item["path"] for item in listed} == {
        "junit.xml",
        "coverage.xml",
        "htmlcov/index.html",
        "htmlcov/deep/page.html",
    }
    log = service.logs(job_id)
    assert "[ci] artifacts: no file matched 'nothing-*.txt'" in log
    assert re.search(r"\[ci\] artifacts: 1 file\(s\) not kept, over the 2 MiB .*big\.bin", log)

    out = tmp_path / "fetched"
    fetched = ci(service, "artifacts", job_id, "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "coverage.xml").read_bytes() == COVERAGE
    assert (out / "htmlcov" / "deep" / "page.html").read_text() == "<p>deep/page.html</p>"
    assert outcomes_in((out / "junit.xml").read_bytes()) == {
        "test_writes_reports": "passed",
        "test_fails": "failure",
    }
    sizes = {item["path"]: item["size"] for item in listed}
    assert sizes["coverage.xml"] == len(COVERAGE)
    assert not list(out.rglob(".ci-partial-*"))

    # Another user's job does not exist for them, and neither do its files.
    stranger = service.create_account("eve", "eve@example.com")
    headers = {"Authorization": f"Bearer {stranger}"}
    with httpx.Client(base_url=service.base_url, headers=headers) as other:
        assert other.get(f"/jobs/{job_id}/artifacts").status_code == 404
        assert other.get(f"/jobs/{job_id}/artifacts/coverage.xml").status_code == 404
    assert service.http.get(f"/jobs/{job_id}/artifacts/missing.txt").status_code == 404


def test_a_project_with_its_own_junitxml_gets_both_reports(
    service: CIService, tmp_path: Path
) -> None:
    project = project_with(
        tmp_path,
        "own-junit",
        {
            "pytest.ini": "[pytest]\naddopts = --junitxml=reports/config.xml\n"
            "junit_suite_name = mine\n",
            "test_one.py": "def test_one():\n    pass\n",
        },
    )

    result = ci(
        service,
        "submit",
        "test",
        str(project),
        "--artifact",
        "reports/*.xml",
        "--",
        "--junitxml=reports/args.xml",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    job_id = job_id_in(result.stderr)
    listed = {item["path"] for item in service.http.get(f"/jobs/{job_id}/artifacts").json()}
    assert listed == {"junit.xml", "reports/args.xml"}  # the arguments win over addopts
    ours = service.http.get(f"/jobs/{job_id}/artifacts/junit.xml").content
    theirs = service.http.get(f"/jobs/{job_id}/artifacts/reports/args.xml").content
    assert outcomes_in(ours) == outcomes_in(theirs) == {"test_one": "passed"}
    assert b'name="mine"' in ours  # the project's ini options shape our report too


def test_tests_killed_by_a_signal_keep_the_code_the_partial_line_and_ci_exits_137(
    service: CIService, tmp_path: Path
) -> None:
    project = project_with(
        tmp_path,
        "killed",
        {
            "test_killed.py": "import os, signal, sys\n\n"
            "def test_dies():\n"
            "    sys.stdout.write('half a line, then')\n"
            "    sys.stdout.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
        },
    )

    result = ci(service, "submit", "test", str(project), "--", "-s")

    assert result.returncode == 137, result.stdout + result.stderr
    assert "killed by SIGKILL (exit code 137)" in result.stderr
    job_id = job_id_in(result.stderr)
    job = service.job(job_id)
    assert (job["conclusion"], job["exit_code"]) == ("failure", 137)
    log = service.logs(job_id)
    # The partial line is kept whole; the notes follow it, the test results' first.
    assert "half a line, then\n[ci] test results: pytest did not finish its session" in log
    assert "\n[ci] the tests were killed by SIGKILL (exit code 137)" in log
    assert ci(service, "wait", job_id).returncode == 137
