"""From the stored zip to the container's tar: its layout, its requirements, what it refuses,
and that it is built on disk in bounded memory, in a directory removed whatever happens."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from controller_world import project_zip

from ci_common.project_paths import MAX_COMPONENT_BYTES
from ci_controller.project import (
    Project,
    ProjectArchiveError,
    Staging,
    build_project,
    remove_stale_staging,
)

MIB = 1024 * 1024


def load(archive: bytes, root: Path) -> tuple[Project, bytes]:
    """Build the project of `archive` in a staging directory under `root`: the project and
    its tar's bytes (small test projects only)."""
    with Staging(root) as staging:
        staging.upload.write_bytes(archive)
        project = build_project(staging.upload, staging.tar)
        return project, project.tar.read_bytes()


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_the_project_tar_holds_workspace_owned_by_the_job_user_with_parents(
    tmp_path: Path,
) -> None:
    _, tar = load(project_zip({"pkg/sub/test_a.py": "x", "run.sh": "echo"}), tmp_path)
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        members = {m.name: m for m in opened.getmembers()}
    assert set(members) == {
        "workspace",
        "workspace/pkg",
        "workspace/pkg/sub",
        "workspace/pkg/sub/test_a.py",
        "workspace/run.sh",
        ".ci-output",
        ".ci-job.json",
        ".ci-ready",
    }
    assert tar_names(tar)[-1] == ".ci-ready"  # last: all is there
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 1000)}


def test_directories_modes_and_contents_come_through(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("empty/", "")
        script = zipfile.ZipInfo("bin/run.sh")
        script.external_attr = 0o100755 << 16
        archive.writestr(script, "#!/bin/sh\necho hi\n")
        archive.writestr("data.txt", "hello " * 1000)
    _, tar = load(buffer.getvalue(), tmp_path)
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        members = {m.name: m for m in opened.getmembers()}
        assert members["workspace/empty"].isdir()
        assert members["workspace/bin/run.sh"].mode == 0o755
        assert members["workspace/data.txt"].mode == 0o644
        data = opened.extractfile("workspace/data.txt")
        assert data is not None and data.read() == b"hello " * 1000


def test_an_uploaded_file_named_like_the_marker_stays_in_the_workspace(tmp_path: Path) -> None:
    _, tar = load(project_zip({".ci-ready": "x", "test_a.py": ""}), tmp_path)
    names = tar_names(tar)
    assert "workspace/.ci-ready" in names
    assert names.count(".ci-ready") == 1
    assert names[-1] == ".ci-ready"


def test_long_unicode_and_spaced_names_the_rules_accept_are_packed(tmp_path: Path) -> None:
    longest = "l" * (MAX_COMPONENT_BYTES - 3) + ".py"
    names = [longest, "données é/ünïcode 名前.txt", "with spaces/a b.txt"]
    _, tar = load(project_zip(dict.fromkeys(names, "x")), tmp_path)
    assert {f"workspace/{name}" for name in names} <= set(tar_names(tar))


def test_requirements_are_normalised_before_hashing(tmp_path: Path) -> None:
    one, _ = load(
        project_zip({"requirements.txt": "# deps\nattrs==23.1\n\n  pytest  # x\n"}), tmp_path
    )
    two, _ = load(project_zip({"requirements.txt": "attrs==23.1\npytest\n"}), tmp_path)
    assert one.plan.files == {"requirements.txt": b"attrs==23.1\npytest\n"}
    assert one.plan.key("sha256:a") == two.plan.key("sha256:a")
    assert one.plan.key("sha256:a") != one.plan.key("sha256:b")


def test_only_root_manifests_name_requirements(tmp_path: Path) -> None:
    project, _ = load(project_zip({"sub/requirements.txt": "attrs\n", "test_a.py": ""}), tmp_path)
    assert project.plan.steps == ()


def test_pyproject_dependencies_are_used_without_a_requirements_file(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "x"\ndependencies = ["attrs", "idna>=3"]\n'
    project, _ = load(project_zip({"pyproject.toml": pyproject}), tmp_path)
    assert project.plan.files[".ci-project.txt"] == b"attrs\nidna>=3\n"


def test_an_empty_requirements_file_needs_no_dependency_image(tmp_path: Path) -> None:
    project, _ = load(project_zip({"requirements.txt": "# nothing\n"}), tmp_path)
    assert project.plan.key("sha256:a") is None


@pytest.mark.parametrize(
    ("files", "declared"),
    [
        ({"test_a.py": ""}, False),
        ({"sub/requirements.txt": "attrs\n", "sub/pyproject.toml": ""}, False),
        ({"requirements.txt": ""}, True),
        ({"pyproject.toml": ""}, True),
        ({"setup.py": ""}, True),
        ({"setup.cfg": ""}, True),
    ],
)
def test_a_root_dependency_file_declares_the_project(
    tmp_path: Path, files: dict[str, str], declared: bool
) -> None:
    project, _ = load(project_zip(files), tmp_path)
    assert project.declared is declared


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"../escape.py": "x"}, "climbs out of the project"),
        ({"sub\\file.py": "x"}, "contains a backslash"),
        ({".": ""}, "`.` path component"),
        ({"x" * 300 + ".py": ""}, "over the 255 Linux allows"),
        ({"requirements.txt": "x" * (MIB + 1)}, "over the 1048576 a manifest may have"),
        ({"a": "", "a/b": ""}, "both a file and a directory"),
    ],
)
def test_uploads_breaking_the_shared_rules_are_refused_briefly(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ProjectArchiveError, match=fragment) as refused:
        load(project_zip(files), tmp_path)
    assert len(str(refused.value)) < 300


