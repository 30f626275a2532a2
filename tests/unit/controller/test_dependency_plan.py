"""What each way of declaring dependencies plans, and what its cache key covers."""

from __future__ import annotations

import textwrap

import pytest

from ci_controller.dependency_declarations import plan_dependencies
from ci_controller.dependency_plan import (
    BUILD_REQUIREMENTS,
    PROJECT_REQUIREMENTS,
    DependencyPlan,
    DependencyPlanError,
    InstallStep,
    Selection,
    StepKind,
)

SIX_HASH = "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def plan(files: dict[str, str], selection: Selection | None = None) -> DependencyPlan:
    texts = {name: textwrap.dedent(text).lstrip().encode() for name, text in files.items()}
    top_level = frozenset(name.split("/", 1)[0] for name in files)
    return plan_dependencies(texts.get, selection, top_level=top_level)


def key(files: dict[str, str], selection: Selection | None = None) -> str | None:
    return plan(files, selection).key("sha256:base")


PYPROJECT = """
    [project]
    name = "demo"
    version = "0.1"
    description = "first"
    dependencies = ["six"]
    [project.optional-dependencies]
    test = ["toml", "demo[more]"]
    more = ["attrs"]
    docs = ["sphinx"]
    [dependency-groups]
    dev = ["tomli", {include-group = "lint"}]
    lint = ["ruff"]
    [build-system]
    requires = ["hatchling"]
    build-backend = "hatchling.build"
"""


def test_requirement_includes_are_staged_and_keyed_and_the_project_line_taken_out() -> None:
    planned = plan(
        {
            "requirements.txt": """
                -r requirements/base.txt  # the pins
                -c constraints.txt
                attrs ; python_version >= "3.8"
                -e .[test]
            """,
            "requirements/base.txt": f"six==1.17.0 \\\n    --hash={SIX_HASH}\n-r ../more.txt\n",
            "more.txt": "toml\n",
            "constraints.txt": "attrs>=20\n",
            "pyproject.toml": PYPROJECT,
        }
    )

    assert planned.files["requirements.txt"] == (
        b'-r requirements/base.txt\n-c constraints.txt\nattrs ; python_version >= "3.8"\n'
    )
    assert planned.files["requirements/base.txt"] == (
        f"six==1.17.0 --hash={SIX_HASH}\n-r ../more.txt\n".encode()
    )
    assert {"more.txt", "constraints.txt"} <= set(planned.keyed)
    assert planned.steps[0] == InstallStep(StepKind.REQUIREMENTS, ("requirements.txt",))
    assert planned.sources[0] == (
        "requirements.txt (with requirements/base.txt, more.txt, constraints.txt)"
    )
    # `-e .[test]`: the project's dependencies and its test extra (which pulls in `more`).
    assert planned.files[PROJECT_REQUIREMENTS] == b"six\ntoml\nattrs\ntomli\nruff\n"
    assert planned.link is not None and not planned.install_project


def test_editing_an_included_file_changes_the_key_and_a_comment_does_not() -> None:
    files = {"requirements.txt": "-r base.txt\n", "base.txt": "six\n"}
    assert key(files) != key({**files, "base.txt": "six==1.17.0\n"})
    assert key(files) == key({**files, "base.txt": "# pinned later\nsix   \n\n"})
    assert key(files) == key({**files, "test_a.py": "def test(): pass\n"})


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ("-r missing.txt\n", "requirements.txt includes missing.txt, which is not in the upload"),
        ("-r ../outside.txt\n", "includes ../outside.txt, which is outside the project"),
        ("-e .\n", "neither a pyproject.toml with a [project] table nor a setup.py"),
    ],
)
def test_requirements_that_cannot_be_installed_say_why(requirements: str, message: str) -> None:
    with pytest.raises(DependencyPlanError, match=message.replace("[", r"\[").replace(".", r"\.")):
        plan({"requirements.txt": requirements})


def test_pyproject_installs_dependencies_test_extras_and_dev_groups_automatically() -> None:
    planned = plan({"pyproject.toml": PYPROJECT})

    assert planned.files[PROJECT_REQUIREMENTS] == b"six\ntoml\nattrs\ntomli\nruff\n"
    assert planned.sources == ("pyproject.toml ([project] dependencies, extra test, group dev)",)
    assert planned.link is not None  # a plain project: linked in the job, no backend needed
    assert BUILD_REQUIREMENTS not in planned.files


