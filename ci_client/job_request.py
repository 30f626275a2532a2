"""What `ci submit test` asks of its job beyond the files, checked against the server's limits.

The arguments after `--` go to pytest, `-e KEY=VALUE` sets the tests' environment, and the
project's name and git commit (`ci_client.provenance`) say what was tested. They travel as
form fields beside the zip (`JobRequest.form_fields`). The server enforces its rules in any
case (a 422 saying what to fix); the client checks them first against `GET /limits`
(`ServerLimits`), so a mistake fails before a large project is packed and uploaded, and a
server with other limits is checked by its own numbers, not by constants compiled in here. A
server too old to publish its limits gets only the upload-size default and its own checks.

Plain dataclasses and `json`: the submit path loads no pydantic (see `ci_client.cli`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from ci_client.archive import DEFAULT_MAX_BYTES, ProjectArchive, format_size
from ci_client.errors import ArchiveError, JobRequestError
from ci_client.provenance import GitProvenance


@dataclass(frozen=True)
class ServerLimits:
    """`GET /limits`; a field the server did not send is not checked (None)."""

    max_upload_bytes: int = DEFAULT_MAX_BYTES
    max_unpacked_bytes: int | None = None
    max_upload_entries: int | None = None
    max_pytest_args: int | None = None
    max_pytest_arg_bytes: int | None = None
    max_pytest_args_bytes: int | None = None
    max_env_vars: int | None = None
    max_env_value_bytes: int | None = None
    max_env_bytes: int | None = None
    env_name_pattern: str | None = None
    reserved_env_names: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, object]) -> ServerLimits:
        def number(name: str) -> int | None:
            value = body.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        reserved = body.get("reserved_env_names")
        names = cast("list[object]", reserved) if isinstance(reserved, list) else []
        pattern = body.get("env_name_pattern")
        return cls(
            max_upload_bytes=number("max_upload_bytes") or DEFAULT_MAX_BYTES,
            max_unpacked_bytes=number("max_unpacked_bytes"),
            max_upload_entries=number("max_upload_entries"),
            max_pytest_args=number("max_pytest_args"),
            max_pytest_arg_bytes=number("max_pytest_arg_bytes"),
            max_pytest_args_bytes=number("max_pytest_args_bytes"),
            max_env_vars=number("max_env_vars"),
            max_env_value_bytes=number("max_env_value_bytes"),
            max_env_bytes=number("max_env_bytes"),
            env_name_pattern=pattern if isinstance(pattern, str) else None,
            reserved_env_names=tuple(name for name in names if isinstance(name, str)),
        )


@dataclass(frozen=True)
class JobRequest:
    """The options of one submit; empty ones are not sent."""

    pytest_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=lambda: dict[str, str]())
    project: str | None = None
    git: GitProvenance | None = None
    python: str | None = None
    """`3.13`; None lets the server choose (requires-python, else its default)."""
    extras: tuple[str, ...] | None = None
    """The project's extras to install; None: the server's automatic choice."""
    groups: tuple[str, ...] | None = None
    rerun_failed_of: str | None = None
    """Run only the tests that failed in this job."""
    artifacts: tuple[str, ...] = ()
    """Glob patterns of files to keep beside junit.xml (`--artifact`)."""

    def form_fields(self) -> dict[str, str]:
        """The multipart form fields beside `file`."""
        fields: dict[str, str] = {}
        if self.pytest_args:
            fields["pytest_args"] = json.dumps(list(self.pytest_args))
        if self.env:
            fields["env"] = json.dumps(self.env)
        if self.project:
            fields["project"] = self.project
        if self.git is not None:
            fields["git"] = json.dumps(self.git)
        if self.python:
            fields["python"] = self.python
        if self.extras is not None:
            fields["extras"] = json.dumps(list(self.extras))
        if self.groups is not None:
            fields["groups"] = json.dumps(list(self.groups))
        if self.rerun_failed_of:
            fields["rerun_failed_of"] = self.rerun_failed_of
        if self.artifacts:
            fields["artifacts"] = json.dumps(list(self.artifacts))
        return fields

    def check(self, limits: ServerLimits) -> None:
        """`JobRequestError` if the server would refuse these arguments or this environment."""
        _check_pytest_args(self.pytest_args, limits)
        _check_env(self.env, limits)


def parse_env_options(options: Iterable[str], *, local: Mapping[str, str]) -> dict[str, str]:
    """`-e KEY=VALUE` options as a mapping; a bare `-e KEY` takes KEY's value from `local`
    (the caller's environment), as `docker run -e` does. The last of a name wins."""
    env: dict[str, str] = {}
    for option in options:
        name, equals, value = option.partition("=")
        if not equals:
            if name not in local:
                raise JobRequestError(
                    f"-e {name}: {name} is not set here; give a value with -e {name}=VALUE"
                )
            value = local[name]
        if not name:
            raise JobRequestError(f"-e {option!r}: give the variable as -e NAME=VALUE")
        env[name] = value
    return env


def _check_pytest_args(args: tuple[str, ...], limits: ServerLimits) -> None:
    if limits.max_pytest_args is not None and len(args) > limits.max_pytest_args:
        raise JobRequestError(
            f"{len(args)} pytest arguments, more than the server's {limits.max_pytest_args}; "
            "put long option lists in pytest's configuration"
        )
    for arg in args:
        if "\0" in arg:
            raise JobRequestError(f"the pytest argument {arg!r} contains a NUL character")
        if limits.max_pytest_arg_bytes is not None and _size(arg) > limits.max_pytest_arg_bytes:
            raise JobRequestError(
                f"a pytest argument is {_size(arg)} bytes, over the server's "
                f"{limits.max_pytest_arg_bytes}-byte limit; shorten it or move it into "
                "pytest's configuration"
            )
    total = sum(_size(arg) for arg in args)
    if limits.max_pytest_args_bytes is not None and total > limits.max_pytest_args_bytes:
        raise JobRequestError(
            f"the pytest arguments total {total} bytes, over the server's "
            f"{limits.max_pytest_args_bytes}-byte limit; move options into pytest's configuration"
        )


def _check_env(env: Mapping[str, str], limits: ServerLimits) -> None:
    if limits.max_env_vars is not None and len(env) > limits.max_env_vars:
        raise JobRequestError(
            f"{len(env)} environment variables, more than the server's {limits.max_env_vars}"
        )
    pattern = re.compile(limits.env_name_pattern) if limits.env_name_pattern else None
    for name, value in env.items():
        if pattern is not None and not pattern.fullmatch(name):
            raise JobRequestError(
                f"-e {name}: not a valid variable name; use letters, digits and underscores, "
                "not starting with a digit"
            )
        if name in limits.reserved_env_names:
            raise JobRequestError(
                f"-e {name}: set by the CI service itself (reserved: "
                f"{', '.join(limits.reserved_env_names)}); choose another name"
            )
        if "\0" in value:
            raise JobRequestError(f"-e {name}: the value contains a NUL character")
        if limits.max_env_value_bytes is not None and _size(value) > limits.max_env_value_bytes:
            raise JobRequestError(
                f"-e {name}: the value is {_size(value)} bytes, over the server's "
                f"{limits.max_env_value_bytes}-byte limit; put large data in a file instead"
            )
    total = sum(len(name) + _size(value) for name, value in env.items())
    if limits.max_env_bytes is not None and total > limits.max_env_bytes:
        raise JobRequestError(
            f"the environment totals {total} bytes, over the server's {limits.max_env_bytes}-"
            "byte limit; put large data in a file instead"
        )


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogateescape"))


def check_packed(archive: ProjectArchive, limits: ServerLimits) -> None:
    """`ArchiveError` if the packed project has more files, or unpacks to more, than the
    server accepts (its size was checked while packing)."""
    if limits.max_upload_entries is not None and archive.file_count > limits.max_upload_entries:
        raise ArchiveError(
            f"the project has {archive.file_count} files, more than the server's "
            f"{limits.max_upload_entries}; add generated files and data to .gitignore"
        )
    if limits.max_unpacked_bytes is not None and archive.unpacked_bytes > limits.max_unpacked_bytes:
        raise ArchiveError(
            f"the project unpacks to {format_size(archive.unpacked_bytes)}, over the server's "
            f"limit of {format_size(limits.max_unpacked_bytes)}; add large files to .gitignore"
        )
