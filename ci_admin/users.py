"""`ci-admin user …`: create, list, look up, activate and deactivate users."""

from __future__ import annotations

import re

import click

from ci_admin.context import AdminContext, pass_admin, run_with_repository
from ci_admin.render import echo_json, print_users, user_json
from ci_common.errors import InvalidInputError
from ci_common.models import User, UserId
from ci_common.repository import Repository

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email):
        raise InvalidInputError(
            f"malformed email {email!r}: expected something like ada@example.org"
        )
    return email


async def find_user(repo: Repository, *, user_id: int | None, email: str | None) -> User:
    """The user named by exactly one of `user_id` and `email`."""
    if (user_id is None) == (email is None):
        raise click.UsageError("give exactly one of a user id or --email")
    if user_id is not None:
        return await repo.get_user(UserId(user_id))
    assert email is not None
    return await repo.get_user_by_email(email)


@click.group("user")
def user_group() -> None:
    """Manage users."""


@user_group.command("create")
@click.option("--name", required=True, help="Display name.")
@click.option("--email", required=True, help="Unique email address.")
@click.option("--admin", "is_admin", is_flag=True, help="May see and cancel every user's jobs.")
@pass_admin
def create_user(ctx: AdminContext, name: str, email: str, is_admin: bool) -> None:
    """Create an active user (an admin with --admin)."""
    if not name.strip():
        raise click.ClickException("the name is empty: give --name 'Ada Lovelace'")

    async def body(repo: Repository) -> User:
        return await repo.create_user(
            name=name.strip(), email=validate_email(email), is_admin=is_admin
        )

    user = run_with_repository(ctx, body)
    role = " (admin)" if user.is_admin else ""
    click.echo(f"Created user {user.id}: {user.name} <{user.email}>{role}")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_admin
def list_users(ctx: AdminContext, as_json: bool) -> None:
    """List all users."""
    users = run_with_repository(ctx, lambda repo: repo.list_users())
    if as_json:
        echo_json([user_json(user) for user in users])
    else:
        print_users(users)


@user_group.command("get")
@click.argument("user_id", type=int, required=False)
@click.option("--email", help="Look the user up by email instead of id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_admin
def get_user(ctx: AdminContext, user_id: int | None, email: str | None, as_json: bool) -> None:
    """Show one user, by id or by --email."""
    user = run_with_repository(ctx, lambda repo: find_user(repo, user_id=user_id, email=email))
    if as_json:
        echo_json(user_json(user))
    else:
        print_users([user])


def _set_active(ctx: AdminContext, user_id: int, *, active: bool) -> None:
    user = run_with_repository(
        ctx, lambda repo: repo.set_user_active(UserId(user_id), active=active)
    )
    state = "active" if user.active else "inactive; their keys are rejected"
    click.echo(f"User {user.id} ({user.email}) is now {state}")


@user_group.command("activate")
@click.argument("user_id", type=int)
@pass_admin
def activate_user(ctx: AdminContext, user_id: int) -> None:
    """Let a user's keys authenticate again."""
    _set_active(ctx, user_id, active=True)


@user_group.command("deactivate")
@click.argument("user_id", type=int)
@pass_admin
def deactivate_user(ctx: AdminContext, user_id: int) -> None:
    """Reject every key of a user until reactivated."""
    _set_active(ctx, user_id, active=False)


@user_group.command("set-admin")
@click.argument("user_id", type=int)
@click.option("--revoke", is_flag=True, help="Take the admin flag back instead.")
@pass_admin
def set_admin(ctx: AdminContext, user_id: int, revoke: bool) -> None:
    """Make a user an admin of the web dashboard (all jobs, users and keys), or --revoke."""
    user = run_with_repository(
        ctx, lambda repo: repo.set_user_admin(UserId(user_id), is_admin=not revoke)
    )
    state = "an admin" if user.is_admin else "no longer an admin"
    click.echo(f"User {user.id} ({user.email}) is now {state}")
