"""The CI service's client: the `ci` command and a Python library for the server's API.

    from ci_client import CIClient, JobRequest, pack_project

    with CIClient(server_url="http://localhost:8000", api_key="ci_...") as client:
        job_id = client.submit_async(pack_project(Path(".")).data)
        request = JobRequest(pytest_args=("-k", "parse"), env={"FOO": "bar"})
        job_id = client.submit_async(pack_project(Path(".")).data, request)

Every error raised on purpose is a `ClientError` (see `ci_client.errors`). The exports that
pull in httpx or pydantic are loaded on first use (PEP 562 `__getattr__`), because this package
is also the `ci` command, whose `--help` and `--version` must start in a blink.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ci_client.errors import (
    ArchiveError,
    AuthRejected,
    ClientError,
    ConfigError,
    JobNotFound,
    JobRequestError,
    RequestRejected,
    ServerError,
    ServerUnreachable,
    StreamLost,
    UploadRejected,
)
from ci_client.exit_codes import ExitCode

if TYPE_CHECKING:
    from ci_client.archive import ProjectArchive, pack_project
    from ci_client.client import CIClient, ReconnectPolicy
    from ci_client.job_request import JobRequest, ServerLimits

_LAZY = {
    "CIClient": "ci_client.client",
    "ReconnectPolicy": "ci_client.client",
    "ProjectArchive": "ci_client.archive",
    "pack_project": "ci_client.archive",
    "JobRequest": "ci_client.job_request",
    "ServerLimits": "ci_client.job_request",
}

__all__ = [
    "ArchiveError",
    "AuthRejected",
    "CIClient",
    "ClientError",
    "ConfigError",
    "ExitCode",
    "JobNotFound",
    "JobRequest",
    "JobRequestError",
    "ProjectArchive",
    "ReconnectPolicy",
    "RequestRejected",
    "ServerError",
    "ServerLimits",
    "ServerUnreachable",
    "StreamLost",
    "UploadRejected",
    "pack_project",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ci_client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
