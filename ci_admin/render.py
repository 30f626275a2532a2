"""How users and keys are shown: a table for people, JSON for scripts. Never a key's secret."""

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


def key_state(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and now >= key.expires_at:
        return "expired"
    return "active"


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def user_json(user: User) -> dict[str, object]:
    return user.model_dump(mode="json")


def key_json(key: ApiKey, now: datetime) -> dict[str, object]:
    return {**key.model_dump(mode="json"), "state": key_state(key, now)}


def print_users(users: Sequence[User]) -> None:
    table = Table("id", "name", "email", "active", "created")
    for user in users:
        table.add_row(
            str(user.id),
            user.name,
            user.email,
            "yes" if user.active else "no",
            _when(user.created_at),
        )
    Console(width=120).print(table)


def print_keys(keys: Sequence[ApiKey], now: datetime) -> None:
    table = Table("id", "user", "name", "prefix", "state", "expires", "last used")
    for key in keys:
        table.add_row(
            str(key.id),
            str(key.user_id),
            key.name,
            key.prefix + "…",
            key_state(key, now),
            _when(key.expires_at),
            _when(key.last_used_at),
        )
    Console(width=120).print(table)
