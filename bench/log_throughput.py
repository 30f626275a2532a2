"""Throughput of a verbose job's log against the `docker run --rm` floor, in the same run.

    .venv/bin/python bench/log_throughput.py [--sizes 1,5,18] [--runs 3]

For each size a generated project has one test that prints that many MB in ~95-byte lines
(pytest `-s`, so the output is not captured), each line carrying the moment it was printed.
Three ways to run it, alternating so all see the same machine, medians of `--runs`:

- floor: `docker run --rm` of the same pytest on the job image with the project baked in, its
  output streamed to this process over a pipe (and counted);
- async: `ci submit test --async`, then a follower of `GET /jobs/{id}/stream?from_beginning=true`
  until `complete` (submit to completion); the follower also measures each line's latency;
- cli: `ci submit test` with its output streamed to a file, until `ci` exits.

A line's latency is from the moment it was printed in the container (its own stamp: the host
and the container read the same clock) to the arrival of its chunk here, split at the moment
the controller stored the chunk (`log_chunks.created_at`): printed -> stored is the job's
pipe, PID 1, Docker and the controller; stored -> received the server and this follower.
Every line counts, not only the oldest of each chunk: a percentile over chunks changes with
the chunk size (fewer, larger chunks hide more lines behind one sample), and the target is
per line. The follower only keeps what arrived during the run and reads the stamps after
`complete`, so measuring adds no work while the job runs (the follower shares the machine's
CPUs with the job and the service). Only lines printed after the follower connected count
(older lines are a replay, not a delay). Besides the saturated jobs, a paced job prints one
line every 20 ms for 5 s, the latency a developer watching a normal job sees. Each run's load
average is printed: on a shared machine it says how much to trust the run.

The controller's and the server's CPU seconds (user + system, from /proc) are read around
each run of ours and reported per MB of stored log. Needs Docker and the job image.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from service import floor_image, median, percentile, running_service

from harness import BIN, CIService  # isort: skip  (on sys.path via service)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMPED_LINE = re.compile(r"^\d{7} (\d+\.\d+) ", re.MULTILINE)
SINCE_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LINE_BYTES = 95
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TEST_MODULE = """\
import sys
import time

LINES = {lines}
PAD = "x" * {pad}


def test_verbose():
    write = sys.stdout.write
    for number in range(LINES):
        write(f"{{number:07d}} {{time.time():.6f}} {{PAD}}\\n")
"""

PACED_TEST_MODULE = """\
import time


def test_paced():
    for number in range(250):
        print(f"{number:07d} {time.time():.6f} paced", flush=True)
        time.sleep(0.02)
