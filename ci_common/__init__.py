"""What every process shares: the domain model, settings, the storage interface and errors.

The names below are loaded on first use (PEP 562), not at `import ci_common`: the `ci` client
imports only `ci_common.api` and must not pay for pydantic-settings or the repository
protocols on every command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ci_common.auth import NewApiKey, authenticate, generate_api_key, hash_api_key
    from ci_common.errors import (
        ApiKeyNotFoundError,
        AuthenticationError,
        CIError,
        ConflictError,
        DatabaseUnavailableError,
        InvalidInputError,
        JobNotFoundError,
        NotFoundError,
        StorageError,
        UserNotFoundError,
    )
    from ci_common.models import (
        ApiKey,
        ApiKeyId,
        Job,
        JobConclusion,
        JobId,
        JobStatus,
        LogChunk,
        User,
        UserId,
    )
    from ci_common.repository import JobRepository, Repository, UserRepository
    from ci_common.settings import Settings, default_db_path

_HOMES = {
    "auth": ("NewApiKey", "authenticate", "generate_api_key", "hash_api_key"),
    "errors": (
        "ApiKeyNotFoundError",
        "AuthenticationError",
        "CIError",
        "ConflictError",
        "DatabaseUnavailableError",
        "InvalidInputError",
        "JobNotFoundError",
        "NotFoundError",
        "StorageError",
        "UserNotFoundError",
    ),
    "models": (
        "ApiKey",
        "ApiKeyId",
        "Job",
        "JobConclusion",
        "JobId",
        "JobStatus",
        "LogChunk",
        "User",
        "UserId",
    ),
    "repository": ("JobRepository", "Repository", "UserRepository"),
    "settings": ("Settings", "default_db_path"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ci_common' has no attribute {name!r}")
    return getattr(import_module(f"ci_common.{module}"), name)


__all__ = [
    "ApiKey",
    "ApiKeyId",
    "ApiKeyNotFoundError",
    "AuthenticationError",
    "CIError",
    "ConflictError",
    "DatabaseUnavailableError",
    "InvalidInputError",
    "Job",
    "JobConclusion",
    "JobId",
    "JobNotFoundError",
    "JobRepository",
    "JobStatus",
    "LogChunk",
    "NewApiKey",
    "NotFoundError",
    "Repository",
    "Settings",
    "StorageError",
    "User",
    "UserId",
    "UserNotFoundError",
    "UserRepository",
    "authenticate",
    "default_db_path",
    "generate_api_key",
    "hash_api_key",
]
