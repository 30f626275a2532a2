"""The job container's first process: an init that reaps, and the job it forks, which waits
for the project and then runs pytest in-process.

`BOOTSTRAP` is a few lines of Python that fold stderr into stdout (one stream keeps Docker's
timestamps in order, which the log cursor relies on) and fork at once. The parent stays PID 1
and does what `docker run --init` would (which costs 25 ms per start): it reaps every process
that ends up as its child (tests leave orphans behind, `sh -c "cmd & exit"`; unreaped, their
zombies use up the pid limit), passes SIGTERM and SIGINT on to the job, and exits with the
job's status when the job ends (a signal as 128 + its number), which takes every process left
in the container with it. The fork costs about a millisecond and happens before the project
arrives, so it is off the dispatch path.

When the job has ended, PID 1 gathers the files to keep (`artifacts.COLLECT_SOURCE`) before
it exits: the workspace is gone once the container stops. Our JUnit plugin is loaded with
`-p` from `PLUGIN_DIR` (on the path, and on `PYTHONPATH` for fresh interpreters).

The job (the child) waits for the project and then runs `python -m pytest` in the same
interpreter. The container is started first and the project copied in right after
(`put_archive` costs ~50 ms, which now overlaps the interpreter's start-up instead of
preceding the container's start). The project tar ends with `READY_MARKER`, so the job knows
it is complete. If it never comes (the controller died in between) the job exits with
`PROJECT_MISSING_EXIT` after a minute.

What a job may write is bounded (CI_JOB_DISK): each of `WRITABLE_PLACES` is a file system of
that size (see `docker_containers`), so a full one fails the write with "No space left on
device". When pytest then fails (exit codes 1-5) with one of them full (less than 1% free),
PID 1 adds `DISK_FULL_EXIT` to its code, so the controller can say why; `exit_status` undoes
it. It looks once pytest has ended: a place filled and emptied again (a temporary file
removed after its write failed) goes unnoticed, though the traceback still says why.

What the job asked for reaches the bootstrap in the project tar, as `JOB_FILE` just before the
marker (`job_file`): pytest's extra arguments and the environment (the submitter's plus
`CI=true` and `CI_JOB_ID`). One way for every container: a warm one was started before its
job existed, so its command and environment could not carry them, and a cold one then needs
no second way. The bootstrap sets the environment and appends the arguments to its command.
Variables the interpreter reads only at start-up (`PYTHON*`, e.g. `PYTHONPATH`) would be
ignored by pytest in the same interpreter, so when the job sets one, the bootstrap execs a
fresh `python -m pytest` instead (an interpreter start, ~15 ms, for those jobs only).

A warm container (`ROLE_WARM`, see `warm_pool`) is the same container started before any job
exists: same image, limits and user, a bootstrap that waits without a deadline (it may sit
idle for hours), and the project arrives with `put_project` once a job claims it. Its bounded
counterpart after a claim is the reconciler: a claimed container without the marker gets its
project again.

The bootstrap never touches the marker: it appears the moment the engine creates it, but the
engine then still chowns, chmods and stamps it, and `put_archive` fails ("lchown
/workspace/.ci-ready: no such file or directory") if it is gone by then. Removing it as soon
as it appeared failed about one start in twenty under load. So it stays, outside the
workspace where the tests do not see it.
"""

from __future__ import annotations

import json
import posixpath

from ci_common.models import Job
from ci_controller.artifacts import (
    COLLECT_SOURCE,
    JUNIT_NAME,
    JUNIT_PLUGIN_MODULE,
    JUNIT_VARIABLE,
    OUTPUT_DIR,
    PLUGIN_DIR,
)
from ci_controller.project import JOB_FILE, READY_MARKER, WORKSPACE
from ci_controller.runtime import PROJECT_MISSING_EXIT, ExitStatus

PROJECT_WAIT_SECONDS = 60
JOB_WORKDIR = f"/{WORKSPACE}"
JOB_SCRATCH = ("/tmp", "/var/tmp")
WRITABLE_PLACES = (JOB_WORKDIR, *JOB_SCRATCH)
"""Where a job may write, each place holding at most CI_JOB_DISK."""
JOB_COMMAND = ("python", "-m", "pytest", "-p", JUNIT_PLUGIN_MODULE)
JOB_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
PYTEST_FAILURES = range(1, 6)
DISK_FULL_EXIT = 110
"""Added to pytest's exit code (1-5) when the tests failed with a writable place full: a
container exit code of 111-115 means pytest's 1-5 plus "the disk was full"."""


