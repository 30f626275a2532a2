"""The README's curl section runs as written against a live service: every variable it uses
is set by the section itself (from `ci config get`), and each request answers as its comment
says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from harness import BIN, EXAMPLES, CIService

pytestmark = pytest.mark.e2e

REPO = EXAMPLES.parent
BEGIN, END = "<!-- readme-curl:begin -->", "<!-- readme-curl:end -->"


def readme_curl_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block.startswith("```sh\n") and block.endswith("\n```"), block[:40]
    return block.removeprefix("```sh\n").removesuffix("\n```")


def test_the_readme_curl_section_runs_as_written(service: CIService) -> None:
    for tool in ("curl", "zip", "jq"):
        assert shutil.which(tool), f"the README's curl section needs {tool}"
    script = readme_curl_section()
    home = service.root / "home"
    home.mkdir(exist_ok=True)
    env = {
        **service.env,
        "HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "CI_SERVER_URL": service.base_url,
        "CI_API_KEY": service.api_key,
    }
    env.pop("XDG_CONFIG_HOME", None)
    for name in ("S", "K", "ID"):
        env.pop(name, None)

    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    out = ran.stdout
    assert '"email":"e2e@example.com"' in out
    jobs = service.http.get("/jobs").json()
    first = min(jobs, key=lambda job: job["created_at"])
    assert first["conclusion"] == "success"
    # `GET /jobs/$ID` and `GET /jobs/${ID:0:8}` both answered with the job.
    assert len(re.findall(rf'"id":"{first["id"]}","status":"completed"', out)) >= 2
    assert '"type":"complete"' in out
    assert re.search(r"^.*test_total_sums_every_item PASSED.*$", out, re.MULTILINE)
    assert "\n6 passed" in out or "== 6 passed" in out
    assert '{"status":"ok","database":"ok"}' in out
    assert any(job["pytest_args"] == ["-k", "total"] for job in jobs)
