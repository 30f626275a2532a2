"""The service's pytest plugin, run inside every job container: one JSON line per test result.

The controller copies this file into each job's container, outside the workspace (see
`ci_controller.job_plugins`), and the bootstrap loads it with `-p`, so the user installs
nothing. It imports nothing but the standard library and pytest's public hooks, in syntax
every Python from 3.8 reads, because it runs on whatever interpreter and pytest the project
pins (tested from pytest 7 on).

Where the lines go, and why there: to the file descriptor named by `CI_RESULTS_FD`, the write
end of a pipe the container's PID 1 reads beside the job's output pipe. PID 1 sends both on to
Docker in one stream as records of two channels (`ci_controller.container_output`), so the
controller never has to pick our lines out of the user's (a marker in the output could be
split by output without a newline, or printed by a test), and the results get the log's
durability for free: every record has a position in that stream, and the controller stores
rows together with the position of the last record they came from. Without `CI_RESULTS_FD`
(pytest run outside our container) and in pytest-xdist workers (whose reports reach the
controlling process's hooks) the plugin does nothing.

Records (`"kind"`): `session` (the Python and pytest versions) first, then one `test` per
result as it finishes: `nodeid`, `outcome` (passed, failed, error, skipped, xfailed,
xpassed), `phase` (setup, call, teardown, collect), `duration` in seconds, and for failures
and errors `message` (one line), `traceback` and `output` (captured stdout, stderr and
logging), each cut to a bound with a note saying so; finally `end` with pytest's exit
status. A collection error is a `test` record with outcome `error` for the file that failed.
An error in a test's teardown after it passed or failed is a record of its own, as pytest
counts it.

`CI_RERUN_NODE_IDS` (a file of node ids, one a line) keeps only those tests (and all tests of
a file whose collection failed) and deselects the rest, so a rerun of failures needs no
arguments that could outgrow a command line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

RESULTS_FD_VARIABLE = "CI_RESULTS_FD"
RERUN_VARIABLE = "CI_RERUN_NODE_IDS"
MAX_MESSAGE_CHARS = 500
MAX_TRACEBACK_CHARS = 4000
MAX_OUTPUT_CHARS = 4000


def cut(text: str, limit: int, *, keep_end: bool) -> str:
    """`text` within `limit` characters, saying how much was cut (the end of a traceback or
    of output is what explains a failure, so those keep their end)."""
    if len(text) <= limit:
        return text
    note = f"[ci] {len(text) - limit} characters cut; the job log has all of it"
    if keep_end:
        return note + "\n…" + text[len(text) - limit :]
    return text[:limit] + "…\n" + note


class ResultWriter:
    """Writes records to the results descriptor; stops quietly if a test closed it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._setup_seconds: dict[str, float] = {}

    def emit(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            return
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            self._fd = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        version = sys.version_info
        self.emit(
            {
                "kind": "session",
                "python": f"{version[0]}.{version[1]}.{version[2]}",
                "pytest": pytest.__version__,
            }
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.emit(
                failure_record(report, nodeid=report.nodeid or ".", outcome="error", when="collect")
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = outcome_of(report)
        if outcome is None:  # a passed setup: the call decides
            self._setup_seconds[report.nodeid] = report.duration
            return
        duration = report.duration + self._setup_seconds.pop(report.nodeid, 0.0)
        if outcome in ("failed", "error", "xpassed"):
            record = failure_record(report, nodeid=report.nodeid, outcome=outcome, when=report.when)
        else:
            record: dict[str, Any] = {"kind": "test", "nodeid": report.nodeid}
            record.update(outcome=outcome, phase=report.when)
            reason = skip_reason(report)
            if reason:
                record["message"] = cut(reason, MAX_MESSAGE_CHARS, keep_end=False)
        record["duration"] = round(duration, 6)
        self.emit(record)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.emit({"kind": "end", "exitstatus": int(exitstatus)})


def outcome_of(report: pytest.TestReport) -> str | None:
    """The outcome a user reads in pytest's summary, or None for a phase that decides none
    (a passed setup, a passed teardown)."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if xfail:
            return "xpassed" if report.passed else "xfailed"
        return str(report.outcome)
    if report.failed:
        return "error"
    if report.skipped and report.when == "setup":
        return "xfailed" if xfail else "skipped"
    return None


def skip_reason(report: pytest.TestReport) -> str:
    reason = getattr(report, "wasxfail", "")
    if reason:
        return str(reason)
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # pyright: ignore[reportUnknownArgumentType] -- pytest's (path, line, reason)
        return str(longrepr[2]).replace("Skipped: ", "", 1)  # pyright: ignore[reportUnknownArgumentType] -- see above
    return ""


def failure_record(
    report: pytest.TestReport | pytest.CollectReport, *, nodeid: str, outcome: str, when: str
) -> dict[str, Any]:
    text = report.longreprtext or ""
    longrepr: Any = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", "") or "")
    if not message:
        lines = [line for line in text.splitlines() if line.strip()]
        message = lines[-1] if lines else outcome
    if outcome == "xpassed":
        message = "unexpectedly passed" + (": " + str(report.wasxfail) if report.wasxfail else "")  # pyright: ignore[reportAttributeAccessIssue] -- set by pytest on xfail
    first_line = message.strip().splitlines()[0] if message.strip() else outcome
    output: list[str] = []
    for title, content in report.sections:
        if content.strip():
            output.append("----- {} -----\n{}".format(title, content.rstrip("\n")))
    return {
        "kind": "test",
        "nodeid": nodeid,
        "outcome": outcome,
        "phase": when,
        "message": cut(first_line, MAX_MESSAGE_CHARS, keep_end=False),
        "traceback": cut(text, MAX_TRACEBACK_CHARS, keep_end=True) if text else None,
        "output": cut("\n".join(output), MAX_OUTPUT_CHARS, keep_end=True) if output else None,
    }


def read_rerun_ids(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            return [line.rstrip("\n") for line in file if line.strip()]
    except OSError:
        return []


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controlling process reports
        return
    fd = os.environ.get(RESULTS_FD_VARIABLE, "")
    if fd.isdigit():
        config.pluginmanager.register(ResultWriter(int(fd)), "ci-results-writer")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = os.environ.get(RERUN_VARIABLE, "")
    if not path or hasattr(config, "workerinput"):
        return
    wanted = set(read_rerun_ids(path))
    prefixes = tuple(nodeid + "::" for nodeid in wanted)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (kept if item.nodeid in wanted or item.nodeid.startswith(prefixes) else dropped).append(
            item
        )
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
