"""Failed dashboard sign-ins, counted per client, so guessing keys through the form is slow.

A client (its address as the server sees it) may fail `max_failures` times in a sliding
`window_seconds`; after that every attempt is refused with 429 until the oldest failure ages
out, whether the key it sends is right or not (so a guesser learns nothing while blocked).
The counts live in the server process: behind N replicas a client gets N times the attempts,
which still leaves a 256-bit key unguessable; the limit is about noise and log volume.
Memory is bounded: at most `max_clients` addresses are tracked, the stalest forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class SignInThrottle:
    max_failures: int = 5
    window_seconds: float = 60.0
    max_clients: int = 10_000
    _failures: OrderedDict[str, deque[float]] = field(
        default_factory=lambda: OrderedDict[str, deque[float]]()
    )

    def retry_after(self, client: str, *, now: float | None = None) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        now = time.monotonic() if now is None else now
        failures = self._recent(client, now)
        if len(failures) < self.max_failures:
            return None
        return max(1, int(failures[0] + self.window_seconds - now + 0.999))

    def record_failure(self, client: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque[float]())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures
