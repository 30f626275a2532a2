"""Where the controller is in a container's output, so a restart neither loses nor repeats.

Docker stamps every log message with a nanosecond timestamp, and `logs(since=…)` can only
filter to whole seconds. A `LogPosition` is therefore the timestamp of the last frame stored
plus how many frames carrying exactly that timestamp were stored: on resume we ask Docker for
everything from that second on and drop, with `PositionTracker`, every frame before the
timestamp and the first `count` frames at it. The position is encoded as text into the job's
`log_cursor` in the same transaction as the chunk it ends, so the database always says
precisely which frames it holds.

This needs the container's frames in timestamp order, which holds for a single output
stream; job containers therefore send stderr into stdout (see `bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_NANOS = 1_000_000_000


@dataclass(frozen=True, order=True)
class LogPosition:
    """The last stored frame: its timestamp (ns since the epoch) and its rank among the
    frames with that same timestamp (1 for the first)."""

    timestamp_ns: int
    count: int

    @property
    def since_seconds(self) -> int:
        """The whole second to ask Docker for output from."""
        return self.timestamp_ns // _NANOS

    def encode(self) -> str:
        return f"{self.timestamp_ns}:{self.count}"

    @classmethod
    def decode(cls, text: str | None) -> LogPosition | None:
        """The position stored in a job's `log_cursor`; None when nothing was stored yet."""
        if not text:
            return None
        stamp, _, count = text.partition(":")
        try:
            return cls(timestamp_ns=int(stamp), count=int(count))
        except ValueError as exc:
            raise ValueError(f"malformed log cursor {text!r}") from exc


def parse_timestamp(text: str) -> int:
    """Docker's RFC 3339 timestamp with up to nine fractional digits, as ns since the epoch.

    Go trims trailing zeros from the fraction, so these cannot be compared as strings.
    """
    zone_at = max(text.rfind("Z"), text.rfind("+"), text.rfind("-", 19))
    if zone_at < 19:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    clock, zone = text[:zone_at], text[zone_at:]
    whole, _, fraction = clock.partition(".")
    if not fraction.isdigit() and fraction:
        raise ValueError(f"malformed timestamp: {text!r}")
    moment = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return int(moment.timestamp()) * _NANOS + int((fraction + "000000000")[:9])


class PositionTracker:
    """Numbers frames as they arrive and drops those at or before a starting position."""

    def __init__(self, after: LogPosition | None) -> None:
        self._after = after
        self._skipped = 0
        self._timestamp_ns = after.timestamp_ns if after else -1
        self._count = after.count if after else 0

    def accept(self, timestamp_ns: int) -> LogPosition | None:
        """The position of a frame stamped `timestamp_ns`, or None if it was stored already."""
        after = self._after
        if after is not None:
            if timestamp_ns < after.timestamp_ns:
                return None
            if timestamp_ns == after.timestamp_ns and self._skipped < after.count:
                self._skipped += 1
                return None
        if timestamp_ns == self._timestamp_ns:
            self._count += 1
        else:
            self._timestamp_ns, self._count = timestamp_ns, 1
        return LogPosition(timestamp_ns=timestamp_ns, count=self._count)
