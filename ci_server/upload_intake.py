"""Receiving an upload only from a known caller, only while there is room, only for so long.

The submit endpoints declare no body parameter: FastAPI parses (and spools) a multipart body
before it runs any dependency, so anyone could make the server receive and store 50 MiB just
to be told 401. Instead the submit routes depend on the caller first, authenticated from the
headers, then take one of `UploadSlots` and only then read the body, here, within a time
limit. The body of a request refused before it was read is never parsed or stored: uvicorn
throws it away as it arrives (for at most `H11Protocol.linger_seconds` under `ci-server`), so
that the client, which typically reads the answer only after sending everything, gets it.

Slots bound what uploads cost at once: each may spool up to the upload limit to a temporary
file. When they are all taken the server answers 503 with `Retry-After` at once, without
reading the body, rather than queueing bodies on disk. Storing is one upload at a time: the
archive is then in memory (about three times over, counting SQLite's copies), and the database
takes one write at a time anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from ci_common.errors import InvalidInputError
from ci_server.errors import ServerBusyError, UnusableUploadError, UploadTimeoutError

RETRY_AFTER_SECONDS = 2
MAX_FORM_FIELDS = 16
ARCHIVE_FIELD = "file"


class UploadSlots:
    """Uploads being received, checked and stored by this process: at most `limit`, and one
    of them storing at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.storing = asyncio.Lock()

    @contextmanager
    def take(self) -> Generator[None]:
        """Hold a slot for the block, or raise `ServerBusyError` (503) if none is free."""
        if self.in_use >= self.limit:
            raise ServerBusyError(
                f"the server is receiving {self.limit} uploads already, as many as it takes at "
                f"once; retry in {RETRY_AFTER_SECONDS} s (an admin can raise CI_MAX_UPLOADS)",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1


@dataclass(frozen=True)
class ReceivedUpload:
    """A submit's body: the archive, spooled, and the text fields beside it."""

    file: UploadFile
    fields: Mapping[str, str]
    """Every other field by name (the job's options, see `ci_common.job_options`)."""


@asynccontextmanager
async def received_upload(request: Request, *, time_limit: float) -> AsyncGenerator[ReceivedUpload]:
    """The request's multipart field `file`, spooled (to a temporary file past 1 MiB) and
    closed when the block ends, with the form's text fields. 408 if the body takes longer
    than `time_limit` seconds."""
    try:
        async with asyncio.timeout(time_limit):
            form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except TimeoutError:
        raise UploadTimeoutError(
            f"the upload did not arrive within {time_limit:g} s; check the connection, or ask an "
            "admin to raise CI_UPLOAD_TIMEOUT"
        ) from None
    except ClientDisconnect:
        raise InvalidInputError("the client went away before the upload was complete") from None
    try:
        file = form.get(ARCHIVE_FIELD)
        if not isinstance(file, UploadFile):
            raise UnusableUploadError(
                f"body {ARCHIVE_FIELD}: no file; send the zip as the multipart form field "
                f"`{ARCHIVE_FIELD}` (curl -F {ARCHIVE_FIELD}=@project.zip)"
            )
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if name == ARCHIVE_FIELD:
                continue
            if not isinstance(value, str):
                raise UnusableUploadError(
                    f"body {name}: a file where text was expected; send it as a plain form "
                    f"field (curl -F '{name}=...', not -F {name}=@file)"
                )
            fields[name] = value
        yield ReceivedUpload(file=file, fields=fields)
    finally:
        await form.close()


_TEXT_FIELDS = {
    "pytest_args": 'JSON array of strings given to pytest, e.g. ["-k", "parse", "-x"]',
    "env": 'JSON object of environment variables for pytest, e.g. {"FOO": "bar"}',
    "project": "the project's name (pyproject's [project].name, else the directory's)",
    "git": 'JSON object {"commit": "<full hash>", "branch": "main" or null, "dirty": false} '
    "of the checkout the files came from",
    "extras": 'JSON array of the project\'s extras to install, e.g. ["test"]; [] for none; '
    "absent: each of test, tests, dev the project has",
    "groups": 'JSON array of PEP 735 dependency groups to install, e.g. ["lint"]; [] for none; '
    "absent: each of test, tests, dev the project has",
    "rerun_failed_of": "the id of one of your jobs: run only the tests that failed or errored "
    "in it (422 when it has none)",
    "artifacts": "JSON array of glob patterns, relative to the project root, of files to keep "
    'after pytest exits, e.g. ["coverage.xml", "htmlcov/**"] (junit.xml is always kept)',
}
ARCHIVE_REQUEST_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [ARCHIVE_FIELD],
                    "properties": {
                        ARCHIVE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "a zip of the project root (its dependency file, "
                            "if any, at the top level)",
                        },
                        **{
                            name: {"type": "string", "description": description}
                            for name, description in _TEXT_FIELDS.items()
                        },
                    },
                }
            }
        },
    }
}
"""The submit endpoints' body for OpenAPI (`openapi_extra`): they read it themselves."""
