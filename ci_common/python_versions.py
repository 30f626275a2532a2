"""Which Python a job runs on: the versions an installation offers, and the choice for a submit.

The controller knows its images (`CI_JOB_IMAGES`, else `CI_JOB_IMAGE` alone), finds the exact
Python of each by looking into the image, and publishes them in the database at start
(`PythonRuntime` rows). Every server replica reads them from there, so `GET /runtimes` and a
submit's choice agree whichever replica answers. The choice (`choose_python`) is made at submit
time, so asking for a version nobody offers is refused before a job exists:

1. `python` asked for (`--python 3.13`): that version, or `UnknownPythonError` listing those
   there are;
2. else the newest version whose exact Python satisfies the project's `requires-python`;
3. else the default (the controller's `CI_JOB_IMAGE`).

`requires-python` is checked with `SpecifierSet`, a small PEP 440 subset that is exact for what
`requires-python` holds in practice: release numbers with `==`, `!=` (both with `.*`), `<=`,
`>=`, `<`, `>`, `~=` and `===`, comma-separated. Pre-, post- and dev-release suffixes in a
specifier are accepted and ignored (a runtime's Python is always a final release). The
`packaging` library would do the same; it is not one of our dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ci_common.errors import InvalidJobOptionsError

VERSION_PATTERN = r"[0-9]{1,3}\.[0-9]{1,3}"
"""What `--python` takes: a major.minor version, e.g. `3.13`."""
_VERSION = re.compile(VERSION_PATTERN)


class PythonRuntime(BaseModel):
    """One Python version the installation offers, as the controller published it."""

    model_config = ConfigDict(frozen=True)

    version: str
    """Major.minor, what a submit asks for: `3.13`."""
    python: str
    """The image's exact Python: `3.13.5`."""
    image: str
    """The job image that has it: `ci-python:3.13`."""
    default: bool = False
    """The version a job gets when neither it nor its project says which."""


class UnknownPythonError(InvalidJobOptionsError):
    """A submit asked for a Python version the installation does not offer."""


def version_key(version: str) -> tuple[int, ...]:
    """`3.13` -> (3, 13), for sorting versions numerically (3.9 < 3.13)."""
    return tuple(int(part) for part in version.split("."))


def check_python(value: str | None) -> str | None:
    """A submit's `python` field: None, or a major.minor version (`InvalidJobOptionsError`)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _VERSION.fullmatch(value):
        raise InvalidJobOptionsError(
            f"python must be a version like 3.13 (major.minor), not {value[:40]!r}"
        )
    return value


def parse_job_images(text: str) -> dict[str, str]:
    """`CI_JOB_IMAGES` (`3.11=ci-python:3.11,3.13=ci-python:3.13`) as version -> image, in
    the order given; `ValueError` saying what is wrong. Blank is none."""
    images: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        version, sep, image = (part.strip() for part in item.partition("="))
        if not sep or not _VERSION.fullmatch(version) or not image:
            raise ValueError(
                f"{item.strip()!r} is not VERSION=IMAGE; write e.g. "
                "3.11=ci-python:3.11,3.13=ci-python:3.13"
            )
        if version in images:
            raise ValueError(f"Python {version} is given twice")
        images[version] = image
    return images


def choose_python(
    runtimes: Sequence[PythonRuntime], *, requested: str | None, requires_python: str | None
) -> PythonRuntime | None:
    """The runtime a job gets (see the module's docstring), or None for the controller's
    default when no default is published (no controller has started yet, or its default
    image is missing)."""
    offered = {runtime.version: runtime for runtime in runtimes}
    if requested is not None:
        if requested in offered:
            return offered[requested]
        there = ", ".join(sorted(offered, key=version_key)) or (
            "none yet (no controller has started; submit without --python)"
        )
        raise UnknownPythonError(
            f"Python {requested} is not offered here; the versions there are: {there}"
        )
    if not runtimes:
        return None
    if requires_python is not None:
        specifier = SpecifierSet.parse(requires_python)
        fitting = [runtime for runtime in runtimes if specifier.contains(runtime.python)]
        if fitting:
            return max(fitting, key=lambda runtime: version_key(runtime.version))
    # None when the default image could not be published (missing): the controller then
    # runs the job on it anyway, and the job's error says how to build it.
    return next((runtime for runtime in runtimes if runtime.default), None)


_CLAUSE = re.compile(
    r"\s*(===|==|!=|~=|<=|>=|<|>)\s*"
    r"(v?[0-9]+(?:\.[0-9]+)*(?:\.\*)?)"  # the release (a wildcard only with == and !=)
    r"((?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|post|rev|r|dev)[-_.]?[0-9]*)*)\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Clause:
    operator: str
    release: tuple[int, ...]
    wildcard: bool
    text: str

    def contains(self, version: tuple[int, ...], text: str) -> bool:
        op = self.operator
        if op == "===":
            return text == self.text
        if self.wildcard:
            prefix = _padded(version, len(self.release))[: len(self.release)]
            return (prefix == self.release) is (op == "==")
        width = max(len(version), len(self.release))
        have, want = _padded(version, width), _padded(self.release, width)
        if op == "==":
            return have == want
        if op == "!=":
            return have != want
        if op == "<=":
            return have <= want
        if op == ">=":
            return have >= want
        if op == "<":
            return have < want
        if op == ">":
            return have > want
        # ~=X.Y.Z: >= X.Y.Z and == X.Y.*
        prefix = self.release[:-1]
        return have >= want and _padded(version, len(prefix))[: len(prefix)] == prefix


@dataclass(frozen=True)
class SpecifierSet:
    """A `requires-python` value, parsed (`SpecifierSet.parse`); `contains` checks a
    final release like `3.13.5` against every clause."""

    clauses: tuple[_Clause, ...]

    @classmethod
    def parse(cls, text: str) -> SpecifierSet:
        """`InvalidJobOptionsError` naming the value when it is not a version specifier."""
        clauses: list[_Clause] = []
        for part in (part for part in text.split(",") if part.strip()):  # as `packaging`
            found = _CLAUSE.fullmatch(part)
            if found is None:
                raise InvalidJobOptionsError(
                    f"requires-python {text[:80]!r} in pyproject.toml is not a version "
                    'specifier; write e.g. ">=3.11" or ">=3.11,<3.14"'
                )
            op, release, _suffix = found.groups()
            wildcard = release.endswith(".*")
            if wildcard and op not in ("==", "!="):
                raise InvalidJobOptionsError(
                    f"requires-python {text[:80]!r}: a .* version only goes with == or !="
                )
            numbers = tuple(int(n) for n in release.lstrip("vV").removesuffix(".*").split("."))
            if op == "~=" and len(numbers) < 2:
                raise InvalidJobOptionsError(
                    f"requires-python {text[:80]!r}: ~= needs at least two numbers (~=3.11)"
                )
            clauses.append(_Clause(op, numbers, wildcard, release))
        return cls(tuple(clauses))

    def contains(self, version: str) -> bool:
        release = tuple(int(n) for n in re.findall(r"[0-9]+", version.split("+")[0])[:4])
        return all(clause.contains(release, version) for clause in self.clauses)


def _padded(release: tuple[int, ...], width: int) -> tuple[int, ...]:
    return release + (0,) * (width - len(release))