def test_corrupt_uploads_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectArchiveError, match="submit it again"):
        load(b"not a zip", tmp_path)
    corrupt = bytearray(project_zip({"test_a.py": "def test_a(): pass\n" * 50}))
    start = corrupt.index(b"PK\x03\x04") + 30 + len("test_a.py")
    corrupt[start + 5] ^= 0xFF  # inside the stored data: the CRC no longer matches
    with pytest.raises(ProjectArchiveError, match=re.escape("'test_a.py' cannot be unpacked")):
        load(bytes(corrupt), tmp_path)


def _large_zip(path: Path, *, files: int, size: int) -> None:
    """`files` entries of `size` zero bytes each: a few KiB on disk, huge unpacked."""
    block = b"\0" * MIB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("requirements.txt", "")
        for index in range(files):
            with archive.open(f"data/zeros{index}.bin", "w") as member:
                for _ in range(size // MIB):
                    member.write(block)


def test_a_project_is_built_in_bounded_memory_whatever_it_unpacks_to(tmp_path: Path) -> None:
    """64 MiB unpacked, built while Python allocates under 2 MiB: entries stream from the zip
    to the tar file in blocks."""
    with Staging(tmp_path) as staging:
        _large_zip(staging.upload, files=2, size=32 * MIB)
        tracemalloc.start()
        try:
            build_project(staging.upload, staging.tar)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * MIB, f"building the tar allocated {peak / MIB:.1f} MiB"
        with tarfile.open(staging.tar) as tar:
            sizes = {m.name: m.size for m in tar.getmembers() if m.isfile()}
        assert sizes["workspace/data/zeros0.bin"] == 32 * MIB
        assert sizes["workspace/data/zeros1.bin"] == 32 * MIB


def test_a_stopped_build_gives_up_and_closing_removes_everything(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    _large_zip(staging.upload, files=1, size=4 * MIB)
    staging.stop.set()  # as `close()` does when the dispatch is cancelled
    with pytest.raises(Exception) as stopped:  # noqa: PT011 -- private: nobody catches it
        build_project(staging.upload, staging.tar, stop=staging.stop)
    assert not isinstance(stopped.value, ProjectArchiveError)  # nobody is told: nobody waits
    staging.close()
    assert list(tmp_path.iterdir()) == []


def test_a_build_outliving_its_staging_cannot_bring_files_back(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    _large_zip(staging.upload, files=1, size=MIB)
    upload = staging.upload.read_bytes()
    staging.close()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-upload.zip"
    elsewhere.write_bytes(upload)
    with pytest.raises(ProjectArchiveError):
        build_project(elsewhere, staging.tar)
    assert not staging.directory.exists()


def test_staging_left_by_dead_controllers_is_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    mine = Staging(tmp_path)
    left = tmp_path / f"{dead.stdout.strip()}-abc"
    (left / "sub").mkdir(parents=True)
    other = tmp_path / f"{os.getppid()}-def"
    other.mkdir()

    assert remove_stale_staging(tmp_path) == [left]
    assert sorted(tmp_path.iterdir()) == sorted([mine.directory, other])
    mine.close()
