"""At most one controller per database: an OS file lock next to the database file.

`fcntl.flock` on `<db_path>.controller.lock`, taken without blocking. The kernel releases it
when the process dies however it dies, so a controller restarted right after `kill -9` starts
at once, and there is no stale lock to clean up. The holder writes its pid, host and start
time into the file, so a second controller can say which one is running.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from ci_common.errors import CIError
from ci_common.models import DEFAULT_ENGINE


class ControllerAlreadyRunningError(CIError):
    """Another controller holds the lock of this database."""


def lock_path_for(db_path: Path, engine: str = DEFAULT_ENGINE) -> Path:
    """One lock per engine name: each engine has its own controller (the default engine's
    lock keeps the name it had before engines)."""
    suffix = ".controller.lock" if engine == DEFAULT_ENGINE else f".controller-{engine}.lock"
    return db_path.with_name(db_path.name + suffix)


class ControllerLock:
    """The held lock; release it with `release()` (or let the process end)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, db_path: Path, *, engine: str = DEFAULT_ENGINE) -> ControllerLock:
        """Take `engine`'s lock or raise `ControllerAlreadyRunningError` naming the holder."""
        path = lock_path_for(db_path, engine)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "an unknown process"
            os.close(fd)
            raise ControllerAlreadyRunningError(
                f"another ci-controller is already running for {db_path} ({holder}); "
                "stop it first, or point this one at another database with --db-path"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        started = datetime.now(UTC).isoformat(timespec="seconds")
        holder = f"pid {os.getpid()} on {socket.gethostname()}, started {started}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()
