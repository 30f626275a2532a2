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

PID 1 also carries the job's output: the job writes into a pipe (stdout and stderr both),
and PID 1 sends what it reads on to the container's stdout as records (`container_output`),
a batch at most `GATHER_SECONDS` after its first byte, so Docker stores a verbose job in a few
large messages and a line still being written (pytest's progress dots) goes out without
waiting for its newline. It learns of the job's end from SIGCHLD (a wakeup fd, so `select`
watches the pipe and the signal at once), sends what is left in the pipe and exits; it never
waits for the pipe to close, which a process the tests left behind may hold open. The pipe
holds one gather's worth (256 KiB): a fast job rarely waits for PID 1, and a job that prints
faster than Docker and the controller take it in waits in its `write` instead of queueing a
megabyte that every later line would sit behind (at a verbose job's 15 MB/s, 1 MiB was
~70 ms of latency before Docker even stamped a line).

When the job has ended, PID 1 gathers the files to keep (`artifacts.COLLECT_SOURCE`) before
it exits: the workspace is gone once the container stops. Our JUnit plugin (`job_plugins`)
writes `junit.xml` where it looks (`CI_JUNITXML`). When they are small, PID 1 sends them in
its output (`FILES_CHANNEL`); its last record (`END_CHANNEL`) is the exit code it is about
to exit with.

The job (the child) imports pytest, waits for the project and then runs `python -m pytest`
in the same interpreter. Importing pytest takes ~0.2 s in the job image, as long as the rest of
a small project's run; done while the project is on its way (and in a warm container, long
before a job exists) it is off the job's path. pytest reads its environment variables when it
configures itself, not on import, so the job's environment, set later, still applies; a
project's own module named `pytest` no longer shadows the installed one (the price). The
container is started first and the project copied in right after (`put_archive` costs
~50 ms, which now overlaps the interpreter's start-up instead of preceding the container's
start). The project tar ends with `READY_MARKER`, so the job knows
it is complete. If it never comes (the controller died in between) the job exits with
`PROJECT_MISSING_EXIT` after a minute.

What a job may write is bounded (CI_JOB_DISK): each of `WRITABLE_PLACES` is a file system of
that size (see `docker.sandboxes`), so a full one fails the write with "No space left on
device". When pytest then fails (exit codes 1-5) with one of them full (less than 1% free),
PID 1 adds `DISK_FULL_EXIT` to its code, so the controller can say why; `exit_status` undoes
it. It looks once pytest has ended: a place filled and emptied again (a temporary file
removed after its write failed) goes unnoticed, though the traceback still says why.

What the job asked for reaches the bootstrap in the project tar, as `JOB_FILE` just before the
marker (`job_file`): pytest's extra arguments and the environment (the submitter's plus
`CI=true` and `CI_JOB_ID`). One way for every container: a warm one was started before its
job existed, so its command and environment could not carry them, and a cold one then needs
no second way. The bootstrap sets the environment and appends the arguments to its command.
Our pytest plugins (`job_plugins`) are in the tar too: the bootstrap puts their directory on
the path and `JOB_COMMAND` loads them with `-p`. The plugin writes its records to a
second pipe (its write end is `CI_RESULTS_FD` in the job), which PID 1 reads beside the output
pipe and sends on as records of `RESULTS_CHANNEL`: the job's output and our records reach the
controller in one Docker stream, never mixed (a test cannot forge a record by printing it),
each record with a position in that stream for the results' own cursor.
Variables the interpreter reads only at start-up (`PYTHON*`, e.g. `PYTHONPATH`) would be
ignored by pytest in the same interpreter, so when the job sets one, the bootstrap execs a
fresh `python -m pytest` instead (an interpreter start, ~15 ms, for those jobs only).

