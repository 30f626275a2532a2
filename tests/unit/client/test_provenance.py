"""The project's name and git provenance, as `ci submit test` reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ci_client.provenance import git_provenance, project_name

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_name_is_pyprojects_else_the_directorys(tmp_path: Path) -> None:
    root = tmp_path / "my-dir"
    root.mkdir()
    assert project_name(root) == "my-dir"
    (root / "pyproject.toml").write_text('[project]\nname = "inventory"\n')
    assert project_name(root) == "inventory"
    (root / "pyproject.toml").write_text("[tool.black]\n")  # no [project]
    assert project_name(root) == "my-dir"
    (root / "pyproject.toml").write_text("not = [toml")
    assert project_name(root) == "my-dir"
    assert project_name(Path(root, ".")) == "my-dir"


@needs_git
def test_a_git_checkout_gives_its_commit_branch_and_dirtiness(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "feature")
    (tmp_path / "a.py").write_text("A = 1\n")
    assert git_provenance(tmp_path) is None  # no commit yet
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-qm", "one")
    head = git(tmp_path, "rev-parse", "HEAD")

    assert git_provenance(tmp_path) == {"commit": head, "branch": "feature", "dirty": False}
    (tmp_path / "a.py").write_text("A = 2\n")
    assert git_provenance(tmp_path) == {"commit": head, "branch": "feature", "dirty": True}
    git(tmp_path, "checkout", "-q", "--detach")
    assert git_provenance(tmp_path) == {"commit": head, "branch": None, "dirty": True}


@needs_git
def test_outside_git_there_is_no_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    assert git_provenance(tmp_path / "plain") is None
