"""Where a project starts, seen from a directory inside it.

`ci submit test` run in `proj/tests` must pack `proj`, not `tests/`: the job runs pytest at the
zip root, where the project's configuration and imports expect it. The root is the first
directory, from the current one upward, holding a file that only a project root has; with none
up to the filesystem root, the current directory is packed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT_MARKERS = ("pyproject.toml", "requirements.txt", "setup.py", "setup.cfg", ".git")
"""What marks a project root, in the order a found one is named (`.git` may be a file: a
worktree or a submodule)."""


@dataclass(frozen=True)
class ProjectRoot:
    """The directory to pack and the marker that chose it (None: none was found)."""

    path: Path
    marker: str | None

    def describe(self) -> str:
        """The line `ci submit test` prints before packing."""
        if self.marker is None:
            return f"Packing {self.path} (no project file found above it)"
        return f"Packing {self.path} (found {self.marker})"


def find_project_root(start: Path) -> ProjectRoot:
    """The first directory from `start` upward holding one of `ROOT_MARKERS`, else `start`."""
    start = start.resolve()
    for directory in (start, *start.parents):
        for marker in ROOT_MARKERS:
            if (directory / marker).exists():
                return ProjectRoot(path=directory, marker=marker)
    return ProjectRoot(path=start, marker=None)
