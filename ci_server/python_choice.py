"""The Python version a submitted job gets, decided before the job exists.

The rule is `ci_common.python_versions.choose_python`: the version asked for (refused with the
list of those there are when nobody offers it), else the newest offered one that satisfies the
project's `requires-python`, else the default. The versions are the controller's, read from
the database (`list_runtimes`), so every server replica decides alike. `requires-python` is
read from the root `pyproject.toml` of the checked upload (it is at most `MAX_MANIFEST_BYTES`),
only when there is a choice to make: with one version offered, every job gets it.
"""

from __future__ import annotations

import tomllib
import zipfile
from dataclasses import replace
from typing import BinaryIO, cast

from starlette.concurrency import run_in_threadpool

from ci_common.job_options import JobOptions
from ci_common.project_paths import MAX_MANIFEST_BYTES
from ci_common.python_versions import choose_python
from ci_common.repository import RuntimeRepository


async def with_python(
    options: JobOptions, *, archive: BinaryIO, repo: RuntimeRepository
) -> JobOptions:
    """`options` with `python` set to the chosen version (None: no versions published yet);
    `InvalidJobOptionsError` (422) for a version nobody offers or a bad `requires-python`."""
    runtimes = await repo.list_runtimes()
    requires = None
    if options.python is None and len(runtimes) > 1:  # else there is nothing to choose from
        requires = await run_in_threadpool(requires_python, archive)
    chosen = choose_python(runtimes, requested=options.python, requires_python=requires)
    return replace(options, python=chosen.version if chosen is not None else None)


def requires_python(archive: BinaryIO) -> str | None:
    """`[project].requires-python` of the archive's root `pyproject.toml`, if it says one.
    A missing or unreadable file says none (the dependency install reports a broken one)."""
    archive.seek(0)
    try:
        with zipfile.ZipFile(archive) as project:
            try:
                info = project.getinfo("pyproject.toml")
            except KeyError:
                return None
            with project.open(info) as member:
                text = member.read(MAX_MANIFEST_BYTES).decode("utf-8", errors="replace")
        document = tomllib.loads(text)
    except (zipfile.BadZipFile, tomllib.TOMLDecodeError, OSError, EOFError):
        return None
    finally:
        archive.seek(0)
    table = document.get("project")
    value = (
        cast(dict[str, object], table).get("requires-python") if isinstance(table, dict) else None
    )
    return value if isinstance(value, str) else None
