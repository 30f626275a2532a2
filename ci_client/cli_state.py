"""What every `ci` command shares: the connection flags, the client built from them, and how
status lines and JSON are printed.

Kept apart from the commands so each command module imports only this and click; httpx,
pydantic and rich are imported inside the commands that need them (start-up time matters for a
command people type all day).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ci_client.config import ResolvedConfig, config_path, legacy_config_path, resolve_config
from ci_client.output import colour_wanted

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from ci_client.client import CIClient, Reconnecting, ReconnectPolicy


@dataclass
class CLIState:
    """What the group hands to every command: the connection flags, and (for tests) a
    transport and reconnect policy to build the client with."""

    server: str | None = None
    api_key: str | None = None
    transport: httpx.BaseTransport | None = None
    reconnect: ReconnectPolicy | None = None

    def config(self) -> ResolvedConfig:
        return resolve_config(
            flag_server=self.server,
            flag_api_key=self.api_key,
            env=os.environ,
            path=config_path(),
            legacy_path=legacy_config_path(),
        )

    def client(self) -> CIClient:
        from ci_client.client import CIClient

        config = self.config()
        return CIClient(
            server_url=config.server_url,
            api_key=config.require_api_key(),
            transport=self.transport,
            reconnect=self.reconnect,
            on_reconnect=_report_reconnect,
        )


def _report_reconnect(event: Reconnecting) -> None:
    say(
        f"Lost the stream of job {event.job_id} ({event.problem}); reconnecting in "
        f"{event.delay:.1f}s (attempt {event.attempt}/{event.max_attempts})…",
        "yellow",
    )


pass_state = click.make_pass_decorator(CLIState, ensure=True)
_F = TypeVar("_F", bound="Callable[..., Any]")


def _remember_server(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CLIState).server = value


def _remember_api_key(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CLIState).api_key = value


def connection_options(command: _F) -> _F:
    """`--server` and `--api-key`, accepted by the group and by every subcommand."""
    command = click.option(
        "--api-key",
        metavar="KEY",
        expose_value=False,
        callback=_remember_api_key,
        help="API key (else CI_API_KEY, else api_key in the config file).",
    )(command)
    return click.option(
        "--server",
        metavar="URL",
        expose_value=False,
        callback=_remember_server,
        help="Server URL (else CI_SERVER_URL, else the config file, else http://localhost:8000).",
    )(command)


def json_option(help_text: str) -> Callable[[_F], _F]:
    """`--json`, the same spelling on every command that shows data."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def echo_json(value: object) -> None:
    """JSON for scripts on stdout, one document per command."""
    click.echo(json.dumps(value, indent=2))


def say(message: str, colour: str | None = None) -> None:
    """A status line on stderr (never mixed into the test output on stdout)."""
    wanted = colour_wanted(sys.stderr, os.environ)
    text = click.style(message, fg=colour) if colour and wanted else message
    click.echo(text, err=True, color=wanted)


def finish(code: int) -> NoReturn:
    click.get_current_context().exit(code)
