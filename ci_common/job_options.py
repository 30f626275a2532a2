"""What a submit may ask of its job beyond the files, and the rules and limits for it.

A job runs `python -m pytest` with the submitter's extra arguments (`pytest_args`) and
environment (`env`), with the project's extras and dependency groups it chose installed
(`extras`, `groups`; absent: the automatic choice, `[]`: none), and records where its
files came from (`project`, `git`), so a list of jobs tells projects and commits apart.
The server parses the submit's form fields with
`parse_job_options` and refuses anything outside the rules with `InvalidJobOptionsError`
(422) before a job exists; the controller trusts what is stored. `GET /limits` publishes the
numbers, so a client checks against the server it talks to rather than against constants.

The limits keep a job's row, its log's first lines and the container's environment small:
arguments and values are bounded per item and in total, and no string may hold a NUL (the
kernel ends a C string there, so it could never reach pytest as sent). Environment names
are what a POSIX shell accepts; the names the service sets itself are reserved, so a job can
always trust `CI`, `CI_JOB_ID` and the interpreter settings the log relies on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import cast

from ci_common.errors import InvalidJobOptionsError
from ci_common.models import GitInfo
from ci_common.python_versions import check_python

MAX_PYTEST_ARGS = 256
MAX_PYTEST_ARG_BYTES = 4096
MAX_PYTEST_ARGS_BYTES = 32 * 1024
MAX_ENV_VARS = 100
MAX_ENV_VALUE_BYTES = 32 * 1024
MAX_ENV_BYTES = 64 * 1024
"""Names and values together."""
MAX_PROJECT_NAME_CHARS = 255
"""Any directory's name fits (NAME_MAX is 255 bytes)."""
MAX_BRANCH_CHARS = 255
MAX_DEPENDENCY_CHOICES = 32
"""Extras, and groups, a job may name."""
MAX_DEPENDENCY_NAME_CHARS = 100
DEPENDENCY_NAME_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
"""An extra's or a dependency group's name (PEP 685, PEP 735)."""
MAX_ARTIFACT_PATTERNS = 32
MAX_ARTIFACT_PATTERN_CHARS = 1024
ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
RESERVED_ENV_NAMES = ("CI", "CI_JOB_ID", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
"""Set by the service in every job container; a submit may not set them."""

_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_DEPENDENCY_NAME = re.compile(DEPENDENCY_NAME_PATTERN)
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 repositories
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class JobOptions:
    """A submit's checked options; the defaults are what a submit without them gets."""

    pytest_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=lambda: dict[str, str]())
    project: str | None = None
    git: GitInfo | None = None
    python: str | None = None
    """Asked for (`--python`), then replaced by the server's choice (`choose_python`)."""
    extras: tuple[str, ...] | None = None
    """None: the automatic choice (see `ci_common.models.Job.extras`)."""
    groups: tuple[str, ...] | None = None
    rerun_of: str | None = None
    """A job of the submitter's whose failed tests are all this job runs."""
    rerun_node_ids: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    """Glob patterns, relative to the project root, of files to keep after pytest exits."""


def parse_job_options(
    *,
    pytest_args: str | None,
    env: str | None,
    project: str | None,
    git: str | None,
    python: str | None = None,
    extras: str | None = None,
    groups: str | None = None,
    artifacts: str | None = None,
) -> JobOptions:
    """The submit's form fields (JSON text, `project` plain text; None when absent) as
    options, or `InvalidJobOptionsError` naming the field and the fix."""
    return JobOptions(
        pytest_args=check_pytest_args(_json(pytest_args, "pytest_args", "array of strings")),
        env=check_env(_json(env, "env", "object of strings")),
        project=check_project(project),
        git=check_git(_json(git, "git", "object")),
        python=check_python(python),
        extras=check_dependency_names(_json(extras, "extras", "array of names"), "extras"),
        groups=check_dependency_names(_json(groups, "groups", "array of names"), "groups"),
        artifacts=check_artifacts(_json(artifacts, "artifacts", "array of strings")),
    )


