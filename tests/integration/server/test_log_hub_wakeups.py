"""The log hub on PostgreSQL, woken by the database's notices (LISTEN/NOTIFY) instead of
polling: with its polling slowed to 30 s, a new chunk still reaches a follower at once while
the feed listens, and polling takes over again when the feed breaks."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg

from ci_common.change_feed import ChangeTopic
from ci_persistence import DatabaseLocation, change_feed_at
from ci_persistence.postgres import open_postgres_repository
from ci_server.log_hub import ChunkBatch, LogHub

SLOW = 30.0


async def test_a_chunk_reaches_a_follower_by_notice_and_by_polling_once_the_feed_broke(
    postgres_url: str,
) -> None:
    repo = await open_postgres_repository(postgres_url)
    user = await repo.create_user(name="a", email="a@x.org")
    job = await repo.create_job(user_id=user.id, archive=b"PK")
    await repo.mark_running(job.id, container_id=None)
    feed = change_feed_at(
        DatabaseLocation(path=Path("unused.db"), url=postgres_url),
        topic=ChangeTopic.JOBS,
        name="hub under test",
    )
    assert feed is not None
    states: list[bool] = []
    changed = asyncio.Event()
    async with LogHub(repo, poll_interval=0.02, full_check_interval=SLOW) as hub:

        def on_live(live: bool) -> None:
            states.append(live)
            changed.set()
            hub.changes_pushed(live)

        listening = asyncio.create_task(feed.run(on_change=hub.job_changed, on_live=on_live))
        try:
            await asyncio.wait_for(changed.wait(), 5)
            assert states == [True]
            async with hub.follow(await repo.get_job(job.id)) as follower:
                await asyncio.sleep(0.1)  # the hub's first look (subscribing pokes it) is over
                await repo.append_log(job.id, "by notice\n", cursor=None)
                update = await asyncio.wait_for(follower.next(), 2)  # not SLOW: woken
                assert isinstance(update, ChunkBatch) and b"by notice" in update.joined

                changed.clear()
                admin = await asyncpg.connect(postgres_url)
                try:
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'hub under test'"
                    )
                finally:
                    await admin.close()
                await asyncio.wait_for(changed.wait(), 5)
                assert states == [True, False]
                await repo.append_log(job.id, "by polling\n", cursor=None)
                update = await asyncio.wait_for(follower.next(), 2)
                assert isinstance(update, ChunkBatch) and b"by polling" in update.joined
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
    await repo.close()
