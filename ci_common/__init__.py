"""What every process shares: the domain model, settings, the storage interface and errors."""

from ci_common.auth import NewApiKey, authenticate, generate_api_key, hash_api_key
from ci_common.errors import (
    ApiKeyNotFoundError,
    AuthenticationError,
    CIError,
    ConflictError,
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

__all__ = [
    "ApiKey",
    "ApiKeyId",
    "ApiKeyNotFoundError",
    "AuthenticationError",
    "CIError",
    "ConflictError",
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