def bootstrap(*, wait_seconds: int | None, root: str = "/") -> str:
    """The job container's first process. It prints nothing until its project has arrived, so
    a warm container's log is empty when its job claims it. `wait_seconds=None` (warm
    containers) waits for as long as it takes: nobody knows when a job will come. `root` is
    where the container's file system begins (the tests run it on the host, in a directory)."""

    def at(path: str) -> str:
        return posixpath.join(root, path.lstrip("/"))

    places = tuple(at(place) for place in WRITABLE_PLACES)
    if wait_seconds is None:
        give_up = ""
    else:
        give_up = f"""
    if time.monotonic() > deadline:
        print("[ci] the project never reached the container", flush=True)
        os._exit({PROJECT_MISSING_EXIT})"""
    return f"""
import json, os, runpy, signal, sys, time
{COLLECT_SOURCE}
os.dup2(1, 2)
signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
job = os.fork()
if job:
    def forward(signum, _):
        try:
            os.kill(job, signum)
        except OSError:
            pass
    def full(place):
        try:
            room = os.statvfs(place)
        except OSError:
            return False
        return room.f_bavail * 100 < room.f_blocks or bool(room.f_files and not room.f_favail)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == job:
            break
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if {PYTEST_FAILURES.start} <= code < {PYTEST_FAILURES.stop} and any(map(full, {places!r})):
        code += {DISK_FULL_EXIT}
    try:
        collect_artifacts({at(JOB_FILE)!r}, {at(JOB_WORKDIR)!r}, {at(OUTPUT_DIR)!r})
    except Exception as exc:
        print("[ci] the artifacts could not be collected:", exc, flush=True)
    os._exit(code)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
marker = {at(READY_MARKER)!r}
deadline = time.monotonic() + {wait_seconds or 0}
while not os.path.exists(marker):{give_up}
    time.sleep(0.002)
try:
    with open({at(JOB_FILE)!r}) as file:
        request = json.load(file)
except FileNotFoundError:
    request = {{}}
os.environ.update(request.get("env", {{}}))
os.environ[{JUNIT_VARIABLE!r}] = {at(f"{OUTPUT_DIR}/{JUNIT_NAME}")!r}
plugins = {at(PLUGIN_DIR)!r}
sys.path.append(plugins)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), plugins]))
os.chdir({at(JOB_WORKDIR)!r})
command = sys.argv[1:] + request.get("pytest_args", [])
if command[:2] == ["python", "-m"]:
    if any(name.startswith("PYTHON") for name in request.get("env", {{}})):
        os.execv(sys.executable, [sys.executable, *command[1:]])
    sys.argv = command[2:]
    runpy.run_module(command[2], run_name="__main__", alter_sys=True)
else:
    os.execvp(command[0], command)
"""


def exit_status(exit_code: int, *, oom_killed: bool) -> ExitStatus:
    """How a job ended, from its container's exit code (which `bootstrap` may have raised by
    `DISK_FULL_EXIT`) and the engine's word on memory."""
    if exit_code - DISK_FULL_EXIT in PYTEST_FAILURES:
        return ExitStatus(exit_code - DISK_FULL_EXIT, oom_killed=oom_killed, disk_full=True)
    return ExitStatus(exit_code, oom_killed=oom_killed)


def job_file(job: Job, *, artifact_bytes: int = 0) -> bytes:
    """`JOB_FILE` for `job`: what the bootstrap adds to pytest's command and environment,
    and which files PID 1 keeps within `artifact_bytes` (see `artifacts`)."""
    env = {**job.env, "CI": "true", "CI_JOB_ID": job.id}
    request = {
        "pytest_args": list(job.pytest_args),
        "env": env,
        "artifacts": list(job.artifacts),
        "artifact_bytes": artifact_bytes,
    }
    return json.dumps(request).encode()


BOOTSTRAP = bootstrap(wait_seconds=PROJECT_WAIT_SECONDS)
WARM_BOOTSTRAP = bootstrap(wait_seconds=None)
