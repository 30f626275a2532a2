"""How a job ended, decided from what stopped it or from its container's exit status.

Pure rules, no I/O: pytest's exit code decides the conclusion, and what the engine and the
container's PID 1 report beside it (an out-of-memory kill of the tests or of a process they
started, a full writable place) becomes the log's last line, so a user reads why without
digging in Docker. A container that gave up waiting for its project ran no test at all: that
is not an outcome but a start to repeat (`ProjectNeverArrivedError`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import Enum

from ci_common.models import JobConclusion
from ci_controller.bootstrap import WRITABLE_PLACES
from ci_controller.runtime import PROJECT_MISSING_EXIT, ExitStatus
from ci_controller.settings import ControllerSettings

KILLED = 128 + 9
"""SIGKILL: the tests themselves were killed."""
SIGNALLED = range(129, 129 + 64)
"""128 + N: the tests were ended by signal N (PID 1 reports it so, see `bootstrap`); the job
keeps this code, and `ci` exits 137 for it, not pytest's 1."""


class ProjectNeverArrivedError(Exception):
    """The job's container gave up waiting for its project: its tests never began."""


class StopReason(Enum):
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as `complete_job` records it, plus a last line for its log."""

    conclusion: JobConclusion
    exit_code: int | None = None
    error: str | None = None
    note: str | None = None


def stopped_outcome(reason: StopReason, *, settings: ControllerSettings) -> Outcome:
    """A job the controller stopped: on request, or at its wall-time limit."""
    if reason is StopReason.CANCELLED:
        return Outcome(JobConclusion.CANCELLED, note="cancelled on request")
    return Outcome(
        JobConclusion.TIMED_OUT,
        note=f"timed out after {settings.job_timeout:g} s (CI_JOB_TIMEOUT); the container "
        "was stopped",
    )


def exit_outcome(status: ExitStatus, *, settings: ControllerSettings) -> Outcome:
    """A job whose container exited by itself; raises `ProjectNeverArrivedError` when its
    tests never began."""
    if status.exit_code == 0:
        return Outcome(JobConclusion.SUCCESS, exit_code=0)
    if status.exit_code == PROJECT_MISSING_EXIT:
        raise ProjectNeverArrivedError
    notes: list[str] = []
    if status.oom_killed and status.exit_code == KILLED:
        notes.append(
            f"the tests ran out of memory (CI_JOB_MEMORY={settings.job_memory}) and were killed"
        )
    elif status.oom_killed:
        notes.append(
            "the kernel killed a process the tests started because it ran out of memory "
            f"(CI_JOB_MEMORY={settings.job_memory})"
        )
    elif status.exit_code in SIGNALLED:
        number = status.exit_code - 128
        notes.append(
            f"the tests were killed by {_signal_name(number)} (exit code {status.exit_code}), "
            f"not for memory: a test or a process it started sent it, or the process limit "
            f"(CI_JOB_PIDS={settings.job_pids}) made the tests fail hard"
        )
    if status.disk_full:
        *most, last = WRITABLE_PLACES
        notes.append(
            f"the tests filled the space they may write to: {', '.join(most)} and {last} "
            f"hold at most {settings.job_disk} each (CI_JOB_DISK; the workspace holds the "
            "project too); write less there, or ask the admin to raise CI_JOB_DISK"
        )
    return Outcome(JobConclusion.FAILURE, exit_code=status.exit_code, note="; ".join(notes) or None)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
