"""The typed slice of the Docker SDK's `APIClient` this package uses.

The SDK ships without type information; this protocol states what we rely on (JSON objects
as read-only mappings), so the rest of the package is checked strictly and the SDK's
looseness stays in this one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO, Protocol, cast

import docker
from docker.errors import APIError, DockerException
from requests import RequestException

Json = Mapping[str, object]

ENGINE_ERRORS = (DockerException, RequestException)
"""What a failing engine call raises: the SDK's errors, or the HTTP library's when the engine
does not answer at all (a stopped daemon, a closed socket)."""


class LogStream(Protocol):
    """The SDK's `CancellableStream` of log frames: iterate, or close from another thread."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class EngineApi(Protocol):
    def close(self) -> None: ...

    def inspect_image(self, image: str) -> Json: ...

    def info(self) -> Json: ...

    def ping(self) -> bool: ...

    def pull(self, repository: str) -> object: ...

    def tag(self, image: str, repository: str, tag: str) -> bool: ...

    def images(self, *, filters: Mapping[str, Sequence[str]]) -> list[Json]: ...

    def remove_image(self, image: str) -> None: ...

    def commit(
        self, container: str, *, repository: str, tag: str, changes: Sequence[str]
    ) -> Json: ...

    def create_network(
        self,
        name: str,
        *,
        driver: str,
        options: Mapping[str, str],
        labels: Mapping[str, str],
        check_duplicate: bool,
    ) -> Json: ...

    def inspect_network(self, net_id: str) -> Json: ...

    def disconnect_container_from_network(
        self, container: str, net_id: str, *, force: bool
    ) -> None: ...

    def create_host_config(self, **options: object) -> Json: ...

    def create_container(
        self,
        image: str,
        *,
        command: Sequence[str],
        user: str,
        labels: Mapping[str, str],
        host_config: Json,
        working_dir: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> Json: ...

    def put_archive(self, container: str, path: str, data: bytes | BinaryIO) -> bool:
        """`data` may be a file, which the HTTP client streams in blocks."""
        ...

    def get_archive(self, container: str, path: str) -> tuple[Iterable[bytes], Json]: ...

    def start(self, container: str) -> None: ...

    def logs(
        self,
        container: str,
        *,
        stream: bool,
        follow: bool,
        timestamps: bool,
        since: int | None,
    ) -> LogStream: ...

    def attach(
        self, container: str, *, stdout: bool, stderr: bool, stream: bool, logs: bool
    ) -> LogStream: ...

    def wait(self, container: str) -> Json: ...

    def inspect_container(self, container: str) -> Json: ...

    def stop(self, container: str, *, timeout: int) -> None: ...

    def remove_container(self, container: str, *, force: bool, v: bool) -> None: ...

    def containers(self, *, all: bool, filters: Mapping[str, str]) -> list[Json]: ...


def engine_api(client: docker.APIClient) -> EngineApi:
    """The SDK client seen through `EngineApi`."""
    return cast(EngineApi, client)


def explain(exc: BaseException) -> str:
    """The engine's own words for a failed call (its explanation), else the error's text."""
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)
