"""What per-test results cost: our pytest plugin against plain pytest, and how fast a result
reaches a follower.

    .venv/bin/python bench/results_overhead.py [--tests 2000] [--rounds 5] [--latency-tests 40]

Overhead: a generated project of `--tests` trivial tests is baked into the job image with our
plugin beside it; ONE container then runs plain `python -m pytest` and pytest with our plugin
(`-p _ci_pytest_results`, records written to the container's stderr; in a job they go to a
pipe that PID 1 relays, whose cost the latency half below includes) alternately,
`--rounds` times each after a warm-up of each, timing every run inside the container (wall
time, and the CPU time pytest used, which other work on a shared machine disturbs less). The
medians and their ratio are printed; the target is at most 5 % overhead. On a shared machine
the runs vary by more than that, so the plugin's own CPU per test (its hook alone, in this
process) is printed too.

Latency: a job of `--latency-tests` tests, each 0.1 s, runs on a real service (server and
controller processes); a conftest prints each test's end (`time.time()` in the container, the
host's clock) into the log, and a follower of the SSE stream notes when each `test` event
arrives. Printed: p50 and p95 of arrival minus end; the target is p50 < 250 ms.

Needs Docker and the job image (scripts/install-docker, scripts/build-job-image).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from service import ROOT, floor_image, median, percentile, running_service

from harness import CIService  # isort: skip  (on sys.path via service)

PLUGIN = ROOT / "ci_controller" / "job_plugin" / "_ci_pytest_results.py"

DRIVER = """
import json, os, resource, subprocess, sys, time
rounds = int(sys.argv[1])
plain = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
ours = plain + ["-p", "_ci_pytest_results"]
env = {**os.environ, "PYTHONPATH": "/workspace/.ci-plugins", "CI_RESULTS_FD": "2"}
def cpu():
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
def run(command):
    started, cpu_before = time.perf_counter(), cpu()
    done = subprocess.run(command, cwd="/workspace", env=env, stdout=subprocess.DEVNULL)
    assert done.returncode == 0, done.returncode
    return time.perf_counter() - started, cpu() - cpu_before
run(plain); run(ours)
times = {"plain": [], "ours": []}
for _ in range(rounds):
    times["plain"].append(run(plain))
    times["ours"].append(run(ours))
print(json.dumps(times))
"""

CONFTEST = """
import time

def pytest_runtest_logreport(report):
    if report.when == "call":
        print(f"\\nENDED {report.nodeid} {time.time():.6f}", flush=True)
"""


def write_project(directory: Path, *, tests: int) -> None:
    per_file = 100
    for start in range(0, tests, per_file):
        body = "".join(
            f"def test_{number}():\n    assert {number} == {number}\n\n"
            for number in range(start, min(start + per_file, tests))
        )
        (directory / f"test_many_{start // per_file:03d}.py").write_text(body)


def measure_overhead(*, tests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ci-bench-results-") as scratch:
        project = Path(scratch) / "many"
        project.mkdir()
        write_project(project, tests=tests)
        (project / "driver.py").write_text(DRIVER)
        plugins = project / ".ci-plugins"
        plugins.mkdir()
        (plugins / PLUGIN.name).write_bytes(PLUGIN.read_bytes())
        with floor_image(project) as tag:
            done = subprocess.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    tag,
                    "python",
                    "/workspace/driver.py",
                    str(rounds),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
    times: dict[str, list[list[float]]] = json.loads(done.stdout.strip().splitlines()[-1])
    records = done.stderr.count('"kind": "test"')
    print(f"{tests} tests, {rounds} rounds each in one container")
    for label, index in (("wall time", 0), ("CPU time", 1)):
        plain = median([run[index] for run in times["plain"]])
        ours = median([run[index] for run in times["ours"]])
        print(
            f"  {label}: plain pytest median {plain:.3f} s, with our plugin {ours:.3f} s: "
            f"{100 * (ours / plain - 1):+.1f} % (target <= 5 %)"
        )
    print(f"  records written: {records} ({(rounds + 1) * tests} expected)")


def measure_hook_cost(*, tests: int) -> None:
    """The plugin's own work per test (what the whole-run ratio cannot resolve on a busy
    machine): its report hook for the three phases of `tests` passing tests, writing to a
    pipe that a thread drains, in this process."""
    from _pytest.reports import TestReport

    sys.path.insert(0, str(PLUGIN.parent))
    import _ci_pytest_results as plugin  # only importable from its own directory

    read, write = os.pipe()

    def drain() -> None:
        while os.read(read, 65536):
            pass

    threading.Thread(target=drain, daemon=True).start()
    writer = plugin.ResultWriter(write)
    reports = [
        TestReport(
            nodeid=f"test_many.py::test_{number}",
            location=("test_many.py", number, f"test_{number}"),
            keywords={},
            outcome="passed",
            longrepr=None,
            when=when,
            duration=0.0001,
        )
        for number in range(tests)
        for when in ("setup", "call", "teardown")
    ]
    started = time.process_time()
    for report in reports:
        writer.pytest_runtest_logreport(report)
    per_test = (time.process_time() - started) / tests
    os.close(write)
    print(
        f"  the plugin's own CPU per test: {per_test * 1e6:.1f} us "
        f"({per_test * tests * 1000:.0f} ms for {tests} tests)"
    )


def follow_tests(service: CIService, job_id: str) -> dict[str, float]:
    """Arrival time of each `test` event at a follower, by node id."""
    arrived: dict[str, float] = {}
    with service.http.stream(
        "GET", f"/jobs/{job_id}/stream", params={"from_beginning": "true"}
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:].strip())
            if message.get("type") == "test":
                arrived.setdefault(str(message["nodeid"]), time.time())
            elif message.get("type") == "complete":
                break
    return arrived


def measure_latency(*, tests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ci-bench-latency-") as scratch:
        project = Path(scratch) / "timed"
        project.mkdir()
        (project / "conftest.py").write_text(CONFTEST)
        (project / "test_timed.py").write_text(
            "import time\n\n"
            + "".join(f"def test_{n:03d}():\n    time.sleep(0.1)\n\n" for n in range(tests))
        )
        with running_service() as service:
            job_id = service.submit(project)
            arrived = follow_tests(service, job_id)
            ended: dict[str, float] = {}
            for line in service.logs(job_id).splitlines():
                if line.startswith("ENDED "):
                    _, nodeid, stamp = line.split(" ")
                    ended[nodeid] = float(stamp)
    delays = [(arrived[nodeid] - ended[nodeid]) * 1000 for nodeid in ended if nodeid in arrived]
    print(f"test end in the container -> `test` event at a follower, {len(delays)} tests")
    print(
        f"  p50 {percentile(delays, 0.5):.0f} ms, p95 {percentile(delays, 0.95):.0f} ms, "
        f"max {max(delays):.0f} ms (target p50 < 250 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--latency-tests", type=int, default=40)
    args = parser.parse_args()
    measure_overhead(tests=args.tests, rounds=args.rounds)
    measure_hook_cost(tests=args.tests)
    measure_latency(tests=args.latency_tests)


if __name__ == "__main__":
    sys.exit(main())
