"""The error family shared by every layer.

Each process maps these to what its user sees in one place: the server to HTTP responses, the
CLIs to a one-line message and an exit code. Messages say what went wrong and what to do next.
"""

from __future__ import annotations


class CIError(Exception):
    """Base of every error this project raises on purpose."""


class NotFoundError(CIError):
    """A user, key or job that does not exist (or is not the caller's)."""


class JobNotFoundError(NotFoundError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found; `ci list` shows your jobs")
        self.job_id = job_id


class ArtifactNotFoundError(NotFoundError):
    def __init__(self, job_id: str, path: str) -> None:
        super().__init__(
            f"job {job_id} kept no file {path!r}; `ci artifacts {job_id}` fetches what it kept"
        )


class UserNotFoundError(NotFoundError):
    def __init__(self, what: str) -> None:
        super().__init__(f"user {what} not found; `ci-admin user list` shows the users")


class ApiKeyNotFoundError(NotFoundError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} not found; `ci-admin key list` shows the keys")


class ConflictError(CIError):
    """The request contradicts the current state (a duplicate, a second revocation)."""


class InvalidInputError(CIError):
    """Input that can never be accepted as given (a malformed email, a bad upload)."""


class AuthenticationError(CIError):
    """The caller could not be identified: missing, unknown, revoked or expired key, or an
    inactive user. The message says which, so a user knows whether to fix the key or ask an
    admin."""


class StorageError(CIError):
    """The database could not be used (wrong path, newer schema than this code knows)."""


class ConcurrentWriterError(StorageError):
    """A job's log or results moved since this writer last appended: another controller follows
    the same job (one that lost its lock and has not noticed yet). Nothing was stored; the job
    is left to the next reconcile, which resumes from what is stored, so no line is doubled."""


class DatabaseUnavailableError(StorageError):
    """The database is there but cannot serve right now (locked past the busy timeout, disk
    full, an I/O error): worth retrying later, unlike a wrong path or schema."""


class InvalidJobOptionsError(InvalidInputError):
    """What a submit asked of its job beyond the files (pytest arguments, environment,
    provenance) breaks a rule or a limit (422); the message names the field and the fix."""
