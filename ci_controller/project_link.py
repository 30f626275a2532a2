"""The project itself, installed editable without running its build backend: a link.

What an editable install of a plain pure-Python project leaves behind is small and fully
decided by pyproject.toml's static metadata and the layout: a `.pth` file naming the
directory that holds the packages (`src/` in a src layout, else the project root, as
hatchling's and setuptools' editable wheels do for those layouts), a `.dist-info` directory
(`METADATA`, `entry_points.txt`, `direct_url.json`, `INSTALLER`, `RECORD`) so
`importlib.metadata` and entry points (pytest plugins, say) see the project, and a script per
`[project.scripts]` entry. Writing those takes milliseconds; running a build backend for them
takes 0.4-1.5 s of every job. So the controller renders them from the pyproject it has read
anyway, and the job's bootstrap writes them (see `bootstrap`).

Only where that is certainly what the backend would do: static `name` and `version`, a
backend known to be pure Python (hatchling, setuptools, flit, pdm, poetry-core, uv_build), no
setup.py (which may do anything), and none of the tool settings that move packages elsewhere
(`[tool.setuptools] package-dir`, `[tool.hatch.build]`, ...). Anything else is installed by
its backend in the job (`DependencyPlan.install_project`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

PURE_BACKENDS = (
    "hatchling.build",
    "setuptools.build_meta",
    "setuptools.build_meta:__legacy__",
    "flit_core.buildapi",
    "pdm.backend",
    "poetry.core.masonry.api",
    "uv_build",
)
RELOCATING_TOOLS = ("hatch", "flit", "pdm", "poetry", "maturin", "scikit-build", "meson-python")
"""`[tool.X]` tables whose build settings may put packages elsewhere (checked in full for
hatch: only `[tool.hatch.build]` matters, see `_relocates`)."""
_SCRIPT_REFERENCE = re.compile(r"[\w.]+:[\w.]+")


@dataclass(frozen=True)
class ProjectLink:
    """What the job writes to install the project editable: `files` (paths relative to the
    interpreter's site-packages), `scripts` (name → `module:function`), and `path`, the
    directory appended to `sys.path`."""

    name: str
    path: str
    files: Mapping[str, str]
    scripts: Mapping[str, str]

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": self.path,
            "files": dict(self.files),
            "scripts": dict(self.scripts),
        }


def project_link(
    pyproject: Mapping[str, object], *, top_level: frozenset[str], workdir: str
) -> ProjectLink | None:
    """The link for a project at `workdir` whose root holds `top_level` names, or None when
    only its backend can install it."""
    project = pyproject.get("project")
    if not isinstance(project, dict) or "setup.py" in top_level:
        return None
    table = cast(dict[str, object], project)
    name, version = table.get("name"), table.get("version")
    dynamic = table.get("dynamic", [])
    if not isinstance(name, str) or not isinstance(version, str) or dynamic:
        return None
    system = pyproject.get("build-system")
    backend = (
        cast(dict[str, object], system).get("build-backend", PURE_BACKENDS[1])
        if isinstance(system, dict)
        else PURE_BACKENDS[1]
    )
    if backend not in PURE_BACKENDS or _relocates(pyproject.get("tool")):
        return None
    scripts = _entry_table(table.get("scripts"))
    if any(not _SCRIPT_REFERENCE.fullmatch(target) for target in scripts.values()):
        return None  # extras in a script reference ([x]) are rare; the backend knows them
    path = f"{workdir}/src" if "src" in top_level else workdir
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    files = {
        f"__editable__.{dist}.pth": path + "\n",
        f"{dist}.dist-info/METADATA": _metadata(name, version, table),
        f"{dist}.dist-info/INSTALLER": "ci\n",
        f"{dist}.dist-info/RECORD": "",
        f"{dist}.dist-info/direct_url.json": json.dumps(
            {"url": f"file://{workdir}", "dir_info": {"editable": True}}
        ),
    }
    if entry_points := _entry_points(table, scripts):
        files[f"{dist}.dist-info/entry_points.txt"] = entry_points
    return ProjectLink(name=name, path=path, files=files, scripts=scripts)


def _relocates(tool: object) -> bool:
    if not isinstance(tool, dict):
        return False
    tables = cast(dict[str, object], tool)
    setuptools = tables.get("setuptools")
    if isinstance(setuptools, dict) and {"package-dir", "packages", "py-modules"} & set(
        cast(dict[str, object], setuptools)
    ):
        return True
    hatch = tables.get("hatch")
    if isinstance(hatch, dict) and "build" in cast(dict[str, object], hatch):
        return True
    if isinstance(uv := tables.get("uv"), dict) and "build-backend" in cast(dict[str, object], uv):
        return True
    return any(name in tables for name in RELOCATING_TOOLS if name != "hatch")


def _entry_table(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in cast(dict[object, object], value).items()}


def _entry_points(table: dict[str, object], scripts: dict[str, str]) -> str:
    sections: list[tuple[str, dict[str, str]]] = [
        ("console_scripts", scripts),
        ("gui_scripts", _entry_table(table.get("gui-scripts"))),
    ]
    groups = table.get("entry-points")
    if isinstance(groups, dict):
        for group, entries in cast(dict[str, object], groups).items():
            sections.append((group, _entry_table(entries)))
    text = ""
    for section, entries in sections:
        if entries:
            text += f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
    return text


def _metadata(name: str, version: str, table: dict[str, object]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    requires = table.get("dependencies", [])
    for requirement in cast(list[object], requires) if isinstance(requires, list) else []:
        lines.append(f"Requires-Dist: {requirement}")
    optional = table.get("optional-dependencies", {})
    extras = cast(dict[str, object], optional) if isinstance(optional, dict) else {}
    for extra, items in extras.items():
        lines.append(f"Provides-Extra: {extra}")
        for requirement in cast(list[object], items) if isinstance(items, list) else []:
            text, _, marker = str(requirement).partition(";")
            condition = f'extra == "{extra}"'
            if marker.strip():
                condition = f"({marker.strip()}) and {condition}"
            lines.append(f"Requires-Dist: {text.strip()} ; {condition}")
    return "\n".join(lines) + "\n"
