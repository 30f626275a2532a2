"""What a project declares it needs installed, read into a `DependencyPlan` (`dependency_plan`).

A developer expects `ci submit test` to do what `uv sync && pytest` does on their laptop, so
every way a Python project declares its dependencies is read, and all that apply are
combined, in this order (each a separate installer run, so hashes in one do not demand hashes
of the others):

1. `requirements.txt` with its `-r`/`-c` includes (`requirements_files`), and, unless the
   job chose its extras itself, `requirements-test.txt`, `requirements-tests.txt` and
   `requirements-dev.txt` beside it;
2. the project's own dependencies: with a `uv.lock`, exactly what it locks (`uv export
   --frozen`, never a re-resolve); else `[project].dependencies` of `pyproject.toml`; else,
   for a `setup.py`/`setup.cfg` project (or dynamic dependencies), whatever building the
   project says (the build then gets the project's source);
3. the extras (`[project.optional-dependencies]`) and PEP 735 groups (`[dependency-groups]`)
   chosen: the job's `extras`/`groups` when given, else each of `test`, `tests` and `dev`
   that exists, plus those named by `-e .[extra]` lines;
4. the project's build backend (`[build-system].requires`, PEP 517's setuptools when absent,
   and what the backend needs for an editable install) when the job must run it, so the
   project itself can be installed in the job's container with no network.

The project's own package is not part of the plan's image: it changes with every job, so
the job's container installs it, editable: a plain pure-Python project by writing the few
files an editable install consists of (`link`, see `project_link`: milliseconds), anything
else with its build backend, without dependencies and offline (`install_project`; the
backend is then part of the image). A `src/` layout imports as it does after `uv sync`.
"""

from __future__ import annotations

import tomllib
from typing import cast

from ci_common.project_paths import WORKSPACE
from ci_controller.dependency_plan import (
    BUILD_REQUIREMENTS,
    PROJECT_REQUIREMENTS,
    REQUIREMENT_NAME,
    DependencyPlan,
    DependencyPlanError,
    InstallStep,
    Selection,
    StepKind,
    canonical_name,
)
from ci_controller.project_link import ProjectLink, project_link
from ci_controller.requirements_files import ReadFile, RequirementsError, read_requirements

DEPENDENCY_FILES = ("requirements.txt", "pyproject.toml", "uv.lock", "setup.py", "setup.cfg")
"""The root files that declare what a project needs installed."""
AUTOMATIC_EXTRAS = ("test", "tests", "dev")
"""Extras and groups installed when present and the job did not choose its own."""
AUTOMATIC_REQUIREMENTS = ("requirements-test.txt", "requirements-tests.txt", "requirements-dev.txt")
_LEGACY_BACKEND = ("setuptools>=40.8.0", "wheel")
"""PEP 517's fallback for a project without `[build-system]`."""
WORKDIR = f"/{WORKSPACE}"
"""Where the job's container has the project."""


def plan_dependencies(
    read: ReadFile, selection: Selection | None = None, *, top_level: frozenset[str] = frozenset()
) -> DependencyPlan:
    """The plan for the upload whose root files `read` returns and whose root holds the
    names `top_level`; `DependencyPlanError` says what to fix."""
    try:
        return _Planner(read, selection or Selection(), top_level).plan()
    except RequirementsError as exc:
        raise DependencyPlanError(str(exc)) from exc


