"""`ci artifacts JOB_ID [-o DIR]`: fetch the files a job kept (junit.xml and `--artifact`s).

Each file is streamed to disk as it arrives, into a temporary name beside its place and
renamed once complete, so an interrupted fetch never leaves a truncated file under the real
name. Paths come from the server: one that would leave DIR (absolute, `..`) is refused rather
than written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

import click

from ci_client.cli_state import (
    CLIState,
    connection_options,
    echo_json,
    json_option,
    pass_state,
    say,
)
from ci_client.errors import ServerError
from ci_client.job_refs import resolve_job_id


@click.command(short_help="Fetch the files a job kept (junit.xml, --artifact).")
@click.argument("job_id")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put them (created if missing); default ./artifacts-<first 8 of the id>.",
)
@json_option('Print [{"path": ..., "size": ..., "file": ...}] for the files fetched.')
@connection_options
@pass_state
def artifacts(state: CLIState, job_id: str, output: Path | None, as_json: bool) -> None:
    """Download every file job JOB_ID kept into DIR, keeping their paths: junit.xml (pytest's
    report, kept for every job that ran) and the files matching `ci submit test --artifact`.
    They are collected once pytest has exited."""
    fetched: list[dict[str, object]] = []
    with state.client() as client:
        job_id = resolve_job_id(client, job_id)
        kept = client.artifacts(job_id)
        target = output or Path(f"artifacts-{job_id[:8]}")
        if not kept:
            if as_json:
                echo_json([])
            say(f"Job {job_id} kept no files (yet: they are collected when pytest exits).")
            return
        for item in kept:
            place = _place(target, item.path)
            place.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=place.parent, prefix=".ci-partial-")
            try:
                with os.fdopen(handle, "wb") as file:
                    client.download_artifact(job_id, item.path, file)
                os.replace(temporary, place)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            fetched.append({"path": item.path, "size": item.size, "file": str(place)})
            if not as_json:
                click.echo(f"{place}  ({item.size} bytes)")
    if as_json:
        echo_json(fetched)
    say(f"{len(kept)} file(s) of job {job_id} in {target}")


def _place(target: Path, path: str) -> Path:
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts or "\\" in path:
        raise ServerError(f"the server named a kept file {path!r} that would leave {target}")
    return target.joinpath(*parts)
