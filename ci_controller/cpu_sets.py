"""Which CPUs a new container may run on, so the CPUs a job sees are the CPUs it may use.

A CPU quota alone (`CI_JOB_CPUS`, Docker's `nano_cpus`) limits time, not placement: the tests
still see every CPU of the engine in `os.sched_getaffinity`, so `pytest -n auto` starts a
worker per engine CPU and they fight over one CPU's worth of time. Each container therefore
also gets a cpuset of `ceil(CI_JOB_CPUS)` CPUs (at most the engine's), and the quota keeps a
fractional limit exact within it.

The CPUs are chosen least used first, counting the containers this controller created and has
not yet seen end, so two jobs on a two-CPU engine get one CPU each instead of sharing one. The
count is a placement hint, not a reservation: containers adopted after a restart are not in
it, and a busy engine gives a new container the least crowded CPUs, never none.
"""

from __future__ import annotations

import math
import threading


class CpuSets:
    """CPU placement for one engine with `total` CPUs. Thread-safe (containers are created
    from worker threads)."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self._use = [0] * self.total
        self._held: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def take(self, cpus: float) -> tuple[int, ...]:
        """The least used `ceil(cpus)` CPUs (at least one, at most all; lowest first on a
        tie), counted as used from now on: `hold` them for the container created with them,
        or `give_back` if none was."""
        count = min(self.total, max(1, math.ceil(cpus)))
        with self._lock:
            by_use = sorted(range(self.total), key=lambda cpu: (self._use[cpu], cpu))
            chosen = tuple(sorted(by_use[:count]))
            for cpu in chosen:
                self._use[cpu] += 1
        return chosen

    def hold(self, container_id: str, chosen: tuple[int, ...]) -> None:
        """`chosen` (from `take`) is `container_id`'s until `release`."""
        with self._lock:
            self._held[container_id] = chosen

    def give_back(self, chosen: tuple[int, ...]) -> None:
        """`chosen` (from `take`) went to no container."""
        with self._lock:
            for cpu in chosen:
                self._use[cpu] -= 1

    def release(self, container_id: str) -> None:
        """The container ended or is gone; no error if it was never held or is released."""
        with self._lock:
            for cpu in self._held.pop(container_id, ()):
                self._use[cpu] -= 1


def cpuset_text(chosen: tuple[int, ...]) -> str:
    """Docker's `cpuset_cpus` form: `0,2,3`."""
    return ",".join(str(cpu) for cpu in chosen)
