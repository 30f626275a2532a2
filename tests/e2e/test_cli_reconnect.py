"""`ci submit test` keeps following a job while the server process is killed and restarted:
every line of the job's output reaches the user exactly once, in order."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from harness import (
    BIN,
    EXAMPLES,
    JOB_TIMEOUT,
    STARTUP_TIMEOUT,
    CIService,
    MakeService,
    ManagedProcess,
    StdoutLines,
    wait_until,
)

pytestmark = pytest.mark.e2e


class FixedAddressServer:
    """Server processes that all serve one listening socket held by the test, so a restarted
    server comes back at the same URL (what a client sees when an operator restarts it)."""

    def __init__(self, service: CIService) -> None:
        self.service = service
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        service.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def start(self) -> ManagedProcess:
        fd = self.listener.fileno()
        process = self.service.spawn(
            "server",
            [
                *(str(BIN / "python"), "-m", "uvicorn", "ci_server.app:app"),
                *("--fd", str(fd), "--log-level", "warning"),
            ],
            pass_fds=(fd,),
        )
        wait_until(
            lambda: self.service.http.get("/health").status_code == 200,
            within=STARTUP_TIMEOUT,
            what="the server to answer",
        )
        return process

    def close(self) -> None:
        self.listener.close()


class LineReader(StdoutLines):
    """`StdoutLines`, and the whole output once the process has ended."""

    def join(self) -> str:
        self._thread.join(timeout=JOB_TIMEOUT)
        return "".join(self.lines)


def test_a_server_restart_mid_stream_loses_and_repeats_nothing(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(server=False)
    server = FixedAddressServer(service)
    try:
        first = server.start()
        home = tmp_path / "home"
        home.mkdir()
        env = {
            **service.env,
            "HOME": str(home),
            "CI_SERVER_URL": service.base_url,
            "CI_API_KEY": service.api_key,
        }
        process = subprocess.Popen(
            [str(BIN / "ci"), "submit", "test", str(EXAMPLES / "numbered")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = LineReader(process)
        wait_until(
            lambda: "line 010\n" in reader.lines, within=JOB_TIMEOUT, what="ten lines on stdout"
        )

        first.kill9()  # the server dies mid-stream, with no goodbye to the client
        server.start()

        stdout = reader.join()
        _, stderr = process.communicate(timeout=JOB_TIMEOUT)
    finally:
        server.close()

    assert process.returncode == 0, stderr
    numbered = re.findall(r"\bline (\d{3})$", stdout, flags=re.MULTILINE)
    assert numbered == [f"{n:03d}" for n in range(1, 101)]
    assert "Lost the stream of job" in stderr
    job_id = re.search(r"Job submitted: (\S+)", stderr)
    assert job_id
    assert stdout == service.logs(job_id.group(1))
