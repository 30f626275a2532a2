"""The server's settings: the shared `Settings` plus knobs only the HTTP API reads.

They live here rather than in `ci_common` because no other process cares about them; the
environment names follow the same `CI_` convention.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from ci_common.settings import Settings

MIB = 1024 * 1024


class ServerSettings(Settings):
    """`Settings` plus upload limits, how the server streams logs and how many connections and
    uploads one server process takes on at once."""

    max_upload_mb: float = Field(default=50, gt=0, description="largest accepted archive, MiB")
    max_unpacked_mb: float = Field(
        default=500, gt=0, description="largest total unpacked size, MiB"
    )
    max_upload_entries: int = Field(default=10_000, gt=0, description="most entries in one archive")

    sse_ping_interval: float = Field(
        default=15.0, gt=0, description="seconds between keep-alive comments on an idle SSE stream"
    )
    log_poll_interval: float = Field(
        default=0.02,
        gt=0,
        description="seconds between cheap checks of the database for new log chunks",
    )
    log_full_check_interval: float = Field(
        default=1.0, gt=0, description="seconds between full re-reads of followed jobs (safety net)"
    )
    max_uploads: int = Field(
        default=4,
        gt=0,
        description="uploads one server process receives, checks and stores at once; more get "
        "503 with Retry-After (each may spool up to CI_MAX_UPLOAD_MB to a temporary file)",
    )
    upload_timeout: float = Field(
        default=120, gt=0, description="seconds an upload's body may take to arrive (then 408)"
    )
    max_connections: int = Field(
        default=1000,
        gt=0,
        description="open connections per server process, log streams included; more get 503 "
        "(read by `ci-server`: uvicorn's limit_concurrency)",
    )
    keep_alive_timeout: int = Field(
        default=5,
        gt=0,
        description="seconds a connection may sit without a complete request head, before its "
        "first request or between requests, before it is closed (read by `ci-server`)",
    )

    session_secret: SecretStr | None = Field(
        default=None,
        description="signs the dashboard's session cookies; unset: a secret generated into the "
        "database, shared by every server replica on it (set it to rotate: everyone signs in "
        "again)",
    )
    session_hours: float = Field(
        default=12, gt=0, description="hours a dashboard sign-in lasts before asking again"
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerSettings:
        """Widen shared settings; fields the caller set win, the server's come from the env."""
        if isinstance(settings, ServerSettings):
            return settings
        return cls(**settings.model_dump())

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)

    @property
    def max_unpacked_bytes(self) -> int:
        return int(self.max_unpacked_mb * MIB)
