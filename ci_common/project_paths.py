"""What a project upload may hold: one rule set for its entries, shared by the server and the
controller.

The server refuses an upload that breaks a rule (422) before any job exists; the controller
checks the stored upload with the same functions before it builds the container's tar. So a
name the server accepts is one the controller can unpack and the engine can create, and a
rule cannot be added on one side only.

The rules, for each entry of the zip (`check_entry`):

- a name that Linux and the engine can create as given: valid UTF-8, no NUL, no control
  characters, no backslash (Linux takes it as part of the name, the user meant a separator);
- a relative path below the project root: not absolute (`/x`, `C:/x`), no empty, `.` or `..`
  components (so also no bare `.` entry);
- short enough: each component at most `MAX_COMPONENT_BYTES` (NAME_MAX), the whole path at
  most `MAX_PATH_BYTES` (PATH_MAX less the container's `/workspace/` prefix and the NUL);
- a regular file or a directory: no symlinks, devices, fifos or sockets; not encrypted;

and for the archive as a whole (`check_entries`): no path twice, no path that is both a file
and a directory, and root manifests (`requirements.txt`, `pyproject.toml`) of at most
`MAX_MANIFEST_BYTES`, since the controller reads them whole.

Pure functions, no I/O: they look at names, modes and flags (`zipfile.ZipInfo` is only a
record of the central directory). Messages stay short (long names are cut in the middle) and
say what to do.
"""

from __future__ import annotations

import re
import stat
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from ci_common.errors import InvalidInputError

WORKSPACE = "workspace"
"""The directory at the container's root that holds the project (the tests' working dir)."""
MAX_COMPONENT_BYTES = 255
"""NAME_MAX on Linux (ext4, overlayfs): the longest file or directory name, in UTF-8 bytes."""
MAX_PATH_BYTES = 4096 - len(f"/{WORKSPACE}/") - 1
"""PATH_MAX (4096, with its NUL) less the `/workspace/` every entry is unpacked under."""
MANIFESTS = ("requirements.txt", "pyproject.toml")
"""The root files that name a project's dependencies; the controller reads them whole."""
MAX_MANIFEST_BYTES = 1024 * 1024
_SHOWN_CHARS = 60
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")  # `C:/x`; `a:b.txt` is a fine name
_ENCRYPTED_FLAG = 0x1


class ProjectEntryError(InvalidInputError):
    """An entry of the upload that no container could be given as it is."""


@dataclass(frozen=True)
class ProjectEntry:
    """One checked entry: its path below the project root, without a trailing slash."""

    path: str
    is_dir: bool
    mode: int
    """The unix mode bits the zip recorded (0 when it recorded none, e.g. made on Windows)."""
    size: int
    """The declared unpacked size (0 for a directory)."""

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111)


def shown(name: str) -> str:
    """`name` for a message: quoted, control characters escaped, a long one cut in the
    middle so an error stays one readable line."""
    if len(name) > _SHOWN_CHARS:
        name = f"{name[: _SHOWN_CHARS - 20]}…{name[-19:]}"
    return repr(name)


def check_entry(
    name: str, *, unix_mode: int = 0, size: int = 0, encrypted: bool = False
) -> ProjectEntry:
    """The entry `name` (a zip name: `/`-separated, a directory ends with `/`) as a checked
    `ProjectEntry`, or `ProjectEntryError` naming the rule it breaks and what to do."""
    path = _check_name(name)
    kind = stat.S_IFMT(unix_mode)
    if kind == stat.S_IFLNK:
        raise _error(name, "is a symlink; replace it with the file it points to (zip without -y)")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _error(
            name,
            "is a special file (device, fifo or socket); only regular files and directories "
            "are accepted: leave it out",
        )
    if encrypted:
        raise _error(name, "is encrypted; upload an archive without a password")
    is_dir = name.endswith("/")
    return ProjectEntry(
        path=path, is_dir=is_dir, mode=stat.S_IMODE(unix_mode), size=0 if is_dir else size
    )


def check_zip_entry(info: zipfile.ZipInfo) -> ProjectEntry:
    """`check_entry` for one record of a zip's central directory."""
    return check_entry(
        info.filename,
        unix_mode=info.external_attr >> 16,
        size=info.file_size,
        encrypted=bool(info.flag_bits & _ENCRYPTED_FLAG),
    )


def check_entries(entries: Iterable[ProjectEntry]) -> list[ProjectEntry]:
    """The rules about the archive as a whole, over entries `check_entry` accepted: no path
    twice, none both a file and a directory, no manifest over `MAX_MANIFEST_BYTES`."""
    checked: list[ProjectEntry] = []
    seen: set[tuple[str, bool]] = set()
    files: set[str] = set()
    directories: set[str] = set()
    for entry in entries:
        if (entry.path, entry.is_dir) in seen:
            raise _error(entry.path, "is in the archive twice; make a fresh zip of the project")
        seen.add((entry.path, entry.is_dir))
        if entry.is_dir:
            directories.add(entry.path)
        else:
            files.add(entry.path)
            if entry.path in MANIFESTS and entry.size > MAX_MANIFEST_BYTES:
                raise _error(
                    entry.path,
                    f"is {entry.size} bytes, over the {MAX_MANIFEST_BYTES} a manifest may "
                    "have; list only the dependencies in it",
                )
        parts = entry.path.split("/")
        directories.update("/".join(parts[:end]) for end in range(1, len(parts)))
        checked.append(entry)
    if clash := sorted(files & directories):
        raise _error(
            clash[0],
            "is both a file and a directory in the archive; make a fresh zip of the project",
        )
    return checked


def check_zip_entries(infos: Iterable[zipfile.ZipInfo]) -> list[ProjectEntry]:
    """Every rule, over a zip's central directory: what both the server and the controller
    call on an upload."""
    return check_entries(check_zip_entry(info) for info in infos)


def _check_name(name: str) -> str:
    """The path below the project root that `name` stands for (no trailing slash)."""
    if "\0" in name:
        raise _error(name, "contains a NUL byte; rename the file")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise _error(name, "contains a control character (e.g. a newline or tab); rename it")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise _error(name, "is not valid UTF-8; rename it") from None
    if "\\" in name:
        raise _error(
            name,
            "contains a backslash, which Linux keeps as part of the name; use `/` between "
            "directories (`ci submit` does) or rename it",
        )
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        raise _error(name, "is an absolute path; zip paths relative to the project root")
    path = name[:-1] if name.endswith("/") else name
    parts = path.split("/")
    if ".." in parts:
        raise _error(
            name,
            "climbs out of the project with `..`; zip paths relative to the project root",
        )
    if "." in parts or "" in parts:
        raise _error(
            name,
            "has an empty or `.` path component; zip the contents of the project root "
            "(`cd project && zip -r ../project.zip .`)",
        )
    for part in parts:
        length = len(part.encode("utf-8"))
        if length > MAX_COMPONENT_BYTES:
            raise _error(
                name,
                f"has a name of {length} bytes, over the {MAX_COMPONENT_BYTES} Linux allows; "
                "shorten it",
            )
    if len(encoded) > MAX_PATH_BYTES:
        raise _error(
            name,
            f"is a path of {len(encoded)} bytes, over the {MAX_PATH_BYTES} Linux allows; "
            "shorten it or nest it less deeply",
        )
    return path


def _error(name: str, problem: str) -> ProjectEntryError:
    return ProjectEntryError(f"the archive entry {shown(name)} {problem}")
