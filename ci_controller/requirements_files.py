"""Requirements files as pip and uv read them, prepared for a dependency build.

A root requirements file may pull in others (`-r other.txt`, `-c constraints.txt`, paths
relative to the file that names them); all of them go into the build container under the same
relative paths, and their contents into the cache key, so editing an included file rebuilds
the image as surely as editing the root one.

Each file is normalised before it is hashed or staged: continuation lines (`\\` at the end,
as hashes are written) are joined, comments and blank lines dropped, surrounding space
removed, so a cosmetic edit does not rebuild anything. Lines that name the project itself
(`.`, `-e .`, `-e .[test]`, `./`) are taken out: the build container never sees the project's
source, which changes every job. They are reported instead (with their extras), and the
project is installed in the job's own container (see `dependency_plan`). Everything else
(markers, hashes, URLs, options) is passed through for the installer to judge.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ci_common.errors import CIError
from ci_common.project_paths import MAX_MANIFEST_BYTES

ReadFile = Callable[[str], bytes | None]
"""The upload's file at a root-relative path (at most `MAX_MANIFEST_BYTES` + 1 bytes read),
or None when the upload has no such file."""

_INCLUDE = re.compile(r"(?P<option>-r|-c|--requirement|--constraint)\s*=?\s*(?P<path>\S+)")
_LOCAL_PROJECT = re.compile(r"(?:(?:-e|--editable)\s*=?\s*)?\.(?:/)?(?P<extras>\[[^\]]*\])?")


class RequirementsError(CIError):
    """A requirements file that cannot be prepared as written (an include that is missing or
    outside the project, or a file too large)."""


@dataclass
class RequirementsFiles:
    """A root requirements file and everything it includes, normalised."""

    files: dict[str, bytes] = field(default_factory=lambda: dict[str, bytes]())
    """Root-relative path → normalised contents, the root file first."""
    included: list[str] = field(default_factory=lambda: list[str]())
    """The paths pulled in by `-r`/`-c`, in the order they were met."""
    project_extras: set[str] | None = None
    """The extras of the lines naming the project itself, or None when no line does."""


def read_requirements(root: str, read: ReadFile) -> RequirementsFiles | None:
    """`root` and its includes, or None when the upload has no `root`."""
    if read(root) is None:
        return None
    found = RequirementsFiles()
    _add(root, read, found, named_by=None)
    return found


def _add(path: str, read: ReadFile, found: RequirementsFiles, *, named_by: str | None) -> None:
    if path in found.files:
        return  # included twice, or a cycle: pip reads it again, the contents are the same
    data = read(path)
    if data is None:
        raise RequirementsError(
            f"{named_by} includes {path}, which is not in the upload; add it to the project "
            "(or check that .gitignore does not leave it out)"
        )
    if len(data) > MAX_MANIFEST_BYTES:
        raise RequirementsError(
            f"{path} is over the {MAX_MANIFEST_BYTES} bytes a requirements file may have"
        )
    kept: list[str] = []
    includes: list[str] = []
    for line in logical_lines(data.decode("utf-8", errors="replace")):
        if (local := _LOCAL_PROJECT.fullmatch(line)) is not None:
            extras = found.project_extras if found.project_extras is not None else set[str]()
            names = (local.group("extras") or "[]")[1:-1]
            extras.update(name.strip() for name in names.split(",") if name.strip())
            found.project_extras = extras
            continue
        if (include := _INCLUDE.fullmatch(line)) is not None and "://" not in include["path"]:
            includes.append(_resolve(include["path"], path))
        kept.append(line)
    found.files[path] = ("\n".join(kept) + "\n").encode() if kept else b""
    for include in includes:
        if include not in found.files and include not in found.included:
            found.included.append(include)
        _add(include, read, found, named_by=path)


def _resolve(target: str, named_by: str) -> str:
    """An include's path relative to the project root (pip resolves it against the including
    file's directory)."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(named_by), target))
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise RequirementsError(
            f"{named_by} includes {target}, which is outside the project; the build sees only "
            "the uploaded project, so include files from inside it"
        )
    return joined


def logical_lines(text: str) -> list[str]:
    """The lines pip acts on: continuations joined, comments, blank lines and surrounding
    space dropped."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        joined.append(pending + raw)
        pending = ""
    if pending:
        joined.append(pending)
    kept: list[str] = []
    for line in joined:
        text_part = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if text_part and not text_part.startswith("#"):
            kept.append(" ".join(text_part.split()))
    return kept
