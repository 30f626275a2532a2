"""The whole service on PostgreSQL (`CI_DATABASE_URL`): the real ci-admin, ci-server and
ci-controller against a fresh PostgreSQL database, and the real `ci` command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from harness import MakeService

pytestmark = pytest.mark.e2e

PRINTED = "from the test: é 漢字 🐍 nul:\x00 end"


def test_a_passing_job_on_postgresql_streams_and_stores_its_log_exactly(
    make_postgres_service: MakeService, tmp_path: Path
) -> None:
    service = make_postgres_service()
    project = tmp_path / "pg-demo"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "test_printing.py").write_text(
        f"def test_prints():\n    print({PRINTED!r})\n\n\ndef test_adds():\n    assert 1 + 1 == 2\n"
    )

    result = service.run_ci("submit", "test", str(project), "--", "-s")

    assert result.returncode == 0, result.stderr
    job_id = re.search(r"Job submitted: (\S+)", result.stderr)
    assert job_id, result.stderr
    log = service.logs(job_id.group(1))
    assert result.stdout == log  # what streamed is what is stored, byte for byte
    assert log.count(PRINTED + "\n") == 1 and "2 passed" in log
    assert log.startswith("[ci] ")
    [(conclusion, exit_code, log_bytes, chunks)] = service.query(
        "SELECT conclusion, exit_code, log_bytes, "
        "(SELECT count(*) FROM log_chunks WHERE job_id = jobs.id) FROM jobs"
    )
    assert (conclusion, exit_code, log_bytes) == ("success", 0, len(log.encode()))
    assert chunks and not service.db_path.exists()  # nothing went to a SQLite file
    controller = next(p for p in service.processes if p.name == "controller")
    assert "database postgresql://ci:***@127.0.0.1:" in controller.output()


FAILING_TEST = f"""
def test_passes():
    pass


def test_fails():
    print({PRINTED!r})
    assert 1 == 2, "one is not two"
"""


def test_a_failing_tests_results_and_junit_come_back_from_postgresql(
    make_postgres_service: MakeService, tmp_path: Path
) -> None:
    service = make_postgres_service()
    project = tmp_path / "pg-results"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "test_outcomes.py").write_text(FAILING_TEST)

    submitted = service.run_ci("submit", "test", str(project))

    assert submitted.returncode == 1, submitted.stderr
    assert "FAILED test_outcomes.py::test_fails - AssertionError: one is not two" in (
        submitted.stderr
    )
    job_id = re.search(r"Job submitted: (\S+)", submitted.stderr)
    assert job_id, submitted.stderr
    listed = service.run_ci("tests", job_id.group(1), "--json")
    assert listed.returncode == 0, listed.stderr
    results = {row["nodeid"]: row for row in json.loads(listed.stdout)}
    assert {nodeid: row["outcome"] for nodeid, row in results.items()} == {
        "test_outcomes.py::test_passes": "passed",
        "test_outcomes.py::test_fails": "failed",
    }
    failed = results["test_outcomes.py::test_fails"]
    assert PRINTED in failed["output"]  # NUL and all, through PostgreSQL's bytea
    assert "assert 1 == 2" in failed["traceback"]

    out = tmp_path / "fetched"
    fetched = service.run_ci("artifacts", job_id.group(1), "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    cases = {
        case.attrib["name"]: [child.tag for child in case]
        for case in ElementTree.fromstring((out / "junit.xml").read_bytes()).iter("testcase")
    }
    assert cases["test_passes"] == [] and "failure" in cases["test_fails"]
    [(results_stored, blocks)] = service.query(
        "SELECT (SELECT count(*) FROM test_results), (SELECT count(*) FROM artifact_blocks)"
    )
    assert (results_stored, blocks) == (2, 1) and not service.db_path.exists()
