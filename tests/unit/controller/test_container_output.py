"""The framing between a job container's PID 1 and the controller: exact both ways, records
that Docker never splits, and messages that are no record kept as they are."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_controller.container_output import (
    ESCAPE,
    LOG_CHANNEL,
    RECORD_BYTES,
    RESULTS_CHANNEL,
    decode_frame,
    encode_records,
    encoder_source,
    whole_characters,
)

DOCKER_LINE_BUFFER = 16 * 1024


def docker_messages(encoded: bytes) -> list[bytes]:
    """The messages Docker makes of a container's output: one per line (`\n` only)."""
    lines = encoded.split(b"\n")
    return [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def decoded(encoded: bytes) -> bytes:
    return b"".join(decode_frame(message).data for message in docker_messages(encoded))


@given(st.binary(max_size=50_000))
def test_any_bytes_come_back_exactly(data: bytes) -> None:
    assert decoded(encode_records(data)) == data


@given(st.lists(st.sampled_from([b"\n", ESCAPE, b"0", b"1", b"r", b"x", "é".encode()])))
def test_escapes_and_newlines_in_any_order_come_back_exactly(parts: list[bytes]) -> None:
    data = b"".join(parts) * 500
    assert decoded(encode_records(data)) == data


def test_a_record_is_one_docker_message_that_docker_never_splits() -> None:
    data = (b"x" * 94 + b"\n") * 20_000

    found = docker_messages(encode_records(data))

    assert all(message.endswith(b"\n") and message.count(b"\n") == 1 for message in found)
    assert all(len(message) <= RECORD_BYTES + 3 < DOCKER_LINE_BUFFER for message in found)
    assert len(found) <= 121  # for 20,000 lines: 1.92 MB escaped, in pieces of 16,000 bytes


def test_records_never_split_a_utf8_character() -> None:
    for shift in range(4):
        data = b"a" * shift + "€ü".encode() * 20_000  # 3- and 2-byte characters

        for message in docker_messages(encode_records(data)):
            decode_frame(message).data.decode("utf-8")  # raises if a character was cut


def test_a_partial_line_is_a_record_of_its_own() -> None:
    assert encode_records(b"....") == ESCAPE + LOG_CHANNEL.upper() + b"....\n"
    assert decoded(encode_records(b"....")) == b"...."


def test_output_without_the_escape_byte_is_sent_plain_and_with_it_escaped() -> None:
    plain = encode_records(b"one\ntwo\n")
    escaped = encode_records(b"one\x7f\ntwo\n")

    assert plain == ESCAPE + LOG_CHANNEL.upper() + b"one\x7ftwo\x7f\n"
    assert escaped == ESCAPE + LOG_CHANNEL + b"one\x7f0\x7f1two\x7f1\n"
    for encoded, data in ((plain, b"one\ntwo\n"), (escaped, b"one\x7f\ntwo\n")):
        [record] = [decode_frame(message) for message in docker_messages(encoded)]
        assert (record.channel, record.data) == (LOG_CHANNEL, data)


def test_a_plain_record_may_end_in_a_newline_turned_escape() -> None:
    data = b"x" * (RECORD_BYTES - 1) + b"\n" + b"y" * 10

    messages = docker_messages(encode_records(data))

    assert len(messages[0]) == RECORD_BYTES + 3  # the full record: no token to keep whole
    assert decoded(encode_records(data)) == data


def test_a_results_record_keeps_its_channel_and_its_bytes() -> None:
    line = b'{"kind": "test", "nodeid": "t.py::a\n\x7f"}\n' * 800
    messages = docker_messages(encode_records(line, channel=RESULTS_CHANNEL))

    records = [decode_frame(message) for message in messages]
    assert len(records) > 1  # a long line goes in several records, the reader joins them
    assert {record.channel for record in records} == {RESULTS_CHANNEL}
    assert b"".join(record.data for record in records) == line


def test_a_message_that_is_no_record_is_output_as_it_stands() -> None:
    for message in (b"plain line\n", b"partial", ESCAPE + b"1 not a record\n", b""):
        record = decode_frame(message)
        assert (record.channel, record.data) == (LOG_CHANNEL, message)


def test_the_container_runs_this_very_encoder() -> None:
    namespace: dict[str, object] = {}
    exec(encoder_source(), namespace)  # our own source, as the bootstrap runs it
    encode = cast(Callable[[bytes], bytes], namespace["encode_records"])
    data = ("line é\n" * 5000 + "\x7f tail").encode()

    assert encode(data) == encode_records(data)


@pytest.mark.parametrize("text", ["ascii", "é", "€", "𝄞", "x€y𝄞é"])
def test_a_batch_cut_inside_a_character_keeps_its_start_for_the_next(text: str) -> None:
    data = text.encode()
    for cut in range(len(data) + 1):
        whole, rest = whole_characters(data[:cut])
        assert whole + rest == data[:cut]
        whole.decode()  # never half a character
        assert len(rest) < 4
        (rest + data[cut:]).decode()
