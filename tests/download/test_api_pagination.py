"""List RPCs: keyset pages that neither skip nor repeat, signed tokens bound to caller and query, sizes, order."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import grpc

from download_server.domain.models import TaskStatus
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi, rpc_failure
from tests.download.helpers import at, make_failure, make_task

ALICE, BOB = "alice-0004", "bob-0004"


async def walk(api: DownloadApi, user: str, page_size: int, **query: Any) -> tuple[list[pb.Task], list[int]]:
    """Every page of ListTasks; returns the tasks in order and each page's total_size."""
    tasks: list[pb.Task] = []
    totals: list[int] = []
    token = ""
    while True:
        page = await api.stub.ListTasks(
            pb.ListTasksRequest(page_size=page_size, page_token=token, **query), metadata=api.auth(user)
        )
        assert len(page.tasks) <= page_size
        tasks.extend(page.tasks)
        totals.append(page.total_size)
        token = page.next_page_token
        if not token:
            return tasks, totals


def key(task: pb.Task, field: str) -> tuple[int, int, str]:
    stamp = getattr(task, field)
    return (stamp.seconds, stamp.nanos, task.id)


async def seed(api: DownloadApi, user: str, count: int, *, start: float = 0, same_time: bool = False) -> list[str]:
    """Tasks with distinct (or, with same_time, identical) creation times, straight into the store."""
    ids = []
    for i in range(count):
        moment = at(start if same_time else start + i)
        task = make_task(user, create_time=moment, update_time=at(start + (i * 7) % count))
        await api.store.save_task(task)
        ids.append(task.id)
    return ids


async def test_walking_all_pages_returns_every_row_once_in_order(api: DownloadApi) -> None:
    await seed(api, ALICE, 17)
    await seed(api, ALICE, 6, start=5, same_time=True)  # ties on create_time are broken by id
    await seed(api, BOB, 3)
    for order_by, field, descending in [
        ("", "create_time", True),
        ("create_time desc", "create_time", True),
        ("create_time", "create_time", False),
        ("update_time desc", "update_time", True),
        ("  update_time  ", "update_time", False),
    ]:
        tasks, totals = await walk(api, ALICE, 4, order_by=order_by)
        assert set(totals) == {23}
        assert len({t.id for t in tasks}) == len(tasks) == 23, order_by
        assert [key(t, field) for t in tasks] == sorted((key(t, field) for t in tasks), reverse=descending), order_by
        assert {t.user_id for t in tasks} == {ALICE}


async def test_rows_inserted_while_walking_neither_skip_nor_repeat_existing_ones(api: DownloadApi) -> None:
    for order_by in ("create_time desc", "create_time"):
        existing = [(await api.create_task(ALICE)).id for _ in range(9)]
        seen: list[str] = []
        token, inserted = "", []
        while True:
            page = await api.stub.ListTasks(
                pb.ListTasksRequest(page_size=2, page_token=token, order_by=order_by), metadata=api.auth(ALICE)
            )
            seen.extend(t.id for t in page.tasks)
            # New rows arrive between every two pages; an offset-based walk would shift and repeat rows.
            inserted.append((await api.create_task(ALICE)).id)
            token = page.next_page_token
            if not token:
                break
        pre_existing_seen = [i for i in seen if i in existing]
        assert sorted(pre_existing_seen) == sorted(existing), order_by
        assert len(seen) == len(set(seen)), order_by
        if order_by == "create_time desc":
            assert not set(seen) & set(inserted)  # newer than where the walk started: not on later pages
        for task_id in [*existing, *inserted]:
            await api.stub.DeleteTask(pb.DeleteTaskRequest(task_id=task_id), metadata=api.auth(ALICE))


async def test_status_filter_and_total_size(api: DownloadApi) -> None:
    ids = await seed(api, ALICE, 12)
    for i, task_id in enumerate(ids):
        task = await api.store.get_task(task_id)
        task.status = [TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED][i % 3]
        await api.store.save_task(task)
    statuses = [pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PROCESSING, pb.TASK_STATUS_COMPLETED]
    tasks, totals = await walk(api, ALICE, 3, statuses=statuses)
    assert set(totals) == {8} and len(tasks) == 8
    assert {t.status for t in tasks} == {pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PROCESSING}
    none, _ = await walk(api, ALICE, 3, statuses=[pb.TASK_STATUS_CANCELLED])
    assert none == []
    refused = await rpc_failure(
        api.stub.ListTasks(pb.ListTasksRequest(statuses=[pb.TASK_STATUS_UNSPECIFIED]), metadata=api.auth(ALICE))
    )
    assert "statuses" in refused.violations


