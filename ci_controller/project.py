"""From the stored upload to what a container needs: a tar file of the project and its
requirements.

The project enters the container through the engine's API (`put_archive`), never a bind mount,
so a remote engine works the same. The tar holds `workspace/` and everything below it owned by
uid/gid 1000, the unprivileged user tests run as, so tests may write next to their files, and
ends with `READY_MARKER`, a file outside the workspace (so no upload can collide with it and
the tests never see it) whose appearance tells the container that everything before it is in
place.

Nothing here holds a project whole in memory, so the controller's memory does not grow with
what an upload unpacks to: the stored zip is copied to a file of a `Staging` directory in
chunks, the tar is written next to it entry by entry (each entry streamed out of the zip in
blocks), and the runtime streams that file to the engine. Only the manifests are read whole,
and `ci_common.project_paths` caps their size. The staging directory is removed when the
job's dispatch ends, however it ends; one left by a controller that was killed is removed by
the next one (`remove_stale_staging`). It lives under the system's temporary directory
(`TMPDIR`), which needs room for one upload and its unpacked tar per job being dispatched.

The upload is checked again with the rules the server applied (`ci_common.project_paths`),
so an archive stored by an older server fails with the same clear message instead of deep in
the engine.

What the project needs installed is planned from its dependency files while the tar is
written (`dependency_plan`: requirements files with their includes, pyproject.toml, uv.lock,
setup.py/setup.cfg), reading only those files, each capped at `MAX_MANIFEST_BYTES`. The plan
decides the job file's `install_project` (the container installs the project itself) and, with
the base image's id, the dependency image's cache key.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from ci_common.errors import CIError
from ci_common.project_paths import (
    MAX_MANIFEST_BYTES,
    WORKSPACE,
    ProjectEntry,
    ProjectEntryError,
    check_zip_entries,
    shown,
)
from ci_controller.artifacts import OUTPUT_DIR
from ci_controller.dependency_declarations import plan_dependencies
from ci_controller.dependency_plan import DependencyPlan, DependencyPlanError, Selection

logger = logging.getLogger(__name__)

READY_MARKER = ".ci-ready"
"""The tar's last entry, at the container's root: once it exists, the whole project does (it
is never removed: see `docker.sandboxes` for why)."""
JOB_FILE = ".ci-job.json"
"""The entry before the marker, at the container's root: the job's pytest arguments and
environment, which the bootstrap reads before it runs pytest (see `bootstrap.job_file`)."""
JOB_UID = 1000
JOB_GID = 1000
COPY_BLOCK_BYTES = 256 * 1024

__all__ = [
    "WORKSPACE",
    "JobFile",
    "Project",
    "ProjectArchiveError",
    "Staging",
    "build_project",
]


class ProjectArchiveError(CIError):
    """The stored upload cannot be turned into a project (corrupt or unsafe entries, or no
    room on the controller's disk to unpack it)."""


JobFile = Callable[[DependencyPlan], bytes]
"""`JOB_FILE`'s contents for a project with that plan (see `bootstrap.job_file`)."""


@dataclass(frozen=True)
class Project:
    """An uploaded project, ready for a container."""

    tar: Path
    """The project's tar on the controller's disk, inside its `Staging` directory."""
    plan: DependencyPlan
    """What it needs installed, and whether the job installs the project itself."""

    @property
    def declared(self) -> bool:
        """Whether the root holds a dependency file; a project without one runs on the job
        image as is, and its log says so."""
        return bool(self.plan.declared)


class Staging:
    """A private temporary directory for one job's upload and tar, removed by `close()` (or
    leaving the `with` block) whatever happened; `stop` tells a `build_project` still running
    in a thread (its dispatch was cancelled) to give up.

    Both files are created here, up front, and filled later without `O_CREAT`: a thread that
    outlives `close()` can then never bring a file back into the removed directory."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or staging_root()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
        self.upload = self.directory / "upload.zip"
        self.tar = self.directory / "project.tar"
        self.upload.touch(mode=0o600)
        self.tar.touch(mode=0o600)
        self.stop = threading.Event()

    def close(self) -> None:
        self.stop.set()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def staging_root() -> Path:
    """Where staging directories go: one folder per user under the temporary directory."""
    return Path(tempfile.gettempdir()) / f"ci-controller-{os.getuid()}"


def remove_stale_staging(root: Path | None = None) -> list[Path]:
    """Remove the staging directories of controllers that are no longer running (killed
    before they could clean up); returns what was removed."""
    root = root or staging_root()
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for directory in root.iterdir():
            pid_text = directory.name.split("-", 1)[0]
            if not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def build_project(
    upload: Path,
    tar: Path,
    *,
    job_file: JobFile | bytes = b"{}",
    selection: Selection | None = None,
    support_files: Sequence[tuple[str, bytes]] = (),
    stop: threading.Event | None = None,
) -> Project:
    """Write the tar of the zip at `upload`, with `support_files` (paths from the container's
    root, outside the workspace: our pytest plugins), the empty `OUTPUT_DIR` and `job_file` as
    `JOB_FILE`, into the existing file `tar` (a `Staging`'s); `ProjectArchiveError` says what
    is wrong, including a dependency declaration that cannot be installed. Blocking (run it
    in a thread); memory stays flat whatever the zip unpacks to."""
    stop = stop or threading.Event()
    try:
        with zipfile.ZipFile(upload) as archive:
            infos = archive.infolist()
            entries = check_zip_entries(infos)
            top_level = frozenset(entry.path.split("/", 1)[0] for entry in entries)
            read = _reader(archive, infos, entries)
            plan = plan_dependencies(read, selection, top_level=top_level)
            content = job_file if isinstance(job_file, bytes) else job_file(plan)
            _write_tar(archive, infos, entries, tar, stop, content, support_files)
    except (ProjectEntryError, DependencyPlanError) as exc:
        raise ProjectArchiveError(str(exc)) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise _unreadable(exc) from exc
    except OSError as exc:
        raise ProjectArchiveError(
            f"the controller could not unpack the project on its disk ({exc}); free space "
            f"under {tar.parent.parent} (TMPDIR) and submit the job again"
        ) from exc
    return Project(tar=tar, plan=plan)


def _unreadable(exc: BaseException) -> ProjectArchiveError:
    return ProjectArchiveError(
        f"the stored upload is not a readable zip ({_brief(str(exc))}); zip the project root "
        "and submit it again"
    )


def _brief(text: str) -> str:
    """An error's text cut short: zipfile's may quote whole entry names."""
    return text if len(text) <= 120 else f"{text[:100]}…{text[-19:]}"


class _Stopped(Exception):
    """The dispatch that wanted this project ended; nobody waits for the tar any more."""


class _ZipReader:
    """An entry of the zip read in blocks for `tarfile`: stops when asked to, and reports a
    corrupt or short entry as the upload's fault, not the disk's."""

    def __init__(self, member: BinaryIO, info: zipfile.ZipInfo, stop: threading.Event) -> None:
        self._member = member
        self._name = info.filename
        self._left = info.file_size
        self._stop = stop

    def read(self, size: int = -1) -> bytes:
        if self._stop.is_set():
            raise _Stopped
        try:
            data = self._member.read(size)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
            raise self._corrupt(str(exc)) from exc
        self._left -= len(data)
        if self._left > 0 and (size < 0 or len(data) < size):
            raise self._corrupt("it is shorter than its header says")
        return data

    def _corrupt(self, why: str) -> ProjectArchiveError:
        return ProjectArchiveError(
            f"the archive entry {shown(self._name)} cannot be unpacked ({_brief(why)}); zip the "
            "project root and submit it again"
        )


def _write_tar(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    entries: list[ProjectEntry],
    path: Path,
    stop: threading.Event,
    job_file: bytes,
    support_files: Sequence[tuple[str, bytes]],
) -> None:
    directories: set[str] = set()
    with (
        os.fdopen(os.open(path, os.O_WRONLY | os.O_TRUNC), "wb") as file,  # never re-created
        tarfile.TarFile(
            fileobj=file, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BLOCK_BYTES
        ) as tar,
    ):

        def add_directory(name: str) -> None:
            missing: list[str] = []
            while name not in directories:  # parents first; checked paths always end
                missing.append(name)
                if name == WORKSPACE:
                    break
                name = name.rsplit("/", 1)[0]
            for directory in reversed(missing):
                directories.add(directory)
                tar.addfile(_tar_info(directory, tarfile.DIRTYPE, mode=0o755, size=0))

        add_directory(WORKSPACE)
        for info, entry in zip(infos, entries, strict=True):
            target = f"{WORKSPACE}/{entry.path}"
            if entry.is_dir:
                add_directory(target)
                continue
            add_directory(target.rsplit("/", 1)[0])
            mode = 0o755 if entry.executable else 0o644
            header = _tar_info(target, tarfile.REGTYPE, mode=mode, size=info.file_size)
            with archive.open(info) as member:
                tar.addfile(header, _ZipReader(cast(BinaryIO, member), info, stop))
        for name, content in support_files:
            parent = name.rsplit("/", 1)[0]
            if "/" in name and parent not in directories:
                directories.add(parent)
                tar.addfile(_tar_info(parent, tarfile.DIRTYPE, mode=0o755, size=0))
            info = _tar_info(name, tarfile.REGTYPE, mode=0o644, size=len(content))
            tar.addfile(info, io.BytesIO(content))
        tar.addfile(_tar_info(OUTPUT_DIR, tarfile.DIRTYPE, mode=0o755, size=0))
        job_info = _tar_info(JOB_FILE, tarfile.REGTYPE, mode=0o600, size=len(job_file))
        tar.addfile(job_info, io.BytesIO(job_file))
        tar.addfile(_tar_info(READY_MARKER, tarfile.REGTYPE, mode=0o644, size=0))


def _tar_info(name: str, kind: bytes, *, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.uid, info.gid = JOB_UID, JOB_GID
    info.uname = info.gname = "ci"
    return info


def _reader(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], entries: list[ProjectEntry]
) -> Callable[[str], bytes | None]:
    """Reads the upload's files by root-relative path, at most `MAX_MANIFEST_BYTES` + 1 bytes
    each (one more than allowed, so an oversized include is noticed)."""
    files = {
        entry.path: info for info, entry in zip(infos, entries, strict=True) if not entry.is_dir
    }

    def read(path: str) -> bytes | None:
        if (info := files.get(path)) is None:
            return None
        with archive.open(info) as member:
            return member.read(MAX_MANIFEST_BYTES + 1)

    return read
