"""What a submitted tree is: the project's name and, in a git checkout, its commit.

Sent with every submit (form fields `project` and `git`) so a list of jobs tells projects and
commits apart. The name is `[project].name` of the root's `pyproject.toml`, else the
directory's name. The commit, branch and dirtiness come from git itself (`rev-parse`,
`status --porcelain`), the same answer the user's own prompt gives; outside a work tree, or
when git is missing or refuses, there is no git provenance and the submit goes on.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TypedDict, cast

GIT_TIMEOUT_SECONDS = 30


class GitProvenance(TypedDict):
    """The `git` form field: where the files came from."""

    commit: str
    branch: str | None
    dirty: bool


def project_name(root: Path) -> str:
    """pyproject's `[project].name`, else the name of the directory at `root`."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8", errors="replace"))
        except (OSError, tomllib.TOMLDecodeError):
            document = {}
        project = document.get("project")
        if isinstance(project, dict):
            name = cast(dict[str, object], project).get("name")
            if isinstance(name, str) and name.strip():
                return name.strip()
    return root.resolve().name


def git_provenance(root: Path) -> GitProvenance | None:
    """HEAD's commit, the branch (None when detached) and whether the work tree differs from
    it; None outside a git work tree or without a first commit."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if commit is None or not commit:
        return None
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(root, "status", "--porcelain")
    return GitProvenance(
        commit=commit,
        branch=branch if branch and branch != "HEAD" else None,
        dirty=bool(status),
    )


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, *args],
            cwd=root,
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", errors="replace").strip()
