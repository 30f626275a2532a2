"""Which user or key an id given on the command line means: the full UUID or a unique prefix.

People copy the first 8 characters of an id from a table as they do with git hashes; scripts
pass the whole UUID. A prefix shorter than 8 hex characters is refused (it would soon become
ambiguous), and one that matches two ids says so rather than picking one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ci_common.errors import ConflictError, InvalidInputError, NotFoundError

MIN_PREFIX = 8
_ID_OR_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]*$")


def resolve_id(given: str, known: Iterable[str], *, kind: str, listing: str) -> str:
    """The one id in `known` that `given` names; `kind` ("user", "API key") and `listing`
    (the command that lists them) go into the error messages."""
    wanted = given.strip().lower()
    if not _ID_OR_PREFIX.match(wanted) or len(wanted.replace("-", "")) < MIN_PREFIX:
        raise InvalidInputError(
            f"invalid {kind} id {given!r}: give its UUID or at least its first {MIN_PREFIX} "
            f"characters; `{listing}` shows them"
        )
    matches = [candidate for candidate in known if candidate.lower().startswith(wanted)]
    if not matches:
        raise NotFoundError(f"{kind} {given} not found; `{listing}` shows them")
    if len(matches) > 1:
        raise ConflictError(
            f"{kind} id prefix {given} is ambiguous ({len(matches)} match); give more characters"
        )
    return matches[0]
