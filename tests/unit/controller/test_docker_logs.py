"""Reading a container's output off the engine: a reader slower than the container holds a
bounded number of frames, not the log, and still gets every frame once, in order; and the
container's attached output is read only as fast as the reader takes the log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import cast

from ci_controller.docker.engine_api import EngineApi
from ci_controller.docker.logs import QUEUED_FRAMES, read_output
from ci_controller.docker.output_pacing import WINDOW_BYTES

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


BLOCK = 4 * 1024


class BlockStream:
    """`FRAMES` timestamped log lines of `BLOCK` bytes each."""

    def __iter__(self) -> Iterator[bytes]:
        for number in range(FRAMES):
            yield f"2026-01-01T00:00:01.{number:09d}Z ".encode() + b"x" * (BLOCK - 1) + b"\n"

    def close(self) -> None:
        pass


class AttachedStream:
    """The same output as attached: `FRAMES` blocks of `BLOCK` bytes, counting those read."""

    def __init__(self) -> None:
        self.read = 0
        self.closed = threading.Event()
        self._progress = threading.Condition()

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(FRAMES):
            if self.closed.is_set():
                return
            with self._progress:
                self.read += BLOCK
                self._progress.notify_all()
            yield b"x" * (BLOCK - 1) + b"\n"

    def wait_for(self, read: int) -> None:
        with self._progress:
            self._progress.wait_for(lambda: self.read >= read, timeout=5)

    def close(self) -> None:
        self.closed.set()


class Engine:
    def __init__(
        self, stream: CountingStream | BlockStream, attached: AttachedStream | None = None
    ) -> None:
        self.stream = stream
        self.attached = attached

    def logs(self, container: str, **_: object) -> CountingStream | BlockStream:
        return self.stream

    def attach(self, container: str, **_: object) -> AttachedStream:
        if self.attached is None:
            raise ConnectionError("attach refused")
        return self.attached


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


async def test_the_attached_output_is_read_only_a_window_ahead_of_the_reader() -> None:
    attached = AttachedStream()
    frames = read_output(cast(EngineApi, Engine(BlockStream(), attached)), "c1", after=None)

    taken = 0
    async for frame in frames:
        taken += len(frame.data)
        if taken in (BLOCK, FRAMES * BLOCK // 2):
            # The reader pauses: the attach thread reads up to the window, and stops there.
            await asyncio.to_thread(attached.wait_for, taken + WINDOW_BYTES)
            await asyncio.sleep(0.2)  # time to (wrongly) read on
            assert taken + WINDOW_BYTES <= attached.read <= taken + WINDOW_BYTES + BLOCK
    assert taken == FRAMES * BLOCK
    assert attached.closed.is_set()  # the reader left: its attach stream is closed
