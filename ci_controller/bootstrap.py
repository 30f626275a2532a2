"""The job container's first process: wait for the project, then run pytest in-process.

`BOOTSTRAP` is a few lines of Python that fold stderr into stdout (one
stream keeps Docker's timestamps in order, which the log cursor relies on), exit at once on
SIGTERM (as PID 1 nothing else would; it replaces `--init`, which costs 25 ms per start), wait
for the project and then run `python -m pytest` in the same interpreter. The container is
started first and the project copied in right after (`put_archive` costs ~50 ms, which now
overlaps the interpreter's start-up instead of preceding the container's start). The project
tar ends with `READY_MARKER`, so the bootstrap knows it is complete. If it never comes (the
controller died in between) the bootstrap exits with `PROJECT_MISSING_EXIT` after a minute.

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

from ci_controller.project import READY_MARKER, WORKSPACE
from ci_controller.runtime import PROJECT_MISSING_EXIT

PROJECT_WAIT_SECONDS = 60
JOB_WORKDIR = f"/{WORKSPACE}"
JOB_COMMAND = ("python", "-m", "pytest")
JOB_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def bootstrap(*, wait_seconds: int | None) -> str:
    """The job container's first process. It prints nothing until its project has arrived, so
    a warm container's log is empty when its job claims it. `wait_seconds=None` (warm
    containers) waits for as long as it takes: nobody knows when a job will come."""
    if wait_seconds is None:
        give_up = ""
    else:
        give_up = f"""
    if time.monotonic() > deadline:
        print("[ci] the project never reached the container", flush=True)
        os._exit({PROJECT_MISSING_EXIT})"""
    return f"""
import os, runpy, signal, sys, time
os.dup2(1, 2)
signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
marker = {"/" + READY_MARKER!r}
deadline = time.monotonic() + {wait_seconds or 0}
while not os.path.exists(marker):{give_up}
    time.sleep(0.002)
os.chdir({JOB_WORKDIR!r})
command = sys.argv[1:]
if command[:2] == ["python", "-m"]:
    sys.argv = command[2:]
    runpy.run_module(command[2], run_name="__main__", alter_sys=True)
else:
    os.execvp(command[0], command)
"""


BOOTSTRAP = bootstrap(wait_seconds=PROJECT_WAIT_SECONDS)
WARM_BOOTSTRAP = bootstrap(wait_seconds=None)
