"""A job named on the command line: its full id, or a prefix of at least
`MIN_JOB_ID_PREFIX` characters (what `ci list` shows), which the server resolves over all of
the caller's jobs (`GET /jobs/{prefix}`, 409 when two jobs share it)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ci_client.client import CIClient

MIN_JOB_ID_PREFIX = 8


def job_ref(text: str) -> str:
    """A job id or prefix as given, checked for length so a too-short prefix says so."""
    text = text.strip().lower()
    if len(text) < MIN_JOB_ID_PREFIX:
        raise click.UsageError(
            f"{text!r} is too short: give the job id or at least its first "
            f"{MIN_JOB_ID_PREFIX} characters (`ci list` shows them)"
        )
    return text


def resolve_job_id(client: CIClient, text: str) -> str:
    """The full id of the job `text` names (asking the server only for a prefix)."""
    text = job_ref(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return client.get_job(text).id
