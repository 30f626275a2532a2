"""Projects on a real engine: one that unpacks to hundreds of MB reaches its container while
the controller's memory stays flat, and names the server accepts (long, unicode, spaces) are
the names the tests see."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from harness import CIService, MakeService, wait_until

from ci_common.project_paths import MAX_COMPONENT_BYTES

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BIG_FILES = 4
BIG_FILE_BYTES = 100 * MIB
CONTROLLER_PEAK_LIMIT = 150 * MIB
"""The controller's peak RSS (VmHWM) with a 400 MiB project; it held the project whole (and
more) in memory before, and peaked near 1 GB for 490 MiB."""

BIG_TEST = f"""
import os, pathlib

def test_the_big_files_arrived_whole():
    for index in range({BIG_FILES}):
        path = pathlib.Path("data") / f"zeros{{index}}.bin"
        assert path.stat().st_size == {BIG_FILE_BYTES}
        with path.open("rb") as file:
            file.seek({BIG_FILE_BYTES} - 4)
            assert file.read() == b"end" + bytes([index])
"""


def big_project_zip() -> bytes:
    """About 400 KiB of zip that unpacks to 400 MiB (zeros compress ~1000:1)."""
    buffer = io.BytesIO()
    block = b"\0" * MIB
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("requirements.txt", "")
        archive.writestr("test_big.py", BIG_TEST)
        for index in range(BIG_FILES):
            with archive.open(f"data/zeros{index}.bin", "w") as member:
                for _ in range(BIG_FILE_BYTES // MIB - 1):
                    member.write(block)
                member.write(block[:-4] + b"end" + bytes([index]))
    return buffer.getvalue()


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def staged_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.parametrize("warm", [True, False], ids=["warm-container", "own-container"])
def test_a_project_unpacking_to_400_mib_runs_while_the_controller_stays_small(
    make_service: MakeService, tmp_path: Path, warm: bool
) -> None:
    temp = tmp_path / "controller-tmp"
    temp.mkdir()
    service = make_service(
        env={
            "TMPDIR": str(temp),
            "CI_WARM_CONTAINERS": str(warm).lower(),
            "CI_MAX_UNPACKED_MB": "1000",
        }
    )
    [controller] = [p for p in service.processes if p.name == "controller"]
    upload = big_project_zip()
    assert len(upload) < MIB
    before = peak_rss(controller.pid)

    job = service.wait_for_job(service.submit(upload), within=180)

    peak = peak_rss(controller.pid)
    print(f"controller peak RSS: {before / MIB:.0f} MiB idle, {peak / MIB:.0f} MiB after the job")
    assert job["conclusion"] == "success", service.logs(str(job["id"]))
    assert "1 passed" in service.logs(str(job["id"]))
    assert peak < CONTROLLER_PEAK_LIMIT, f"controller peaked at {peak / MIB:.0f} MiB"
    wait_until(lambda: staged_files(temp) == [], within=10, what="the staged project removed")


LONG_NAME = "n" * (MAX_COMPONENT_BYTES - len(".txt")) + ".txt"
DEEP_PATH = "/".join(["d" * 250] * 15) + "/deep.txt"  # 3774 bytes, under the 4084 allowed
ODD_NAMES = [LONG_NAME, DEEP_PATH, "données/ünïcode 名前.txt", "with spaces/a b c.txt", "a:b.txt"]

NAMES_TEST = f"""
import pathlib

def test_every_name_arrived_as_given():
    for name in {ODD_NAMES!r}:
        assert pathlib.Path(name).read_text() == name[-20:]
"""


def test_names_the_server_accepts_are_the_names_the_tests_see(service: CIService) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("requirements.txt", "")
        archive.writestr("test_names.py", NAMES_TEST)
        for name in ODD_NAMES:
            archive.writestr(name, name[-20:])
    assert len(DEEP_PATH.encode()) > 3000

    job = service.wait_for_job(service.submit(buffer.getvalue()))

    log = service.logs(str(job["id"]))
    assert job["conclusion"] == "success", log
    assert "1 passed" in log
