"""Leases and the decisions every action takes under a task's row lock (the same for every lease store).

A task is runnable when it is PROCESSING or queued (PENDING with a queued_time) and nobody holds a live
lease on it. A replica claims runnable tasks while it has free slots and renews its leases while it runs
them; a replica that stops renewing loses its tasks to the others once the lease lapses. The decisions
below are pure functions of (task, lease, database time): they change both through `Task.apply` and the
lease's own fields, and the lease store writes what they leave.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from download_server.domain.lifecycle import Action, TaskStatus
from download_server.domain.models import Task
from mediadl_common.errors import FailedPrecondition


@dataclass
class Lease:
    owner: str | None = None  # who holds it, or held it last
    token: str | None = None  # this claim's id; None: nobody runs the task now
    expires: datetime | None = None
    command: Action | None = None  # one of lifecycle.COMMANDS, left for the holder
    targets: frozenset[int] | None = None  # a retry's segment indexes
    # Filled by the lease store under the lock: how many other tasks of the same user run now (live leases).
    user_running: int = 0

    def live(self, now: datetime) -> bool:
        return self.token is not None and self.expires is not None and self.expires > now

    def grant(self, owner: str, now: datetime, seconds: float) -> None:
        self.owner, self.token, self.expires = owner, str(uuid.uuid4()), now + timedelta(seconds=seconds)

    def end(self) -> None:
        """Nobody runs the task any more, and nothing is left for a holder."""
        self.token = self.expires = self.command = self.targets = None


@dataclass(frozen=True)
class Claim:
    """A task this replica now runs (status PROCESSING, lease granted)."""

    task: Task
    token: str
    targets: frozenset[int] | None
    command: Action | None  # asked while nobody held the lease: the run applies it at once
    resumed: bool  # it was PROCESSING already (a run elsewhere stopped), not queued
    previous_owner: str | None
    lapsed: bool  # the previous owner's lease ran out (it died or stalled) rather than being handed back


@dataclass(frozen=True)
class Queue:
    head: list[Task]  # the first queued tasks, in claim order
    total: int
    # Users of the head who run as many tasks as they may: theirs wait for one of their own slots.
    busy: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LeaseState:
    status: TaskStatus
    live: bool
    owner: str | None
    token: str | None


def runnable(task: Task, lease: Lease | None, now: datetime) -> bool:
    """The claim query, for stores without SQL (the SQL lease store says the same in a WHERE clause)."""
    if lease is not None and (lease.live(now) or lease.command is Action.DELETE):
        return False
    return task.status is TaskStatus.PROCESSING or queued(task)


def claim_order(task: Task) -> tuple[int, datetime, str]:
    """Interrupted runs first, then the queue in the order tasks joined it."""
    return (0 if task.status is TaskStatus.PROCESSING else 1, task.queued_time or task.update_time, task.id)


def fair_pick(candidates: Sequence[Task], running: Mapping[str, int], per_user: int, limit: int) -> list[Task]:
    """Which runnable tasks to claim: round-robin across users, so no user starves another.

    `candidates` come in claim_order; each user's tasks keep that order. Every round gives each user with
    work one more task (those running fewest first, then whose next task has waited longest), never taking a user past
    `per_user` running tasks (0: no cap), until `limit` tasks are picked."""
    lines: dict[str, list[Task]] = {}
    for task in candidates:
        lines.setdefault(task.user_id, []).append(task)
    taken = {user: running.get(user, 0) for user in lines}
    picked: list[Task] = []
    while len(picked) < limit:
        turn = [line[0] for user, line in lines.items() if line and (per_user <= 0 or taken[user] < per_user)]
        if not turn:
            break
        # Users running fewest go first (a user with none is never behind one already running), then the
        # longest wait.
        for task in sorted(turn, key=lambda t: (taken[t.user_id], claim_order(t)))[: limit - len(picked)]:
            picked.append(lines[task.user_id].pop(0))
            taken[task.user_id] += 1
    return picked


def queued(task: Task) -> bool:
    """Waiting for a slot (a task marked for deletion is not: the lease stores leave those out)."""
    return task.status is TaskStatus.PENDING and task.queued_time is not None


def encode_targets(targets: frozenset[int] | None) -> str | None:
    return None if targets is None else ",".join(str(i) for i in sorted(targets))


def decode_targets(text: str | None) -> frozenset[int] | None:
    if text is None:
        return None
    return frozenset(int(part) for part in text.split(",") if part)


class Outcome(enum.Enum):
    ATTACH = "attach"  # already running or queued somewhere: nothing to do
    QUEUED = "queued"  # now waiting for a slot on any replica
    DONE = "done"  # the state changed here; nobody runs the task
    OWNER = "owner"  # a live lease holder must act: the command is recorded for it
    CLAIMED = "claimed"  # this replica holds the lease now (one failed part fetched at once)
    REMOVE = "remove"  # nobody else runs it: its rows go in the same transaction


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    task: Task
    owner: str | None = None  # OWNER: who must act
    was_active: bool = False  # it was running or queued (watchers of a deleted task are told)
    token: str | None = None  # CLAIMED: the new lease's token; OWNER: the token of the lease that must end
    user_running: int = 0  # QUEUED: how many other tasks of the same user run now


@dataclass(frozen=True)
class Take:
    """Run the task here at once instead of queuing it: this replica has a free slot and nothing else waits
    (and its user runs fewer than `per_user` tasks; 0: no cap)."""

    owner: str
    seconds: float
    per_user: int = 0


Decide = Callable[[Task, Lease, datetime], Decision]


def claim(task: Task, lease: Lease, now: datetime, owner: str, seconds: float) -> None:
    """A replica takes the task: PROCESSING under a fresh lease."""
    task.apply(Action.CLAIM, now=now)
    task.reclaims += 1  # back to 0 when a run ends by itself: more than 1 means the last run was interrupted
    lease.grant(owner, now, seconds)


def _enqueue(task: Task, lease: Lease, now: datetime, targets: frozenset[int] | None, take: Take | None) -> Decision:
    lease.targets, lease.command = targets, None
    under_cap = take is not None and (take.per_user <= 0 or lease.user_running < take.per_user)
    if take is not None and under_cap and not lease.live(now):
        claim(task, lease, now, take.owner, take.seconds)
        return Decision(Outcome.CLAIMED, task, token=lease.token)
    # A live lease here belongs to a run that is just ending: its release makes the task claimable.
    task.queued_time = now
    return Decision(Outcome.QUEUED, task, user_running=lease.user_running)


def start(take: Take | None = None) -> Decide:
    """PENDING or CANCELLED -> run here or queued. PROCESSING (running, or waiting to be claimed again) or
    queued already: attach."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        if task.status is TaskStatus.PROCESSING or queued(task):
            return Decision(Outcome.ATTACH, task)
        task.apply(Action.START, now=now)
        return _enqueue(task, lease, now, None, take)

    return decide


