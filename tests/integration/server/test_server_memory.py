"""A real server process replaying a large log to clients that stop reading: its memory stays
far below one copy of the log per client, does not grow from one crowd of such clients to the
next, and a client that does read still gets the whole log.

The log is written straight into the database, as the controller would (no Docker). Each
client sends its request, reads the response head and then nothing, with a small receive
buffer, so the server's writes back up after a few MiB at most.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from ci_common.models import JobConclusion, JobId
from ci_persistence import SqliteRepository

from .conftest import Account, ServerProcess, StartServerProcess, project_zip

MIB = 1024 * 1024
LOG_BYTES = 12 * MIB
CHUNK = ("x" * 99 + "\n") * 655  # 64 KiB, what the controller flushes at
STREAMS, TEXT_LOGS = 20, 10
ROUND_TWO = 15
# Buffering the log per client would take at least LOG_BYTES for each of the 30 (360 MiB, and
# several times that once encoded); paging holds a page or two each.
MAX_GROWTH_MB = 80.0
SAMPLE_SECONDS = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def peak_rss_mb(pid: int, seconds: float) -> float:
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.05)
    return peak


def stalled_client(server: ServerProcess, path: str, account: Account) -> socket.socket:
    """A connection that sends its request, reads the response head and nothing more."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    conn.settimeout(10)
    conn.connect((host, int(port)))
    conn.sendall(
        f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {account.key}\r\n\r\n".encode()
    )
    head = conn.recv(256)
    assert head.startswith(b"HTTP/1.1 200"), head
    return conn


def crowd(
    server: ServerProcess, job_id: JobId, account: Account, *, size: int
) -> list[socket.socket]:
    paths = [f"/jobs/{job_id}/stream?from_beginning=true"] * STREAMS + [
        f"/jobs/{job_id}/logs"
    ] * TEXT_LOGS
    return [stalled_client(server, paths[n % len(paths)], account) for n in range(size)]


@pytest.fixture
async def large_log(repo: SqliteRepository, alice: Account) -> tuple[JobId, int]:
    """A completed job with a LOG_BYTES log in 64 KiB chunks; returns (job id, chunks)."""
    job = await repo.create_job(user_id=alice.user.id, archive=project_zip())
    await repo.mark_running(job.id, container_id=None)
    count = LOG_BYTES // len(CHUNK)
    for _ in range(count):
        await repo.append_log(job.id, CHUNK, cursor=None)
    await repo.complete_job(job.id, conclusion=JobConclusion.FAILURE, exit_code=1)
    return job.id, count


def test_clients_that_stop_reading_cost_a_page_not_the_log(
    server_process: StartServerProcess, large_log: tuple[JobId, int], alice: Account
) -> None:
    job_id, chunks = large_log
    server = server_process()
    pid = server.process.pid
    idle = rss_mb(pid)

    clients = crowd(server, job_id, alice, size=STREAMS + TEXT_LOGS)
    held = peak_rss_mb(pid, SAMPLE_SECONDS)
    for conn in clients:
        conn.close()
    time.sleep(SAMPLE_SECONDS)
    after_first = rss_mb(pid)

    clients = crowd(server, job_id, alice, size=ROUND_TWO)
    held_again = peak_rss_mb(pid, SAMPLE_SECONDS)
    for conn in clients:
        conn.close()
    time.sleep(SAMPLE_SECONDS)
    after_second = rss_mb(pid)

    report = (
        f"idle {idle:.0f} MB, held {held:.0f}, after {after_first:.0f}, "
        f"held again {held_again:.0f}, after {after_second:.0f}"
    )
    assert held - idle < MAX_GROWTH_MB, report
    assert held_again - idle < MAX_GROWTH_MB, report
    # What the first crowd used is reused by the second, not added to: nothing stays behind
    # per client that left.
    assert after_second < after_first + 10, report

    # A client that reads gets every chunk, then `complete`.
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        connect_sse(
            client,
            "GET",
            f"/jobs/{job_id}/stream",
            params={"from_beginning": "true"},
            headers=alice.headers,
        ) as source,
    ):
        events = [json.loads(sse.data) for sse in source.iter_sse()]
    assert [e["seq"] for e in events if e["type"] == "log"] == list(range(1, chunks + 1))
    assert events[-1]["type"] == "complete"