async def test_page_size_default_clamp_and_negative(api: DownloadApi) -> None:
    await seed(api, ALICE, 105)
    md = api.auth(ALICE)
    default = await api.stub.ListTasks(pb.ListTasksRequest(), metadata=md)
    assert (len(default.tasks), default.total_size) == (20, 105) and default.next_page_token
    clamped = await api.stub.ListTasks(pb.ListTasksRequest(page_size=1000), metadata=md)
    assert len(clamped.tasks) == 100 and clamped.next_page_token
    rest = await api.stub.ListTasks(pb.ListTasksRequest(page_size=100, page_token=clamped.next_page_token), metadata=md)
    assert (len(rest.tasks), rest.next_page_token) == (5, "")
    negative = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(page_size=-1), metadata=md))
    assert negative.code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in negative.violations


async def test_order_by_accepts_only_the_documented_forms(api: DownloadApi) -> None:
    md = api.auth(ALICE)
    for order_by in ("create_time asc", "name", "create_time desc, id", "-create_time", "update_time  desc  x"):
        refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(order_by=order_by), metadata=md))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and "order_by" in refused.violations, order_by


def _flip(text: str, at_index: int) -> str:
    swapped = "A" if text[at_index] != "A" else "B"
    return text[:at_index] + swapped + text[at_index + 1 :]


async def test_tampered_and_foreign_tokens_are_refused(api: DownloadApi) -> None:
    alices = await seed(api, ALICE, 5)
    await seed(api, BOB, 5)
    md = api.auth(ALICE)
    token = (await api.stub.ListTasks(pb.ListTasksRequest(page_size=2), metadata=md)).next_page_token
    payload, mac = token.split(".")
    forged_payload = base64.urlsafe_b64encode(b'[0,"00000000-0000-0000-0000-000000000000"]').rstrip(b"=").decode()
    bobs = (await api.stub.ListTasks(pb.ListTasksRequest(page_size=2), metadata=api.auth(BOB))).next_page_token
    filtered = (
        await api.stub.ListTasks(pb.ListTasksRequest(page_size=2, statuses=[pb.TASK_STATUS_PENDING]), metadata=md)
    ).next_page_token
    by_update = (
        await api.stub.ListTasks(pb.ListTasksRequest(page_size=2, order_by="update_time"), metadata=md)
    ).next_page_token
    bad_tokens = {
        "payload bit": f"{_flip(payload, 3)}.{mac}",
        "mac bit": f"{payload}.{_flip(mac, 5)}",
        "forged payload": f"{forged_payload}.{mac}",
        "truncated": token[:-4],
        "no mac": payload,
        "garbage": "not a token",
        "non-ascii": "ключ.ключ",
        "another user's": bobs,
        "another filter's": filtered,
        "another order's": by_update,
    }
    for case, bad in bad_tokens.items():
        refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(page_size=2, page_token=bad), metadata=md))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in refused.violations, case
    # A ListTasks token does not continue another method's query either.
    task_id = alices[0]
    for call in (
        api.stub.ListFailures(pb.ListFailuresRequest(page_token=token), metadata=md),
        api.stub.ListTaskVideos(pb.ListTaskVideosRequest(task_id=task_id, page_token=token), metadata=md),
    ):
        refused = await rpc_failure(call)
        assert "page_token" in refused.violations
    # The genuine token still works, and twice: tokens are stateless.
    for _ in range(2):
        page = await api.stub.ListTasks(pb.ListTasksRequest(page_size=2, page_token=token), metadata=md)
        assert len(page.tasks) == 2


async def test_failure_lists_page_too(api: DownloadApi) -> None:
    ids = await seed(api, ALICE, 2)
    for i in range(7):
        await api.store.add_failure(make_failure(ids[i % 2], create_time=at(i)))
    md = api.auth(ALICE)

    async def walk_failures(request: Any, method: str) -> list[str]:
        seen: list[str] = []
        while True:
            page = await getattr(api.stub, method)(request, metadata=md)
            seen.extend(f.id for f in page.failures)
            if not page.next_page_token:
                return seen
            request.page_token = page.next_page_token

    all_ids = await walk_failures(pb.ListFailuresRequest(page_size=3), "ListFailures")
    assert len(all_ids) == len(set(all_ids)) == 7
    expected: Sequence[str] = [
        f.id
        for f in sorted(
            [*await api.store.task_failures(ids[0]), *await api.store.task_failures(ids[1])],
            key=lambda f: f.create_time,
            reverse=True,
        )
    ]
    assert all_ids == list(expected)
    first_task = await walk_failures(pb.ListTaskFailuresRequest(task_id=ids[0], page_size=2), "ListTaskFailures")
    assert len(first_task) == 4
    filtered = await walk_failures(pb.ListFailuresRequest(task_id=ids[1], page_size=1), "ListFailures")
    assert len(filtered) == 3
