"""`ci config set|get|show`: the server URL and API key `ci` uses, and where each comes from.

`get` prints the value `ci` would use (flag > environment > config file > default), unmasked,
so scripts can take it (`K=$(ci config get api_key)`); `show` is for people and masks the key.
"""

from __future__ import annotations

import click

from ci_client.cli_state import (
    CLIState,
    connection_options,
    echo_json,
    json_option,
    pass_state,
    say,
)
from ci_client.config import (
    KNOWN_KEYS,
    Source,
    config_path,
    legacy_config_path,
    mask_secret,
    write_config_value,
)
from ci_client.errors import ConfigError


@click.group(invoke_without_command=True)
@connection_options
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show or change the config file (server_url, api_key).

    The file is $XDG_CONFIG_HOME/ci/config (~/.config/ci/config); ~/.ci/config is read too,
    and the first file wins for a value both set.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@config.command("set")
@click.argument("key", type=click.Choice(KNOWN_KEYS))
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Store KEY=VALUE in the config file (created with mode 0600)."""
    path = config_path()
    write_config_value(path, key=key, value=value)
    shown = mask_secret(value) if key == "api_key" else value
    say(f"Set {key} = {shown} in {path}")


@config.command("get")
@click.argument("key", type=click.Choice(KNOWN_KEYS))
@connection_options
@pass_state
def config_get(state: CLIState, key: str) -> None:
    """Print the value of KEY that ci would use, as is (exit 78 when unset)."""
    resolved = state.config()
    value = resolved.server_url if key == "server_url" else resolved.api_key
    if not value:
        raise ConfigError(f"{key} is not set; `ci config set {key} VALUE` sets it")
    click.echo(value)


@config.command("show", short_help="Show the URL and key ci would use, and their sources.")
@json_option("Print JSON (the key masked) for scripts.")
@connection_options
@pass_state
def config_show(state: CLIState, as_json: bool) -> None:
    """Show the server URL and API key ci would use, and where each comes from."""
    resolved = state.config()
    key = mask_secret(resolved.api_key) if resolved.api_key else None
    legacy = legacy_config_path()
    if as_json:
        echo_json(
            {
                "server_url": resolved.server_url,
                "server_url_source": resolved.server_url_source.value,
                "api_key": key,
                "api_key_source": resolved.api_key_source.value,
                "files": [str(resolved.path), str(legacy)],
            }
        )
        return
    click.echo(f"server_url = {resolved.server_url}  ({resolved.server_url_source.value})")
    click.echo(f"api_key    = {key or '(none)'}  ({resolved.api_key_source.value})")
    for path in (resolved.path, legacy):
        click.echo(f"file       = {path}{'' if path.exists() else ' (absent)'}")
    if resolved.api_key_source is Source.NONE:
        say("No API key: `ci config set api_key KEY` or export CI_API_KEY.", "yellow")
