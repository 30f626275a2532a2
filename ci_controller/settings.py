"""The controller's settings: the shared `Settings` plus how jobs run and what is kept.

Only the controller reads these (it alone talks to Docker and runs jobs), so they live in its
package; the environment names follow the same `CI_` convention as every process's.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ci_common.models import ENGINE_NAME_PATTERN
from ci_common.python_versions import parse_job_images
from ci_common.settings import Settings

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in a size as Docker writes them (`512m`, `1g`, `1.5G`, `20MiB`, `4096`): binary
    units, case-insensitive. `ValueError` for anything else, or for nothing."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a size; use e.g. 512m or 1g")
    size = int(float(found.group(1)) * _UNITS[found.group(2).lower()])
    if size <= 0:
        raise ValueError(f"{text!r} is no space at all; use e.g. 512m or 1g")
    return size


class ControllerSettings(Settings):
    """`Settings` plus the limits and images of jobs, the reconcile period and retention."""

    job_image: str = Field(
        default="python:3.12-slim",
        description="base image for jobs, and the default Python version's image",
    )
    job_images: str = Field(
        default="",
        description="Python version -> image, e.g. `3.11=ci-python:3.11,3.13=ci-python:3.13`; "
        "empty: `job_image` alone, its version found by looking into it",
    )
    job_timeout: float = Field(default=1800, gt=0, description="wall-time limit per job, seconds")
    job_network: str = Field(default="none", description="Docker network of the test container")
    job_memory: str = Field(default="2g", description="memory limit of the test container")
    job_cpus: float = Field(default=1.0, gt=0, description="CPU limit of the test container")
    job_pids: int = Field(default=512, gt=0, description="process limit of the test container")
    build_network: str = Field(
        default="isolated",
        description="Docker network of dependency builds: `isolated`, the installation's own "
        "network that the host firewall confines to the public internet and DNS (builds are "
        "refused while it reaches the Docker host); or a network used as is, e.g. `bridge` "
        "(reaches the host and the local network: trusted users only) or `none`",
    )
    job_disk: str = Field(
        default="1g",
        description="what a job may write to each of its workspace, /tmp and /var/tmp "
        "(in-memory file systems of this size, so it counts against job_memory too)",
    )
    reconcile_interval: float = Field(
        default=2.0, gt=0, description="full reconcile period, seconds"
    )
    max_log_mb: float = Field(
        default=20, gt=0, description="stored log per job before truncation, MiB"
    )
    max_artifacts_mb: float = Field(
        default=50,
        gt=0,
        description="files kept per job (junit.xml and the submit's patterns), MiB; beyond "
        "it what fits is kept and the log says what was not",
    )
    retention_days: float = Field(
        default=30,
        gt=0,
        description="days a completed job is kept, with its log, results and files",
    )
    max_dependency_images: int = Field(
        default=20, gt=0, description="cached dependency images kept"
    )
    warm_containers: bool = Field(
        default=True,
        description="keep one started, unused job container waiting for the next job, so "
        "Docker's container start (~200 ms) is off the dispatch path; false turns it off",
    )

    engine_name: str = Field(
        default="default",
        pattern=ENGINE_NAME_PATTERN,
        description="the Docker engine this controller runs jobs on (one controller per "
        "engine; DOCKER_HOST says where it is)",
    )
    controller_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="port of the controller's `/metrics` (Prometheus); unset: not served",
    )
    controller_metrics_host: str = Field(
        default="127.0.0.1",
        description="address the controller's `/metrics` listens on; `0.0.0.0` for a "
        "scraper on another machine (set CI_METRICS_TOKEN then)",
    )

    @field_validator("job_images")
    @classmethod
    def _version_images(cls, value: str) -> str:
        parse_job_images(value)
        return value

    @property
    def job_image_map(self) -> dict[str, str]:
        """`CI_JOB_IMAGES` as version -> image (empty when unset)."""
        return parse_job_images(self.job_images)

    @field_validator("job_disk")
    @classmethod
    def _a_size(cls, value: str) -> str:
        parse_size(value)
        return value

    @property
    def job_disk_bytes(self) -> int:
        return parse_size(self.job_disk)

    @property
    def max_artifacts_bytes(self) -> int:
        return int(self.max_artifacts_mb * 1024 * 1024)
