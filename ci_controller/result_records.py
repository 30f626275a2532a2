"""The plugin's JSON lines, read back from the container's results stream: pure parsing.

Docker cuts a line longer than 16 KiB into several frames, so lines are reassembled here. A
frame position goes with the records only once no partial line is pending after them, so a
cursor stored with those records never points into the middle of a line: a restarted
controller re-reads from there and sees whole lines again. Lines that are not our records (a
test that wrote to the descriptor) are skipped with a warning, never stored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import cast

from pydantic import ValidationError

from ci_common.test_results import TestReport
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import LogFrame

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 1024 * 1024
"""A longer line is no record of ours (the plugin bounds its fields); it is dropped."""
MAX_NODEID_CHARS = 4096


@dataclass(frozen=True)
class SessionStarted:
    python: str
    pytest: str


@dataclass(frozen=True)
class SessionEnded:
    exitstatus: int


Record = TestReport | SessionStarted | SessionEnded


@dataclass
class RecordReader:
    """Turns frames into records; feed it the frames of one stream in order."""

    job_id: str
    _partial: bytearray = field(default_factory=bytearray)
    _held: list[Record] = field(default_factory=lambda: list[Record]())

    def feed(self, frame: LogFrame) -> tuple[list[Record], LogPosition | None]:
        """The records completed by `frame`, and the position a cursor may take after them
        (None while part of a line is still pending)."""
        self._partial += frame.data
        *lines, rest = bytes(self._partial).split(b"\n")
        if len(rest) > MAX_LINE_BYTES:
            logger.warning("job %s: dropping an overlong results line", self.job_id)
            rest = b""
        self._partial = bytearray(rest)
        for line in lines:
            record = self._parse(line)
            if record is not None:
                self._held.append(record)
        if self._partial:
            return [], None
        records, self._held = self._held, []
        return records, frame.position

    def _parse(self, line: bytes) -> Record | None:
        if not line.strip():
            return None
        try:
            value = cast(object, json.loads(line))
            if not isinstance(value, dict):
                raise ValueError("not an object")
            data = cast(dict[str, object], value)
            kind = data.get("kind")
            if kind == "test":
                report = TestReport.model_validate(data)
                return report.model_copy(update={"nodeid": report.nodeid[:MAX_NODEID_CHARS]})
            if kind == "session":
                return SessionStarted(python=str(data["python"]), pytest=str(data["pytest"]))
            if kind == "end":
                return SessionEnded(exitstatus=int(cast(int, data["exitstatus"])))
            raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            logger.warning("job %s: not a results record (%s): %r", self.job_id, exc, line[:80])
            return None
