"""A project with one passing and one failing test."""


def test_passes() -> None:
    assert True


def test_fails() -> None:
    assert 2 + 2 == 5, "arithmetic is broken"
