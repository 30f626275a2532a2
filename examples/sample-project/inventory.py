"""A tiny inventory, the code under test in the sample project `scripts/demo` submits."""

from __future__ import annotations


class OutOfStock(Exception):
    """Raised when taking more of an item than is in stock."""


class Inventory:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, item: str, count: int = 1) -> None:
        if count <= 0:
            raise ValueError("count must be positive")
        self._counts[item] = self._counts.get(item, 0) + count

    def take(self, item: str, count: int = 1) -> None:
        have = self._counts.get(item, 0)
        if count > have:
            raise OutOfStock(f"only {have} {item} left")
        self._counts[item] = have - count

    def count(self, item: str) -> int:
        return self._counts.get(item, 0)

    def total(self) -> int:
        return sum(self._counts.values())
