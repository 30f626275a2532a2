"""Settings come from `CI_*` variables, and every process agrees on the database location."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_common.settings import Settings, default_db_path


def test_default_db_path_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_DB_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    first = Settings().db_path
    monkeypatch.chdir(tmp_path)
    assert Settings().db_path == first == tmp_path / ".local" / "share" / "ci" / "ci.db"


def test_xdg_data_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "ci" / "ci.db"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI_DB_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("CI_MAX_PARALLEL_JOBS", "2")
    settings = Settings()
    assert settings.db_path == tmp_path / "x.db"
    assert settings.max_parallel_jobs == 2


def test_bad_value_is_rejected_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_MAX_PARALLEL_JOBS", "many")
    with pytest.raises(ValueError, match="max_parallel_jobs"):
        Settings()
