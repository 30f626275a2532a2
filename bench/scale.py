"""Scale-out benchmark: PostgreSQL against SQLite in one run, and three server replicas.

    .venv/bin/python bench/scale.py                 # about three minutes
    .venv/bin/python bench/scale.py --jobs 6 --followers 150 --submit-seconds 5

Three parts, each printing its numbers:

1. Dispatch: two real services side by side (server, controller, real Docker), one on a SQLite
   file and one on a PostgreSQL database; `--jobs` jobs (examples/passing) submitted to each in
   turn, one at a time. "Noticed" is the job's insert to the controller marking it running
   (`started_at - created_at`, the wake-up alone); "dispatch" is the insert to its process
   beginning in its container (Docker's `extract-to-dir` event, as bench/e2e_latency.py).
2. Fan-out: three `uvicorn ci_server.app:app` replicas on one PostgreSQL database, `--followers`
   SSE followers spread evenly over them (bench/sse_fanout.py's followers), one job whose log
   grows by `--rate` chunks a second, written straight into the database as the controller
   would. Latency is a chunk's write to its arrival at a follower; RSS per replica from /proc.
3. Submits: `--submitters` concurrent clients posting a small project to `POST /submit-async`
   for `--submit-seconds`, spread evenly over three replicas, on each backend (no controller,
   so the jobs stay queued): accepted submits per second and their latency. A replica takes
   `CI_MAX_UPLOADS` (4) uploads at once and answers 503 beyond: those are counted apart.

PostgreSQL is `CI_TEST_DATABASE_URL`'s server when set, else a throwaway cluster started here
(tests/postgres_cluster.py: fsync off, so its writes are cheaper than a durable server's).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from service import ROOT, ContainerEvents, container_of, created_ns, median, running_service
from sse_fanout import (
    FollowerPlan,
    follower_process,
    percentile,
    proc_memory_mb,
    server_ready,
    wait_until,
)

from ci_common.auth import generate_api_key
from ci_common.models import JobConclusion, JobId
from ci_persistence import DatabaseLocation, open_repository_at

sys.path.insert(0, str(ROOT / "tests"))
from postgres_cluster import PostgresCluster

PASSING = ROOT / "examples" / "passing"


# --- PostgreSQL -------------------------------------------------------------------------


@contextmanager
def postgres_server() -> Generator[str]:
    """The URL of a PostgreSQL server's maintenance database."""
    given = os.environ.get("CI_TEST_DATABASE_URL")
    if given:
        yield given
        return
    cluster = PostgresCluster.start()
    try:
        yield cluster.url()
    finally:
        cluster.stop()


def new_database(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    name = f"bench_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


# --- 1. dispatch ------------------------------------------------------------------------


def measure_dispatch(server_url: str, *, jobs: int) -> None:
    backends = {"sqlite": {}, "postgresql": {"CI_DATABASE_URL": new_database(server_url)}}
    noticed: dict[str, list[float]] = {name: [] for name in backends}
    dispatch: dict[str, list[float]] = {name: [] for name in backends}
    with ExitStack() as stack:
        services = {
            name: stack.enter_context(running_service(env=env)) for name, env in backends.items()
        }
        events = {name: ContainerEvents(s.installation_id()) for name, s in services.items()}
        for watcher in events.values():
            stack.callback(watcher.close)
        for round_ in range(jobs + 1):  # the first round warms up (first-use costs)
            for name, service in services.items():
                job_id = service.submit(PASSING)
                job = service.wait_for_job(job_id, within=60)
                assert job["conclusion"] == "success", job
                if round_ == 0:
                    continue
                [(created, started)] = service.query(
                    "SELECT created_at, started_at FROM jobs WHERE id = ?", job_id
                )
                noticed[name].append((_moment(started) - _moment(created)).total_seconds() * 1000)
                began = events[name].at("extract-to-dir", container_of(service, job_id))
                if began is not None:
                    dispatch[name].append((began - created_ns(service, job_id)) / 1e6)
    print(f"1. dispatch, {jobs} jobs per backend (examples/passing), alternating, after a warm-up")
    for name in backends:
        print(
            f"   {name:<10}  noticed p50 {median(noticed[name]):6.1f} ms "
            f"(max {max(noticed[name]):.1f})   dispatch p50 {median(dispatch[name]):6.1f} ms "
            f"(max {max(dispatch[name]):.1f})"
        )


def _moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# --- replicas ---------------------------------------------------------------------------


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    port: int
    sock: socket.socket

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def replicas(env: dict[str, str], *, count: int, logs: Path) -> Generator[list[Replica]]:
    """`count` server processes on the database `env` names, each on its own port."""
    started: list[Replica] = []
    try:
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(2048)
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "ci_server.app:app"),
                    *("--fd", str(sock.fileno()), "--log-level", "warning"),
                    *("--timeout-graceful-shutdown", "2"),
                ],
                env={**os.environ, **env},
                pass_fds=(sock.fileno(),),
                stdout=(logs / f"replica-{index}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            started.append(Replica(process, sock.getsockname()[1], sock))
        for replica in started:
            wait_until(lambda r=replica: server_ready(r.port), timeout=60, what="a replica")
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            replica.process.wait(timeout=15)
            replica.sock.close()


async def prepare(location: DatabaseLocation, *, running_job: bool) -> tuple[str, str]:
    """A user with an API key and, with `running_job`, a running job; (job id, key)."""
    repo = await open_repository_at(location)
    try:
        user = await repo.create_user(name="bench", email="bench@example.org")
        key = generate_api_key()
        await repo.create_api_key(
            user_id=user.id, name="bench", key_hash=key.key_hash, prefix=key.prefix, expires_at=None
        )
        job_id = ""
        if running_job:
            job = await repo.create_job(user_id=user.id, archive=b"PK")
            await repo.mark_running(job.id, container_id=None)
            job_id = job.id
        return job_id, key.secret
    finally:
        await repo.close()


# --- 2. fan-out -------------------------------------------------------------------------


def measure_fanout(server_url: str, *, followers: int, rate: float, duration: float) -> None:
    url = new_database(server_url)
    location = DatabaseLocation(path=Path("unused.db"), url=url)
    job_id, key = asyncio.run(prepare(location, running_job=True))
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="ci-scale-") as tmp,
        replicas({"CI_DATABASE_URL": url}, count=3, logs=Path(tmp)) as servers,
    ):
        ready = context.Value("i", 0)
        results: Queue[list[list[float]]] = context.Queue()
        clients: list[BaseProcess] = []
        share, extra = divmod(followers, len(servers))
        for index, server in enumerate(servers):
            plan = FollowerPlan("127.0.0.1", server.port, job_id, key, share + (index < extra))
            process = context.Process(
                target=follower_process, kwargs={"plan": plan, "ready": ready, "results": results}
            )
            process.start()
            clients.append(process)
        try:
            wait_until(lambda: ready.value == followers, timeout=90, what="followers to connect")
            connected = [proc_memory_mb(s.process.pid, "VmRSS") for s in servers]
            written = asyncio.run(_write_log(location, JobId(job_id), rate=rate, duration=duration))
            per_follower = [lat for _ in clients for lat in results.get(timeout=90)]
            peaks = [proc_memory_mb(s.process.pid, "VmHWM") for s in servers]
        finally:
            for process in clients:
                process.join(timeout=10)
    latencies = [lat * 1000 for follower in per_follower for lat in follower]
    lost = sum(written - len(follower) for follower in per_follower)
    print(
        f"2. fan-out on PostgreSQL: {len(per_follower)} followers over 3 replicas, "
        f"{written} chunks at {rate:g}/s"
    )
    print(
        f"   latency p50 {percentile(latencies, 0.5):.1f} ms, p99 "
        f"{percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms; lost {lost}"
    )
    print(
        "   RSS per replica, connected / peak: "
        + ", ".join(f"{c:.0f}/{p:.0f} MB" for c, p in zip(connected, peaks, strict=True))
    )


