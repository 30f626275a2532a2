"""Checking an uploaded project archive before any job exists.

The order matters: cheap checks on the central directory first (entry count, the entry rules
of `ci_common.project_paths` that the controller applies too, declared sizes, a project
wrapped in a folder), then one streaming pass that decompresses every entry.
That pass is what keeps us from trusting the directory blindly: `zipfile` stops each entry at
its declared size and verifies its CRC, so an entry that lies about its size fails as corrupt,
and the running total is checked against the limit as bytes come out, never after.

The zip root is the project root. A single top-level directory wrapping everything is not
unwrapped: the controller runs `python -m pytest` at the zip root, so an archive whose only
top-level entry is a folder holding `requirements.txt` or `pyproject.toml` is refused with a
message telling the user to zip the directory's contents instead. A project with no dependency
file at all is accepted: it runs on the job image as is.

This is blocking code (decompression); the server runs it in a worker thread.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from ci_common.errors import InvalidInputError
from ci_common.project_paths import MANIFESTS, ProjectEntryError, check_zip_entries, shown
from ci_server.errors import UnusableUploadError, UploadTooLargeError

PROJECT_MARKERS = MANIFESTS
_READ_SIZE = 64 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """What one archive may hold."""

    max_archive_bytes: int
    max_unpacked_bytes: int
    max_entries: int


def check_archive_size(size: int, limits: UploadLimits) -> None:
    """Reject an empty or oversized upload before looking inside it."""
    if size == 0:
        raise InvalidInputError(
            "the upload is empty: send a zip of your project root (`ci submit` makes one)"
        )
    if size > limits.max_archive_bytes:
        raise UploadTooLargeError(
            f"the archive is {_mib(size)}, over the {_mib(limits.max_archive_bytes)} limit; "
            "leave out virtualenvs, build outputs and data files (or ask an admin to raise "
            "CI_MAX_UPLOAD_MB)"
        )


def validate_archive(file: BinaryIO, *, size: int, limits: UploadLimits) -> None:
    """Raise an `InvalidInputError` subclass naming the first problem, or return if usable."""
    check_archive_size(size, limits)
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            _check_directory(entries, limits)
            _check_project_marker(entries)
            _check_contents(archive, entries=entries, limits=limits)
    except (zipfile.BadZipFile, ValueError, OSError, struct.error) as exc:
        raise InvalidInputError(
            f"the upload is not a valid zip archive ({_brief(exc)}); send a zip of your project "
            "root, e.g. `cd project && zip -r ../project.zip .`"
        ) from exc
    finally:
        file.seek(0)


def _check_directory(entries: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    if len(entries) > limits.max_entries:
        raise UploadTooLargeError(
            f"the archive has {len(entries)} entries, over the limit of {limits.max_entries}; "
            "leave out virtualenvs, node_modules and build outputs"
        )
    try:
        # The controller checks the stored upload with the same rules: what passes here runs.
        checked = check_zip_entries(entries)
    except ProjectEntryError as exc:
        raise UnusableUploadError(str(exc)) from exc
    declared = sum(entry.size for entry in checked)
    if declared > limits.max_unpacked_bytes:
        raise UploadTooLargeError(
            f"the archive unpacks to more than {_mib(limits.max_unpacked_bytes)} "
            "(a zip bomb, or a project with large data files); leave out data files "
            "(or ask an admin to raise CI_MAX_UNPACKED_MB)"
        )


def _check_project_marker(entries: list[zipfile.ZipInfo]) -> None:
    """A project needs no dependency file (it then runs on the job image as is), but an
    archive of no files, or of one folder wrapping a project, is a packing mistake."""
    names = {entry.filename for entry in entries}
    if not any(not entry.is_dir() for entry in entries):
        raise UnusableUploadError(
            "the archive holds no files; zip the contents of your project root, e.g. "
            "`cd project && zip -r ../project.zip .`"
        )
    if any(marker in names for marker in PROJECT_MARKERS):
        return
    tops = {entry.filename.split("/", 1)[0] for entry in entries}
    nested = sorted(
        entry.filename
        for entry in entries
        if entry.filename.rsplit("/", 1)[-1] in PROJECT_MARKERS and entry.filename.count("/") == 1
    )
    if len(tops) == 1 and nested:
        raise UnusableUploadError(
            "the archive wraps the project in a folder; the zip root must be the project root "
            f"(found {nested[0]}: zip the contents of {nested[0].split('/')[0]}/, not the "
            "directory itself)"
        )


def _check_contents(
    archive: zipfile.ZipFile, *, entries: list[zipfile.ZipInfo], limits: UploadLimits
) -> None:
    total = 0
    for entry in entries:
        if entry.is_dir():
            continue
        try:
            with archive.open(entry) as member:
                while block := member.read(_READ_SIZE):
                    total += len(block)
                    if total > limits.max_unpacked_bytes:
                        raise UploadTooLargeError(
                            f"the archive unpacks to more than {_mib(limits.max_unpacked_bytes)}"
                            " (a zip bomb, or large data files); leave out data files"
                        )
        except (zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise InvalidInputError(
                f"the archive entry {shown(entry.filename)} cannot be unpacked ({_brief(exc)}); "
                "make a fresh zip with the standard deflate or store method"
            ) from exc
        except zipfile.BadZipFile as exc:
            raise InvalidInputError(
                f"the archive entry {shown(entry.filename)} is corrupt or lies about its size "
                f"({_brief(exc)}); make a fresh zip of the project"
            ) from exc


def _brief(exc: BaseException) -> str:
    """An exception's text cut short: zipfile's may quote whole entry names."""
    text = str(exc)
    return text if len(text) <= 120 else f"{text[:100]}…{text[-19:]}"


def _mib(size: int) -> str:
    return f"{size / _MIB:.2f}".rstrip("0").rstrip(".") + " MiB"
