"""The controller's advisory lock on PostgreSQL: a standby waits for it, learns who holds it, and
gets it once the holder's session ends; the holder learns at once when its connection is gone."""

from __future__ import annotations

import asyncio

import asyncpg

from ci_persistence.postgres import AdvisoryLock

KEY = 4242


async def terminate_sessions(url: str, application_name: str) -> int:
    """End the sessions named `application_name` in this database, as an operator (or a
    network fault) would; returns how many."""
    admin = await asyncpg.connect(url)
    try:
        ended = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            application_name,
        )
        return len(ended)
    finally:
        await admin.close()


class Told:
    """What a waiting standby was told, and an event set when it was."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.spoke = asyncio.Event()

    def __call__(self, holder: str) -> None:
        self.lines.append(holder)
        self.spoke.set()


async def test_a_standby_says_who_holds_the_lock_and_takes_it_when_the_holder_ends(
    postgres_url: str,
) -> None:
    holder = await AdvisoryLock.try_acquire(
        postgres_url, key=KEY, holder_hint="", name="ci-controller pid 1 on alpha"
    )
    told = Told()
    waiting = asyncio.create_task(
        AdvisoryLock.acquire(
            postgres_url,
            key=KEY,
            name="standby",
            on_wait=told,
            poll_seconds=0.05,
        )
    )
    await asyncio.wait_for(told.spoke.wait(), 5)
    [holder_seen] = told.lines
    assert holder_seen.startswith("ci-controller pid 1 on alpha, connected from 127.0.0.1 since 20")
    assert not waiting.done()

    await terminate_sessions(postgres_url, "ci-controller pid 1 on alpha")  # as if kill -9
    taken = await asyncio.wait_for(waiting, 5)

    try:
        assert len(told.lines) == 1  # said once, not once per try
        await holder.release()
    finally:
        await taken.release()


async def test_the_holder_learns_at_once_that_its_connection_is_gone(postgres_url: str) -> None:
    lock = await AdvisoryLock.try_acquire(postgres_url, key=KEY, holder_hint="", name="holder")
    watching = asyncio.create_task(lock.lost())
    await asyncio.sleep(0.1)
    assert not watching.done()  # a healthy connection is not reported lost

    assert await terminate_sessions(postgres_url, "holder") == 1
    reason = await asyncio.wait_for(watching, 2)

    assert "closed" in reason or "terminat" in reason
    await lock.release()


async def test_a_waiting_standby_survives_its_own_connection_breaking(postgres_url: str) -> None:
    holder = await AdvisoryLock.try_acquire(postgres_url, key=KEY, holder_hint="", name="holder")
    told = Told()
    waiting = asyncio.create_task(
        AdvisoryLock.acquire(
            postgres_url,
            key=KEY,
            name="standby",
            on_wait=told,
            poll_seconds=0.05,
        )
    )
    await asyncio.wait_for(told.spoke.wait(), 5)

    assert await terminate_sessions(postgres_url, "standby") == 1
    await asyncio.sleep(0.2)
    assert not waiting.done()  # reconnecting, still waiting
    await holder.release()
    taken = await asyncio.wait_for(waiting, 5)
    await taken.release()
