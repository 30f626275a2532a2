"""The whole service on PostgreSQL (`CI_DATABASE_URL`): the real ci-admin, ci-server and
ci-controller against a fresh PostgreSQL database, and the real `ci` command."""

from __future__ import annotations

import re
from pathlib import Path

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
