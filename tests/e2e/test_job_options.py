"""What a submit asks of its job, end to end with the real `ci`, server, controller and
Docker: pytest arguments after `--` select tests, `-e` variables, `CI=true` and `CI_JOB_ID`
reach the tests, in a warm container and a cold one alike; `ci list` tells projects and
commits apart; and the API refuses bad options with a 422 and publishes its limits."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from harness import CIService, MakeService, wait_until, zip_project

pytestmark = pytest.mark.e2e

SELECTED_TEST = """\
import os


def test_parse_sees_its_environment():
    assert os.environ["FOO"] == "bar baz"
    assert os.environ["CI"] == "true"
    print("job id seen:", os.environ["CI_JOB_ID"])


def test_other_must_not_run():
    raise AssertionError("deselected by -k, stopped by -x: this never runs")
"""


def ci(service: CIService, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return service.run_ci(*args, cwd=cwd)


def job_id_in(output: str) -> str:
    match = re.search(r"Job submitted: (\S+)", output)
    assert match, output
    return match.group(1)


def two_tests(root: Path, name: str = "selected") -> Path:
    project = root / name
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "test_two.py").write_text(SELECTED_TEST)
    return project


def warm_container(service: CIService) -> str:
    return wait_until(
        lambda: next((c for c in service.containers() if c not in service.job_containers()), None),
        within=30,
        what="a warm container",
    )


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_arguments_after_double_dash_and_env_reach_pytest(
    make_service: MakeService, tmp_path: Path, warm: bool
) -> None:
    service = make_service(env={"CI_WARM_CONTAINERS": "true" if warm else "false"})
    waiting = warm_container(service) if warm else None
    project = two_tests(tmp_path)

    result = ci(
        service,
        "submit",
        "test",
        str(project),
        "-e",
        "FOO=bar baz",
        "--",
        "-k",
        "parse",
        "-x",
        "-s",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    job_id = job_id_in(result.stderr)
    assert f"job id seen: {job_id}" in result.stdout
    assert "1 passed, 1 deselected" in result.stdout
    log = service.logs(job_id).split("\n", 1)[1]  # after the Python line
    assert log.startswith(
        "[ci] pytest arguments: -k parse -x -s\n[ci] environment: FOO (values not shown)\n"
    )
    assert "bar baz" not in log
    job = service.job(job_id)
    assert (job["pytest_args"], job["env"]) == (["-k", "parse", "-x", "-s"], {"FOO": "bar baz"})
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    assert (container_id == waiting) is warm


def test_a_python_startup_variable_takes_effect(service: CIService, tmp_path: Path) -> None:
    project = tmp_path / "src-layout"
    (project / "src" / "inventory").mkdir(parents=True)
    (project / "requirements.txt").write_text("")
    (project / "src" / "inventory" / "__init__.py").write_text("TOTAL = 3\n")
    (project / "test_src.py").write_text(
        "import sys\nimport inventory\n\n"
        "def test_imports_from_src():\n"
        "    assert inventory.TOTAL == 3\n"
        "    assert sys.flags.hash_randomization == 0  # PYTHONHASHSEED, read at start-up only\n"
    )

    result = ci(
        service,
        "submit",
        "test",
        str(project),
        "-e",
        "PYTHONPATH=src",
        "-e",
        "PYTHONHASHSEED=0",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_ci_list_tells_projects_and_commits_apart(service: CIService, tmp_path: Path) -> None:
    alpha = tmp_path / "alpha-dir"
    alpha.mkdir()
    (alpha / "pyproject.toml").write_text('[project]\nname = "alpha-lib"\nversion = "1"\n')
    (alpha / "test_a.py").write_text("def test_a():\n    pass\n")
    git(alpha, "init", "-q", "-b", "trunk")
    git(alpha, "add", ".")
    git(alpha, "commit", "-qm", "first")
    commit = git(alpha, "rev-parse", "HEAD")
    (alpha / "test_a.py").write_text("def test_a():\n    assert True\n")  # uncommitted
    beta = tmp_path / "beta-dir"
    beta.mkdir()
    (beta / "requirements.txt").write_text("")
    (beta / "test_b.py").write_text("def test_b():\n    pass\n")

    first = job_id_in(ci(service, "submit", "test", "--async", cwd=alpha).stdout)
    second = job_id_in(ci(service, "submit", "test", "--async", str(beta)).stdout)
    for job_id in (first, second):
        assert service.wait_for_job(job_id)["conclusion"] == "success"

    listed = ci(service, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows[first[:8]][1:4] == ["alpha-lib", f"{commit[:10]}*", "trunk"]
    assert rows[second[:8]][1:4] == ["beta-dir", "-", "-"]
    only = ci(service, "list", "--project", "beta-dir")
    assert [line.split()[0] for line in only.stdout.splitlines()[1:]] == [second[:8]]
    assert service.job(first)["git"] == {"commit": commit, "branch": "trunk", "dirty": True}
    status = ci(service, "status", first)
    assert re.search(
        rf"^commit: +{commit} on trunk, with uncommitted changes$", status.stdout, re.MULTILINE
    )
    assert re.search(r"^project: +alpha-lib$", status.stdout, re.MULTILINE)


def test_the_api_refuses_bad_options_with_422_and_publishes_its_limits(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(controller=False, env={"CI_MAX_UPLOAD_MB": "3"})
    archive = zip_project(two_tests(tmp_path))
    for fields, words in [
        ({"pytest_args": '"-k parse"'}, "pytest_args must be a JSON array of strings"),
        ({"pytest_args": json.dumps(["a\0b"])}, "contains a NUL"),
        ({"env": '{"9LIVES": "x"}'}, "not a valid variable name"),
        ({"env": '{"CI_JOB_ID": "x"}'}, "set by the CI service itself"),
    ]:
        for endpoint in ("/submit", "/submit-stream", "/submit-async"):
            response = service.http.post(
                endpoint, files={"file": ("p.zip", archive, "application/zip")}, data=fields
            )
            assert response.status_code == 422, (endpoint, response.text)
            assert words in response.json()["detail"]
    assert service.http.get("/jobs").json() == []

    limits = service.http.get("/limits").json()
    assert limits["max_upload_bytes"] == 3 * 1024 * 1024
    assert limits["max_pytest_args"] > 0 and "CI" in limits["reserved_env_names"]