class _Planner:
    def __init__(self, read: ReadFile, selection: Selection, top_level: frozenset[str]) -> None:
        self.read = read
        self.selection = selection
        self.top_level = top_level
        self.link: ProjectLink | None = None
        self.needs_source = False
        self.files: dict[str, bytes] = {}
        self.keyed: dict[str, bytes] = {}
        self.steps: list[InstallStep] = []
        self.sources: list[str] = []
        self.pyproject = _pyproject(read("pyproject.toml"))
        project = self.pyproject.get("project")
        self.project = cast(dict[str, object], project) if isinstance(project, dict) else None
        self.setup_files = [name for name in ("setup.py", "setup.cfg") if read(name) is not None]

    def plan(self) -> DependencyPlan:
        project_extras = self._requirement_files()
        if project_extras is not None and self.project is None and not self.setup_files:
            raise DependencyPlanError(
                "requirements.txt installs the project itself (`-e .` or `.`), but it has "
                "neither a pyproject.toml with a [project] table nor a setup.py; add one, or "
                "remove that line"
            )
        install_project = self._project(project_extras or set())
        declared = tuple(name for name in DEPENDENCY_FILES if self.read(name) is not None)
        return DependencyPlan(
            sources=tuple(self.sources),
            steps=tuple(self.steps),
            files=self.files,
            keyed=self.keyed,
            install_project=install_project,
            link=self.link,
            declared=declared,
        )

    def _requirement_files(self) -> set[str] | None:
        roots = ["requirements.txt"]
        if self.selection.extras is None:
            roots += AUTOMATIC_REQUIREMENTS
        used: list[str] = []
        project_extras: set[str] | None = None
        for root in roots:
            found = read_requirements(root, self.read)
            if found is None:
                continue
            self.files.update(found.files)
            self.keyed.update(found.files)
            if found.project_extras is not None:
                project_extras = (project_extras or set[str]()) | found.project_extras
            if found.files[root]:
                used.append(root)
                included = f" (with {', '.join(found.included)})" if found.included else ""
                self.sources.append(f"{root}{included}")
        if used:
            self.steps.append(InstallStep(StepKind.REQUIREMENTS, tuple(used)))
        return project_extras

    def _project(self, requested_extras: set[str]) -> bool:
        """Plan the project's own dependencies; whether the job installs the project."""
        extras, groups = self._chosen(requested_extras)
        package = self._is_package()
        dynamic = self._dynamic()
        described = _chosen_text(extras, groups)
        lock = self.read("uv.lock")
        if self.project is not None and lock is not None:
            self.files["pyproject.toml"] = cast(bytes, self.read("pyproject.toml"))
            self.files["uv.lock"] = self.keyed["uv.lock"] = lock
            options = ["--no-emit-project", "--no-default-groups"]
            options += [f"--extra={name}" for name in extras]
            options += [f"--group={name}" for name in groups]
            self.steps.append(InstallStep(StepKind.LOCK, tuple(options)))
            self.sources.append(f"uv.lock (frozen{described})")
        elif self.project is not None and not dynamic:
            lines = self._project_lines(extras, groups)
            self._requirements(PROJECT_REQUIREMENTS, lines)
            self.sources.append(f"pyproject.toml ([project] dependencies{described})")
        elif self.project is not None or self.setup_files:
            for name in ("pyproject.toml", *self.setup_files):
                if (data := self.read(name)) is not None:
                    self.keyed[name] = data
            lines = self._group_lines(groups)
            self._requirements(PROJECT_REQUIREMENTS, lines)
            self.steps.append(InstallStep(StepKind.SOURCE, tuple(sorted(extras))))
            self.needs_source = True
            names = " and ".join(self.setup_files) or "pyproject.toml (dynamic dependencies)"
            self.sources.append(f"{names} (built from source{described})")
            package = True
        elif groups:
            self._requirements(PROJECT_REQUIREMENTS, self._group_lines(groups))
            self.sources.append(f"pyproject.toml ({described.removeprefix(', ')})")
        if not package:
            return False
        if not self.needs_source and (
            link := project_link(self.pyproject, top_level=self.top_level, workdir=WORKDIR)
        ):
            self.link = link
            return False
        backend = self._build_requires()
        self._requirements(BUILD_REQUIREMENTS, backend)
        return True

    def _requirements(self, path: str, lines: list[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        self.files[path] = self.keyed[path] = data
        self.steps.append(InstallStep(StepKind.REQUIREMENTS, (path,)))

    def _chosen(self, requested: set[str]) -> tuple[list[str], list[str]]:
        available_extras = {canonical_name(name) for name in self._table("optional-dependencies")}
        available_groups = {canonical_name(name) for name in self._dependency_groups()}
        extras = self._pick(self.selection.extras, available_extras, "extra")
        groups = self._pick(self.selection.groups, available_groups, "group")
        if self.project is None and self.setup_files:
            extras = list(self.selection.extras or ())  # setup.py's extras are known to it only
        for name in sorted(canonical_name(name) for name in requested):
            if name not in extras:
                extras.append(name)
        return extras, groups

    def _pick(self, asked: tuple[str, ...] | None, available: set[str], kind: str) -> list[str]:
        if asked is None:
            return [name for name in AUTOMATIC_EXTRAS if name in available]
        chosen = [canonical_name(name) for name in asked]
        missing = [name for name in chosen if name not in available]
        if missing and not (kind == "extra" and self.project is None and self.setup_files):
            where = "[project.optional-dependencies]" if kind == "extra" else "[dependency-groups]"
            have = ", ".join(sorted(available)) or "none"
            raise DependencyPlanError(
                f"the job asks for {kind} {', '.join(missing)}, but pyproject.toml's {where} "
                f"has no such {kind} (it has: {have}); check the name of --{kind}"
            )
        return chosen

    def _project_lines(self, extras: list[str], groups: list[str]) -> list[str]:
        project = cast(dict[str, object], self.project)
        lines = self._expand(_strings(project.get("dependencies", []), "[project].dependencies"))
        optional = {canonical_name(k): v for k, v in self._table("optional-dependencies").items()}
        for extra in extras:
            where = f"[project.optional-dependencies].{extra}"
            lines += self._expand(_strings(optional.get(extra, []), where))
        return _unique(lines + self._group_lines(groups))

    def _expand(self, lines: list[str], seen: frozenset[str] = frozenset()) -> list[str]:
        """Lines with references to the project itself (`name[extra]`, how an extra pulls in
        another) replaced by those extras' lines."""
        own = canonical_name(str((self.project or {}).get("name", "")))
        optional = {canonical_name(k): v for k, v in self._table("optional-dependencies").items()}
        expanded: list[str] = []
        for line in lines:
            match = REQUIREMENT_NAME.match(line)
            if match is None or not own or canonical_name(match[1]) != own:
                expanded.append(line)
                continue
            for extra in (match[2] or "[]")[1:-1].split(","):
                name = canonical_name(extra.strip())
                if name and name not in seen:
                    where = f"[project.optional-dependencies].{name}"
                    extra_lines = _strings(optional.get(name, []), where)
                    expanded += self._expand(extra_lines, seen | {name})
        return expanded

    def _group_lines(self, groups: list[str], seen: frozenset[str] = frozenset()) -> list[str]:
        table = {canonical_name(k): v for k, v in self._dependency_groups().items()}
        lines: list[str] = []
        for group in groups:
            if group in seen:
                raise DependencyPlanError(f"[dependency-groups].{group} includes itself")
            items = table.get(group, [])
            if not isinstance(items, list):
                raise DependencyPlanError(f"[dependency-groups].{group} is not a list")
            for item in cast(list[object], items):
                if isinstance(item, str):
                    lines += self._expand([item])
                elif isinstance(item, dict) and "include-group" in item:
                    included = canonical_name(str(cast(dict[str, object], item)["include-group"]))
                    lines += self._group_lines([included], seen | {group})
                else:
                    raise DependencyPlanError(
                        f"[dependency-groups].{group} holds {item!r}; use requirement strings "
                        'or {include-group = "name"}'
                    )
        return _unique(lines)

    def _build_requires(self) -> list[str]:
        system = self.pyproject.get("build-system")
        table = cast(dict[str, object], system) if isinstance(system, dict) else {}
        if "requires" not in table:
            return list(_LEGACY_BACKEND)
        requires = _strings(table["requires"], "[build-system].requires")
        backend = str(table.get("build-backend", ""))
        # What the backends ask for on top when building an editable install (PEP 660's
        # get_requires_for_build_editable), which no network will fetch in the job.
        if backend.startswith("hatchling"):
            requires.append("editables")
        elif backend.startswith("setuptools"):
            requires.append("wheel")
        return _unique(requires)

    def _is_package(self) -> bool:
        if self.project is None:
            return False
        tool = self.pyproject.get("tool")
        uv = cast(dict[str, object], tool).get("uv") if isinstance(tool, dict) else None
        return not (isinstance(uv, dict) and cast(dict[str, object], uv).get("package") is False)

    def _dynamic(self) -> bool:
        dynamic = (self.project or {}).get("dynamic", [])
        names = cast(list[object], dynamic) if isinstance(dynamic, list) else []
        return "dependencies" in names or "optional-dependencies" in names

    def _table(self, name: str) -> dict[str, object]:
        table = (self.project or {}).get(name, {})
        if not isinstance(table, dict):
            raise DependencyPlanError(f"[project].{name} in pyproject.toml is not a table")
        return cast(dict[str, object], table)

    def _dependency_groups(self) -> dict[str, object]:
        table = self.pyproject.get("dependency-groups", {})
        if not isinstance(table, dict):
            raise DependencyPlanError("[dependency-groups] in pyproject.toml is not a table")
        return cast(dict[str, object], table)


def _pyproject(data: bytes | None) -> dict[str, object]:
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise DependencyPlanError(f"pyproject.toml is not valid TOML ({exc}); fix it") from exc


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) for item in cast(list[object], value)
    ):
        raise DependencyPlanError(f"{where} in pyproject.toml is not a list of requirement strings")
    return [" ".join(item.split()) for item in cast(list[str], value) if item.strip()]


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _chosen_text(extras: list[str], groups: list[str]) -> str:
    parts = [f"extra {name}" for name in extras] + [f"group {name}" for name in groups]
    return "".join(f", {part}" for part in parts)
