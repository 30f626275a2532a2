"""The files that install a plain project editable, and when only its backend may."""

from __future__ import annotations

import tomllib

import pytest

from ci_controller.project_link import ProjectLink, project_link

PYPROJECT = """
[project]
name = "My.Demo"
version = "1.2"
dependencies = ["six"]
[project.optional-dependencies]
test = ["toml; python_version >= '3.8'"]
[project.scripts]
demo = "my_demo.cli:main"
[project.entry-points.pytest11]
demo = "my_demo.plugin"
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


def link_for(text: str, top_level: set[str]) -> ProjectLink | None:
    return project_link(tomllib.loads(text), top_level=frozenset(top_level), workdir="/w")


def test_a_src_layout_is_linked_with_its_metadata_entry_points_and_scripts() -> None:
    link = link_for(PYPROJECT, {"pyproject.toml", "src", "tests"})

    assert link is not None
    assert link.path == "/w/src"
    assert link.files["__editable__.My_Demo-1.2.pth"] == "/w/src\n"
    assert link.files["My_Demo-1.2.dist-info/METADATA"] == (
        "Metadata-Version: 2.1\nName: My.Demo\nVersion: 1.2\nRequires-Dist: six\n"
        "Provides-Extra: test\n"
        "Requires-Dist: toml ; (python_version >= '3.8') and extra == \"test\"\n"
    )
    assert link.files["My_Demo-1.2.dist-info/entry_points.txt"] == (
        "[console_scripts]\ndemo = my_demo.cli:main\n\n[pytest11]\ndemo = my_demo.plugin\n\n"
    )
    assert link.scripts == {"demo": "my_demo.cli:main"}


def test_a_flat_layout_puts_the_project_root_on_the_path() -> None:
    link = link_for(PYPROJECT, {"pyproject.toml", "my_demo"})
    assert link is not None and link.path == "/w"


@pytest.mark.parametrize(
    "change",
    [
        ('version = "1.2"', 'dynamic = ["version"]'),
        ('"hatchling.build"', '"maturin"'),
        ("[build-system]", "[tool.hatch.build.targets.wheel]\npackages = ['x']\n[build-system]"),
        ("[build-system]", "[tool.setuptools]\npackage-dir = {'' = 'lib'}\n[build-system]"),
    ],
)
def test_what_only_the_backend_knows_is_left_to_it(change: tuple[str, str]) -> None:
    assert link_for(PYPROJECT.replace(*change), {"pyproject.toml", "src"}) is None


def test_a_setup_py_beside_is_left_to_the_backend() -> None:
    assert link_for(PYPROJECT, {"pyproject.toml", "setup.py", "src"}) is None
