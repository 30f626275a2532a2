"""Every way a project declares its dependencies, installed for real (uv in the job image,
the package index over the build network): each project's test imports a dependency only its
form installs, and the log says where the dependencies came from and what happened.

One service serves the whole module (its start costs more than a job); each test's project
is its own, so no test rides on another's dependency image, except where that is the point
(the cache test)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CIService

pytestmark = pytest.mark.e2e

SIX_HASH = "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
UV_LOCK = Path(__file__).with_name("data") / "uv.lock"
JOB_WITHIN = 60.0


@pytest.fixture(scope="module")
def forms_service(
    docker_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CIService]:
    service = CIService.create(tmp_path_factory.mktemp("ci-forms"))
    try:
        started = service.start_controller(wait=False)
        service.start_server()
        started.wait_for_output("controller started")
        yield service
    finally:
        service.close()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def run(service: CIService, project: Path) -> str:
    """The log of the job that ran `project`, which must have passed."""
    job_id = service.submit(project)
    job = service.wait_for_job(job_id, within=JOB_WITHIN)
    log = service.logs(job_id)
    assert job["conclusion"] == "success", log
    return log


def ci_lines(log: str) -> list[str]:
    """The `[ci]` lines the log starts with, after the Python line every log opens with."""
    lines: list[str] = []
    for line in log.splitlines():
        if not line.startswith("[ci]"):
            break
        lines.append(line)
    assert lines and lines[0].startswith("[ci] Python 3."), log
    return lines[1:]


def test_requirements_with_includes_an_editable_extra_hashes_and_markers(
    forms_service: CIService, tmp_path: Path
) -> None:
    project = write(
        tmp_path,
        {
            "requirements.txt": """
                # the runtime pins and the project itself, with its test extra
                -r requirements/base.txt
                -c constraints.txt
                attrs ; python_version >= "3.8"
                no-such-package-anywhere ; python_version < "3"
                -e .[test]
            """,
            "requirements/base.txt": f"six==1.17.0 \\\n    --hash={SIX_HASH}\n",
            "constraints.txt": "attrs>=20\n",
            "pyproject.toml": """
                [project]
                name = "reqs-demo"
                version = "0.1"
                dependencies = []
                [project.optional-dependencies]
                test = ["toml"]
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"
            """,
            "src/reqs_demo/__init__.py": "NAME = 'reqs'\n",
            "tests/test_forms.py": """
                import attrs, six, toml
                import reqs_demo

                def test_all_there():
                    assert reqs_demo.NAME == "reqs" and six.__version__ == "1.17.0"
            """,
        },
    )

    log = run(forms_service, project)

    lines = ci_lines(log)
    assert lines[0] == (
        "[ci] dependencies from requirements.txt (with requirements/base.txt, "
        "constraints.txt); pyproject.toml ([project] dependencies, extra test)"
    ), log
    assert "[ci] dependencies installed in " in log
    linked = re.search(
        r"^\[ci\] project reqs-demo installed \(editable, linked: /workspace/src on the path, "
        r"its metadata and entry points written, no build\) in (\d+\.\d+) s$",
        log,
        re.MULTILINE,
    )
    assert linked is not None, log
    assert float(linked[1]) < 0.1


def test_pyproject_src_layout_with_its_test_extra_and_dev_group(
    forms_service: CIService, tmp_path: Path
) -> None:
    project = write(
        tmp_path,
        {
            "pyproject.toml": """
                [project]
                name = "src-demo"
                version = "0.1"
                dependencies = ["six"]
                [project.optional-dependencies]
                test = ["toml"]
                docs = ["no-such-package-anywhere"]
                [dependency-groups]
                dev = ["attrs", {include-group = "lint"}]
                lint = ["tomli"]
                [project.scripts]
                src-demo = "src_demo:main"
            """,
            "src/src_demo/__init__.py": """
                from six import PY3 as READY

                def main():
                    print("hello from src-demo")
            """,
            "tests/test_src.py": """
                import importlib.metadata, subprocess
                import attrs, toml, tomli
                from src_demo import READY

                def test_installed_project():
                    assert READY
                    assert importlib.metadata.version("src-demo") == "0.1"

                def test_its_script():
                    done = subprocess.run(["src-demo"], capture_output=True, text=True)
                    assert done.stdout == "hello from src-demo\\n", done.stderr
            """,
        },
    )

    log = run(forms_service, project)

    assert ci_lines(log)[0] == (
        "[ci] dependencies from pyproject.toml ([project] dependencies, extra test, group dev)"
    ), log
    assert "[ci] project src-demo installed (editable, linked: /workspace/src" in log
    assert "2 passed" in log


def test_a_uv_lock_is_installed_exactly_as_locked(forms_service: CIService, tmp_path: Path) -> None:
    # The lock says iniconfig 2.0.0 (the job image has a newer one); pyproject.toml has since
    # been loosened, which a re-resolve would follow and a frozen install must not.
    project = write(
        tmp_path,
        {
            "pyproject.toml": """
                [project]
                name = "locked"
                version = "0.1.0"
                requires-python = ">=3.11"
                dependencies = ["iniconfig"]
                [dependency-groups]
                dev = ["six"]
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"
            """,
            "src/locked/__init__.py": "",
            "tests/test_lock.py": """
                import importlib.metadata
                import six

                def test_locked_versions():
                    assert importlib.metadata.version("iniconfig") == "2.0.0"
                    assert six.__version__ == "1.17.0"
            """,
        },
    )
    (project / "uv.lock").write_bytes(UV_LOCK.read_bytes())

    log = run(forms_service, project)

    assert ci_lines(log)[0] == "[ci] dependencies from uv.lock (frozen, group dev)", log
    assert "uv export --frozen" in log


def test_a_setup_py_project_is_installed(forms_service: CIService, tmp_path: Path) -> None:
    project = write(
        tmp_path,
        {
            "setup.py": """
                from setuptools import setup
                setup(
                    name="legacy-demo",
                    version="0.1",
                    package_dir={"": "src"},
                    packages=["legacy_demo"],
                    install_requires=["six"],
                )
            """,
            "src/legacy_demo/__init__.py": "import six\nVALUE = 42\n",
            "tests/test_legacy.py": """
                from legacy_demo import VALUE

                def test_value():
                    assert VALUE == 42
            """,
        },
    )

    log = run(forms_service, project)

    assert ci_lines(log)[0] == "[ci] dependencies from setup.py (built from source)", log
    # setup.py may do anything: its backend installs it, with no network, in the job.
    assert "[ci] project installed (editable, without dependencies, offline, uv) in " in log


def test_the_cli_chooses_extras_and_groups(forms_service: CIService, tmp_path: Path) -> None:
    project = write(
        tmp_path,
        {
            "pyproject.toml": """
                [project]
                name = "chooser"
                version = "0.1"
                [project.optional-dependencies]
                test = ["no-such-package-anywhere"]
                docs = ["six"]
                [dependency-groups]
                dev = ["no-such-package-anywhere"]
                lint = ["toml"]
            """,
            "chooser/__init__.py": "",
            "tests/test_choice.py": """
                import six, toml

                def test_chosen():
                    pass
            """,
        },
    )

    done = forms_service.run_ci(
        "submit", "test", str(project), "--no-extras", "--extra", "docs", "--group", "lint"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "[ci] dependencies from pyproject.toml ([project] dependencies, extra docs, group lint)"
        in done.stdout
    )


def test_editing_a_test_reuses_the_image_and_editing_a_dependency_rebuilds_it(
    forms_service: CIService, tmp_path: Path
) -> None:
    project = write(
        tmp_path,
        {
            "requirements.txt": "six\n",
            "test_cache.py": "import six\n\ndef test_one():\n    pass\n",
        },
    )
    first = run(forms_service, project)
    assert "[ci] dependencies installed in " in first

    write(project, {"test_cache.py": "import six\n\ndef test_two():\n    pass\n"})
    second = run(forms_service, project)
    assert "[ci] dependencies: cached image ci-deps-" in second, second
    assert "installing" not in second

    write(
        project,
        {
            "requirements.txt": "six\ntoml\n",
            "test_cache.py": "import toml\n\ndef test_three():\n    pass\n",
        },
    )
    third = run(forms_service, project)
    assert "[ci] installing the dependencies in this job's container" in third, third
