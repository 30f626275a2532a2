"""Reading a container's output off the engine: a reader slower than the container holds a
bounded number of frames, not the log, and still gets every frame once, in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import cast

from ci_controller.docker.engine_api import EngineApi
from ci_controller.docker.logs import QUEUED_FRAMES, read_output

FRAMES = 1000


class CountingStream:
    """A log stream of `FRAMES` timestamped lines that counts how many were taken."""

    def __init__(self) -> None:
        self.taken = 0
        self.past_the_bound = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for number in range(FRAMES):
            self.taken += 1
            if self.taken > QUEUED_FRAMES:
                self.past_the_bound.set()
            yield f"2026-01-01T00:00:01.{number:09d}Z line {number}\n".encode()

    def close(self) -> None:
        pass


class Engine:
    def __init__(self, stream: CountingStream) -> None:
        self.stream = stream

    def logs(self, container: str, **_: object) -> CountingStream:
        return self.stream


async def test_a_slow_reader_holds_a_bounded_number_of_frames_and_misses_none() -> None:
    stream = CountingStream()
    frames = read_output(cast(EngineApi, Engine(stream)), "c1", after=None)

    received = [await anext(frames)]
    assert await asyncio.to_thread(stream.past_the_bound.wait, 5)
    # The pump is now waiting for room; give it time to (wrongly) read on.
    await asyncio.sleep(0.3)
    assert QUEUED_FRAMES < stream.taken <= QUEUED_FRAMES + 2

    received += [frame async for frame in frames]
    assert [frame.data for frame in received] == [
        f"line {number}\n".encode() for number in range(FRAMES)
    ]
    assert stream.taken == FRAMES
