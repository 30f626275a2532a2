"""From the uploaded zip to what a container needs: a tar of the project and its requirements.

The project enters the container through the engine's API (`put_archive`), never a bind mount,
so a remote engine works the same. The tar holds `workspace/` and everything below it owned by
uid/gid 1000, the unprivileged user tests run as, so tests may write next to their files, and
ends with `READY_MARKER`, a file outside the workspace (so no upload can collide with it and
the tests never see it) whose appearance tells the container that everything before it is in
place.

Dependencies are read from `requirements.txt` at the project root, or else from
`[project].dependencies` of `pyproject.toml`. They are normalised (comments, blank lines and
surrounding spaces dropped) before hashing, so a cosmetic edit does not rebuild the cached
dependency image; the key also covers the base image id, so a rebuilt job image gets fresh
dependency images.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import cast

from ci_common.errors import CIError

WORKSPACE = "workspace"
READY_MARKER = ".ci-ready"
"""The tar's last entry, at the container's root: once it exists, the whole project does (it
is never removed: see `docker_containers` for why)."""
JOB_UID = 1000
JOB_GID = 1000


class ProjectArchiveError(CIError):
    """The stored upload cannot be turned into a project (corrupt or unsafe entries)."""


@dataclass(frozen=True)
class Project:
    """An uploaded project, ready for a container."""

    tar: bytes
    requirements: bytes | None
    """Normalised requirement lines, or None when the project needs nothing beyond the image."""

    def dependency_key(self, base_image_id: str) -> str | None:
        """The cache key of the dependency image this project needs on `base_image_id`."""
        if self.requirements is None:
            return None
        digest = hashlib.sha256(base_image_id.encode() + b"\n" + self.requirements)
        return digest.hexdigest()[:24]


def load_project(archive: bytes) -> Project:
    """Convert the zip upload; `ProjectArchiveError` says what is wrong with it."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as upload:
            files = _read_entries(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ProjectArchiveError(
            f"the stored upload is not a readable zip ({exc}); zip the project root and submit "
            "it again"
        ) from exc
    return Project(tar=_workspace_tar(files), requirements=_requirements(files))


@dataclass(frozen=True)
class _Entry:
    path: PurePosixPath
    data: bytes | None  # None for a directory
    mode: int


def _read_entries(upload: zipfile.ZipFile) -> list[_Entry]:
    entries: list[_Entry] = []
    for info in upload.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
            raise ProjectArchiveError(
                f"unsafe path {info.filename!r} in the upload; zip the project root with "
                "relative paths only"
            )
        unix_mode = info.external_attr >> 16
        if stat.S_ISLNK(unix_mode):
            raise ProjectArchiveError(
                f"symlink {info.filename!r} in the upload; replace it with the file itself"
            )
        if info.is_dir():
            entries.append(_Entry(path=path, data=None, mode=0o755))
        else:
            executable = bool(unix_mode & 0o111)
            entries.append(
                _Entry(path=path, data=upload.read(info), mode=0o755 if executable else 0o644)
            )
    return entries


def _workspace_tar(entries: list[_Entry]) -> bytes:
    buffer = io.BytesIO()
    directories: set[PurePosixPath] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = PurePosixPath(WORKSPACE)

        def add_directory(path: PurePosixPath) -> None:
            if path in directories:
                return
            if path != root:
                add_directory(path.parent)
            directories.add(path)
            tar.addfile(_tar_info(str(path), tarfile.DIRTYPE, mode=0o755, size=0))

        add_directory(root)
        for entry in entries:
            target = root / entry.path
            if entry.data is None:
                add_directory(target)
                continue
            add_directory(target.parent)
            info = _tar_info(str(target), tarfile.REGTYPE, mode=entry.mode, size=len(entry.data))
            tar.addfile(info, io.BytesIO(entry.data))
        tar.addfile(_tar_info(READY_MARKER, tarfile.REGTYPE, mode=0o644, size=0))
    return buffer.getvalue()


def _tar_info(name: str, kind: bytes, *, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.uid, info.gid = JOB_UID, JOB_GID
    info.uname = info.gname = "ci"
    return info


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar.baz` and `foo-bar-baz` name one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(entries: list[_Entry]) -> bytes | None:
    by_path = {str(entry.path): entry.data for entry in entries if entry.data is not None}
    if (text := by_path.get("requirements.txt")) is not None:
        lines = _normalise(text.decode("utf-8", errors="replace").splitlines())
    elif (pyproject := by_path.get("pyproject.toml")) is not None:
        lines = _normalise(_pyproject_dependencies(pyproject))
    else:
        lines = []
    return ("\n".join(lines) + "\n").encode() if lines else None


def _normalise(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        text = line.split(" #", 1)[0].strip()
        if text and not text.startswith("#"):
            kept.append(text)
    return kept


def _pyproject_dependencies(pyproject: bytes) -> list[str]:
    try:
        document = tomllib.loads(pyproject.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ProjectArchiveError(
            f"pyproject.toml is not valid TOML ({exc}); fix it or add a requirements.txt"
        ) from exc
    project = document.get("project", {})
    dependencies: object = (
        cast(dict[str, object], project).get("dependencies", [])
        if isinstance(project, dict)
        else []
    )
    if not isinstance(dependencies, list):
        raise ProjectArchiveError(
            "[project].dependencies in pyproject.toml is not a list of requirement strings"
        )
    return [str(item) for item in cast(list[object], dependencies)]
