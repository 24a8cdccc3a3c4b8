"""SqlLeases on SQLite and PostgreSQL: claims never overlap, leases are renewed and released by their token,
a lapsed lease makes the task claimable again, commands wait for the lease holder, and the queue keeps order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from download_server.adapters.store import SqlTaskStore
from download_server.domain import leases as claims
from download_server.domain.leases import Outcome
from download_server.domain.lifecycle import Action
from download_server.domain.models import Task, TaskStatus, utcnow
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations
from mediadl_common.errors import FailedPrecondition, NotFound
from tests.download.helpers import make_task, sql_leases, sql_store


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    run_migrations(database_url, SCRIPT_LOCATION)
    database = Database(database_url, pool_size=4)
    yield database
    database.close()


async def queued_tasks(store: SqlTaskStore, count: int) -> list[Task]:
    base = utcnow()
    tasks = [make_task("user-1", queued_time=base + timedelta(seconds=i)) for i in range(count)]
    for task in tasks:
        await store.save_task(task)
    return tasks


async def test_concurrent_claims_never_take_the_same_task(db: Database, database_url: str) -> None:
    tasks = await queued_tasks(sql_store(db), 12)
    other = Database(database_url, pool_size=4)  # another replica: its own pool and its own lock
    try:
        first, second = sql_leases(db), sql_leases(other)
        rounds = await asyncio.gather(
            *(leases.claim(owner, 3, 30, ()) for _ in range(4) for owner, leases in (("a", first), ("b", second)))
        )
    finally:
        other.close()
    taken = [claim.task.id for found in rounds for claim in found]
    assert sorted(taken) == sorted(t.id for t in tasks)  # each exactly once
    assert all(claim.task.status is TaskStatus.PROCESSING and not claim.resumed for found in rounds for claim in found)
    assert await first.claim("c", 5, 30, ()) == []


async def test_a_lease_lives_while_renewed_and_a_lapsed_one_is_claimed_again(db: Database) -> None:
    leases = sql_leases(db)
    [task] = await queued_tasks(sql_store(db), 1)
    [claim] = await leases.claim("replica-a", 5, 30, ())
    assert claim.previous_owner is None and not claim.lapsed
    assert await leases.claim("replica-b", 5, 30, ()) == []  # held
    assert await leases.renew({task.id: claim.token}, 30) == {task.id: None}
    assert await leases.renew({task.id: "not-the-token"}, 30) == {}

    await leases.renew({task.id: claim.token}, -1)  # as if replica-a had stopped renewing a second ago
    [again] = await leases.claim("replica-b", 5, 30, ())
    assert (again.resumed, again.previous_owner, again.lapsed) == (True, "replica-a", True)
    assert await leases.renew({task.id: claim.token}, 30) == {}  # replica-a learns it lost the task
    await leases.release(task.id, claim.token)  # and its late release changes nothing
    state = await leases.inspect(task.id)
    assert state is not None and (state.live, state.owner, state.token) == (True, "replica-b", again.token)


async def test_a_command_waits_for_the_holder_and_outlives_a_hand_back(db: Database) -> None:
    leases = sql_leases(db)
    [task] = await queued_tasks(sql_store(db), 1)
    [claim] = await leases.claim("replica-a", 1, 30, ())

    decision = await leases.act(task.id, claims.stop(Action.PAUSE))
    assert (decision.outcome, decision.owner, decision.token) == (Outcome.OWNER, "replica-a", claim.token)
    assert await leases.renew({task.id: claim.token}, 30) == {task.id: Action.PAUSE}
    # Handed back before acting (a drain): the task stays PROCESSING and the next claimer gets the command.
    await leases.release(task.id, claim.token)
    [next_claim] = await leases.claim("replica-b", 1, 30, ())
    assert (next_claim.command, next_claim.previous_owner, next_claim.lapsed) == (Action.PAUSE, "replica-a", False)

    # A run that ends in another state drops the command with its lease.
    store = sql_store(db)
    stored = await store.get_task(task.id)
    stored.apply(Action.PAUSE)
    await store.save_task(stored)
    await leases.release(task.id, next_claim.token)
    with pytest.raises(FailedPrecondition):
        await leases.act(task.id, claims.stop(Action.PAUSE))  # PAUSED already
    resumed = await leases.act(task.id, claims.resume())
    assert resumed.outcome is Outcome.QUEUED
    [fresh] = await leases.claim("replica-c", 1, 30, ())
    assert fresh.command is None


async def test_without_a_live_lease_actions_change_the_state_at_once(db: Database) -> None:
    leases = sql_leases(db)
    first, second, third = await queued_tasks(sql_store(db), 3)
    assert await leases.position(third.id) == (3, 3)
    cancelled = await leases.act(second.id, claims.stop(Action.CANCEL))
    assert (cancelled.outcome, cancelled.was_active, cancelled.task.status) == (
        Outcome.DONE,
        True,
        TaskStatus.CANCELLED,
    )
    assert await leases.position(third.id) == (2, 2)
    with pytest.raises(NotFound):  # someone else's task: nothing happens to it
        await leases.remove(first.id, "user-2", claims.delete("replica-a"))
    deleting, deleted = await leases.remove(first.id, "user-1", claims.delete("replica-a"))
    assert (deleting.outcome, deleting.was_active) == (Outcome.REMOVE, True)
    assert deleted is not None and deleted.task.id == first.id and deleted.video is None
    with pytest.raises(NotFound):
        await sql_store(db).get_task(first.id)
    assert [claim.task.id for claim in await leases.claim("replica-a", 5, 30, ())] == [third.id]
    queue = await leases.queue(10)
    assert (queue.head, queue.total) == ([], 0)
    assert await leases.runnable() == 0


async def test_deleting_a_task_another_replica_runs_waits_for_that_replica(db: Database) -> None:
    leases = sql_leases(db)
    [task] = await queued_tasks(sql_store(db), 1)
    [claim] = await leases.claim("replica-b", 1, 30, ())
    asked, deleted = await leases.remove(task.id, "user-1", claims.delete("replica-a"))
    assert (asked.outcome, asked.owner, asked.token, deleted) == (Outcome.OWNER, "replica-b", claim.token, None)
    assert await leases.renew({task.id: claim.token}, 30) == {task.id: Action.DELETE}
    # The holder stops its run and hands the lease back: marked for deletion, nobody claims it meanwhile.
    await leases.release(task.id, claim.token)
    assert await leases.claim("replica-c", 5, 30, ()) == []
    assert await leases.runnable() == 0
    done, deleted = await leases.remove(task.id, "user-1", claims.delete("replica-a"))
    assert done.outcome is Outcome.REMOVE and deleted is not None
    assert await leases.inspect(task.id) is None


async def test_taking_a_task_at_once_or_queuing_it(db: Database) -> None:
    leases = sql_leases(db)
    store = sql_store(db)
    task = make_task("user-1")
    await store.save_task(task)
    taken = await leases.act(task.id, claims.start(claims.Take("replica-a", 30)))
    assert (taken.outcome, taken.task.status) == (Outcome.CLAIMED, TaskStatus.PROCESSING)
    assert (await leases.act(task.id, claims.start())).outcome is Outcome.ATTACH  # running: attach
    state = await leases.inspect(task.id)
    assert state is not None and (state.owner, state.token, state.live) == ("replica-a", taken.token, True)

    later = make_task("user-1")
    await store.save_task(later)
    queued = await leases.act(later.id, claims.start())
    assert (queued.outcome, (await store.get_task(later.id)).queued_time is not None) == (Outcome.QUEUED, True)
    assert await leases.runnable() == 1
    assert await leases.reset(None) == 1  # one process on SQLite: leases of its previous run are void
    assert {claim.task.id for claim in await leases.claim("replica-b", 5, 30, ())} == {task.id, later.id}
