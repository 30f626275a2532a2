"""What every `ci-admin` command shares: where the database is, and one way to run against it.

Commands are async bodies run by `run_with_repository`, which opens the repository, runs the
body and turns our errors into one-line `click` errors (exit 1), so each command reads as the
operation it performs and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import click

from ci_common.errors import CIError
from ci_common.repository import Repository
from ci_persistence import DatabaseLocation, open_repository_at

T = TypeVar("T")


@dataclass(frozen=True)
class AdminContext:
    location: DatabaseLocation


pass_admin = click.make_pass_decorator(AdminContext)


def run_with_repository(ctx: AdminContext, body: Callable[[Repository], Awaitable[T]]) -> T:
    """Run `body` against the open repository; our errors become a one-line message, exit 1."""

    async def main() -> T:
        repo: Repository = await open_repository_at(ctx.location)
        try:
            return await body(repo)
        finally:
            await repo.close()

    try:
        return asyncio.run(main())
    except CIError as exc:
        raise click.ClickException(str(exc)) from exc
