"""How users and keys are shown: a table for people, JSON for scripts. Never a key's secret.

The JSON field names are the contract scripts rely on, the same for users and keys where they
mean the same: `id`, `name`, `email`, `is_active`, `is_admin`, `created_at`, and for keys
`user_id`, `prefix`, `state`, `last_used_at`, `expires_at`, `revoked_at`. `is_admin` is the
web dashboard's admin flag (`user create --admin`, `user set-admin`). Only `key create --json`
carries the key, once, as `key`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table

from ci_common.models import ApiKey, User


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "is_active": user.active,
        "is_admin": user.is_admin,
        "created_at": _iso(user.created_at),
    }


def key_json(key: ApiKey, now: datetime) -> dict[str, object]:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "prefix": key.prefix,
        "state": key.state(now),
        "is_active": key.is_usable(now),
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
    }


def print_users(users: Sequence[User]) -> None:
    table = Table("id", "name", "email", "active", "admin", "created")
    table.columns[0].no_wrap = True
    for user in users:
        table.add_row(
            user.id,
            user.name,
            user.email,
            "yes" if user.active else "no",
            "yes" if user.is_admin else "no",
            _when(user.created_at),
        )
    Console(width=160).print(table)


def print_keys(keys: Sequence[ApiKey], now: datetime) -> None:
    table = Table("id", "user", "name", "prefix", "state", "expires", "last used")
    table.columns[0].no_wrap = True
    for key in keys:
        table.add_row(
            key.id,
            key.user_id[:8],
            key.name,
            key.prefix + "…",
            key.state(now),
            _when(key.expires_at),
            _when(key.last_used_at),
        )
    Console(width=160).print(table)
