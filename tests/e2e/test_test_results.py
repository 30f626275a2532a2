"""Per-test results end to end: our plugin in a real job container, the controller storing
them, the API, the SSE `test` events and what `ci` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from harness import CIService, wait_until

pytestmark = pytest.mark.e2e

MIXED = """
import time
import pytest

def test_a_passes():
    pass

def test_b_fails():
    print("some output")
    assert 1 == 2, "one is not two"

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_c_errors(broken):
    pass

@pytest.mark.skip(reason="not today")
def test_d_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_e_xfails():
    assert False

@pytest.mark.xfail(reason="fixed already?")
def test_f_xpasses():
    pass

def test_g_takes_a_while():
    time.sleep(1.5)
"""

EXPECTED_ROWS = [
    ("test_mix.py::test_a_passes", "passed"),
    ("test_mix.py::test_b_fails", "failed"),
    ("test_mix.py::test_c_errors", "error"),
    ("test_mix.py::test_d_skipped", "skipped"),
    ("test_mix.py::test_e_xfails", "xfailed"),
    ("test_mix.py::test_f_xpasses", "xpassed"),
    ("test_mix.py::test_g_takes_a_while", "passed"),
]


def project(root: Path, name: str, files: dict[str, str]) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    for path, text in files.items():
        (directory / path).write_text(text)
    return directory


def counts_of(job: dict[str, object]) -> dict[str, object]:
    return cast(dict[str, object], job["tests"])


def rows(service: CIService, job_id: str, query: str = "") -> list[tuple[str, str]]:
    response = service.http.get(f"/jobs/{job_id}/tests{query}")
    assert response.status_code == 200, response.text
    return [(row["nodeid"], row["outcome"]) for row in response.json()["results"]]


def test_each_outcome_is_a_row_as_it_happens_and_in_the_summary(
    service: CIService, tmp_path: Path
) -> None:
    mixed = project(tmp_path, "mixed", {"test_mix.py": MIXED})
    events: list[dict[str, object]] = []
    job_id = ""
    running_when_first_seen: dict[str, object] = {}
    for message in service.submit_stream(mixed):
        if message["type"] == "job_id":
            job_id = str(message["job_id"])
        if message["type"] == "test":
            if not events:  # the slow last test still runs: the result came live
                running_when_first_seen = service.job(job_id)
            events.append(message)

    assert [(event["nodeid"], event["outcome"]) for event in events] == EXPECTED_ROWS
    assert running_when_first_seen["status"] == "running"
    assert cast(int, counts_of(running_when_first_seen)["total"]) >= 1
    assert rows(service, job_id) == EXPECTED_ROWS
    assert rows(service, job_id, "?outcome=failed") == [EXPECTED_ROWS[1]]
    page = service.http.get(f"/jobs/{job_id}/tests", params={"limit": 3}).json()
    assert [row["index"] for row in page["results"]] == [1, 2, 3]
    assert page["next_after"] == 3
    failed = service.http.get(f"/jobs/{job_id}/tests?outcome=failed").json()["results"][0]
    assert failed["message"] == "AssertionError: one is not two"
    assert "assert 1 == 2" in failed["traceback"]
    assert "some output" in failed["output"]
    job = service.job(job_id)
    counts = counts_of(job)
    assert counts == {
        "total": 7,
        "passed": 2,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "duration": counts["duration"],
        "note": None,
    }
    assert job["content_hash"]

    # What `ci` prints about the same job, and its --json.
    waited = service.run_ci("wait", job_id)
    assert waited.returncode == 1
    assert "FAILED test_mix.py::test_b_fails - AssertionError: one is not two" in waited.stderr
    assert "ERROR test_mix.py::test_c_errors - RuntimeError: fixture broke" in waited.stderr
    assert "Tests: 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in" in waited.stderr
    listed = service.run_ci("tests", job_id, "--failed", "--json")
    assert [row["nodeid"] for row in json.loads(listed.stdout)] == [
        "test_mix.py::test_b_fails",
        "test_mix.py::test_c_errors",
    ]
    table = service.run_ci("list")
    assert "2 passed 2 failed" in table.stdout


def test_a_collection_error_is_a_row_with_a_note(service: CIService, tmp_path: Path) -> None:
    broken = project(
        tmp_path,
        "broken",
        {"test_ok.py": "def test_ok():\n    pass\n", "test_broken.py": "def oops(:\n"},
    )
    result = service.run_ci("submit", "test", str(broken))

    assert result.returncode == 2, result.stderr
    job_id = service.query("SELECT id FROM jobs")[0][0]
    assert rows(service, str(job_id)) == [("test_broken.py", "error")]
    note = counts_of(service.job(str(job_id)))["note"]
    assert "error(s) during collection" in str(note)
    assert "ERROR test_broken.py - " in result.stderr
    assert "Note: 1 error(s) during collection" in result.stderr


def test_a_rerun_of_failures_runs_exactly_those(service: CIService, tmp_path: Path) -> None:
    tests = "".join(
        f"def test_{name}():\n    assert {'False' if fails else 'True'}\n\n"
        for name, fails in (("a", True), ("b", False), ("c", True), ("d", False))
    )
    tree = project(tmp_path, "rerun", {"test_rerun.py": tests})
    first = service.run_ci("submit", "test", cwd=tree)
    assert first.returncode == 1
    assert "ci submit test --rerun-failed" in first.stderr

    rerun = service.run_ci("submit", "test", "--rerun-failed", cwd=tree)

    [(first_id,)] = service.query("SELECT id FROM jobs WHERE rerun_of IS NULL")
    assert isinstance(first_id, str)
    [(rerun_id,)] = service.query("SELECT id FROM jobs WHERE rerun_of = ?", first_id)
    assert f"Rerunning only the 2 failed test(s) of job {first_id}" in rerun.stderr
    assert rows(service, str(rerun_id)) == [
        ("test_rerun.py::test_a", "failed"),
        ("test_rerun.py::test_c", "failed"),
    ]
    assert "2 deselected" in service.logs(str(rerun_id))
    # A job without failures has nothing to rerun: refused before anything is submitted.
    passing = project(tmp_path, "passing", {"test_ok.py": "def test_ok():\n    pass\n"})
    ok = service.run_ci("submit", "test", cwd=passing)
    assert ok.returncode == 0
    [(ok_id,)] = service.query("SELECT id FROM jobs WHERE project = 'passing'")
    refused = service.run_ci("submit", "test", "--rerun-failed", str(ok_id), cwd=passing)
    assert refused.returncode == 64
    assert "nothing to rerun" in refused.stderr
    assert len(service.query("SELECT id FROM jobs")) == 3


def test_a_test_that_failed_then_passed_on_the_same_content_is_flaky(
    service: CIService, tmp_path: Path
) -> None:
    tree = project(
        tmp_path,
        "wobbly",
        {
            "test_wobbly.py": "import os\n\ndef test_wobbles():\n"
            "    assert not os.environ.get('WOBBLE')\n\ndef test_steady():\n    pass\n"
        },
    )
    assert service.run_ci("submit", "test", "-e", "WOBBLE=1", cwd=tree).returncode == 1
    assert service.run_ci("submit", "test", cwd=tree).returncode == 0
    hashes = {row[0] for row in service.query("SELECT content_hash FROM jobs")}
    assert len(hashes) == 1 and None not in hashes

    flaky = service.http.get("/tests/flaky").json()
    assert [(t["project"], t["nodeid"], t["passes"], t["failures"]) for t in flaky] == [
        ("wobbly", "test_wobbly.py::test_wobbles", 1, 1)
    ]
    listed = service.run_ci("flaky")
    assert "test_wobbly.py::test_wobbles" in listed.stdout
    # The next failure of it is marked as known to be flaky in the summary.
    again = service.run_ci("submit", "test", "-e", "WOBBLE=1", cwd=tree)
    assert "FAILED test_wobbly.py::test_wobbles [known flaky]" in again.stderr


def test_a_controller_killed_mid_run_loses_and_doubles_no_result(
    service: CIService, tmp_path: Path
) -> None:
    count = 40
    tests = "import time\n\n" + "".join(
        f"def test_{number:03d}():\n    time.sleep(0.1)\n\n" for number in range(count)
    )
    tree = project(tmp_path, "steady", {"test_steady.py": tests})
    job_id = service.submit(tree)

    for reported in (8, 24):
        wait_until(
            lambda reported=reported: (
                cast(int, counts_of(service.job(job_id))["total"]) >= reported
            ),
            within=60,
            what=f"{reported} results",
        )
        [controller] = [p for p in service.processes if p.name == "controller" and p.alive()]
        controller.kill9()  # results keep coming while no controller reads them
        service.start_controller()

    job = service.wait_for_job(job_id)
    assert job["conclusion"] == "success"
    expected = [(f"test_steady.py::test_{number:03d}", "passed") for number in range(count)]
    assert rows(service, job_id, "?limit=1000") == expected
    indexes = service.query("SELECT idx FROM test_results WHERE job_id = ? ORDER BY idx", job_id)
    assert [index for (index,) in indexes] == list(range(1, count + 1))
