"""The client's error family: everything `CIClient` and the `ci` command raise on purpose.

httpx errors and HTTP error responses are converted into these where they enter (in
`ci_client.client`), so callers handle one family under one base class and never see httpx.
Each message says what happened and what to do next; `ci_client.exit_codes` maps each class to
the command's exit code. This module imports nothing heavy, so the CLI can load it at start-up.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the client raises on purpose; `str(error)` is the user's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ClientError):
    """The client is not configured well enough to talk to a server (no API key, a bad
    config file, a malformed server URL)."""


class ArchiveError(ClientError):
    """The project cannot be packed for upload: not a directory, no `requirements.txt` or
    `pyproject.toml`, or bigger than the upload limit."""


class JobRequestError(ClientError):
    """The pytest arguments or `-e` options break a rule of the server, found before
    anything was uploaded (exit 64, a usage error of `ci`)."""


class ServerUnreachable(ClientError):
    """No connection to the server could be made (or kept)."""


class StreamLost(ServerUnreachable):
    """A job's stream dropped and reconnecting failed within the retry budget. The job itself
    goes on on the server; `ci wait <job_id>` reattaches."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class ServerError(ClientError):
    """The server answered, but with a 5xx or something that breaks the API contract."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AuthRejected(ClientError):
    """The server refused the API key (HTTP 401): missing, unknown, revoked, expired, or the
    user is inactive. The server's `detail` says which."""


class JobNotFound(ClientError):
    """No such job for this user (HTTP 404): a typo, or another user's job."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class RequestRejected(ClientError):
    """The server rejected a request as invalid (a 4xx other than 401 and 404)."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class UploadRejected(RequestRejected):
    """The server rejected the uploaded project (400, 413, 422): not a valid zip, too big, no
    `requirements.txt`, unsafe paths. The server's `detail` names the problem."""