def resume(take: Take | None = None) -> Decide:
    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        task.apply(Action.RESUME, now=now)
        return _enqueue(task, lease, now, None, take)

    return decide


def retry(targets: frozenset[int], take: Take | None = None) -> Decide:
    """FAILED or PARTIAL_COMPLETED -> fetch again exactly `targets` (the open failures' indexes), here or queued."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        Action.RETRY.check(task.status)
        if not targets:
            raise FailedPrecondition("nothing to retry: every failure is resolved or abandoned", reason="TASK_STATE")
        task.apply(Action.RETRY, now=now)
        return _enqueue(task, lease, now, targets, take)

    return decide


def stop(action: Action) -> Decide:
    """PAUSE or CANCEL: a running task's lease holder is asked to stop it; anything else changes state here."""
    if action not in (Action.PAUSE, Action.CANCEL):
        raise ValueError(f"stop() takes pause or cancel, not {action}")

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        action.check(task.status)
        if task.status is TaskStatus.PROCESSING and lease.live(now):
            lease.command = action
            return Decision(Outcome.OWNER, task, owner=lease.owner, token=lease.token)
        was_queued = queued(task)
        task.apply(action, now=now)
        lease.end()
        return Decision(Outcome.DONE, task, was_active=was_queued)

    return decide


def delete(owner: str) -> Decide:
    """DeleteTask: the rows go now, unless another replica runs the task: that one is asked to stop it first
    (and marks it so that nobody claims it meanwhile). `owner` (this replica) has stopped its own run already."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        active = task.status is TaskStatus.PROCESSING or queued(task)
        task.apply(Action.DELETE, now=now)
        if task.status is TaskStatus.PROCESSING and lease.live(now) and lease.owner != owner:
            lease.command = Action.DELETE
            return Decision(Outcome.OWNER, task, owner=lease.owner, was_active=True, token=lease.token)
        return Decision(Outcome.REMOVE, task, was_active=active)

    return decide


def retry_one(owner: str, seconds: float, index: int) -> Decide:
    """RetryFailure: the receiving replica takes the lease and fetches the one part now (not queued)."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        task.apply(Action.RETRY_ONE, now=now)
        lease.grant(owner, now, seconds)
        lease.command, lease.targets = None, frozenset({index})
        return Decision(Outcome.CLAIMED, task, token=lease.token)

    return decide
