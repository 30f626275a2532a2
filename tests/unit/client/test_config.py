"""Configuration precedence (flag > env > file > default) and the config file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ci_client.config import (
    DEFAULT_SERVER_URL,
    Source,
    config_path,
    legacy_config_path,
    mask_secret,
    read_config_file,
    resolve_config,
    write_config_value,
)
from ci_client.errors import ConfigError

FILE_KEY = "ci_from_file_xxxxxxxxxxxxxxxxxxxxxxxx"
ENV_KEY = "ci_from_env_xxxxxxxxxxxxxxxxxxxxxxxxx"
FLAG_KEY = "ci_from_flag_xxxxxxxxxxxxxxxxxxxxxxxx"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / ".ci" / "config"
    path.parent.mkdir()
    path.write_text(f"# my CI\napi_key={FILE_KEY}\nserver_url = http://file.test:9000/\n")
    return path


@pytest.mark.parametrize(
    ("flag", "env", "expected", "source"),
    [
        ("http://flag.test", {"CI_SERVER_URL": "http://env.test"}, "http://flag.test", Source.FLAG),
        (None, {"CI_SERVER_URL": "http://env.test"}, "http://env.test", Source.ENV),
        (None, {}, "http://file.test:9000", Source.FILE),
    ],
)
def test_server_url_precedence(
    config_file: Path, flag: str | None, env: dict[str, str], expected: str, source: Source
) -> None:
    resolved = resolve_config(flag_server=flag, flag_api_key=None, env=env, path=config_file)
    assert (resolved.server_url, resolved.server_url_source) == (expected, source)


def test_server_url_defaults_to_localhost(tmp_path: Path) -> None:
    resolved = resolve_config(flag_server=None, flag_api_key=None, env={}, path=tmp_path / "absent")
    assert resolved.server_url == DEFAULT_SERVER_URL == "http://localhost:8000"
    assert resolved.server_url_source is Source.DEFAULT


@pytest.mark.parametrize(
    ("flag", "env", "expected", "source"),
    [
        (FLAG_KEY, {"CI_API_KEY": ENV_KEY}, FLAG_KEY, Source.FLAG),
        (None, {"CI_API_KEY": ENV_KEY}, ENV_KEY, Source.ENV),
        (None, {}, FILE_KEY, Source.FILE),
        (None, {"CI_API_KEY": ""}, FILE_KEY, Source.FILE),
    ],
)
def test_api_key_precedence(
    config_file: Path, flag: str | None, env: dict[str, str], expected: str, source: Source
) -> None:
    resolved = resolve_config(flag_server=None, flag_api_key=flag, env=env, path=config_file)
    assert (resolved.api_key, resolved.api_key_source) == (expected, source)


def test_each_value_resolves_separately(config_file: Path) -> None:
    resolved = resolve_config(flag_server=None, flag_api_key=FLAG_KEY, env={}, path=config_file)
    assert resolved.api_key_source is Source.FLAG
    assert resolved.server_url_source is Source.FILE


def test_missing_key_lists_the_three_ways(tmp_path: Path) -> None:
    resolved = resolve_config(flag_server=None, flag_api_key=None, env={}, path=tmp_path / "c")
    assert resolved.api_key is None
    with pytest.raises(ConfigError) as caught:
        resolved.require_api_key()
    message = str(caught.value)
    assert "--api-key" in message
    assert "CI_API_KEY" in message
    assert "ci config set api_key" in message
    assert str(tmp_path / "c") in message


def test_a_broken_file_is_not_read_when_flags_and_env_suffice(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("this is not key value\n")
    resolved = resolve_config(
        flag_server="http://x.test", flag_api_key=None, env={"CI_API_KEY": ENV_KEY}, path=path
    )
    assert resolved.api_key == ENV_KEY
    with pytest.raises(ConfigError, match="line 1: expected `key=value`"):
        resolve_config(flag_server=None, flag_api_key=None, env={}, path=path)


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://x", "http://"])
def test_bad_server_urls_say_where_they_came_from(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="from CI_SERVER_URL"):
        resolve_config(
            flag_server=None, flag_api_key=None, env={"CI_SERVER_URL": bad}, path=tmp_path / "c"
        )


def test_config_path_is_under_xdg_config_home_and_the_legacy_one_under_home(
    tmp_path: Path,
) -> None:
    home = {"HOME": str(tmp_path)}
    assert config_path(home) == tmp_path / ".config" / "ci" / "config"
    xdg = {**home, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_path(xdg) == tmp_path / "xdg" / "ci" / "config"
    assert config_path({**home, "XDG_CONFIG_HOME": "relative"}) == config_path(home)
    assert legacy_config_path(xdg) == tmp_path / ".ci" / "config"


def test_the_xdg_file_wins_over_the_legacy_one_value_by_value(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.write_text("api_key=ci_legacy_key_123456789012345678901234\nserver_url=http://old:1\n")
    xdg = tmp_path / "xdg"
    xdg.write_text("server_url=http://new:2\n")
    resolved = resolve_config(
        flag_server=None, flag_api_key=None, env={}, path=xdg, legacy_path=legacy
    )
    assert resolved.server_url == "http://new:2"
    assert resolved.api_key == "ci_legacy_key_123456789012345678901234"


def test_write_creates_a_private_file_and_keeps_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".ci" / "config"
    write_config_value(path, key="server_url", value="http://a.test/")
    write_config_value(path, key="api_key", value=FILE_KEY)
    write_config_value(path, key="server_url", value="http://b.test")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_config_file(path) == {"server_url": "http://b.test", "api_key": FILE_KEY}
    assert path.read_text().count("server_url") == 1


def test_write_refuses_unknown_keys_and_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'token'"):
        write_config_value(tmp_path / "c", key="token", value="x")
    with pytest.raises(ConfigError, match="not an http"):
        write_config_value(tmp_path / "c", key="server_url", value="nope")
    assert not (tmp_path / "c").exists()


def test_mask_shows_only_a_prefix() -> None:
    masked = mask_secret(FILE_KEY)
    assert masked.startswith("ci_from_f")
    assert FILE_KEY not in masked
