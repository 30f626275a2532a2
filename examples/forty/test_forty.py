"""Forty small, fast tests: the benchmark project."""

import pytest


@pytest.mark.parametrize("number", range(20))
def test_square(number: int) -> None:
    assert number * number == number**2


def test_case_00() -> None:
    assert sum(range(1)) == 0


def test_case_01() -> None:
    assert sum(range(2)) == 1


def test_case_02() -> None:
    assert sum(range(3)) == 3


def test_case_03() -> None:
    assert sum(range(4)) == 6


def test_case_04() -> None:
    assert sum(range(5)) == 10


def test_case_05() -> None:
    assert sum(range(6)) == 15


def test_case_06() -> None:
    assert sum(range(7)) == 21


def test_case_07() -> None:
    assert sum(range(8)) == 28


def test_case_08() -> None:
    assert sum(range(9)) == 36


def test_case_09() -> None:
    assert sum(range(10)) == 45


def test_case_10() -> None:
    assert sum(range(11)) == 55


def test_case_11() -> None:
    assert sum(range(12)) == 66


def test_case_12() -> None:
    assert sum(range(13)) == 78


def test_case_13() -> None:
    assert sum(range(14)) == 91


def test_case_14() -> None:
    assert sum(range(15)) == 105


def test_case_15() -> None:
    assert sum(range(16)) == 120


def test_case_16() -> None:
    assert sum(range(17)) == 136


def test_case_17() -> None:
    assert sum(range(18)) == 153


def test_case_18() -> None:
    assert sum(range(19)) == 171


def test_case_19() -> None:
    assert sum(range(20)) == 190
