"""Log output: flushed per chunk, colours kept on a terminal, stripped elsewhere."""

from __future__ import annotations

import io

import pytest

from ci_client.output import LogWriter, colour_wanted, strip_ansi

RED = "\x1b[31m"
RESET = "\x1b[0m"


class TtyBuffer(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.flushes = 0

    def isatty(self) -> bool:
        return self.tty

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_strip_ansi_removes_colours_cursor_moves_and_osc() -> None:
    text = f"{RED}FAILED{RESET} \x1b[1;32mok\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[2K"
    assert strip_ansi(text) == "FAILED ok link "


def test_colours_kept_on_a_tty_only() -> None:
    assert colour_wanted(TtyBuffer(tty=True), {})
    assert not colour_wanted(TtyBuffer(tty=False), {})


@pytest.mark.parametrize(
    ("env", "tty", "wanted"),
    [
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),
    ],
)
def test_no_color_and_force_color(env: dict[str, str], tty: bool, wanted: bool) -> None:
    assert colour_wanted(TtyBuffer(tty=tty), env) is wanted


def test_each_chunk_is_flushed_as_it_comes() -> None:
    out = TtyBuffer(tty=True)
    writer = LogWriter(out, keep_colour=True)
    writer.write(f"{RED}a{RESET}\n")
    assert out.getvalue() == f"{RED}a{RESET}\n"
    assert out.flushes == 1
    writer.write("b")
    assert out.flushes == 2


def test_a_sequence_split_across_chunks_is_stripped_whole() -> None:
    out = TtyBuffer(tty=False)
    writer = LogWriter(out, keep_colour=False)
    writer.write("x\x1b[3")
    assert out.getvalue() == "x"
    writer.write("1mred\x1b")
    writer.write("[0m\n")
    writer.finish()
    assert out.getvalue() == "xred\n"


def test_finish_ends_on_a_new_line() -> None:
    out = TtyBuffer(tty=False)
    writer = LogWriter(out, keep_colour=False)
    writer.write("no newline")
    writer.finish()
    assert out.getvalue() == "no newline\n"
    writer.finish()
    assert out.getvalue() == "no newline\n"
