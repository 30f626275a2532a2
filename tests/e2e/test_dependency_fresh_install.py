"""A cold job installs its dependencies in its own container and its tests run there, with
the install's network gone (real Docker, the package index over the build network); the image
later jobs reuse is built after it; a controller killed during such an install starts the job
again in a new container instead of handing the half-installed one its project."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import cast

import pytest
from harness import CIService, docker_client, wait_until

pytestmark = pytest.mark.e2e

JOB_WITHIN = 60.0
NO_NETWORK_TEST = """
    import socket

    import six


    def test_the_tests_have_no_network():
        assert six.PY3
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
        for address in (("1.1.1.1", 53), ("8.8.8.8", 443)):
            try:
                socket.create_connection(address, timeout=3).close()
            except OSError as exc:
                print("unreachable:", address, exc)
            else:
                raise AssertionError(f"the tests reached {address}")
"""


def write(root: Path, requirements: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.txt").write_text(requirements)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -s\n")
    (root / "test_network.py").write_text(textwrap.dedent(NO_NETWORK_TEST).lstrip())
    return root


def test_a_cold_jobs_tests_run_in_its_install_container_without_the_network(
    service: CIService, tmp_path: Path
) -> None:
    project = write(tmp_path / "project", "six\n")

    first = service.submit(project)
    job = service.wait_for_job(first, within=JOB_WITHIN)
    log = service.logs(first)
    assert job["conclusion"] == "success", log
    assert "[ci] installing the dependencies in this job's container" in log
    assert " + six==" in log
    assert log.index("[ci] dependencies installed in ") < log.index("unreachable: ('1.1.1.1'")
    assert "Bytecode compiled" not in log  # not for a container used once
    # Its results and kept files, as from any job container.
    results = service.http.get(f"/jobs/{first}/tests").json()["results"]
    assert [(r["nodeid"], r["outcome"]) for r in results] == [
        ("test_network.py::test_the_tests_have_no_network", "passed")
    ]
    artifacts = service.http.get(f"/jobs/{first}/artifacts").json()
    assert [item["path"] for item in artifacts] == ["junit.xml"]

    second = service.submit(project)
    job = service.wait_for_job(second, within=JOB_WITHIN)
    log = service.logs(second)
    assert job["conclusion"] == "success", log
    assert "[ci] dependencies: cached image ci-deps-" in log  # built after the first job
    assert "installing" not in log


def test_a_controller_killed_during_the_install_starts_the_job_again(
    service: CIService, tmp_path: Path
) -> None:
    # Ten packages: the install takes long enough to be caught at it.
    names = ["attrs", "colorama", "idna", "itsdangerous", "more-itertools", "six"]
    names += ["sortedcontainers", "toml", "tomli", "wcwidth"]
    project = write(tmp_path / "project", "\n".join(names) + "\n")
    client = docker_client()
    try:
        job_id = service.submit(project)

        def installing() -> str | None:
            found = cast(
                list[dict[str, object]],
                client.api.containers(  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
                    filters={"label": f"ci.job_id={job_id}", "status": "running"}
                ),
            )
            return str(found[0]["Id"]) if found else None

        first = wait_until(installing, within=JOB_WITHIN, what="the job's container to start")
        output = cast(bytes, client.api.logs(first))  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        assert b"dependencies installed" not in output, "the install ended before the kill"
        [controller] = [p for p in service.processes if p.name == "controller" and p.alive()]
        controller.kill9()
        service.start_controller()

        job = service.wait_for_job(job_id, within=2 * JOB_WITHIN)
        log = service.logs(job_id)
        assert job["conclusion"] == "success", log
        assert job["attempts"] == 2, log
        assert "starting the job again (attempt 2 of 3)" in log
        assert "unreachable: ('1.1.1.1'" in log
        [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
        assert container_id != first
        wait_until(
            lambda: first not in service.containers() or None,
            within=30,
            what="the interrupted install's container to be removed",
        )
    finally:
        client.close()