def check_dependency_names(value: object, name: str) -> tuple[str, ...] | None:
    """The extras (or groups) a submit chose; None when it chose none (the automatic
    choice), an empty tuple when it asked for none at all."""
    if value is None:
        return None
    hint = '; send a JSON array of names, e.g. ["test"], or [] for none'
    if not isinstance(value, list) or not all(
        isinstance(item, str) for item in cast(list[object], value)
    ):
        raise InvalidJobOptionsError(f"{name} must be a JSON array of strings{hint}")
    names = cast(list[str], value)
    if len(names) > MAX_DEPENDENCY_CHOICES:
        raise InvalidJobOptionsError(
            f"{name} has {len(names)} names, more than the {MAX_DEPENDENCY_CHOICES} allowed"
        )
    for item in names:
        if len(item) > MAX_DEPENDENCY_NAME_CHARS or not _DEPENDENCY_NAME.fullmatch(item):
            raise InvalidJobOptionsError(
                f"{name}: {_shown(item)} is not a valid name (letters, digits, '.', '_', '-', "
                f"at most {MAX_DEPENDENCY_NAME_CHARS} characters){hint}"
            )
    return tuple(dict.fromkeys(names))


def check_artifacts(value: object) -> tuple[str, ...]:
    """Glob patterns (`coverage.xml`, `htmlcov/**`) inside the project root: relative, no
    `..`, no control characters, a bounded number of bounded strings."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(item, str) for item in cast(list[object], value)
    ):
        raise InvalidJobOptionsError(
            'artifacts must be a JSON array of glob patterns, e.g. ["coverage.xml", "htmlcov/**"]'
        )
    patterns = cast(list[str], value)
    if len(patterns) > MAX_ARTIFACT_PATTERNS:
        raise InvalidJobOptionsError(
            f"artifacts has {len(patterns)} patterns, more than the {MAX_ARTIFACT_PATTERNS} "
            "allowed; use wider patterns (`reports/**`)"
        )
    for index, pattern in enumerate(patterns):
        _utf8_size(pattern, f"artifacts[{index}]")
        where = f"artifacts[{index}] {_shown(pattern)}"
        if not pattern.strip() or len(pattern) > MAX_ARTIFACT_PATTERN_CHARS:
            raise InvalidJobOptionsError(
                f"{where} must be a glob pattern of 1 to {MAX_ARTIFACT_PATTERN_CHARS} characters"
            )
        if _CONTROL.search(pattern) or "\\" in pattern:
            raise InvalidJobOptionsError(
                f"{where} contains a control character or a backslash; use / between folders"
            )
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise InvalidJobOptionsError(
                f"{where} must stay inside the project: relative to its root, without `..`"
            )
    return tuple(patterns)


def check_pytest_args(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(item, str) for item in cast(list[object], value)
    ):
        raise InvalidJobOptionsError(
            'pytest_args must be a JSON array of strings, e.g. ["-k", "parse"]'
        )
    args = cast(list[str], value)
    if len(args) > MAX_PYTEST_ARGS:
        raise InvalidJobOptionsError(
            f"pytest_args has {len(args)} arguments, more than the {MAX_PYTEST_ARGS} allowed; "
            "put long option lists in pytest's configuration ([tool.pytest.ini_options])"
        )
    total = 0
    for index, arg in enumerate(args):
        size = _utf8_size(arg, f"pytest_args[{index}]")
        if "\0" in arg:
            raise InvalidJobOptionsError(
                f"pytest_args[{index}] contains a NUL character; remove it"
            )
        if size > MAX_PYTEST_ARG_BYTES:
            raise InvalidJobOptionsError(
                f"pytest_args[{index}] is {size} bytes, over the {MAX_PYTEST_ARG_BYTES}-byte "
                "limit per argument; shorten it or move it into pytest's configuration"
            )
        total += size
    if total > MAX_PYTEST_ARGS_BYTES:
        raise InvalidJobOptionsError(
            f"pytest_args total {total} bytes, over the {MAX_PYTEST_ARGS_BYTES}-byte limit; "
            "move options into pytest's configuration ([tool.pytest.ini_options])"
        )
    return tuple(args)


def check_env(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(item, str) for item in cast(dict[object, object], value).values()
    ):
        raise InvalidJobOptionsError('env must be a JSON object of strings, e.g. {"FOO": "bar"}')
    env = cast(dict[str, str], value)
    if len(env) > MAX_ENV_VARS:
        raise InvalidJobOptionsError(
            f"env sets {len(env)} variables, more than the {MAX_ENV_VARS} allowed"
        )
    total = 0
    for name, text in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise InvalidJobOptionsError(
                f"env name {_shown(name)} is not a valid variable name; use letters, digits "
                "and underscores, not starting with a digit"
            )
        if name in RESERVED_ENV_NAMES:
            raise InvalidJobOptionsError(
                f"env name {name} is set by the CI service itself (reserved: "
                f"{', '.join(RESERVED_ENV_NAMES)}); choose another name"
            )
        size = _utf8_size(text, f"env {name}")
        if "\0" in text:
            raise InvalidJobOptionsError(f"env {name} contains a NUL character; remove it")
        if size > MAX_ENV_VALUE_BYTES:
            raise InvalidJobOptionsError(
                f"env {name} is {size} bytes, over the {MAX_ENV_VALUE_BYTES}-byte limit per "
                "value; put large data in a file of the project instead"
            )
        total += len(name) + size
    if total > MAX_ENV_BYTES:
        raise InvalidJobOptionsError(
            f"env totals {total} bytes, over the {MAX_ENV_BYTES}-byte limit; put large data "
            "in a file of the project instead"
        )
    return dict(env)


def check_project(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    _utf8_size(value, "project")
    if len(value) > MAX_PROJECT_NAME_CHARS or _CONTROL.search(value):
        raise InvalidJobOptionsError(
            f"project must be a name of at most {MAX_PROJECT_NAME_CHARS} characters without "
            "control characters (pyproject's [project].name, or the directory's name)"
        )
    return value


def check_git(value: object) -> GitInfo | None:
    if value is None:
        return None
    hint = '; send {"commit": "<40 hex digits>", "branch": "main" or null, "dirty": false}'
    if not isinstance(value, dict):
        raise InvalidJobOptionsError(f"git must be a JSON object{hint}")
    fields = cast(dict[str, object], value)
    commit, branch, dirty = fields.get("commit"), fields.get("branch"), fields.get("dirty")
    if set(fields) - {"commit", "branch", "dirty"}:
        raise InvalidJobOptionsError(
            f"git has unknown keys {sorted(set(fields) - {'commit', 'branch', 'dirty'})}{hint}"
        )
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        raise InvalidJobOptionsError(f"git.commit must be a full lowercase commit hash{hint}")
    if branch is not None and (
        not isinstance(branch, str)
        or not branch
        or len(branch) > MAX_BRANCH_CHARS
        or _CONTROL.search(branch)
    ):
        raise InvalidJobOptionsError(f"git.branch must be a branch name or null{hint}")
    if not isinstance(dirty, bool):
        raise InvalidJobOptionsError(f"git.dirty must be true or false{hint}")
    _utf8_size(branch or "", "git.branch")
    return GitInfo(commit=commit, branch=branch, dirty=dirty)


def _json(text: str | None, name: str, kind: str) -> object:
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidJobOptionsError(
            f"{name} is not valid JSON ({exc}); send a JSON {kind}"
        ) from exc


def _utf8_size(text: str, where: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError as exc:
        raise InvalidJobOptionsError(
            f"{where} is not valid Unicode (a lone surrogate); fix its text"
        ) from exc


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else f"{text[:40]}…{text[-19:]}")
