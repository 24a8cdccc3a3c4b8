"""Fair shares: at most DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER running tasks per user, free slots round-robin
across users (issue 15, finding 3: four global slots and no per-user limit let one user hold every slot)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine_api.flows import Downloads, first_events

USERS = ("ann-0015", "bea-0015", "cat-0015")
TASKS_EACH = 5


async def _running(downloads: Downloads, tasks: dict[str, list[pb.Task]]) -> dict[str, list[str]]:
    running: dict[str, list[str]] = {}
    for user, mine in tasks.items():
        for task in mine:
            if (await downloads.get(task.id, user)).status == pb.TASK_STATUS_PROCESSING:
                running.setdefault(user, []).append(task.id)
    return running


async def _until_running(downloads: Downloads, tasks: dict[str, list[pb.Task]], count: int) -> dict[str, list[str]]:
    async with asyncio.timeout(30):  # a hang guard, not a measurement
        while True:
            running = await _running(downloads, tasks)
            if sum(len(ids) for ids in running.values()) >= count:
                return running
            await asyncio.sleep(0.02)


async def test_three_users_with_five_slow_tasks_each_share_four_slots(
    serve: Callable[..., AbstractAsyncContextManager[Downloads]], database_url: str
) -> None:
    async with serve(database_url, DOWNLOAD_MAX_ACTIVE_TASKS="4") as downloads:
        origin = downloads.origin
        gates: dict[str, asyncio.Event] = {}
        tasks: dict[str, list[pb.Task]] = {user: [] for user in USERS}
        first: dict[str, pb.TaskEvent] = {}
        streams: list[Any] = []
        # The users arrive one after the other, each starting all five tasks: the worst case for the last one.
        for user in USERS:
            for k in range(TASKS_EACH):
                folder = f"fair/{user}/{k}"
                origin.write(f"{folder}/s.ts", b"\x47" * 188)
                playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ns.ts\n#EXT-X-ENDLIST\n"
                origin.write(f"{folder}/index.m3u8", playlist.encode())
                gates[f"{user}/{k}"] = origin.gate(f"{folder}/s.ts")  # slow: runs until the test lets it end
                task = await downloads.create(f"{folder}/index.m3u8", user=user)
                tasks[user].append(task)
                stream = downloads.start_stream(task.id, user)
                streams.append(stream)
                async for event in first_events(stream, 1):
                    first[task.id] = event

        running = await _until_running(downloads, tasks, 4)
        assert {user: len(ids) for user, ids in running.items()} == {USERS[0]: 2, USERS[1]: 2}  # the cap is strict
        assert [t.id for t in tasks[USERS[0]][:2]] == running[USERS[0]]  # a user's own tasks keep their order
        third = tasks[USERS[0]][2]
        assert "waiting for one of your 2 slots" in first[third.id].message, first[third.id].message

        gates[f"{USERS[0]}/0"].set()  # the first slot frees: it goes to the user with nothing running
        async with asyncio.timeout(30):
            ended = await downloads.watch(tasks[USERS[0]][0].id, USERS[0])  # the stream ends with the run
        assert ended[-1].status == pb.TASK_STATUS_COMPLETED
        running = await _until_running(downloads, tasks, 4)
        assert Counter({user: len(ids) for user, ids in running.items()}) == Counter(
            {USERS[0]: 1, USERS[1]: 2, USERS[2]: 1}
        )
        assert running[USERS[2]] == [tasks[USERS[2]][0].id]
        for stream in streams:
            stream.cancel()
        for gate in gates.values():
            gate.set()
