"""The README's settings table is the settings: every `CI_*` field of every process's settings
class and every environment variable a command's options read has one row, with its default
and its description, and every row names something that is read. So neither can drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import click
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ci_admin.cli import cli as admin_cli
from ci_client import config as client_config
from ci_common.settings import Settings
from ci_controller.cli import cli as controller_cli
from ci_controller.settings import ControllerSettings
from ci_server.cli import main as server_cli
from ci_server.settings import ServerSettings

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| setting | read by | default | meaning |"
SETTINGS_CLASSES = (Settings, ServerSettings, ControllerSettings)
COMMANDS = (server_cli, controller_cli, admin_cli)

FACTORY_DEFAULTS = {
    "db_path": "`~/.local/share/ci/ci.db`",
    "max_parallel_jobs": "CPU count",
}
"""How the README writes the defaults computed at start-up."""
READ_OUTSIDE_SETTINGS = {
    "TMPDIR": ("ci_controller", "tempfile"),  # Python's tempfile reads it: jobs are staged there
    "XDG_CONFIG_HOME": ("ci_client", "XDG_CONFIG_HOME"),
}
"""Documented variables read by neither a settings class nor a command option: the package
that reads them, and what its source must still say for the row to stay true."""
CLIENT_VARIABLES = {client_config.SERVER_URL_ENV, client_config.API_KEY_ENV}


@dataclass(frozen=True)
class Row:
    names: tuple[str, ...]
    read_by: str
    default: str
    meaning: str


def readme_rows() -> list[Row]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    assert HEADER in section, f"the Settings section's table must start with {HEADER!r}"
    table = section.split(HEADER, 1)[1].strip().split("\n\n", 1)[0].splitlines()[1:]
    rows: list[Row] = []
    for line in table:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a settings row has four cells: {line!r}"
        names = tuple(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))
        assert names, f"a settings row names its variables in backticks: {line!r}"
        rows.append(Row(names=names, read_by=cells[1], default=cells[2], meaning=cells[3]))
    return rows


def by_name(rows: list[Row]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    for row in rows:
        for name in row.names:
            assert name not in found, f"{name} has two rows in the README's settings table"
            found[name] = row
    return found


def settings_fields() -> dict[str, tuple[str, FieldInfo]]:
    """`CI_NAME` -> (field name, field) over every process's settings class."""
    fields: dict[str, tuple[str, FieldInfo]] = {}
    for settings_class in SETTINGS_CLASSES:
        prefix = settings_class.model_config.get("env_prefix", "")
        for name, info in settings_class.model_fields.items():
            fields[f"{prefix}{name}".upper()] = (name, info)
    return fields


def option_variables() -> dict[str, click.Option]:
    """Environment variables the commands' options read, beside the settings."""
    found: dict[str, click.Option] = {}
    for command in COMMANDS:
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.envvar, str):
                found[param.envvar] = param
    return found


def written(value: object) -> str:
    """A default as the README writes it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if value == "":
        return "empty"
    return f"`{value}`"


def normalized(text: str) -> str:
    return " ".join(text.split())


def default_matches(cell: str, expected: str) -> bool:
    """The cell is the default, alone or followed by a unit (`1800 s`)."""
    return cell == expected or cell.startswith(expected + " ")


def test_every_setting_has_a_row_and_every_row_a_setting() -> None:
    documented = set(by_name(readme_rows()))
    fields, options = set(settings_fields()), set(option_variables())
    read = fields | options | CLIENT_VARIABLES | set(READ_OUTSIDE_SETTINGS)
    assert sorted(read - documented) == [], "undocumented: add a row to README's Settings"
    assert sorted(documented - read) == [], "documented but read by nothing: remove the row"


def test_each_settings_row_has_the_fields_default_and_description() -> None:
    rows = by_name(readme_rows())
    for env_name, (name, info) in settings_fields().items():
        row = rows[env_name]
        assert row.names == (env_name,), f"{env_name} needs a row of its own"
        if info.default is PydanticUndefined:
            expected = FACTORY_DEFAULTS[name]
        else:
            expected = written(info.default)
        assert default_matches(row.default, expected), (
            f"{env_name}: README says {row.default!r}, the default is {expected}"
        )
        assert info.description, f"{env_name} needs a description"
        assert normalized(info.description) in normalized(row.meaning), (
            f"{env_name}: the README row must contain its description {info.description!r}"
        )


def test_each_option_row_has_the_options_default_and_help() -> None:
    rows = by_name(readme_rows())
    fields = settings_fields()
    for env_name, option in option_variables().items():
        if env_name in fields:
            continue  # the setting's own row documents it
        row = rows[env_name]
        default = option.default
        assert default_matches(row.default, written(default)) or (
            isinstance(default, str)
            and default_matches(row.default.upper(), written(default).upper())
        ), f"{env_name}: README says {row.default!r}, the option's default is {default!r}"
        assert option.help and normalized(option.help) in normalized(row.meaning), (
            f"{env_name}: the README row must contain the option's help {option.help!r}"
        )


def test_variables_read_outside_the_settings_are_still_read() -> None:
    root = README.parent
    for name, (package, evidence) in READ_OUTSIDE_SETTINGS.items():
        source = "".join(path.read_text() for path in (root / package).rglob("*.py"))
        assert evidence in source, f"{name}: {package} no longer reads it; remove its row"
