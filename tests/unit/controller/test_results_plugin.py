"""Our pytest plugin under the real pytest of this venv, on the host: what it writes to the
results descriptor for each outcome, what it cuts, and what a rerun keeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ci_controller.job_plugins import RERUN_VARIABLE, RESULTS_FD_VARIABLE
from ci_controller.job_plugins import RESULTS_PLUGIN as PLUGIN_MODULE

PLUGIN_DIR = Path(__file__).parents[3] / "ci_controller" / "job_plugin"

MIXED = """
import pytest

def test_pass():
    pass

def test_fail():
    print("x" * 10000)
    assert 1 == 2, "one is not two"

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_error(broken):
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_teardown_error(bad_teardown):
    pass

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed?")
def test_xpass():
    pass
"""


def run_pytest(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, list[dict[str, object]]]:
    read, write = os.pipe()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", PLUGIN_MODULE, "-q", *args],
            cwd=project,
            env={
                **os.environ,
                "PYTHONPATH": str(PLUGIN_DIR),
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                RESULTS_FD_VARIABLE: str(write),
                **(env or {}),
            },
            pass_fds=(write,),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as results:
        lines = results.read().splitlines()
    return process.returncode, [json.loads(line) for line in lines]


def test_each_outcome_is_one_record_in_pytests_words(tmp_path: Path) -> None:
    (tmp_path / "test_mix.py").write_text(MIXED)

    code, records = run_pytest(tmp_path)

    assert code == 1
    assert records[0]["kind"] == "session"
    assert records[-1] == {"kind": "end", "exitstatus": 1}
    tests = [(r["nodeid"], r["outcome"], r["phase"]) for r in records[1:-1]]
    assert tests == [
        ("test_mix.py::test_pass", "passed", "call"),
        ("test_mix.py::test_fail", "failed", "call"),
        ("test_mix.py::test_error", "error", "setup"),
        ("test_mix.py::test_teardown_error", "passed", "call"),
        ("test_mix.py::test_teardown_error", "error", "teardown"),
        ("test_mix.py::test_skip", "skipped", "setup"),
        ("test_mix.py::test_xfail", "xfailed", "call"),
        ("test_mix.py::test_xpass", "xpassed", "call"),
    ]
    failed = records[2]
    assert failed["message"] == "AssertionError: one is not two"
    output = str(failed["output"])
    assert output.startswith("[ci] ") and "characters cut" in output  # 10,000 x's, cut
    assert len(output) < 4200
    assert records[3]["message"] == "RuntimeError: fixture broke"
    assert records[6]["message"] == "not today"


def test_a_collection_error_is_an_error_record_for_its_file(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text("def oops(:\n")

    code, records = run_pytest(tmp_path)

    assert code == 2
    [error] = [r for r in records if r["kind"] == "test"]
    assert (error["nodeid"], error["outcome"], error["phase"]) == (
        "test_broken.py",
        "error",
        "collect",
    )
    assert "SyntaxError" in str(error["traceback"])


def test_a_rerun_keeps_only_the_listed_node_ids_and_files(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text("def test_1():\n    pass\ndef test_2():\n    pass\n")
    (tmp_path / "test_b.py").write_text("def test_3():\n    pass\ndef test_4():\n    pass\n")
    ids = tmp_path.parent / "ids"
    ids.write_text("test_a.py::test_2\ntest_b.py\ngone.py::test_x\n")

    _, records = run_pytest(tmp_path, env={RERUN_VARIABLE: str(ids)})

    ran = [r["nodeid"] for r in records if r["kind"] == "test"]
    assert ran == ["test_a.py::test_2", "test_b.py::test_3", "test_b.py::test_4"]


def test_without_the_descriptor_it_does_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text("def test_1():\n    pass\n")
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", PLUGIN_MODULE, "-q"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PLUGIN_DIR), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stdout
