"""Which Python a job gets: the versions offered, `--python`, `requires-python`, the default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ci_common.errors import InvalidJobOptionsError
from ci_common.python_versions import (
    PythonRuntime,
    SpecifierSet,
    UnknownPythonError,
    check_python,
    choose_python,
    parse_job_images,
)
from ci_controller.settings import ControllerSettings

PY311 = PythonRuntime(version="3.11", python="3.11.2", image="ci-python:3.11", default=True)
PY313 = PythonRuntime(version="3.13", python="3.13.5", image="ci-python:3.13")
OFFERED = [PY311, PY313]


def test_an_asked_version_that_is_offered_is_taken() -> None:
    assert choose_python(OFFERED, requested="3.13", requires_python=None) == PY313
    assert choose_python(OFFERED, requested="3.11", requires_python=">=3.12") == PY311


def test_an_asked_version_nobody_offers_is_refused_with_the_versions_there_are() -> None:
    with pytest.raises(UnknownPythonError) as refused:
        choose_python(OFFERED, requested="3.12", requires_python=None)
    assert str(refused.value) == (
        "Python 3.12 is not offered here; the versions there are: 3.11, 3.13"
    )
    assert isinstance(refused.value, InvalidJobOptionsError)  # a 422


def test_asking_before_any_controller_published_says_so() -> None:
    with pytest.raises(UnknownPythonError, match="none yet"):
        choose_python([], requested="3.13", requires_python=None)
    assert choose_python([], requested=None, requires_python=">=3.12") is None


def test_requires_python_picks_the_newest_version_that_satisfies_it() -> None:
    assert choose_python(OFFERED, requested=None, requires_python=">=3.12") == PY313
    assert choose_python(OFFERED, requested=None, requires_python=">=3.8") == PY313
    assert choose_python(OFFERED, requested=None, requires_python="<3.13") == PY311
    assert choose_python(OFFERED, requested=None, requires_python="~=3.11.0") == PY311


def test_versions_compare_as_numbers_not_text() -> None:
    py39 = PythonRuntime(version="3.9", python="3.9.18", image="old", default=True)
    assert choose_python([PY313, py39], requested=None, requires_python=">=3.8") == PY313


def test_without_requires_python_or_a_fitting_version_the_default_runs() -> None:
    assert choose_python(OFFERED, requested=None, requires_python=None) == PY311
    assert choose_python(OFFERED, requested=None, requires_python=">=3.14") == PY311
    # The default image is missing: the controller's default (and its error) it is.
    assert choose_python([PY313], requested=None, requires_python=None) is None


@pytest.mark.parametrize(
    ("specifier", "version", "expected"),
    [
        (">=3.12", "3.11.2", False),
        (">=3.12", "3.13.5", True),
        (">= 3.11 , < 4", "3.13.5", True),
        (">=3.8,<3.13", "3.13.0", False),
        ("<3.13", "3.13.5", False),
        ("<=3.13", "3.13.5", False),  # 3.13 is 3.13.0
        ("<=3.13.5", "3.13.5", True),
        (">3.13", "3.13.5", True),
        ("==3.13", "3.13.5", False),
        ("==3.13.*", "3.13.5", True),
        ("==3.1.*", "3.13.5", False),
        ("!=3.13.*", "3.13.5", False),
        ("!=3.12", "3.13.5", True),
        ("~=3.11", "3.13.5", True),
        ("~=3.11.0", "3.13.5", False),
        ("~=3.13.2", "3.13.5", True),
        ("===3.13.5", "3.13.5", True),
        (">=3.8.0a1", "3.13.5", True),
        ("", "3.11.2", True),
        (">=3.12,", "3.13.5", True),
    ],
)
def test_specifiers(specifier: str, version: str, expected: bool) -> None:
    assert SpecifierSet.parse(specifier).contains(version) is expected


@pytest.mark.parametrize("specifier", ["3.12", ">=three", ">=3.*", "~=3", ">=3.12;", ">=3.12 3.13"])
def test_a_bad_requires_python_is_refused_naming_it(specifier: str) -> None:
    with pytest.raises(InvalidJobOptionsError, match="requires-python"):
        choose_python(OFFERED, requested=None, requires_python=specifier)


def test_the_python_field_is_major_dot_minor() -> None:
    assert check_python(" 3.13 ") == "3.13"
    assert check_python(None) is None
    assert check_python("") is None
    for bad in ("3", "3.13.1", "python3.13", "3.x"):
        with pytest.raises(InvalidJobOptionsError, match=r"like 3\.13"):
            check_python(bad)


def test_job_images_setting() -> None:
    assert parse_job_images("3.11=ci-python:3.11, 3.13=ci-python:3.13") == {
        "3.11": "ci-python:3.11",
        "3.13": "ci-python:3.13",
    }
    assert parse_job_images("") == {}
    for bad in ("ci-python:3.11", "3.11=", "py3=img", "3.11=a,3.11=b"):
        with pytest.raises(ValueError):  # noqa: PT011 -- the message is checked below
            parse_job_images(bad)
    settings = ControllerSettings.model_validate({"job_images": "3.13=ci-python:3.13"})
    assert settings.job_image_map == {"3.13": "ci-python:3.13"}
    with pytest.raises(ValidationError, match="VERSION=IMAGE"):
        ControllerSettings.model_validate({"job_images": "ci-python:3.13"})
