"""One job's per-test results as the controller stores them: batched, with their cursor.

The counterpart of `job_log` for the results stream (see `result_records` and the plugin's
docstring for the channel). Results are stored 20 ms after the first unstored one, so a
follower sees a test's result well within a quarter of a second of its end, in one
transaction per batch that also moves `results_cursor`: a controller killed at any instant
resumes after the last stored result, neither losing nor repeating one.

The session's first record gives the Python version, which completes the job's content hash
(uploaded files + pytest arguments + Python version) that flaky detection groups by. The end
record's exit status is stored like a result, with the cursor past it and the results before
it (often in the same record), so an adopting controller knows the session ended without
reading it again, and the results before it are never stored twice. A job that ends without
it (pytest crashed, was killed, cancelled or timed out) or with collection errors gets a note
saying why its results are what they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import zipfile
from pathlib import Path

from ci_common.models import Job
from ci_common.test_results import TestReport, TestResultRepository
from ci_controller.log_cursor import LogPosition
from ci_controller.result_records import RecordReader, SessionEnded, SessionStarted
from ci_controller.runtime import LogFrame

logger = logging.getLogger(__name__)

FLUSH_AFTER_SECONDS = 0.02
FLUSH_AT_RECORDS = 500
NORMAL_EXITS = (0, 1, 5)
"""pytest's codes for a session that ran to its end (passed, failed, no tests)."""


def content_hash(*, files_hash: str, pytest_args: tuple[str, ...], python: str) -> str:
    """What flaky detection compares: the same files, run the same way, on the same Python."""
    text = json.dumps([files_hash, list(pytest_args), python])
    return hashlib.sha256(text.encode()).hexdigest()


def files_hash(upload: Path) -> str:
    """The uploaded zip's files by name, size and CRC-32 (from its directory, so nothing is
    decompressed): the same tree zipped again, with other timestamps, hashes the same."""
    with zipfile.ZipFile(upload) as archive:
        entries = sorted(
            (info.filename, info.file_size, info.CRC)
            for info in archive.infolist()
            if not info.is_dir()
        )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


class JobResults:
    """Buffers one job's results and stores them in order; one writer per job."""

    def __init__(self, *, repo: TestResultRepository, job: Job) -> None:
        self._repo = repo
        self._job = job
        self._reader = RecordReader(job.id)
        self._files_hash = job.files_hash
        self._pending: list[TestReport] = []
        self._position: LogPosition | None = None
        self._hash: str | None = None
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self.started = job.content_hash is not None
        self.ended: SessionEnded | None = (
            None if job.session_exitstatus is None else SessionEnded(job.session_exitstatus)
        )
        self._ended_unstored = False
        self.reported = job.tests_reported
        self.collection_errors = 0

    async def know_files(self, files_hash: str) -> None:
        """The upload's hash, computed at dispatch; stored at once."""
        self._files_hash = files_hash
        await self._repo.set_files_hash(self._job.id, files_hash)

    async def add_frame(self, frame: LogFrame) -> None:
        records, position = self._reader.feed(frame)
        for record in records:
            if isinstance(record, TestReport):
                self._pending.append(record)
                if record.phase == "collect":
                    self.collection_errors += 1
            elif isinstance(record, SessionStarted):
                self.started = True
                if self._files_hash is not None:
                    self._hash = content_hash(
                        files_hash=self._files_hash,
                        pytest_args=self._job.pytest_args,
                        python=record.python,
                    )
            else:
                self.ended, self._ended_unstored = record, True
        if position is not None and records:
            self._position = position
        if len(self._pending) >= FLUSH_AT_RECORDS:
            await self.flush()
        elif (self._pending or self._hash or self._ended_unstored) and (
            self._timer is None or self._timer.done()
        ):
            self._timer = asyncio.create_task(self._flush_later())

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending and self._hash is None and not self._ended_unstored:
                return
            reports, position, new_hash = self._pending, self._position, self._hash
            ended = self.ended.exitstatus if self._ended_unstored and self.ended else None
            self._pending, self._position, self._hash = [], None, None
            self._ended_unstored = False
            try:
                self.reported = await self._repo.record_test_results(
                    self._job.id,
                    reports,
                    cursor=position.encode() if position else None,
                    content_hash=new_hash,
                    session_exitstatus=ended,
                    after_index=self.reported,  # see `job_log`: one writer stores each result
                )
            except asyncio.CancelledError:
                raise  # repository writes finish before a cancellation lands: it is stored
            except Exception:
                self._pending = reports + self._pending
                self._position = self._position or position
                self._hash = self._hash or new_hash
                self._ended_unstored = self._ended_unstored or ended is not None
                raise

    async def close(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.flush()

    async def _flush_later(self) -> None:
        """Store what is pending shortly, and again for as long as results came in while a
        store was in flight: `add_frame` starts no timer while this one runs, so without the
        loop they would wait for the next record (a test that runs for minutes)."""
        while True:
            await asyncio.sleep(FLUSH_AFTER_SECONDS)
            try:
                await asyncio.shield(self.flush())
            except Exception:
                logger.exception("job %s: storing test results failed; will retry", self._job.id)
                return
            if not (self._pending or self._hash or self._ended_unstored):
                return

    async def finish(self, *, exit_code: int | None, stopped: str | None) -> str | None:
        """Store what is pending and, when the results are not a whole session's, the note
        saying why (also returned, for the log)."""
        await self.close()
        note = self.incomplete_note(exit_code=exit_code, stopped=stopped)
        if note is not None:
            await self._repo.set_tests_note(self._job.id, note)
        return note

    def incomplete_note(self, *, exit_code: int | None, stopped: str | None) -> str | None:
        """Why this job's results are not a whole session's, or None when they are. `stopped`
        says why the controller stopped the job (cancelled, timed out), if it did."""
        if self.collection_errors and (self.ended is None or self.ended.exitstatus != 0):
            return (
                f"{self.collection_errors} error(s) during collection: pytest stopped before "
                "running the tests (see the errors listed)"
            )
        if self.ended is not None:
            return None
        why = stopped or (
            "it was killed or crashed" if exit_code is None or exit_code > 5 else "it stopped"
        )
        if not self.started:
            if (exit_code is None and stopped is None) or exit_code in NORMAL_EXITS:
                return None  # pytest never ran (its dependencies failed, say), or ran without us

            return f"no test results: pytest stopped before its session began ({why}; see the log)"
        return (
            f"pytest did not finish its session ({why}; exit code {exit_code}): the "
            f"{self.reported} result(s) reported until then are kept"
        )
