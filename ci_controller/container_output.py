"""How a job container's output is framed between its PID 1 and the controller.

Docker's log driver cuts a container's output into one message per line, and holds a line
back until its newline comes (or 16 KiB of it have). Both hurt: a verbose job of 190,000 lines
is 190,000 messages to stamp, store, stream and parse (the controller then spent ~0.45 CPU
seconds per MB, several times the job's own run time), and pytest's progress dots or a
`print(..., end="")` reach nobody until the line ends.

So the job's output does not go to Docker directly. PID 1 (`bootstrap`) reads it from a pipe
and writes it to the container's stdout as *records*: whatever arrived within `GATHER_SECONDS`
(or `GATHER_BYTES`), escaped so that it holds no newline, cut into pieces that fit Docker's
16 KiB line buffer, each behind `ESCAPE` and a channel letter and ended by one newline. Docker
then stores one message per record, ~16 KiB each (a hundred lines and more), and a partial line
goes out as soon as it was gathered. Records never split an escape or a UTF-8 character
(Docker would store the halves of one as U+FFFD).

Two escapes, chosen per batch by PID 1. Output without `ESCAPE` (DEL, nearly all output) is
*plain*: its newlines become `ESCAPE`, one `bytes.translate` each way, and the channel letter is
upper case. Output holding `ESCAPE` is *escaped*: `ESCAPE` becomes `ESCAPE + b"0"` and a
newline `ESCAPE + b"1"`, two `bytes.replace` calls each way. The escaped form is exact for any
bytes but costs: undoing it is a search for a two-byte token that starts at every line, ~5 ms
a MB in the controller, against ~0.5 ms for the translate (and ~3 against ~0.3 in PID 1).

`decode_frame` turns one Docker message back into the bytes the job wrote. A message that is
no record (written by PID 1 itself, by a container started before this framing, by any other
container) is output as it stands. The channel byte after `ESCAPE` says what a record carries:
`LOG_CHANNEL` the job's stdout and stderr, `RESULTS_CHANNEL` our pytest plugin's JSON lines
(per-test results, read by PID 1 from a pipe of their own, see `bootstrap`),
`FILES_CHANNEL` the kept files when they are small, `END_CHANNEL` PID 1's last word, the
job's exit code (the letter in upper case for a plain record), and
`job_worker` routes records by channel in one place. Both travel in the one Docker stream, so
a results record has a log position like any output, and the results are stored with their
own cursor into that stream (`job_results`), as durable as the log.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Final

ESCAPE: Final = b"\x7f"
"""DEL: rare in test output, and stored by Docker's json-file as one byte (no JSON escape)."""
NEWLINE_TO_ESCAPE: Final = bytes.maketrans(b"\n", ESCAPE)
ESCAPE_TO_NEWLINE: Final = bytes.maketrans(ESCAPE, b"\n")
LOG_CHANNEL: Final = b"r"
RESULTS_CHANNEL: Final = b"t"
"""Our pytest plugin's records (`job_plugin/_ci_pytest_results.py`): one JSON object a line,
a line possibly spread over several records."""
FILES_CHANNEL: Final = b"f"
"""`OUTPUT_DIR` (the kept files) as a base64 tar, when small (`artifacts.pack_output`): sent
just before PID 1's last word, spread over as many records as it takes."""
END_CHANNEL: Final = b"a"
"""PID 1's last record: the container's exit code, sent once the kept files are gathered
(`artifacts`), just before it exits. The controller copies the files out while the container
is still going down, and on a 0 ends the job without waiting for the engine to see the exit
(~0.1 s later, `job_worker`)."""
RECORD_BYTES: Final = 16_000
"""The most a record holds (escaped, before its marker and newline): under Docker's 16 KiB
line buffer, so Docker never splits one."""
GATHER_SECONDS: Final = 0.01
"""How long PID 1 collects output before sending it on: long enough to pack a chatty job's
lines into few records, short beside the 250 ms within which followers see any output."""
GATHER_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class OutputRecord:
    """What one Docker message of a job container carries: `data` on `channel`."""

    channel: bytes
    data: bytes


def escape(data: bytes) -> bytes:
    return data.replace(ESCAPE, ESCAPE + b"0").replace(b"\n", ESCAPE + b"1")


def unescape(data: bytes) -> bytes:
    # Every ESCAPE in escaped text starts a two-byte token, so this order is exact.
    return data.replace(ESCAPE + b"1", b"\n").replace(ESCAPE + b"0", ESCAPE)


def encode_records(data: bytes, *, channel: bytes = LOG_CHANNEL) -> bytes:
    """`data` as records, ready for the container's stdout (what `bootstrap` writes)."""
    plain = ESCAPE not in data
    if plain:
        body, marker = data.translate(NEWLINE_TO_ESCAPE), ESCAPE + channel.upper()
    else:
        body, marker = escape(data), ESCAPE + channel
    records: list[bytes] = []
    start = 0
    while start < len(body):
        end = _record_end(body, start, tokens=not plain)
        records.append(marker + body[start:end] + b"\n")
        start = end
    return b"".join(records)


def _record_end(escaped: bytes, start: int, *, tokens: bool) -> int:
    """Where the record that begins at `start` ends: at most `RECORD_BYTES` on, never inside
    an escape token (`tokens`: the body is escaped, not plain) or a UTF-8 character."""
    end = start + RECORD_BYTES
    if end >= len(escaped):
        return len(escaped)
    if tokens and escaped[end - 1] == ESCAPE[0]:
        end -= 1
    for _ in range(3):
        if escaped[end] & 0xC0 != 0x80:
            break
        end -= 1
    return end


def whole_characters(data: bytes) -> tuple[bytes, bytes]:
    """`data` cut before a UTF-8 character its end breaks off, and the cut-off bytes: PID 1
    reads at most a batch at once, which may end inside a character, and sends the rest with
    the next batch (a record ending in half a character would be stored as U+FFFD)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the lead
            continue
        length = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        return (data, b"") if back >= length else (data[:-back], data[-back:])
    return data, b""


def decode_frame(message: bytes) -> OutputRecord:
    """The record in one Docker log message; a message that is no record is log output as
    it stands. (Channels are letters; escape tokens, digits.)"""
    channel = message[1:2]
    if message[:1] != ESCAPE or not channel.isalpha():
        return OutputRecord(channel=LOG_CHANNEL, data=message)
    end = -1 if message.endswith(b"\n") else len(message)
    if channel.isupper():
        return OutputRecord(
            channel=channel.lower(), data=message[2:end].translate(ESCAPE_TO_NEWLINE)
        )
    return OutputRecord(channel=channel, data=unescape(message[2:end]))


def encoder_source() -> str:
    """`encode_records` and what it needs as Python source, for `bootstrap` to run inside the
    container: one implementation of the framing, tested here."""
    constants = {
        "ESCAPE": ESCAPE,
        "LOG_CHANNEL": LOG_CHANNEL,
        "RESULTS_CHANNEL": RESULTS_CHANNEL,
        "FILES_CHANNEL": FILES_CHANNEL,
        "END_CHANNEL": END_CHANNEL,
        "RECORD_BYTES": RECORD_BYTES,
    }
    lines = [f"{name} = {value!r}" for name, value in constants.items()]
    lines.append("NEWLINE_TO_ESCAPE = bytes.maketrans(b'\\n', ESCAPE)")
    functions = (escape, encode_records, _record_end, whole_characters)
    return "\n".join(lines) + "\n" + "".join(inspect.getsource(f) for f in functions)