"""


def make_project(root: Path, megabytes: int) -> Path:
    project = root / f"verbose{megabytes}"
    project.mkdir()
    lines = megabytes * 1_000_000 // LINE_BYTES
    pad = LINE_BYTES - len("0000000 1700000000.000000 \n")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -s -p no:cacheprovider\n")
    (project / "test_verbose.py").write_text(TEST_MODULE.format(lines=lines, pad=pad))
    return project


def make_paced_project(root: Path) -> Path:
    project = root / "paced"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\naddopts = -s -p no:cacheprovider\n")
    (project / "test_paced.py").write_text(PACED_TEST_MODULE)
    return project


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Latencies:
    """Per line printed after the follower connected, in seconds: printed -> received, and
    its two parts, printed -> stored and stored -> received."""

    total: list[float] = field(default_factory=list[float])
    to_stored: list[float] = field(default_factory=list[float])
    to_received: list[float] = field(default_factory=list[float])

    def extend(self, other: Latencies) -> None:
        self.total += other.total
        self.to_stored += other.to_stored
        self.to_received += other.to_received


@dataclass
class Run:
    elapsed: float
    megabytes: float
    controller_cpu: float
    server_cpu: float
    latencies: Latencies = field(default_factory=Latencies)
    client_cpu: float = 0.0
    load: float = field(default_factory=lambda: os.getloadavg()[0])


class Bench:
    def __init__(self, service: CIService) -> None:
        self.service = service
        self.controller = next(p for p in service.processes if p.name == "controller")
        self.server = next(p for p in service.processes if p.name == "server")
        home = service.root / "home"
        home.mkdir(exist_ok=True)
        self.env = {
            **service.env,
            "HOME": str(home),
            "CI_SERVER_URL": service.base_url,
            "CI_API_KEY": service.api_key,
        }

    def _cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.controller.pid), cpu_seconds(self.server.pid)

    def _finish(self, started: float, cpu: tuple[float, float], job_id: str) -> Run:
        elapsed = time.perf_counter() - started
        controller, server = self._cpu()
        [(log_bytes, conclusion)] = self.service.query(
            "SELECT log_bytes, conclusion FROM jobs WHERE id = ?", job_id
        )
        assert conclusion == "success", f"job {job_id} ended {conclusion}"
        megabytes = int(str(log_bytes)) / 1e6
        return Run(elapsed, megabytes, controller - cpu[0], server - cpu[1])

    def run_async(self, project: Path) -> Run:
        cpu = self._cpu()
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "ci"), "submit", "test", "--async", str(project)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        found = UUID.search(done.stdout + done.stderr)
        assert found is not None, done.stdout + done.stderr
        job_id = found.group(0)
        latencies = self._follow(job_id)
        run = self._finish(started, cpu, job_id)
        run.latencies = latencies
        return run

    def _follow(self, job_id: str) -> Latencies:
        """Follow the job to `complete`; then each line's latency (see the module's doc)."""
        arrivals: list[tuple[float, int, str]] = []
        params = {"from_beginning": "true"}
        with self.service.http.stream("GET", f"/jobs/{job_id}/stream", params=params) as reply:
            connected = time.time()
            for line in reply.iter_lines():
                if not line.startswith("data:"):
                    continue
                arrived = time.time()
                message = json.loads(line[5:])
                if message["type"] == "complete":
                    return self._latencies(job_id, arrivals, connected=connected)
                if message["type"] == "log":
                    arrivals.append((arrived, message["seq"], message["data"]))
        raise AssertionError(f"the stream of {job_id} ended without `complete`")

    def _latencies(
        self, job_id: str, arrivals: list[tuple[float, int, str]], *, connected: float
    ) -> Latencies:
        rows = self.service.query("SELECT seq, created_at FROM log_chunks WHERE job_id = ?", job_id)
        stored = {int(str(seq)): _epoch(str(created)) for seq, created in rows}
        latencies = Latencies()
        for arrived, seq, data in arrivals:
            for stamp in map(float, STAMPED_LINE.findall(data)):
                if stamp >= connected:
                    latencies.total.append(arrived - stamp)
                    latencies.to_stored.append(stored[seq] - stamp)
                    latencies.to_received.append(arrived - stored[seq])
        return latencies

    def run_cli(self, project: Path, output: Path) -> Run:
        cpu = self._cpu()
        client = _children_cpu()
        started = time.perf_counter()
        with output.open("wb") as sink:
            done = subprocess.run(
                [str(BIN / "ci"), "submit", "test", str(project)],
                env=self.env,
                stdout=sink,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
        assert done.returncode == 0, done.stderr
        found = UUID.search(done.stderr)
        assert found is not None, done.stderr
        run = self._finish(started, cpu, found.group(0))
        run.client_cpu = _children_cpu() - client
        return run


def _epoch(text: str) -> float:
    return (datetime.fromisoformat(text) - SINCE_EPOCH).total_seconds()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_floor(tag: str) -> float:
    started = time.perf_counter()
    command = ["docker", "run", "--rm", "--network", "none", "-e", "PYTHONUNBUFFERED=1", tag]
    command += ["python", "-m", "pytest", "-q"]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as run:
        assert run.stdout is not None
        received = 0
        while block := run.stdout.read1(1 << 16):
            received += len(block)
    assert run.returncode == 0 and received > 0
    return time.perf_counter() - started


def report(
    megabytes: int, floor: list[float], ours: list[Run], cli: list[Run], *, empty: Run
) -> None:
    def fmt(values: list[float]) -> str:
        return " ".join(f"{v:.2f}" for v in values)

    base = median(floor)
    loads = " ".join(f"{r.load:.1f}" for r in ours)
    print(f"{megabytes} MB job ({median([r.megabytes for r in ours]):.1f} MB stored; load {loads})")
    print(f"  floor (docker run --rm, streamed): median {base:.2f} s  runs {fmt(floor)}")
    for name, runs in (("async + follow", ours), ("ci submit test > file", cli)):
        elapsed = [r.elapsed for r in runs]
        controller = median([r.controller_cpu / r.megabytes for r in runs])
        server = median([r.server_cpu / r.megabytes for r in runs])
        controller_log = median(
            [(r.controller_cpu - empty.controller_cpu) / r.megabytes for r in runs]
        )
        server_log = median([(r.server_cpu - empty.server_cpu) / r.megabytes for r in runs])
        print(
            f"  {name}: median {median(elapsed):.2f} s = {median(elapsed) / base:.2f}x  "
            f"runs {fmt(elapsed)}; CPU s/MB controller {controller:.3f}, server {server:.3f} "
            f"(less a job that prints nothing: {controller_log:.3f}, {server_log:.3f})"
        )
    client = median([r.client_cpu / r.megabytes for r in cli])
    print(f"  `ci submit test` (the client) CPU s/MB: {client:.3f}")
    report_latency("follower latency", ours)


def report_latency(name: str, runs: list[Run]) -> None:
    """Each run's per-line p50/p99 and the pooled ones, split at the moment of storing."""
    pooled = Latencies()
    for run in runs:
        pooled.extend(run.latencies)
    if not pooled.total:
        print(f"  {name}: no line was printed after the follower connected")
        return

    def ms(values: list[float], fraction: float) -> str:
        return f"{percentile(values, fraction) * 1000:.0f}"

    each = ", ".join(
        f"{ms(run.latencies.total, 0.5)}/{ms(run.latencies.total, 0.99)} (load {run.load:.1f})"
        for run in runs
        if run.latencies.total
    )
    print(
        f"  {name} per line, printed -> received: p50 {ms(pooled.total, 0.5)} ms, "
        f"p99 {ms(pooled.total, 0.99)} ms, max {max(pooled.total) * 1000:.0f} ms over "
        f"{len(pooled.total)} lines; per run p50/p99 {each}\n"
        f"    printed -> stored p50 {ms(pooled.to_stored, 0.5)} ms, p99 "
        f"{ms(pooled.to_stored, 0.99)} ms; stored -> received p50 "
        f"{ms(pooled.to_received, 0.5)} ms, p99 {ms(pooled.to_received, 0.99)} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,18", help="MB per job, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="ci-bench-logs-") as scratch:
        root = Path(scratch)
        with running_service() as service:
            bench = Bench(service)
            silent = make_project(root, 0)
            bench.run_async(silent)  # warm-up
            empties = [bench.run_async(silent) for _ in range(args.runs)]
            empty = Run(
                elapsed=median([r.elapsed for r in empties]),
                megabytes=0,
                controller_cpu=median([r.controller_cpu for r in empties]),
                server_cpu=median([r.server_cpu for r in empties]),
            )
            print(
                f"a job that prints nothing: controller {empty.controller_cpu:.3f} CPU s, "
                f"server {empty.server_cpu:.3f} CPU s"
            )
            paced = make_paced_project(root)
            paced_runs = [bench.run_async(paced) for _ in range(args.runs)]
            print("a job printing a line every 20 ms for 5 s:")
            report_latency("follower latency", paced_runs)
            for megabytes in sizes:
                project = make_project(root, megabytes)
                with floor_image(project) as tag:
                    run_floor(tag)
                    floor: list[float] = []
                    ours: list[Run] = []
                    cli: list[Run] = []
                    for _ in range(args.runs):
                        floor.append(run_floor(tag))
                        ours.append(bench.run_async(project))
                        cli.append(bench.run_cli(project, root / "cli-output.txt"))
                    report(megabytes, floor, ours, cli, empty=empty)


if __name__ == "__main__":
    main()
