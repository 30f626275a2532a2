"""`ci-admin`: manage users and API keys directly in the database."""

from __future__ import annotations

from pathlib import Path

import click

from ci_admin.context import AdminContext
from ci_admin.keys import key_group
from ci_admin.users import user_group
from ci_common.settings import default_db_path
from ci_persistence import DatabaseLocation


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db-path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CI_DB_PATH",
    default=default_db_path,
    show_default="$CI_DB_PATH or ~/.local/share/ci/ci.db",
    help="The SQLite database the server and controller use.",
)
@click.option(
    "--database-url",
    envvar="CI_DATABASE_URL",
    default=None,
    show_default="$CI_DATABASE_URL",
    help="postgresql://user:password@host/database: PostgreSQL instead of the SQLite file.",
)
@click.pass_context
def cli(ctx: click.Context, db_path: Path, database_url: str | None) -> None:
    """Manage users and API keys of the CI service."""
    ctx.obj = AdminContext(location=DatabaseLocation(path=db_path, url=database_url or None))


cli.add_command(user_group)
cli.add_command(key_group)


def main() -> None:
    cli()
