"""domain.leases.fair_pick: round-robin across users, the user running fewest first, never past the cap."""

from __future__ import annotations

from datetime import timedelta

from download_server.domain.leases import fair_pick
from download_server.domain.models import Task, TaskStatus
from tests.download.helpers import at, make_task


def _queued(user: str, second: float, name: str) -> Task:
    task = make_task(user_id=user, status=TaskStatus.PENDING)
    task.id, task.queued_time = name, at(second)
    return task


def test_round_robin_across_users_in_each_user_s_own_order() -> None:
    line = [_queued("a", i, f"a{i}") for i in range(5)] + [_queued("b", 10 + i, f"b{i}") for i in range(5)]
    picked = fair_pick(line, {}, 2, 4)
    assert [t.id for t in picked] == ["a0", "b0", "a1", "b1"]


def test_the_user_running_fewest_goes_first_and_nobody_passes_the_cap() -> None:
    line = [_queued("a", 1, "a3"), _queued("b", 2, "b3"), _queued("c", 3, "c1"), _queued("c", 4, "c2")]
    picked = fair_pick(line, {"a": 1, "b": 2}, 2, 3)
    assert [t.id for t in picked] == ["c1", "a3", "c2"]


def test_interrupted_runs_go_before_the_queue_and_no_cap_is_zero() -> None:
    resumed = make_task(user_id="a", status=TaskStatus.PROCESSING)
    resumed.id, resumed.update_time = "r", at(50) + timedelta(days=1)
    line = [resumed, *(_queued("a", i, f"a{i}") for i in range(3))]
    assert [t.id for t in fair_pick(line, {}, 0, 10)] == ["r", "a0", "a1", "a2"]
