"""Needs a dependency that the job image does not have."""

import six


def test_six_is_importable() -> None:
    assert six.PY3