When the job file says `install_project` (the project is a package: pyproject.toml's
`[project]`, or setup.py/setup.cfg), the job first installs the project itself, editable,
without dependencies, with no build isolation and no network (`PROJECT_INSTALL_OPTIONS`):
its dependencies and build backend are in the dependency image, and only the project's own
package changes from job to job, so it is installed here, where it costs a few hundred
milliseconds, instead of rebuilding an image. uv does it when the image has uv, pip
otherwise. A `.pth` file an editable install adds is read only when an interpreter starts,
so pytest then runs in a fresh one. The log says what happened and how long it took; a
failed install is shown and the tests run anyway (their import errors say the rest).

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
from ci_controller.artifacts import COLLECT_SOURCE, INLINE_OUTPUT_BYTES, JUNIT_NAME, OUTPUT_DIR
from ci_controller.container_output import GATHER_BYTES, GATHER_SECONDS, encoder_source
from ci_controller.dependency_plan import DependencyPlan
from ci_controller.job_plugins import (
    JUNIT_VARIABLE,
    PLUGIN_ARGUMENTS,
    PLUGIN_DIR,
    RESULTS_FD_VARIABLE,
    plugin_environment,
)
from ci_controller.project import JOB_FILE, READY_MARKER, WORKSPACE
from ci_controller.runtime import PROJECT_MISSING_EXIT, ExitStatus

PROJECT_WAIT_SECONDS = 60
JOB_WORKDIR = f"/{WORKSPACE}"
JOB_SCRATCH = ("/tmp", "/var/tmp")
WRITABLE_PLACES = (JOB_WORKDIR, *JOB_SCRATCH)
"""Where a job may write, each place holding at most CI_JOB_DISK."""
PIPE_BYTES = 256 * 1024
"""The job's output pipe: room for what a fast job writes while PID 1 sends the last batch
(`GATHER_BYTES`), and no more, since every byte queued here delays the lines behind it."""
JOB_COMMAND = ("python", "-m", "pytest", *PLUGIN_ARGUMENTS)
JOB_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
PYTEST_FAILURES = range(1, 6)
PROJECT_INSTALL_OPTIONS = ("--no-deps", "--no-build-isolation", "--quiet", "-e", ".")
"""How the job installs the project itself: its dependencies and build backend are in the
image already (`dependency_plan`), and the container has no network."""
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
import fcntl, json, os, runpy, select, signal, sys, time
{encoder_source()}
{COLLECT_SOURCE}
os.dup2(1, 2)
signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
output, into = os.pipe()
results, report = os.pipe()
try:
    fcntl.fcntl(into, fcntl.F_SETPIPE_SZ, {PIPE_BYTES})
except OSError:
    pass
job = os.fork()
if job:
    import base64, io, tarfile  # for pack_output, now rather than when the job has ended
    os.close(into)
    os.close(report)
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
    def take(pipe=output, limit=None):
        taken, size = [], 0
        while limit is None or size < limit:
            try:
                block = os.read(pipe, {PIPE_BYTES} if limit is None else limit - size)
            except BlockingIOError:
                return b"".join(taken), False
            if not block:
                return b"".join(taken), True
            taken.append(block)
            size += len(block)
        return b"".join(taken), False
    def send(data, channel=LOG_CHANNEL):
        view = memoryview(encode_records(data, channel=channel))
        while view:
            view = view[os.write(1, view):]
    def report_results():
        data, ended = take(results)
        if ended and results in watched:
            watched.remove(results)
        if data:
            send(data, RESULTS_CHANNEL)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    woken, wake = os.pipe()
    for end in (output, results, woken, wake):
        os.set_blocking(end, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake)
    os.write(wake, b"0")  # the job may have ended before the handler was there
    watched = [output, results, woken]
    status = None
    carry = b""
    while status is None:
        if woken in select.select(watched, [], [])[0]:
            os.read(woken, 4096)
        while True:
            pid, code = os.waitpid(-1, os.WNOHANG)
            if pid == job:
                status = code
            if pid == 0 or pid == job:
                break
        data, ended = take(limit={GATHER_BYTES})
        until = time.monotonic() + {GATHER_SECONDS}
        while data and not ended and status is None and len(data) < {GATHER_BYTES}:
            if time.monotonic() >= until:
                break
            time.sleep(0.002)
            more, ended = take(limit={GATHER_BYTES} - len(data))
            data += more
        if ended and output in watched:
            watched.remove(output)
        data, carry = whole_characters(carry + data) if not ended else (carry + data, b"")
        if data:
            send(data)
        report_results()
    send(carry + take()[0])
    report_results()
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if {PYTEST_FAILURES.start} <= code < {PYTEST_FAILURES.stop} and any(map(full, {places!r})):
        code += {DISK_FULL_EXIT}
    try:
        collect_artifacts({at(JOB_FILE)!r}, {at(JOB_WORKDIR)!r}, {at(OUTPUT_DIR)!r})
        send(pack_output({at(OUTPUT_DIR)!r}, {INLINE_OUTPUT_BYTES}), FILES_CHANNEL)
    except Exception as exc:
        print("[ci] the artifacts could not be collected:", exc, flush=True)
    send(str(code).encode(), END_CHANNEL)
    os._exit(code)
