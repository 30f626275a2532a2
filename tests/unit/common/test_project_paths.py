"""The one rule set for the entries of a project upload: each rule, its message, and the
names it must keep accepting."""

from __future__ import annotations

import re
import stat
import zipfile

import pytest

from ci_common.project_paths import (
    MAX_COMPONENT_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_PATH_BYTES,
    ProjectEntry,
    ProjectEntryError,
    check_entries,
    check_entry,
    check_zip_entries,
    shown,
)

# (name, what the message must say)
REFUSED_NAMES = [
    pytest.param("/etc/passwd", "is an absolute path", id="absolute"),
    pytest.param("C:/evil.py", "is an absolute path", id="windows-drive"),
    pytest.param("C:", "is an absolute path", id="windows-drive-alone"),
    pytest.param("../evil.py", "climbs out of the project with `..`", id="dot-dot"),
    pytest.param("a/../../evil.py", "`..`", id="nested-dot-dot"),
    pytest.param("a/..", "`..`", id="trailing-dot-dot"),
    pytest.param("sub\\file.py", "contains a backslash", id="backslash"),
    pytest.param("\\evil.py", "contains a backslash", id="leading-backslash"),
    pytest.param(".", "empty or `.` path component", id="bare-dot"),
    pytest.param("./", "empty or `.` path component", id="bare-dot-dir"),
    pytest.param("./test_a.py", "empty or `.` path component", id="dot-prefix"),
    pytest.param("a/./b.py", "empty or `.` path component", id="inner-dot"),
    pytest.param("", "empty or `.` path component", id="empty"),
    pytest.param("a//b.py", "empty or `.` path component", id="empty-component"),
    pytest.param("a//", "empty or `.` path component", id="double-slash-dir"),
    pytest.param("a\0b.py", "contains a NUL byte", id="nul"),
    pytest.param("a\nb.py", "contains a control character", id="newline"),
    pytest.param("tab\there.py", "contains a control character", id="tab"),
    pytest.param("del\x7f.py", "contains a control character", id="del"),
    pytest.param("c1\x85.py", "contains a control character", id="c1-control"),
    pytest.param("bad\udcff.py", "is not valid UTF-8", id="lone-surrogate"),
    pytest.param("x" * 300 + ".py", "has a name of 303 bytes, over the 255", id="long-name"),
    pytest.param("é" * 128, "has a name of 256 bytes, over the 255", id="long-utf8-name"),
    pytest.param("d" * 300 + "/a.py", "over the 255", id="long-directory"),
    pytest.param(
        "/".join(["d" * 200] * 21), f"over the {MAX_PATH_BYTES} Linux allows", id="long-path"
    ),
]


@pytest.mark.parametrize(("name", "fragment"), REFUSED_NAMES)
def test_each_unsafe_name_is_refused_saying_why_and_what_to_do(name: str, fragment: str) -> None:
    with pytest.raises(ProjectEntryError, match="the archive entry ") as refused:
        check_entry(name)
    message = str(refused.value)
    assert fragment in message
    assert ";" in message  # … then what to do
    assert len(message) < 300, "a long name must not make a long error"


