"""`ci-admin key …`: create (shown once), list (never the secret) and revoke API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from ci_admin.context import AdminContext, pass_admin, run_with_repository
from ci_admin.render import echo_json, key_json, print_keys
from ci_admin.users import find_user
from ci_common.auth import generate_api_key
from ci_common.models import ApiKey, ApiKeyId
from ci_common.repository import Repository


@click.group("key")
def key_group() -> None:
    """Manage API keys."""


@key_group.command("create")
@click.option("--email", help="Owner, by email.")
@click.option("--user-id", type=int, help="Owner, by id.")
@click.option("--name", required=True, help="What the key is for, e.g. 'laptop'.")
@click.option(
    "--expires-in", type=click.IntRange(min=1), metavar="DAYS", help="Expire after DAYS days."
)
@pass_admin
def create_key(
    ctx: AdminContext, email: str | None, user_id: int | None, name: str, expires_in: int | None
) -> None:
    """Create a key and print it once; only its hash is stored."""
    new_key = generate_api_key()
    expires_at = None if expires_in is None else datetime.now(UTC) + timedelta(days=expires_in)

    async def body(repo: Repository) -> ApiKey:
        user = await find_user(repo, user_id=user_id, email=email)
        return await repo.create_api_key(
            user_id=user.id,
            name=name,
            key_hash=new_key.key_hash,
            prefix=new_key.prefix,
            expires_at=expires_at,
        )

    key = run_with_repository(ctx, body)
    click.echo(new_key.secret)
    expiry = "never expires" if key.expires_at is None else f"expires {key.expires_at:%Y-%m-%d}"
    click.echo(
        f"Created key {key.id} ({name}) for user {key.user_id}; {expiry}. "
        "Store it now: it cannot be shown again.",
        err=True,
    )


@key_group.command("list")
@click.option("--email", help="Only this user's keys, by email.")
@click.option("--user-id", type=int, help="Only this user's keys, by id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_admin
def list_keys(ctx: AdminContext, email: str | None, user_id: int | None, as_json: bool) -> None:
    """List keys (prefix and state only, never the key)."""

    async def body(repo: Repository) -> list[ApiKey]:
        if email is None and user_id is None:
            return await repo.list_api_keys()
        user = await find_user(repo, user_id=user_id, email=email)
        return await repo.list_api_keys(user_id=user.id)

    keys = run_with_repository(ctx, body)
    now = datetime.now(UTC)
    if as_json:
        echo_json([key_json(key, now) for key in keys])
    else:
        print_keys(keys, now)


@key_group.command("revoke")
@click.argument("key_id", type=int)
@pass_admin
def revoke_key(ctx: AdminContext, key_id: int) -> None:
    """Revoke a key at once; requests with it get 401."""
    key = run_with_repository(ctx, lambda repo: repo.revoke_api_key(ApiKeyId(key_id)))
    click.echo(f"Revoked key {key.id} ({key.prefix}…) of user {key.user_id}")
