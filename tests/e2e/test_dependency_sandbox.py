"""A dependency build has the job's sandbox: what the build's own code sees, recorded by a
local package's setup.py while pip builds it, and checked by the job that uses it."""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import JOB_IMAGE, MakeService, docker_client

pytestmark = pytest.mark.e2e

PROBE_DIR = "opt/ci-build-probe"
# Runs as the build backend's code, in the build container. It refuses to build as root, and
# records what confines it in a module the job imports (stdout of a build backend is hidden).
SETUP_PY = r"""
import json, os, pathlib, socket

def read(*paths):
    for path in paths:
        try:
            return pathlib.Path(path).read_text().strip()
        except OSError:
            pass
    return None

if os.getuid() == 0:
    raise SystemExit("the dependency build runs as root")
status = dict(
    line.split(":", 1) for line in pathlib.Path("/proc/self/status").read_text().splitlines()
)
gateway = None
for line in pathlib.Path("/proc/net/route").read_text().splitlines()[1:]:
    fields = line.split()
    if fields[1] == "00000000":  # the default route: its gateway is the Docker host
        gateway = socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
try:
    socket.create_connection((gateway, 9), timeout=3).close()
    host = "accepted"
except OSError as exc:
    host = type(exc).__name__ + ": " + str(exc)
facts = {
    "uid": os.getuid(),
    "cap_eff": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "memory": read("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
    "pids": read("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
    "cpu_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"),
    "volumes": [l for l in read("/proc/self/mountinfo").splitlines() if "/volumes/" in l],
    "pip_cache": os.environ.get("PIP_NO_CACHE_DIR"),
    "host": host,
}
pathlib.Path("ci_build_facts.py").write_text(f"FACTS = {json.dumps(facts)!r}\n")

from setuptools import setup
setup(name="ci-build-probe", version="1.0", py_modules=["ci_build_facts"])
"""


@pytest.fixture
def probe_image(docker_ready: None) -> Iterator[str]:
    """The job image plus a local package at /opt/ci-build-probe, owned by the job user (pip
    builds a local directory in place). Committed straight from a created container."""
    tag = f"ci-e2e-build-probe:{uuid.uuid4().hex[:12]}"
    repository, _, version = tag.partition(":")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((PROBE_DIR, None), (f"{PROBE_DIR}/setup.py", SETUP_PY.encode())):
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 1000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    client = docker_client()
    try:
        container = client.api.create_container(JOB_IMAGE, command=["true"])  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        try:
            client.api.put_archive(container["Id"], "/", buffer.getvalue())  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
            client.api.commit(container["Id"], repository=repository, tag=version)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        finally:
            client.api.remove_container(container["Id"], force=True)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        yield tag
    finally:
        client.images.remove(tag)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        client.close()


def test_a_dependency_build_runs_as_the_job_user_with_the_job_limits_and_no_capabilities(
    probe_image: str, make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(
        env={
            "CI_JOB_IMAGE": probe_image,
            "CI_JOB_MEMORY": "300m",
            "CI_JOB_CPUS": "1.5",
            "CI_JOB_PIDS": "200",
        }
    )
    project = tmp_path / "uses-a-local-package"
    project.mkdir()
    (project / "requirements.txt").write_text(f"/{PROBE_DIR}\n")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -s\n")
    (project / "test_facts.py").write_text(
        "from ci_build_facts import FACTS\ndef test_facts():\n    print('FACTS', FACTS)\n"
    )

    job_id = service.submit(project)
    job = service.wait_for_job(job_id, within=120)

    log = service.logs(job_id)
    assert job["conclusion"] == "success", log
    # A cold job's own container installs (see test_dependency_fresh_install.py).
    assert "[ci] installing the dependencies in this job's container" in log
    # The installer's output (uv's, or pip's on an image without uv), in the job log.
    assert "+ ci-build-probe==1.0" in log or "Successfully installed ci-build-probe-1.0" in log
    [facts_text] = re.findall(r"FACTS (\{.*\})", log)
    facts = json.loads(facts_text)
    assert facts["uid"] == 1000
    assert facts["cap_eff"] == "0000000000000000"
    assert facts["no_new_privs"] == "1"
    assert facts["memory"] == str(300 * 1024 * 1024)
    assert facts["pids"] == "200"
    assert facts["cpu_quota"] in ("150000", "150000 100000")  # cgroup v1, v2
    # No pip cache volume, shared or not: the one volume is the job's own workspace.
    assert [line.split()[4] for line in facts["volumes"]] in ([], ["/workspace"])
    assert facts["pip_cache"] == "1"
    assert "No route to host" in facts["host"], facts["host"]  # the firewall rejected it
