"""The messages of a job's SSE stream as the client reads them: plain frozen dataclasses.

They mirror `ci_common.api`'s `JobIdEvent`, `LogEvent`, `StatusEvent` and `CompleteEvent` field
for field (a unit test keeps them in step), but are decoded with `json` and a few type checks
instead of pydantic. Importing pydantic and building those models costs about 0.2 s of CPU,
and it fell exactly while a small job runs: the client was still importing when the job's
`complete` arrived, and on a two-core machine it took CPU from the job itself. Statuses and
conclusions stay plain strings (the values of `JobStatus` and `JobConclusion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

_T = TypeVar("_T")


class EventShapeError(ValueError):
    """A message of a known type with a field missing or of the wrong type."""


@dataclass(frozen=True)
class JobIdEvent:
    job_id: str
    type: Literal["job_id"] = "job_id"


@dataclass(frozen=True)
class LogEvent:
    seq: int
    data: str
    type: Literal["log"] = "log"


@dataclass(frozen=True)
class StatusEvent:
    status: str
    type: Literal["status"] = "status"


@dataclass(frozen=True)
class CompleteEvent:
    status: str
    conclusion: str | None
    success: bool | None
    exit_code: int | None
    error: str | None = None
    type: Literal["complete"] = "complete"


Event = JobIdEvent | LogEvent | StatusEvent | CompleteEvent


def decode_event(kind: str, raw: dict[str, object]) -> Event | None:
    """The event of type `kind` in `raw` (a decoded `data:` object); None for a type this
    client does not know; `EventShapeError` for a known type it cannot read."""
    if kind == "log":
        return LogEvent(seq=_get(raw, "seq", int), data=_get(raw, "data", str))
    if kind == "status":
        return StatusEvent(status=_get(raw, "status", str))
    if kind == "job_id":
        return JobIdEvent(job_id=_get(raw, "job_id", str))
    if kind == "complete":
        return CompleteEvent(
            status=_get(raw, "status", str),
            conclusion=_get_optional(raw, "conclusion", str),
            success=_get_optional(raw, "success", bool),
            exit_code=_get_optional(raw, "exit_code", int),
            error=_get_optional(raw, "error", str),
        )
    return None


def _get(raw: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = raw.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EventShapeError(f"{name} is not a {kind.__name__}")
    return value


def _get_optional(raw: dict[str, object], name: str, kind: type[_T]) -> _T | None:
    return None if raw.get(name) is None else _get(raw, name, kind)
