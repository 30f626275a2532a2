"""SSE fan-out benchmark: N followers of one job whose log grows at a steady rate.

Starts a real server (`python -m uvicorn ci_server.app:app`) on a temporary database, opens N
SSE streams of one running job from follower processes, then plays the controller: appends a
log chunk every 1/rate seconds straight into the database, each chunk carrying the wall-clock
time it was written. Followers note when each chunk arrives, so a delivery's latency is
receive time minus write time (same machine, same clock). At the end the job is completed,
every stream must end with all chunks, and the server's CPU seconds and peak RSS are read
from /proc.

    .venv/bin/python bench/sse_fanout.py                 # 500 followers, 20 chunks/s, 15 s
    .venv/bin/python bench/sse_fanout.py --followers 100 --rate 50 --duration 10

Exit status 1 when a target is missed (p99 < 500 ms, server peak RSS < 200 MB) or a
follower lost a chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from ci_common.auth import generate_api_key
from ci_common.models import JobConclusion, JobId
from ci_persistence import open_repository

TARGET_P99_MS = 500.0
TARGET_RSS_MB = 200.0
MARKER = re.compile(rb"t=(\d+\.\d{6})#")


@dataclass(frozen=True)
class FollowerPlan:
    host: str
    port: int
    job_id: str
    key: str
    count: int


# --- the follower side (runs in child processes) ----------------------------------------


async def _follow_one(plan: FollowerPlan, ready: Synchronized[int]) -> list[float]:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    writer.write(
        (
            f"GET /jobs/{plan.job_id}/stream HTTP/1.1\r\nHost: {plan.host}\r\n"
            f"Authorization: Bearer {plan.key}\r\nAccept: text/event-stream\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"stream refused: {head[:200]!r}")
    with ready.get_lock():
        ready.value += 1
    latencies: list[float] = []
    buffer = b""
    while data := await reader.read(65536):
        now = time.time()
        buffer += data
        last_end = 0
        for match in MARKER.finditer(buffer):
            latencies.append(now - float(match.group(1)))
            last_end = match.end()
        buffer = buffer[last_end:]
    writer.close()
    return latencies


async def _follow_many(plan: FollowerPlan, ready: Synchronized[int]) -> list[list[float]]:
    tasks = [asyncio.create_task(_follow_one(plan, ready)) for _ in range(plan.count)]
    return list(await asyncio.gather(*tasks))


def follower_process(
    *, plan: FollowerPlan, ready: Synchronized[int], results: Queue[list[list[float]]]
) -> None:
    results.put(asyncio.run(_follow_many(plan, ready)))


# --- the server and the controller's part ------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def proc_memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_server(
    db_path: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], int, socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "ci_server.app:app", "--fd", str(sock.fileno())),
            *("--log-level", "warning", "--timeout-graceful-shutdown", "2"),
        ],
        env={**os.environ, "CI_DB_PATH": str(db_path)},
        pass_fds=(sock.fileno(),),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return server, port, sock


def wait_until(condition: object, *, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def server_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


async def prepare(db_path: Path) -> tuple[str, str]:
    repo = await open_repository(db_path)
    try:
        user = await repo.create_user(name="bench", email="bench@example.org")
        key = generate_api_key()
        await repo.create_api_key(
            user_id=user.id, name="bench", key_hash=key.key_hash, prefix=key.prefix, expires_at=None
        )
        job = await repo.create_job(user_id=user.id, archive=b"PK")
        await repo.mark_running(job.id, container_id=None)
        return job.id, key.secret
    finally:
        await repo.close()


async def write_log(
    db_path: Path, job_id: JobId, *, rate: float, duration: float, chunk_bytes: int
) -> int:
    """Append chunks on a fixed schedule (no drift), then complete the job."""
    repo = await open_repository(db_path)
    padding = "x" * max(0, chunk_bytes - 40)
    count = int(rate * duration)
    start = time.monotonic()
    try:
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await repo.append_log(job_id, f"t={time.time():.6f}# {n} {padding}\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    finally:
        await repo.close()
    return count


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="chunks per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of log growth")
    parser.add_argument("--chunk-bytes", type=int, default=120)
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sse-fanout-") as tmp:
        db_path = Path(tmp) / "ci.db"
        job_id, key = asyncio.run(prepare(db_path))
        server, port, sock = start_server(db_path, Path(tmp) / "server.log")
        context = multiprocessing.get_context("spawn")
        clients: list[BaseProcess] = []
        try:
            wait_until(lambda: server_ready(port), timeout=30, what="the server")
            idle_rss = proc_memory_mb(server.pid, "VmRSS")
            ready = context.Value("i", 0)
            results: Queue[list[list[float]]] = context.Queue()
            share, extra = divmod(args.followers, args.client_processes)
            for index in range(args.client_processes):
                count = share + (1 if index < extra else 0)
                plan = FollowerPlan("127.0.0.1", port, job_id, key, count)
                process = context.Process(
                    target=follower_process,
                    kwargs={"plan": plan, "ready": ready, "results": results},
                )
                process.start()
                clients.append(process)
            wait_until(
                lambda: ready.value == args.followers, timeout=60, what="followers to connect"
            )
            connected_rss = proc_memory_mb(server.pid, "VmRSS")
            cpu_before = proc_cpu_seconds(server.pid)
            started = time.monotonic()
            written = asyncio.run(
                write_log(
                    db_path,
                    JobId(job_id),
                    rate=args.rate,
                    duration=args.duration,
                    chunk_bytes=args.chunk_bytes,
                )
            )
            per_follower = [lat for _ in clients for lat in results.get(timeout=60)]
            elapsed = time.monotonic() - started
            cpu = proc_cpu_seconds(server.pid) - cpu_before
            peak_rss = proc_memory_mb(server.pid, "VmHWM")
        finally:
            for process in clients:
                process.join(timeout=10)
            server.terminate()
            server.wait(timeout=10)
            sock.close()

    latencies_ms = [lat * 1000 for follower in per_follower for lat in follower]
    lost = sum(written - len(follower) for follower in per_follower)
    p50, p99 = percentile(latencies_ms, 0.50), percentile(latencies_ms, 0.99)
    rows = [
        ("followers", f"{len(per_follower)}"),
        ("chunks written", f"{written} at {args.rate:g}/s, {args.chunk_bytes} B each"),
        ("deliveries", f"{len(latencies_ms)} (lost {lost})"),
        ("latency p50", f"{p50:.1f} ms"),
        ("latency p90", f"{percentile(latencies_ms, 0.90):.1f} ms"),
        ("latency p99", f"{p99:.1f} ms   (target < {TARGET_P99_MS:g} ms)"),
        ("latency max", f"{max(latencies_ms):.1f} ms"),
        ("latency mean", f"{statistics.fmean(latencies_ms):.1f} ms"),
        ("server CPU", f"{cpu:.2f} s over {elapsed:.1f} s ({100 * cpu / elapsed:.0f}% of a core)"),
        ("server RSS idle", f"{idle_rss:.1f} MB"),
        ("server RSS connected", f"{connected_rss:.1f} MB"),
        ("server RSS peak", f"{peak_rss:.1f} MB   (target < {TARGET_RSS_MB:g} MB)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    ok = p99 < TARGET_P99_MS and peak_rss < TARGET_RSS_MB and lost == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