ACCEPTED_NAMES = [
    "test_a.py",
    "pkg/sub/test_b.py",
    "pkg/",
    ".hidden",
    "..double-dot-prefix.txt",
    "dots.in.the.name...",
    "with spaces/a file.txt",
    "données/名前 ünïcode.py",
    "emoji-🎉.txt",
    "a:b.txt",
    "l" * MAX_COMPONENT_BYTES,
    "é" * (MAX_COMPONENT_BYTES // 2),
    "/".join(["d" * 200] * 20),  # 4019 bytes: long, but the kernel takes it
]


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_legal_names_are_accepted_as_given(name: str) -> None:
    entry = check_entry(name)
    assert entry.path == name.removesuffix("/")
    assert entry.is_dir is name.endswith("/")


def test_the_longest_path_is_exactly_the_kernels_limit_less_the_workspace() -> None:
    longest = "/".join(["d" * 200] * 20) + "/"
    longest += "y" * (MAX_PATH_BYTES - len(longest))
    assert len(longest.encode()) == MAX_PATH_BYTES == 4096 - len("/workspace/") - 1
    check_entry(longest)
    with pytest.raises(ProjectEntryError, match="is a path of 4085 bytes"):
        check_entry(longest + "z")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        (stat.S_IFLNK, "is a symlink; replace it with the file it points to"),
        (stat.S_IFCHR, "is a special file"),
        (stat.S_IFBLK, "is a special file"),
        (stat.S_IFIFO, "is a special file"),
        (stat.S_IFSOCK, "is a special file"),
    ],
)
def test_only_regular_files_and_directories_are_accepted(kind: int, fragment: str) -> None:
    with pytest.raises(ProjectEntryError, match=fragment):
        check_entry("thing", unix_mode=kind | 0o644)
    assert check_entry("file", unix_mode=stat.S_IFREG | 0o755).executable
    assert check_entry("dir/", unix_mode=stat.S_IFDIR | 0o755).is_dir
    assert not check_entry("from-windows", unix_mode=0).executable


def test_an_encrypted_entry_is_refused() -> None:
    with pytest.raises(ProjectEntryError, match="is encrypted; upload an archive without"):
        check_entry("secret.py", encrypted=True)


def entries(*names: str, size: int = 0) -> list[ProjectEntry]:
    return [check_entry(name, size=size) for name in names]


def test_a_path_twice_is_refused_even_spelt_as_a_directory_both_times() -> None:
    with pytest.raises(ProjectEntryError, match=re.escape("'a.py' is in the archive twice")):
        check_entries(entries("a.py", "b.py", "a.py"))
    with pytest.raises(ProjectEntryError, match="twice"):
        check_entries(entries("d/", "d/"))


def test_a_path_that_is_both_a_file_and_a_directory_is_refused() -> None:
    with pytest.raises(ProjectEntryError, match="'a' is both a file and a directory"):
        check_entries(entries("a", "a/b.py"))
    with pytest.raises(ProjectEntryError, match="'a/b' is both a file and a directory"):
        check_entries(entries("a/b/c.py", "a/b"))
    with pytest.raises(ProjectEntryError, match="both a file and a directory"):
        check_entries(entries("a/", "a"))
    # A directory entry next to the files inside it is the usual zip layout.
    assert len(check_entries(entries("a/", "a/b/", "a/b/c.py"))) == 3


def test_root_manifests_are_capped_because_the_controller_reads_them_whole() -> None:
    with pytest.raises(
        ProjectEntryError, match=re.escape("'requirements.txt' is 1048577 bytes, over")
    ):
        check_entries(entries("requirements.txt", size=MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ProjectEntryError, match=re.escape("pyproject.toml")):
        check_entries(entries("pyproject.toml", size=MAX_MANIFEST_BYTES + 1))
    check_entries(entries("requirements.txt", size=MAX_MANIFEST_BYTES))
    check_entries(entries("sub/requirements.txt", "data.bin", size=MAX_MANIFEST_BYTES + 1))


def test_zip_records_are_checked_with_their_modes_flags_and_sizes() -> None:
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(ProjectEntryError, match="symlink"):
        check_zip_entries([link])
    locked = zipfile.ZipInfo("locked.py")
    locked.flag_bits |= 0x1
    with pytest.raises(ProjectEntryError, match="encrypted"):
        check_zip_entries([locked])
    script = zipfile.ZipInfo("run.sh")
    script.external_attr = (stat.S_IFREG | 0o755) << 16
    script.file_size = 12
    [entry] = check_zip_entries([script])
    assert (entry.path, entry.size, entry.executable) == ("run.sh", 12, True)


def test_names_in_messages_are_cut_and_escaped() -> None:
    assert shown("short.py") == "'short.py'"
    long = shown("a" * 1000 + "end.py")
    assert len(long) < 70 and long.endswith("aend.py'") and "…" in long
    assert shown("new\nline") == "'new\\nline'"
