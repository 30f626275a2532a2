"""A project's dependency plan: the install steps, the files they need, and the cache key.

`dependency_declarations` reads what a project declares (requirements files, pyproject.toml,
uv.lock, setup.py) into a `DependencyPlan`; this module is the plan itself, which the build
(`dependency_script`), the job (`bootstrap`) and the cache (`dependencies`) read.

The plan's key material is everything that decides what gets installed and nothing else:
the normalised requirement files, the derived requirement lines (so a reformatted
pyproject.toml rebuilds nothing), the lock, the extras and groups chosen, and for a project
built from source its `setup.py`/`setup.cfg`/`pyproject.toml`. `DependencyPlan.key` adds the
base image's id. Editing a test or a source file never changes it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ci_common.errors import CIError
from ci_controller.project_link import ProjectLink

PROJECT_REQUIREMENTS = ".ci-project.txt"
BUILD_REQUIREMENTS = ".ci-build.txt"
PYTEST_REQUIREMENTS = ".ci-pytest.txt"
REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


class DependencyPlanError(CIError):
    """The project's dependency declarations cannot be installed as written."""


class StepKind(StrEnum):
    REQUIREMENTS = "requirements"
    """Install the staged requirement files given (`uv pip install -r ... -r ...`)."""
    LOCK = "lock"
    """Install `uv export --frozen` of the staged uv.lock, with the export options given."""
    SOURCE = "source"
    """Install the project from its source (with the extras given), then remove the project
    itself so only its dependencies stay."""


@dataclass(frozen=True)
class InstallStep:
    kind: StepKind
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DependencyPlan:
    """How to build a project's dependency image, and what the job must do itself."""

    sources: tuple[str, ...] = ()
    """Where the dependencies come from, for the log."""
    steps: tuple[InstallStep, ...] = ()
    files: Mapping[str, bytes] = field(default_factory=lambda: dict[str, bytes]())
    """What the build container gets, by path relative to its staging directory."""
    keyed: Mapping[str, bytes] = field(default_factory=lambda: dict[str, bytes]())
    """The inputs of the cache key (beside the steps)."""
    install_project: bool = False
    """Whether the job's container installs the project itself with its build backend
    before its tests."""
    link: ProjectLink | None = None
    """Or, for a plain project, the files that install it editable without a build."""
    declared: tuple[str, ...] = ()
    """The dependency files the project has (empty: none at all)."""

    @property
    def needs_source(self) -> bool:
        return any(step.kind is StepKind.SOURCE for step in self.steps)

    def key(self, base_image_id: str) -> str | None:
        """The dependency image's cache key on `base_image_id`; None when nothing is to be
        installed."""
        if not self.steps:
            return None
        material = {
            "base": base_image_id,
            "steps": [[step.kind.value, *step.args] for step in self.steps],
            "inputs": {
                path: hashlib.sha256(data).hexdigest() for path, data in sorted(self.keyed.items())
            },
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]

    def with_pytest(self) -> DependencyPlan:
        """The plan with pytest added (last, so a pinned pytest of the project wins)."""
        files = {**self.files, PYTEST_REQUIREMENTS: b"pytest\n"}
        keyed = {**self.keyed, PYTEST_REQUIREMENTS: b"pytest\n"}
        step = InstallStep(StepKind.REQUIREMENTS, (PYTEST_REQUIREMENTS,))
        return replace(self, files=files, keyed=keyed, steps=(*self.steps, step))

    def declares(self, name: str) -> bool:
        """Whether a requirement line or the lock names distribution `name` (only what is
        written: a dependency's own dependencies are not known before the install)."""
        wanted = canonical_name(name)
        for path, data in self.files.items():
            if path == "uv.lock":
                if f'name = "{wanted}"' in data.decode(errors="replace"):
                    return True
            elif path.endswith(".txt"):
                for line in data.decode(errors="replace").splitlines():
                    if (match := REQUIREMENT_NAME.match(line)) and canonical_name(
                        match[1]
                    ) == wanted:
                        return True
        return False

    def requirement_lines(self) -> list[str] | None:
        """Every requirement line when the plan is requirement files only, without options
        (includes aside), else None: what the job image may already satisfy."""
        if any(step.kind is not StepKind.REQUIREMENTS for step in self.steps):
            return None
        lines: list[str] = []
        for data in self.files.values():
            for line in data.decode(errors="replace").splitlines():
                if line.startswith(("-r", "--requirement")):
                    continue
                if line.startswith("-"):
                    return None
                lines.append(line)
        return lines


@dataclass(frozen=True)
class Selection:
    """The extras and dependency groups a job asked for; None: the automatic choice."""

    extras: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None


def canonical_name(name: str) -> str:
    """PEP 503/685 normalisation: `Foo_Bar.baz` and `foo-bar-baz` name one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()
