"""Replay memory benchmark: N clients replay a large stored log and never read a byte.

Writes a completed job with a log of `--log-mb` MiB (chunks of `--chunk-kb` KiB, the size the
controller flushes) straight into a temporary database, starts a real server
(`python -m uvicorn ci_server.app:app`), then opens N raw connections asking for
`/jobs/{id}/stream?from_beginning=true` (or `/jobs/{id}/logs`, or half of each) and reads
nothing after the response head. The server's RSS is sampled from /proc while they hang on,
then again once they have gone.

    .venv/bin/python bench/replay_memory.py                       # 50 streams, 20 MiB log
    .venv/bin/python bench/replay_memory.py --mode mixed --clients 100

A server that buffers the log per client needs N times several copies of the log; one that
pages with backpressure holds a page or two per client. `--rounds 3` connects and leaves three
times: memory the first crowd used should be reused by the next, not added to (the allocator
keeps freed memory for reuse rather than handing it back to the system at once). Exit status 1
when the server's peak RSS passes `--max-rss-mb` (default 300).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

from sse_fanout import prepare, proc_memory_mb, server_ready, start_server, wait_until

from ci_common.models import JobConclusion, JobId
from ci_persistence import open_repository

MIB = 1024 * 1024
SETTLE_SECONDS = 3.0


async def prepare_log(db_path: Path, *, log_bytes: int, chunk_bytes: int) -> tuple[str, str]:
    """A key and a completed job whose stored log is `log_bytes` long: (job id, key)."""
    job_id, key = await prepare(db_path)
    repo = await open_repository(db_path)
    try:
        line = "x" * 99 + "\n"
        chunk = line * (chunk_bytes // len(line))
        for _ in range(log_bytes // len(chunk)):
            await repo.append_log(JobId(job_id), chunk, cursor=None)
        await repo.complete_job(JobId(job_id), conclusion=JobConclusion.FAILURE, exit_code=1)
        return job_id, key
    finally:
        await repo.close()


def open_stalled(port: int, path: str, key: str) -> socket.socket:
    """A connection that sends its request, reads the response head and then nothing."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn.sendall(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    head = conn.recv(200)
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{path} refused: {head!r}")
    return conn


def sample_rss(pid: int, *, seconds: float) -> float:
    """The highest RSS seen over `seconds`."""
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, proc_memory_mb(pid, "VmRSS"))
        time.sleep(0.1)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--log-mb", type=float, default=20)
    parser.add_argument("--chunk-kb", type=float, default=64)
    parser.add_argument("--mode", choices=["stream", "logs", "mixed"], default="stream")
    parser.add_argument("--max-rss-mb", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=1, help="connect and leave this often")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="replay-memory-") as tmp:
        db_path = Path(tmp) / "ci.db"
        job_id, key = asyncio.run(
            prepare_log(
                db_path, log_bytes=int(args.log_mb * MIB), chunk_bytes=int(args.chunk_kb * 1024)
            )
        )
        paths = {
            "stream": [f"/jobs/{job_id}/stream?from_beginning=true"],
            "logs": [f"/jobs/{job_id}/logs"],
            "mixed": [f"/jobs/{job_id}/stream?from_beginning=true", f"/jobs/{job_id}/logs"],
        }[args.mode]
        server, port, sock = start_server(db_path, Path(tmp) / "server.log")
        try:
            wait_until(lambda: server_ready(port), timeout=30, what="the server")
            idle = proc_memory_mb(server.pid, "VmRSS")
            for round_number in range(1, args.rounds + 1):
                started = time.monotonic()
                clients = [
                    open_stalled(port, paths[n % len(paths)], key) for n in range(args.clients)
                ]
                connected = time.monotonic() - started
                held = sample_rss(server.pid, seconds=SETTLE_SECONDS)
                for conn in clients:
                    conn.close()
                time.sleep(SETTLE_SECONDS)
                after = proc_memory_mb(server.pid, "VmRSS")
                if args.rounds > 1:
                    print(f"round {round_number}: held {held:.1f} MB, after {after:.1f} MB")
            peak = proc_memory_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=10)
            sock.close()

    rows = [
        ("clients", f"{args.clients} not reading ({args.mode}), connected in {connected:.1f} s"),
        ("log", f"{args.log_mb:g} MiB in {args.chunk_kb:g} KiB chunks"),
        ("server RSS idle", f"{idle:.1f} MB"),
        ("server RSS held", f"{held:.1f} MB"),
        ("server RSS peak", f"{peak:.1f} MB   (target < {args.max_rss_mb:g} MB)"),
        ("server RSS after", f"{after:.1f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    ok = peak < args.max_rss_mb
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
