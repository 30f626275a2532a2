"""`ci submit test` from inside a project packs the project's root, says which, and
`--dry-run` lists what it would pack without a server or a key."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ci_client.cli import CLIState, cli
from ci_client.project_root import ROOT_MARKERS, find_project_root

from .conftest import FakeServer
from .test_submit_options import JOB, LIMITS


def make_project(root: Path, marker: str = "pyproject.toml") -> Path:
    (root / "tests").mkdir(parents=True)
    if marker == ".git":
        (root / ".git").mkdir()
    else:
        (root / marker).write_text("")
    (root / "app.py").write_text("VALUE = 1\n")
    (root / "tests" / "test_app.py").write_text("def test_app(): pass\n")
    return root


def run(state: CLIState, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=state)


@pytest.fixture
def accepting(server: FakeServer) -> FakeServer:
    server.on("GET", "/limits", httpx.Response(200, json=LIMITS))
    server.on(
        "POST", "/submit-async", httpx.Response(202, json={"job_id": JOB, "status": "queued"})
    )
    return server


def uploaded_names(server: FakeServer) -> list[str]:
    [request] = server.requests_to("/submit-async")
    start = request.content.index(b"PK\x03\x04")
    end = request.content.rindex(b"PK\x05\x06") + 22
    with zipfile.ZipFile(io.BytesIO(request.content[start:end])) as archive:
        return sorted(archive.namelist())


@pytest.mark.parametrize("marker", ROOT_MARKERS)
def test_the_root_is_the_nearest_directory_holding_a_marker(tmp_path: Path, marker: str) -> None:
    root = make_project(tmp_path / "proj", marker)
    (root / "tests" / "deep").mkdir()
    found = find_project_root(root / "tests" / "deep")
    assert (found.path, found.marker) == (root.resolve(), marker)
    assert found.describe() == f"Packing {root.resolve()} (found {marker})"


def test_the_nearest_marker_wins_over_an_outer_one(tmp_path: Path) -> None:
    make_project(tmp_path / "outer", ".git")
    inner = make_project(tmp_path / "outer" / "inner")
    assert find_project_root(inner / "tests").path == inner.resolve()


def test_without_any_marker_the_start_directory_is_packed(tmp_path: Path) -> None:
    # tmp_path's ancestors (/tmp, /) hold no marker on a sane machine; check, not assume.
    start = tmp_path / "loose"
    start.mkdir()
    if any((d / m).exists() for d in start.parents for m in ROOT_MARKERS):
        pytest.skip("an ancestor of the temporary directory holds a project marker")
    found = find_project_root(start)
    assert (found.path, found.marker) == (start.resolve(), None)


def test_submit_from_a_subdirectory_packs_the_root_and_says_so(
    accepting: FakeServer, cli_state: CLIState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "proj").resolve()
    monkeypatch.chdir(root / "tests")
    result = run(cli_state, "submit", "test", "--async")
    assert result.exit_code == 0, result.output
    assert f"Packing {root} (found pyproject.toml)\n" in result.stderr
    assert uploaded_names(accepting) == ["app.py", "pyproject.toml", "tests/test_app.py"]


def test_an_explicit_path_is_packed_as_given(
    accepting: FakeServer, cli_state: CLIState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(root / "tests")
    result = run(cli_state, "submit", "test", "--async", ".")
    assert result.exit_code == 0, result.output
    assert "Packing" not in result.stderr
    assert uploaded_names(accepting) == ["test_app.py"]


def test_dry_run_lists_the_files_and_their_size_without_a_server_or_a_key(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    root = make_project(tmp_path / "proj").resolve()
    monkeypatch.chdir(root / "tests")
    result = run(CLIState(transport=server.transport), "submit", "test", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == "app.py\npyproject.toml\ntests/test_app.py\n3 files, 31 B unpacked\n"
    assert f"Packing {root} (found pyproject.toml)" in result.stderr
    assert server.requests_to("/limits") == []
