"""`prepare_upload`: the key check runs while the project is packed, and its errors come first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ci_client import preflight
from ci_client.archive import ProjectArchive
from ci_client.client import CIClient
from ci_client.errors import ArchiveError, AuthRejected
from ci_client.job_request import JobRequest

from .conftest import API_KEY, FakeServer, json_response

DEADLINE_SECONDS = 10.0


def project(root: Path, files: int) -> Path:
    root.mkdir()
    (root / "requirements.txt").write_text("pytest\n")
    for index in range(files):
        (root / f"test_{index}.py").write_text(f"def test_{index}():\n    assert {index} >= 0\n")
    return root


def connector(server: FakeServer) -> Callable[[], CIClient]:
    return lambda: CIClient(
        server_url="http://ci.test", api_key=API_KEY, transport=server.transport
    )


def spy_on_packing(
    monkeypatch: pytest.MonkeyPatch, before_each_file: Callable[[int], None]
) -> list[int]:
    """Count the files packed, calling `before_each_file(count)` as each is reported."""
    packed: list[int] = []
    real = preflight.pack_project

    def pack(root: Path, *, max_bytes: int, on_file: Callable[[int], None]) -> ProjectArchive:
        def counting(size: int) -> None:
            packed.append(size)
            before_each_file(len(packed))
            on_file(size)

        return real(root, max_bytes=max_bytes, on_file=counting)

    monkeypatch.setattr(preflight, "pack_project", pack)
    return packed


def test_the_limits_are_fetched_while_the_project_is_packed(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packing = threading.Event()

    def limits(_request: httpx.Request) -> httpx.Response:
        # Run one after the other (check, then pack), this would wait in vain.
        assert packing.wait(DEADLINE_SECONDS), "the key check did not overlap the packing"
        return json_response(200, {"max_upload_bytes": 1024 * 1024})

    server.on("GET", "/limits", limits)
    spy_on_packing(monkeypatch, lambda _count: packing.set())
    prepared = preflight.prepare_upload(
        project(tmp_path / "p", files=3), request=JobRequest(), connect=connector(server)
    )
    with prepared.client:
        assert prepared.archive.file_count == 4
        assert prepared.limits.max_upload_bytes == 1024 * 1024


def test_a_rejected_key_stops_a_large_project_s_packing(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = threading.Event()

    def rejected(_request: httpx.Request) -> httpx.Response:
        answered.set()
        return json_response(401, {"detail": "unknown API key"})

    def after_the_answer(count: int) -> None:
        if count == 1:
            assert answered.wait(DEADLINE_SECONDS)

    server.on("GET", "/limits", rejected)
    packed = spy_on_packing(monkeypatch, after_the_answer)
    root = project(tmp_path / "p", files=400)
    with pytest.raises(AuthRejected, match="unknown API key"):
        preflight.prepare_upload(root, request=JobRequest(), connect=connector(server))
    assert 1 <= len(packed) < 100  # stopped soon after the answer, not at the end


def test_the_key_error_wins_over_a_packing_error(server: FakeServer, tmp_path: Path) -> None:
    server.on("GET", "/limits", json_response(401, {"detail": "unknown API key"}))
    with pytest.raises(AuthRejected):
        preflight.prepare_upload(
            tmp_path / "missing", request=JobRequest(), connect=connector(server)
        )


def test_the_server_s_upload_limit_applies(server: FakeServer, tmp_path: Path) -> None:
    server.on("GET", "/limits", json_response(200, {"max_upload_bytes": 100}))
    with pytest.raises(ArchiveError, match="over the upload limit of 100 B"):
        preflight.prepare_upload(
            project(tmp_path / "p", files=20), request=JobRequest(), connect=connector(server)
        )
