"""What a submitted tree is: the project's name and, in a git checkout, its commit.

Sent with every submit (form fields `project` and `git`) so a list of jobs tells projects and
commits apart. The name is `[project].name` of the root's `pyproject.toml`, else the
directory's name. The commit, branch and dirtiness come from git itself, in one call (`git
status --porcelain=v2 --branch` says what `rev-parse HEAD`, `rev-parse --abbrev-ref HEAD`
and `status --porcelain` would, in ~4 ms instead of ~8); outside a work tree, or when git is
missing or refuses, there is no git provenance and the submit goes on.
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
    it (changed, staged or untracked files); None outside a git work tree or without a first
    commit."""
    status = _git(root, "status", "--porcelain=v2", "--branch")
    if status is None:
        return None
    headers: dict[str, str] = {}
    dirty = False
    for line in status.splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            headers[key] = value
        elif line:
            dirty = True
    commit, branch = headers.get("branch.oid"), headers.get("branch.head")
    if commit is None or commit == "(initial)":
        return None
    return GitProvenance(
        commit=commit, branch=None if branch in (None, "(detached)") else branch, dirty=dirty
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
    return result.stdout.decode("utf-8", errors="replace")