os.close(output)
os.close(results)
os.dup2(into, 1)
os.dup2(into, 2)
os.close(into)
os.set_inheritable(report, True)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
try:
    import pytest  # while the project is on its way (see the module's doc)
except Exception:
    pass
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
os.environ[{RESULTS_FD_VARIABLE!r}] = str(report)
os.environ[{JUNIT_VARIABLE!r}] = {at(f"{OUTPUT_DIR}/{JUNIT_NAME}")!r}
plugins = {at(PLUGIN_DIR)!r}
sys.path.append(plugins)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), plugins]))
os.chdir({at(JOB_WORKDIR)!r})
fresh = any(name.startswith("PYTHON") for name in request.get("env", {{}}))
link = request.get("link_project")
if link:
    import sysconfig
    started = time.monotonic()
    paths = sysconfig.get_paths()
    try:
        for name, text in link["files"].items():
            target = os.path.join(paths["purelib"], name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as file:
                file.write(text)
        for name, reference in link["scripts"].items():
            module, _, function = reference.partition(":")
            target = os.path.join(paths["scripts"], name)
            with open(target, "w") as file:
                file.write(f"#!{{sys.executable}}\\nimport sys\\nfrom {{module}} import "
                           f"{{function.split('.')[0]}}\\nsys.exit({{function}}())\\n")
            os.chmod(target, 0o755)
    except OSError as exc:
        print(f"[ci] could not install the project itself ({{exc}}); running the tests "
              "anyway", flush=True)
    else:
        sys.path.append(link["path"])
        print(f"[ci] project {{link['name']}} installed (editable, linked: "
              f"{{link['path']}} on the path, its metadata and entry points written, no "
              f"build) in {{time.monotonic() - started:.3f}} s", flush=True)
elif request.get("install_project"):
    import shutil, subprocess
    started = time.monotonic()
    uv = shutil.which("uv")
    if uv:
        tool, install = "uv", [uv, "pip", "install", "--python", sys.executable, "--offline"]
    else:
        tool, install = "pip", [sys.executable, "-m", "pip", "install", "--no-index"]
    install += {list(PROJECT_INSTALL_OPTIONS)!r}
    done = subprocess.run(install, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if done.returncode:
        sys.stdout.write(done.stdout.decode(errors="replace"))
        print(f"[ci] installing the project itself failed ({{tool}}, exit code "
              f"{{done.returncode}}, output above); running the tests anyway", flush=True)
    else:
        print(f"[ci] project installed (editable, without dependencies, offline, {{tool}}) "
              f"in {{took:.2f}} s", flush=True)
        fresh = True
command = sys.argv[1:] + request.get("pytest_args", [])
if command[:2] == ["python", "-m"]:
    if fresh:
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


def job_file(job: Job, *, plan: DependencyPlan | None = None, artifact_bytes: int = 0) -> bytes:
    """`JOB_FILE` for `job`: what the bootstrap adds to pytest's command and environment,
    how it installs the project itself first (`plan`'s `link` or `install_project`), and
    which files PID 1 keeps within `artifact_bytes` (see `artifacts`)."""
    env = {**job.env, **plugin_environment(job.rerun_node_ids), "CI": "true", "CI_JOB_ID": job.id}
    request: dict[str, object] = {
        "pytest_args": list(job.pytest_args),
        "env": env,
        "artifacts": list(job.artifacts),
        "artifact_bytes": artifact_bytes,
    }
    if plan is not None and plan.link is not None:
        request["link_project"] = plan.link.as_json()
    elif plan is not None and plan.install_project:
        request["install_project"] = True
    return json.dumps(request).encode()


BOOTSTRAP = bootstrap(wait_seconds=PROJECT_WAIT_SECONDS)
WARM_BOOTSTRAP = bootstrap(wait_seconds=None)
