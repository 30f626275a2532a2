"""Ids as PostgreSQL stores them (`uuid`) and as the rest of the code passes them (strings).

A string that is no UUID names nothing: lookups answer "not found" rather than letting
PostgreSQL reject the parameter, the same answer SQLite gives for an unknown id.
"""

from __future__ import annotations

import uuid

_UUID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_HEX = frozenset("0123456789abcdef")


def as_uuid(text: str) -> uuid.UUID | None:
    """The UUID `text` spells in canonical form, or None."""
    if len(text) != len(_UUID_SHAPE):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def prefix_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The lowest and highest UUIDs whose canonical (lowercase) text starts with `prefix`, or
    None when no id can: a prefix search becomes a range on the primary key, as in SQLite."""
    if len(prefix) > len(_UUID_SHAPE):
        return None
    for char, shape in zip(prefix, _UUID_SHAPE, strict=False):
        if (shape == "-") != (char == "-") or (shape == "x" and char not in _HEX):
            return None
    rest = _UUID_SHAPE[len(prefix) :]
    return uuid.UUID(prefix + rest.replace("x", "0")), uuid.UUID(prefix + rest.replace("x", "f"))
