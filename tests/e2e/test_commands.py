"""The documented ways to start the controller work as documented."""

from __future__ import annotations

import pytest
from harness import BIN, EXAMPLES, MakeService

pytestmark = pytest.mark.e2e


def test_python_m_ci_controller_takes_the_database_and_the_interval_as_flags(
    make_service: MakeService,
) -> None:
    service = make_service(controller=False)
    controller = service.spawn(
        "controller",
        [
            str(BIN / "python"),
            "-m",
            "ci_controller",
            "--db-path",
            str(service.db_path),
            "--interval",
            "0.5",
        ],
        env={"CI_DB_PATH": str(service.root / "elsewhere.db"), "CI_RECONCILE_INTERVAL": "9"},
    )
    controller.wait_for_output("controller started")
    assert f"database {service.db_path}," in controller.output()
    assert "full reconcile every 0.5 s" in controller.output()

    job = service.wait_for_job(service.submit(EXAMPLES / "passing"))
    assert job["conclusion"] == "success"