def test_chosen_extras_and_groups_replace_the_automatic_ones() -> None:
    chosen = plan({"pyproject.toml": PYPROJECT}, Selection(extras=("docs",), groups=("lint",)))
    assert chosen.files[PROJECT_REQUIREMENTS] == b"six\nsphinx\nruff\n"
    nothing = plan({"pyproject.toml": PYPROJECT}, Selection(extras=(), groups=()))
    assert nothing.files[PROJECT_REQUIREMENTS] == b"six\n"
    with pytest.raises(DependencyPlanError, match=r"asks for extra nope, .* \(it has: docs"):
        plan({"pyproject.toml": PYPROJECT}, Selection(extras=("nope",)))


def test_requirements_dev_files_come_with_the_automatic_choice_only() -> None:
    files = {"requirements.txt": "six\n", "requirements-dev.txt": "toml\n"}
    assert plan(files).steps == (
        InstallStep(StepKind.REQUIREMENTS, ("requirements.txt", "requirements-dev.txt")),
    )
    assert plan(files, Selection(extras=())).steps == (
        InstallStep(StepKind.REQUIREMENTS, ("requirements.txt",)),
    )


def test_only_what_decides_the_install_is_in_the_key() -> None:
    files = {"pyproject.toml": PYPROJECT}
    assert key(files) == key({"pyproject.toml": PYPROJECT.replace("first", "second")})
    assert key(files) == key({**files, "src/demo/__init__.py": "X = 1\n"})
    assert key(files) != key({"pyproject.toml": PYPROJECT.replace('"six"', '"six>=1.16"')})
    assert key(files) != key(files, Selection(extras=("docs",)))
    assert plan(files).key("sha256:one") != plan(files).key("sha256:two")


def test_a_uv_lock_is_exported_frozen_with_the_chosen_extras_and_groups() -> None:
    lock = 'version = 1\n[[package]]\nname = "six"\nversion = "1.17.0"\n'
    files = {"pyproject.toml": PYPROJECT, "uv.lock": lock}
    planned = plan(files)

    assert planned.steps[0] == InstallStep(
        StepKind.LOCK,
        ("--no-emit-project", "--no-default-groups", "--extra=test", "--group=dev"),
    )
    assert planned.sources == ("uv.lock (frozen, extra test, group dev)",)
    assert planned.declares("six") and not planned.declares("pytest")
    assert key(files) != key({**files, "uv.lock": lock.replace("1.17.0", "1.16.0")})
    assert key(files) == key({**files, "pyproject.toml": PYPROJECT.replace("first", "x")})


def test_a_setup_py_project_is_built_from_source_and_installed_by_its_backend() -> None:
    setup = "from setuptools import setup\nsetup(name='legacy', install_requires=['six'])\n"
    planned = plan({"setup.py": setup, "legacy/__init__.py": ""})

    assert planned.needs_source and planned.install_project and planned.link is None
    assert planned.sources == ("setup.py (built from source)",)
    assert planned.files[BUILD_REQUIREMENTS] == b"setuptools>=40.8.0\nwheel\n"
    assert key({"setup.py": setup}) != key({"setup.py": setup.replace("six", "toml")})


def test_a_dynamic_version_is_installed_by_the_backend_which_the_image_then_holds() -> None:
    dynamic = PYPROJECT.replace('version = "0.1"', 'dynamic = ["version"]')
    planned = plan({"pyproject.toml": dynamic})

    assert planned.install_project and planned.link is None
    assert planned.files[BUILD_REQUIREMENTS] == b"hatchling\neditables\n"


def test_nothing_declared_plans_nothing() -> None:
    planned = plan({"test_a.py": "def test(): pass\n"})
    assert (planned.steps, planned.declared, planned.key("sha256:x")) == ((), (), None)


def test_pytest_is_added_last_and_keyed() -> None:
    planned = plan({"requirements.txt": "six\n"})
    with_pytest = planned.with_pytest()
    assert with_pytest.steps[-1] == InstallStep(StepKind.REQUIREMENTS, (".ci-pytest.txt",))
    assert with_pytest.key("sha256:x") != planned.key("sha256:x")
    assert plan({"requirements.txt": "PyTest>=8\n"}).declares("pytest")
    assert plan({}).with_pytest().key("sha256:x") is not None
