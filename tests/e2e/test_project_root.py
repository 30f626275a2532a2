"""The real `ci` command run inside a project's `tests/` directory: it packs the project's
root (found upward) and the job runs the project's tests from there; a project declaring no
dependencies runs on the job image as is, and its log says nothing was installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import BIN, CIService
from test_cli_jobs import submitted_id

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_submit_from_tests_runs_the_projects_tests_from_its_root(
    service: CIService, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "app.py").write_text("VALUE = 41\n")
    (project / "tests" / "test_app.py").write_text(
        "import os\n"
        "from app import VALUE\n\n"
        "def test_the_root_module_imports():\n    assert VALUE + 1 == 42\n\n"
        "def test_it_runs_at_the_root():\n    assert os.path.isfile('app.py')\n"
    )

    result = service.run_ci("submit", "test", cwd=project / "tests")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Packing {project.resolve()} (found .git)" in result.stderr
    assert "2 passed" in result.stdout
    log = service.logs(submitted_id(result.stderr))
    assert "[ci] dependencies: no dependency file (requirements.txt, pyproject.toml, uv.lock" in log
    assert "2 passed" in log


def test_a_dry_run_lists_the_root_without_a_server_or_a_key(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "requirements.txt").write_text("")
    (project / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("CI_")}
    env["HOME"] = str(tmp_path)

    result = subprocess.run(
        [str(BIN / "ci"), "submit", "test", "--dry-run"],
        cwd=project / "tests",
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "requirements.txt\ntests/test_a.py\n2 files, 19 B unpacked\n"
    assert f"Packing {project.resolve()} (found requirements.txt)" in result.stderr
