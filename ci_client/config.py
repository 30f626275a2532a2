"""Where the client finds its server URL and API key, and its config file.

Precedence, for each value separately: a command-line flag, then the environment
(`CI_SERVER_URL`, `CI_API_KEY`), then the config file, then (for the URL only) the default
`http://localhost:8000`. Resolution is a pure function of those inputs (`resolve_config`) so
every rule is unit-tested without touching the real home directory.

The file is `key=value` lines (`api_key=ci_...`, `server_url=http://...`), `#` comments and blank
lines allowed, at `$XDG_CONFIG_HOME/ci/config` (`~/.config/ci/config`), where tools keep their
configuration today. `~/.ci/config`, where the reference system keeps it, is read as well: a
value in the XDG file wins over the same value there. It holds a secret, so it is written (always
to the XDG file) with mode 0600 (and its directory 0700), replaced atomically, and `ci config
show` masks the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from ci_client.errors import ConfigError

DEFAULT_SERVER_URL = "http://localhost:8000"
SERVER_URL_ENV = "CI_SERVER_URL"
API_KEY_ENV = "CI_API_KEY"
KNOWN_KEYS = ("api_key", "server_url")

MISSING_KEY_MESSAGE = (
    "no API key given. Give one in any of these ways (first wins):\n"
    "  1. the flag:        ci --api-key ci_... <command>\n"
    f"  2. the environment: export {API_KEY_ENV}=ci_...\n"
    "  3. the config file: ci config set api_key ci_...   (stored in {path}, mode 0600)\n"
    "An admin creates keys with `ci-admin key create --email YOU --name NAME`."
)


class Source(StrEnum):
    """Where a resolved value came from (shown by `ci config show`)."""

    FLAG = "flag"
    ENV = "environment"
    FILE = "config file"
    DEFAULT = "default"
    NONE = "not set"


@dataclass(frozen=True)
class ResolvedConfig:
    """The values the client will use, each with where it came from."""

    server_url: str
    server_url_source: Source
    api_key: str | None
    api_key_source: Source
    path: Path

    def require_api_key(self) -> str:
        """The API key, or a `ConfigError` listing the three ways to give one."""
        if not self.api_key:
            raise ConfigError(MISSING_KEY_MESSAGE.format(path=self.path))
        return self.api_key


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/ci/config`, by default `~/.config/ci/config`: the file `ci config set`
    writes and that wins over `legacy_config_path`."""
    env = env if env is not None else os.environ
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else _home(env) / ".config"
    return base / "ci" / "config"


def legacy_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$HOME/.ci/config`, the reference system's place: read, never written."""
    return _home(env if env is not None else os.environ) / ".ci" / "config"


def _home(env: Mapping[str, str]) -> Path:
    """HOME, falling back to the password database when it is unset."""
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def read_config_file(path: Path) -> dict[str, str]:
    """The `key=value` pairs of the file; empty when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"{path}, line {number}: expected `key=value`, got {line!r}; fix the line or "
                "rewrite it with `ci config set KEY VALUE`"
            )
        values[key.strip()] = value.strip()
    return values


def write_config_value(path: Path, *, key: str, value: str) -> None:
    """Set one key in the file, keeping the other lines; creates it with mode 0600."""
    if key not in KNOWN_KEYS:
        raise ConfigError(f"unknown config key {key!r}; use one of: {', '.join(KNOWN_KEYS)}")
    if key == "server_url":
        value = validate_server_url(value)
    value = value.strip()
    if not value or "\n" in value:
        raise ConfigError(f"{key} must be a non-empty single line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from exc
    new_line = f"{key}={value}"
    replaced = False
    for index, line in enumerate(lines):
        if line.strip().partition("=")[0].strip() == key:
            lines[index] = new_line
            replaced = True
    if not replaced:
        lines.append(new_line)
    _write_private(path, "\n".join(lines) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a 0600 file, so the key is never world-readable."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        import tempfile  # only when writing: every command reads this module

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the config file {path}: {exc.strerror}") from exc


def validate_server_url(url: str) -> str:
    """The URL without a trailing slash, or a `ConfigError` saying what a valid one is."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"server URL {url!r} is not an http(s) URL; give one like http://localhost:8000"
        )
    return url


def resolve_config(
    *,
    flag_server: str | None,
    flag_api_key: str | None,
    env: Mapping[str, str],
    path: Path,
    legacy_path: Path | None = None,
) -> ResolvedConfig:
    """Apply flag > environment > config file > default, for each value separately.

    The file is read only when a flag or the environment leaves something unset, so a broken
    file does not get in the way of a user who passes everything explicitly."""
    server: tuple[str | None, Source] = (flag_server, Source.FLAG)
    if not server[0]:
        server = (env.get(SERVER_URL_ENV), Source.ENV)
    key: tuple[str | None, Source] = (flag_api_key, Source.FLAG)
    if not key[0]:
        key = (env.get(API_KEY_ENV), Source.ENV)
    if not server[0] or not key[0]:
        file_values = read_config_file(legacy_path) if legacy_path is not None else {}
        file_values.update(read_config_file(path))
        if not server[0]:
            server = (file_values.get("server_url"), Source.FILE)
        if not key[0]:
            key = (file_values.get("api_key"), Source.FILE)
    if not server[0]:
        server = (DEFAULT_SERVER_URL, Source.DEFAULT)
    server_url = server[0] or DEFAULT_SERVER_URL
    api_key = key[0].strip() if key[0] else None
    return ResolvedConfig(
        server_url=_checked_url(server_url, source=server[1], path=path),
        server_url_source=server[1],
        api_key=api_key or None,
        api_key_source=key[1] if api_key else Source.NONE,
        path=path,
    )


def _checked_url(url: str, *, source: Source, path: Path) -> str:
    try:
        return validate_server_url(url)
    except ConfigError as exc:
        where = {
            Source.FLAG: "--server",
            Source.ENV: SERVER_URL_ENV,
            Source.FILE: f"server_url in {path}",
            Source.DEFAULT: "the default",
            Source.NONE: "the default",
        }[source]
        raise ConfigError(f"{exc.message} (from {where})") from exc


def mask_secret(secret: str) -> str:
    """Enough of a key to recognise it (`ci_AbCdEf…`), never enough to use it."""
    visible = 9 if len(secret) > 20 else min(3, len(secret))
    return secret[:visible] + "…" + f" ({len(secret)} chars)"
