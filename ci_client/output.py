"""Writing a job's output to the terminal as it arrives.

Test output goes to stdout and is flushed per chunk, so a pipe (`ci submit test | tee log`)
sees lines as soon as the job prints them. pytest's colours are kept on a terminal and stripped
everywhere else (a file, a pipe, `NO_COLOR` set), the convention of https://no-color.org;
`FORCE_COLOR` keeps them even in a pipe (for CI systems that render ANSI). A colour sequence
split across two chunks is held back until it is complete, so stripping never leaves half of one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TextIO

ANSI_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    r"|\x1b[@-Z\\-_]"  # two-byte escapes
)
_INCOMPLETE_TAIL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?\Z")


def colour_wanted(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Keep ANSI colours on `stream`? `NO_COLOR` wins, then `FORCE_COLOR`, then is-a-tty."""
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def strip_ansi(text: str) -> str:
    return ANSI_SEQUENCE.sub("", text)


class LogWriter:
    """Writes log chunks to a text stream, flushing each, colours kept or stripped."""

    def __init__(self, stream: TextIO, *, keep_colour: bool) -> None:
        self._stream = stream
        self._keep_colour = keep_colour
        self._pending = ""
        self.ended_with_newline = True

    def write(self, chunk: str) -> None:
        if not self._keep_colour:
            chunk = self._pending + chunk
            tail = _INCOMPLETE_TAIL.search(chunk)
            self._pending = chunk[tail.start() :] if tail else ""
            chunk = strip_ansi(chunk[: tail.start()] if tail else chunk)
        if chunk:
            self._stream.write(chunk)
            self._stream.flush()
            self.ended_with_newline = chunk.endswith("\n")

    def finish(self) -> None:
        """End the output on a line boundary, so the status message that follows starts on
        its own line. A colour sequence still held back was never completed: it is dropped."""
        self._pending = ""
        if not self.ended_with_newline:
            self._stream.write("\n")
            self.ended_with_newline = True
        self._stream.flush()