async def _write_log(
    location: DatabaseLocation, job_id: JobId, *, rate: float, duration: float
) -> int:
    """Append chunks on a fixed schedule (sse_fanout's `write_log`, on any backend), each
    carrying its wall-clock write time, then complete the job."""
    repo = await open_repository_at(location)
    padding = "x" * 80
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


# --- 3. submits -------------------------------------------------------------------------


def measure_submits(server_url: str, *, submitters: int, seconds: float) -> None:
    archive = _zip(PASSING)
    print(
        f"3. submits: {submitters} clients, {seconds:g} s, POST /submit-async, the clients spread "
        "evenly over 3 replicas, no controller"
    )
    with tempfile.TemporaryDirectory(prefix="ci-scale-") as tmp:
        backends = {
            "sqlite": DatabaseLocation(path=Path(tmp) / "ci.db"),
            "postgresql": DatabaseLocation(path=Path("unused.db"), url=new_database(server_url)),
        }
        for name, location in backends.items():
            _, key = asyncio.run(prepare(location, running_job=False))
            env = {"CI_DB_PATH": str(location.path)}
            if location.url:
                env["CI_DATABASE_URL"] = location.url
            logs = Path(tmp) / name
            logs.mkdir()
            with replicas(env, count=3, logs=logs) as servers:
                urls = [s.url for s in servers]
                accepted, refused, latencies = asyncio.run(
                    _submit_for(urls, key=key, archive=archive, clients=submitters, seconds=seconds)
                )
            print(
                f"   {name:<10}  {accepted / seconds:6.1f} submits/s   latency p50 "
                f"{percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms"
                f"   refused: {dict(refused) or 'none'} (status: count)"
            )


async def _submit_for(
    urls: list[str], *, key: str, archive: bytes, clients: int, seconds: float
) -> tuple[int, Counter[int], list[float]]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    refused: Counter[int] = Counter()
    accepted = 0

    async def client(index: int) -> None:
        nonlocal accepted
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            url = urls[index % len(urls)]  # an even spread: a replica takes 4 uploads at once
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await http.post(
                    f"{url}/submit-async",
                    files={"file": ("project.zip", archive, "application/zip")},
                )
                if response.status_code == 202:
                    accepted += 1
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    refused[response.status_code] += 1

    await asyncio.gather(*(client(index) for index in range(clients)))
    return accepted, refused, latencies


def _zip(directory: Path) -> bytes:
    from harness import zip_project

    return zip_project(directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=12, help="dispatch: jobs per backend")
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="fan-out: chunks per second")
    parser.add_argument("--duration", type=float, default=10.0, help="fan-out: seconds")
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--submit-seconds", type=float, default=10.0)
    parser.add_argument(
        "--only", choices=["dispatch", "fanout", "submits"], default=None, help="one part only"
    )
    args = parser.parse_args()
    with postgres_server() as server_url:
        if args.only in (None, "dispatch"):
            measure_dispatch(server_url, jobs=args.jobs)
        if args.only in (None, "fanout"):
            measure_fanout(
                server_url, followers=args.followers, rate=args.rate, duration=args.duration
            )
        if args.only in (None, "submits"):
            measure_submits(server_url, submitters=args.submitters, seconds=args.submit_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
