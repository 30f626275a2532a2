"""Pack a project directory into the zip that `ci submit test` uploads.

Which files: in a git work tree, exactly what git would consider part of the project, the
tracked files plus untracked ones that are not ignored (`git ls-files -co --exclude-standard`),
so `.gitignore`, `.git/info/exclude` and the global excludes all apply as the user expects.
Outside git (or when git is missing or refuses, e.g. "dubious ownership"), a walk that honours
every `.gitignore` below the root with the same rules (`ci_client.ignore`).

Whatever git says, some directories never belong in a test upload and are always left out:
`.git`, virtual environments (`.venv`, `venv`, any directory holding a `pyvenv.cfg`), tool
caches, `node_modules` and `*.egg-info` at any depth, and `build`/`dist` at the root (only
there: deeper, a directory of that name is as likely to be a package as build output).

The archive is built in memory and refused as soon as it outgrows the upload limit, so a
mistake (a data set in the tree) fails in a second with a message, not after a long upload.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ci_client.errors import ArchiveError
from ci_client.ignore import IgnoreFile, IgnoreStack

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MIB
"""The server's default upload limit (`CI_MAX_UPLOAD_MB`, 50 MiB)."""

REQUIRED_FILES = ("requirements.txt", "pyproject.toml")
EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "node_modules",
    }
)
EXCLUDED_ROOT_DIRS = frozenset({"build", "dist"})


@dataclass(frozen=True)
class ProjectArchive:
    """A packed project, ready to upload."""

    data: bytes
    file_count: int
    unpacked_bytes: int
    used_git: bool

    @property
    def size(self) -> int:
        return len(self.data)


def pack_project(
    root: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_file: Callable[[int], None] | None = None,
) -> ProjectArchive:
    """Zip the project at `root`, or raise `ArchiveError` saying what to fix. `on_file` is
    called with the compressed size so far after each file, and may stop the packing by
    raising."""
    if not root.exists():
        raise ArchiveError(f"{root} does not exist; give the path of your project directory")
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory; give the path of your project directory")
    files, used_git = select_files(root)
    _require_project_file(root, files)
    buffer = io.BytesIO()
    unpacked = 0
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, strict_timestamps=False
    ) as archive:
        for relative in files:
            path = root / relative
            try:
                archive.write(path, arcname=relative)
                unpacked += path.stat().st_size
            except OSError as exc:
                raise ArchiveError(f"cannot read {path}: {exc.strerror}") from exc
            if buffer.tell() > max_bytes:
                raise too_big(max_bytes, more=True)
            if on_file is not None:
                on_file(buffer.tell())
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise too_big(max_bytes, more=False)
    return ProjectArchive(
        data=data, file_count=len(files), unpacked_bytes=unpacked, used_git=used_git
    )


def list_project(root: Path) -> list[tuple[str, int]]:
    """What `pack_project` would pack, with each file's size, without packing it."""
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory; give the path of your project directory")
    files, _ = select_files(root)
    _require_project_file(root, files)
    try:
        return [(name, (root / name).stat().st_size) for name in files]
    except OSError as exc:
        raise ArchiveError(f"cannot read {exc.filename}: {exc.strerror}") from exc


def too_big(max_bytes: int, *, more: bool) -> ArchiveError:
    """The error for a project that packs to more than the upload limit."""
    return ArchiveError(
        f"the project packs to {'more than ' if more else ''}{format_size(max_bytes)} "
        f"compressed, over the upload limit of {format_size(max_bytes)}; add large files "
        "(data sets, build output, binaries) to .gitignore"
    )


def _require_project_file(root: Path, files: list[str]) -> None:
    """A project needs no dependency file (it then runs on the job image as is), but one
    that `.gitignore` hides from the upload is a mistake worth stopping for."""
    if any(name in files for name in REQUIRED_FILES):
        return
    present = [name for name in REQUIRED_FILES if (root / name).is_file()]
    if present:
        raise ArchiveError(
            f"{root / present[0]} is excluded by .gitignore, but the job needs it to install "
            "the project's dependencies; stop ignoring it"
        )


def select_files(root: Path) -> tuple[list[str], bool]:
    """The project's files as sorted POSIX paths relative to `root`, and whether git chose
    them."""
    listed = _git_listed_files(root)
    if listed is None:
        return sorted(_walk(root)), False
    venvs: dict[str, bool] = {}
    kept = {
        path
        for path in listed
        if not _in_excluded_dir(root, path, venvs) and (root / path).is_file()
    }
    return sorted(kept), True


def _git_listed_files(root: Path) -> list[str] | None:
    """What git lists for `root`, or None when `root` is not in a work tree (or git fails)."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    decoded = result.stdout.decode("utf-8", errors="surrogateescape")
    return [path for path in decoded.split("\0") if path]


def _in_excluded_dir(root: Path, relative: str, venvs: dict[str, bool]) -> bool:
    """Whether any directory on the path is always excluded (`venvs` caches the lookups of
    `pyvenv.cfg`, since git lists every file of a venv someone forgot to ignore)."""
    parts = relative.split("/")[:-1]
    for depth, name in enumerate(parts):
        if _is_excluded_dir_name(name, depth=depth):
            return True
        prefix = "/".join(parts[: depth + 1])
        if prefix not in venvs:
            venvs[prefix] = (root / prefix / "pyvenv.cfg").is_file()
        if venvs[prefix]:
            return True
    return False


def _is_excluded_dir_name(name: str, *, depth: int) -> bool:
    return (
        name in EXCLUDED_DIRS
        or name.endswith(".egg-info")
        or (depth == 0 and name in EXCLUDED_ROOT_DIRS)
    )


def _walk(root: Path) -> list[str]:
    """Every file below `root` not excluded by a `.gitignore` or the fixed list. Symlinked
    directories are not followed (they may point anywhere, even at an ancestor)."""
    found: list[str] = []
    pending: list[tuple[Path, str, IgnoreStack]] = [(root, "", IgnoreStack())]
    while pending:
        directory, prefix, stack = pending.pop()
        stack = stack.with_file(_read_ignore_file(directory, base=prefix))
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            raise ArchiveError(f"cannot list {directory}: {exc.strerror}") from exc
        for entry in entries:
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_dir(follow_symlinks=False):
                depth = relative.count("/")
                if _is_excluded_dir_name(entry.name, depth=depth):
                    continue
                if (Path(entry.path) / "pyvenv.cfg").is_file():
                    continue
                if not stack.is_ignored(relative, is_dir=True):
                    pending.append((Path(entry.path), relative, stack))
            elif entry.is_file() and not stack.is_ignored(relative, is_dir=False):
                found.append(relative)
    return found


def _read_ignore_file(directory: Path, *, base: str) -> IgnoreFile:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return IgnoreFile(base=base, rules=())
    return IgnoreFile.parse(text, base=base)


def format_size(size: int) -> str:
    """A human size: `512 B`, `3.4 KiB`, `12.0 MiB`."""
    if size < 1024:
        return f"{size} B"
    if size < MIB:
        return f"{size / 1024:.1f} KiB"
    return f"{size / MIB:.1f} MiB"
