"""`ci-admin key …`: create (shown once), list (never the secret) and revoke API keys.

`key create` prints the key once, on a line of its own (`API Key: ci_…`), or with `--json` as
the `key` field of the key's JSON: the only output that ever carries it, because a script that
creates a key has no other way to learn it. Only its hash is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from ci_admin.context import AdminContext, pass_admin, run_with_repository
from ci_admin.ids import resolve_id
from ci_admin.render import echo_json, key_json, print_keys
from ci_admin.users import find_user, json_option
from ci_common.auth import generate_api_key
from ci_common.models import ApiKey, ApiKeyId
from ci_common.repository import Repository


@click.group("key")
def key_group() -> None:
    """Manage API keys."""


@key_group.command("create")
@click.option("--email", help="Owner, by email.")
@click.option("--user-id", help="Owner, by id (UUID or its first 8+ characters).")
@click.option("--name", required=True, help="What the key is for, e.g. 'laptop'.")
@click.option(
    "--expires-in", type=click.IntRange(min=1), metavar="DAYS", help="Expire after DAYS days."
)
@json_option
@pass_admin
def create_key(
    ctx: AdminContext,
    email: str | None,
    user_id: str | None,
    name: str,
    expires_in: int | None,
    as_json: bool,
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
    if as_json:
        echo_json({**key_json(key, datetime.now(UTC)), "key": new_key.secret})
        return
    expiry = "never expires" if key.expires_at is None else f"expires {key.expires_at:%Y-%m-%d}"
    click.echo(
        f"API key created successfully: {key.id} ({name}) for user {key.user_id}; {expiry}. "
        "It is shown only once, save it now:"
    )
    click.echo(f"API Key: {new_key.secret}")


@key_group.command("list")
@click.option("--email", help="Only this user's keys, by email.")
@click.option("--user-id", help="Only this user's keys, by id (UUID or its first 8+ characters).")
@json_option
@pass_admin
def list_keys(ctx: AdminContext, email: str | None, user_id: str | None, as_json: bool) -> None:
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
@click.argument("key_id")
@json_option
@pass_admin
def revoke_key(ctx: AdminContext, key_id: str, as_json: bool) -> None:
    """Revoke a key at once; requests with it get 401 (KEY_ID: UUID or its first 8+ characters)."""

    async def body(repo: Repository) -> ApiKey:
        keys = await repo.list_api_keys()
        found = resolve_id(
            key_id, (k.id for k in keys), kind="API key", listing="ci-admin key list"
        )
        return await repo.revoke_api_key(ApiKeyId(found))

    key = run_with_repository(ctx, body)
    if as_json:
        echo_json(key_json(key, datetime.now(UTC)))
    else:
        click.echo(f"API key revoked: {key.id} ({key.prefix}…) of user {key.user_id}")
