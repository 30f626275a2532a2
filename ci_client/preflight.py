"""What `ci submit test` asks before the upload, asked while the project is being packed.

Before the first byte of a submit goes out, the client needs two things that do not depend on
each other: the server's answer to `GET /limits` (which also checks the API key: a wrong key
is a 401 before anything is uploaded) and the packed project (with its git provenance). The
first costs the import of the HTTP stack (httpx, about half of the client's start-up) and a
round trip; the second costs `git` processes and zlib. `InThread` runs the first in a thread
while the main thread packs, so the waits (the round trip, git's processes) overlap.

The errors stay as clear, and in the same order, as when the two ran one after the other: a
rejected key is the error reported whenever the check failed, even when packing failed too,
and a large project's packing stops as soon as the check has failed (`raise_if_failed`, called
for every packed file), not when it is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from ci_client.archive import ProjectArchive, pack_project, too_big
from ci_client.errors import ClientError
from ci_client.provenance import GitProvenance, git_provenance

if TYPE_CHECKING:
    from ci_client.client import CIClient
    from ci_client.job_request import JobRequest, ServerLimits

T = TypeVar("T")
UNCAPPED = 1 << 62
"""Packing's cap until the server has said its limit."""


@dataclass(frozen=True)
class Prepared:
    """Everything a submit needs before its upload: a client whose key the server accepted,
    the server's limits, the packed project and its provenance."""

    client: CIClient
    limits: ServerLimits
    archive: ProjectArchive
    git: GitProvenance | None


def prepare_upload(path: Path, *, request: JobRequest, connect: Callable[[], CIClient]) -> Prepared:
    """Connect (`connect()`, then `GET /limits`) in a thread while packing `path` here; raise
    the first problem in the order a user should fix them: the key, the request's arguments,
    then the project. The caller closes the returned client."""

    def check() -> tuple[CIClient, ServerLimits]:
        client = connect()
        try:
            limits = client.limits()
            request.check(limits)
        except BaseException:
            client.close()
            raise
        return client, limits

    checked = InThread(check, name="ci-limits")
    git = InThread(lambda: git_provenance(path), name="ci-git")

    def keep_packing(packed: int) -> None:
        checked.raise_if_failed()
        if checked.done:
            limit = checked.result()[1].max_upload_bytes
            if packed > limit:
                raise too_big(limit, more=True)

    try:
        archive = pack_project(path, max_bytes=UNCAPPED, on_file=keep_packing)
    except ClientError:
        client, _ = checked.result()  # a rejected key (or request) is the error to report first
        client.close()
        raise
    client, limits = checked.result()
    try:
        if archive.size > limits.max_upload_bytes:
            raise too_big(limits.max_upload_bytes, more=False)
        return Prepared(client=client, limits=limits, archive=archive, git=git.result())
    except BaseException:
        client.close()
        raise


class InThread(Generic[T]):
    """`work()` run in a daemon thread; `result()` waits for it and returns its value or raises
    its exception (a `BaseException` too, such as a `KeyboardInterrupt` raised in it)."""

    def __init__(self, work: Callable[[], T], *, name: str) -> None:
        self._work = work
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        # A daemon: an interrupted command must not wait for a round trip it no longer needs.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the caller by `result()`
            self._error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)

    def raise_if_failed(self) -> None:
        """Raise the work's exception if it has already failed; never waits."""
        if self._done.is_set() and self._error is not None:
            raise self._error
