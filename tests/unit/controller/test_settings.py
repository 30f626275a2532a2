"""The controller's settings: job limits and images from `CI_*` variables, sizes as Docker
writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_controller.settings import ControllerSettings, parse_size


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI_DB_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("CI_JOB_TIMEOUT", "30")
    monkeypatch.setenv("CI_MAX_PARALLEL_JOBS", "2")
    settings = ControllerSettings()
    assert settings.db_path == tmp_path / "x.db"
    assert settings.job_timeout == 30
    assert settings.max_parallel_jobs == 2


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI_JOB_TIMEOUT", "CI_RECONCILE_INTERVAL", "CI_JOB_IMAGE", "CI_MAX_LOG_MB"):
        monkeypatch.delenv(name, raising=False)
    settings = ControllerSettings()
    assert settings.job_timeout == 1800
    assert settings.reconcile_interval == 2.0
    assert settings.job_image == "python:3.12-slim"
    assert settings.max_log_mb == 20
    assert settings.job_network == "none"


def test_bad_value_is_rejected_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_JOB_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="job_timeout"):
        ControllerSettings()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1g", 1 << 30),
        ("20m", 20 << 20),
        ("20M", 20 << 20),
        ("512MiB", 512 << 20),
        ("1.5g", 3 << 29),
        ("64k", 64 << 10),
        ("4096", 4096),
        (" 2G ", 2 << 30),
    ],
)
def test_sizes_read_as_docker_writes_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1x", "-1g", "0", "0m", "1 g b"])
def test_anything_else_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="512m or 1g"):
        parse_size(text)


def test_job_disk_defaults_to_1g_and_a_bad_one_is_rejected_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI_JOB_DISK", raising=False)
    assert (ControllerSettings().job_disk, ControllerSettings().job_disk_bytes) == ("1g", 1 << 30)
    monkeypatch.setenv("CI_JOB_DISK", "20m")
    assert ControllerSettings().job_disk_bytes == 20 << 20
    monkeypatch.setenv("CI_JOB_DISK", "plenty")
    with pytest.raises(ValueError, match="job_disk"):
        ControllerSettings()
