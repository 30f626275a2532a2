"""`ci-admin user …`: create, list, look up, activate and deactivate users, grant admin.

Every command prints the affected user's full id on its success line, or with `--json` the
user as JSON (`ci_admin.render`); a user is named by its UUID or a unique prefix of it.
"""

from __future__ import annotations

import re

import click

from ci_admin.context import AdminContext, pass_admin, run_with_repository
from ci_admin.ids import resolve_id
from ci_admin.render import echo_json, print_users, user_json
from ci_common.errors import InvalidInputError
from ci_common.models import User, UserId
from ci_common.repository import Repository

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def validate_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email):
        raise InvalidInputError(f"invalid email {email!r}: expected something like ada@example.org")
    return email


async def resolve_user_id(repo: Repository, given: str) -> UserId:
    """The id of the user `given` (a UUID or a unique prefix of one) names."""
    users = await repo.list_users()
    found = resolve_id(
        given, (user.id for user in users), kind="user", listing="ci-admin user list"
    )
    return UserId(found)


async def find_user(repo: Repository, *, user_id: str | None, email: str | None) -> User:
    """The user named by exactly one of `user_id` (UUID or prefix) and `email`."""
    if (user_id is None) == (email is None):
        raise click.UsageError("give exactly one of a user id or --email")
    if user_id is not None:
        return await repo.get_user(await resolve_user_id(repo, user_id))
    assert email is not None
    return await repo.get_user_by_email(email)


@click.group("user")
def user_group() -> None:
    """Manage users."""


@user_group.command("create")
@click.option("--name", required=True, help="Display name.")
@click.option("--email", required=True, help="Unique email address.")
@click.option("--admin", "is_admin", is_flag=True, help="May see and cancel every user's jobs.")
@json_option
@pass_admin
def create_user(ctx: AdminContext, name: str, email: str, is_admin: bool, as_json: bool) -> None:
    """Create an active user (an admin of the web dashboard with --admin) and print its id."""
    if not name.strip():
        raise click.ClickException("the name is empty: give --name 'Ada Lovelace'")

    async def body(repo: Repository) -> User:
        return await repo.create_user(
            name=name.strip(), email=validate_email(email), is_admin=is_admin
        )

    user = run_with_repository(ctx, body)
    if as_json:
        echo_json(user_json(user))
    else:
        role = ", admin" if user.is_admin else ""
        click.echo(f"User created successfully: {user.id} ({user.name} <{user.email}>{role})")


@user_group.command("list")
@json_option
@pass_admin
def list_users(ctx: AdminContext, as_json: bool) -> None:
    """List all users."""
    users = run_with_repository(ctx, lambda repo: repo.list_users())
    if as_json:
        echo_json([user_json(user) for user in users])
    else:
        print_users(users)


@user_group.command("get")
@click.argument("user_id", required=False)
@click.option("--email", help="Look the user up by email instead of id.")
@json_option
@pass_admin
def get_user(ctx: AdminContext, user_id: str | None, email: str | None, as_json: bool) -> None:
    """Show one user, by id (UUID or its first 8+ characters) or by --email."""
    user = run_with_repository(ctx, lambda repo: find_user(repo, user_id=user_id, email=email))
    if as_json:
        echo_json(user_json(user))
    else:
        print_users([user])


def _set_active(ctx: AdminContext, given: str, *, active: bool, as_json: bool) -> None:
    async def body(repo: Repository) -> User:
        return await repo.set_user_active(await resolve_user_id(repo, given), active=active)

    user = run_with_repository(ctx, body)
    if as_json:
        echo_json(user_json(user))
    elif user.active:
        click.echo(f"User activated: {user.id} ({user.email})")
    else:
        click.echo(f"User deactivated: {user.id} ({user.email}); their keys are rejected")


@user_group.command("activate")
@click.argument("user_id")
@json_option
@pass_admin
def activate_user(ctx: AdminContext, user_id: str, as_json: bool) -> None:
    """Let a user's keys authenticate again (USER_ID: UUID or its first 8+ characters)."""
    _set_active(ctx, user_id, active=True, as_json=as_json)


@user_group.command("deactivate")
@click.argument("user_id")
@json_option
@pass_admin
def deactivate_user(ctx: AdminContext, user_id: str, as_json: bool) -> None:
    """Reject every key of a user until reactivated (USER_ID: UUID or its first 8+ characters)."""
    _set_active(ctx, user_id, active=False, as_json=as_json)


@user_group.command("set-admin")
@click.argument("user_id")
@click.option("--revoke", is_flag=True, help="Take the admin flag back instead.")
@json_option
@pass_admin
def set_admin(ctx: AdminContext, user_id: str, revoke: bool, as_json: bool) -> None:
    """Make a user an admin of the web dashboard (all jobs, users and keys), or --revoke
    (USER_ID: UUID or its first 8+ characters)."""

    async def body(repo: Repository) -> User:
        return await repo.set_user_admin(await resolve_user_id(repo, user_id), is_admin=not revoke)

    user = run_with_repository(ctx, body)
    if as_json:
        echo_json(user_json(user))
    elif user.is_admin:
        click.echo(f"User made an admin: {user.id} ({user.email})")
    else:
        click.echo(f"User no longer an admin: {user.id} ({user.email})")
