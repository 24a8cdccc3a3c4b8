"""Leases: which replica runs a task and until when, the commands other replicas leave for it, and the
decisions every action takes under the task's row lock (the same for the SQL and the in-memory lease stores).

A task is runnable when it is PROCESSING or queued (PENDING with a queued_time) and nobody holds a live
lease on it. A replica claims runnable tasks while it has free slots and renews its leases while it runs
them; a replica that stops renewing loses its tasks to the others once the lease lapses.
"""

from __future__ import annotations

import enum
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from download_server.domain.models import Task, TaskStatus, require_transition
from mediadl_common.errors import FailedPrecondition

T = TypeVar("T")


class Command(enum.StrEnum):
    """What another replica asks the lease holder to do with a task it runs."""

    PAUSE = "pause"
    CANCEL = "cancel"
    DELETE = "delete"


@dataclass(frozen=True)
class ReplicaSettings:
    replica_id: str
    lease_seconds: float = 15.0
    # How often a replica looks for runnable tasks without being nudged (a dead replica's lapsed leases
    # announce nothing, so this bounds how late its tasks are picked up after the lease).
    claim_interval: float = 2.0


def default_replica_id() -> str:
    """hostname-pid-random: unique per process, readable in logs and in tasks.lease_owner."""
    return f"{socket.gethostname()[:80]}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Lease:
    owner: str | None = None  # who holds it, or held it last
    token: str | None = None  # this claim's id; None: nobody runs the task now
    expires: datetime | None = None
    command: Command | None = None
    targets: frozenset[int] | None = None  # a retry's segment indexes

    def live(self, now: datetime) -> bool:
        return self.token is not None and self.expires is not None and self.expires > now

    def grant(self, owner: str, now: datetime, seconds: float) -> None:
        self.owner, self.token, self.expires = owner, str(uuid.uuid4()), now + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Claim:
    """A task this replica now runs (status PROCESSING, lease granted)."""

    task: Task
    token: str
    targets: frozenset[int] | None
    command: Command | None  # asked while nobody held the lease: the run applies it at once
    resumed: bool  # it was PROCESSING already (a run elsewhere stopped), not queued
    previous_owner: str | None
    lapsed: bool  # the previous owner's lease ran out (it died or stalled) rather than being handed back


@dataclass(frozen=True)
class Queue:
    head: list[Task]  # the first queued tasks, in claim order
    total: int


@dataclass(frozen=True)
class LeaseState:
    status: TaskStatus
    live: bool
    owner: str | None
    token: str | None


class Leases(Protocol):
    """Lease persistence. Every method is one transaction; `act` holds the task's row lock while `decide` runs."""

    @property
    def shared(self) -> bool:
        """True when other processes may hold leases on the same database (PostgreSQL)."""
        ...

    async def act(self, task_id: str, decide: Callable[[Task, Lease, datetime], T]) -> T:
        """Lock the task, let `decide` change it and its lease (raising refuses: nothing is written), write both."""
        ...

    async def claim(self, owner: str, limit: int, seconds: float, exclude: Collection[str]) -> list[Claim]: ...

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Command | None]:
        """Extend the leases `held` (task id -> token); answer those still held, with any command left for them."""
        ...

    async def release(self, task_id: str, token: str) -> None:
        """End a lease (if still held with `token`); commands and retry targets go once the task left PROCESSING."""
        ...

    async def inspect(self, task_id: str) -> LeaseState | None: ...

    async def queue(self, limit: int) -> Queue: ...

    async def position(self, task_id: str) -> tuple[int, int] | None:
        """(1-based place, total) of a queued task; None if it is not queued."""
        ...

    async def runnable(self) -> int: ...

    async def reset(self, owner: str | None) -> int:
        """End the leases of `owner` (None: every lease): only for a database no other process uses."""
        ...


def runnable(task: Task, lease: Lease | None, now: datetime) -> bool:
    """The claim query, for stores without SQL (engine/memory_leases.py mirrors adapters/leases.py)."""
    if lease is not None and (lease.live(now) or lease.command is Command.DELETE):
        return False
    return task.status is TaskStatus.PROCESSING or queued(task)


def claim_order(task: Task) -> tuple[int, datetime, str]:
    """Interrupted runs first, then the queue in the order tasks joined it."""
    return (0 if task.status is TaskStatus.PROCESSING else 1, task.queued_time or task.update_time, task.id)


def queued(task: Task) -> bool:
    """Waiting for a slot (a task marked for deletion is not: see MemoryLeases and adapters/leases.py)."""
    return task.status is TaskStatus.PENDING and task.queued_time is not None


def encode_targets(targets: frozenset[int] | None) -> str | None:
    return None if targets is None else ",".join(str(i) for i in sorted(targets))


def decode_targets(text: str | None) -> frozenset[int] | None:
    if text is None:
        return None
    return frozenset(int(part) for part in text.split(",") if part)


# Decisions: pure functions of (task, lease, database time), run under the row lock.


class Outcome(enum.Enum):
    ATTACH = "attach"  # already running or queued somewhere: nothing to do
    QUEUED = "queued"  # now waiting for a slot on any replica
    DONE = "done"  # the state changed here; nobody runs the task
    OWNER = "owner"  # a live lease holder must act: the command is recorded for it
    CLAIMED = "claimed"  # this replica holds the lease now (one failed part fetched at once)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    task: Task
    owner: str | None = None  # OWNER: who must act
    was_active: bool = False  # it was running or queued (watchers of a deleted task are told)
    token: str | None = None  # CLAIMED: the new lease's token; OWNER: the token of the lease that must end


@dataclass(frozen=True)
class Take:
    """Run the task here at once instead of queuing it: this replica has a free slot and nothing else waits."""

    owner: str
    seconds: float


Decide = Callable[[Task, Lease, datetime], Decision]


def _enqueue(task: Task, lease: Lease, now: datetime, targets: frozenset[int] | None, take: Take | None) -> Decision:
    task.update_time = now
    lease.targets, lease.command = targets, None
    if take is not None and not lease.live(now):
        task.status, task.queued_time = TaskStatus.PROCESSING, None
        lease.grant(take.owner, now, take.seconds)
        return Decision(Outcome.CLAIMED, task, token=lease.token)
    # A live lease here belongs to a run that is just ending: its release makes the task claimable.
    task.queued_time = now
    return Decision(Outcome.QUEUED, task)


def start(take: Take | None = None) -> Decide:
    """PENDING or CANCELLED -> run here or queued. PROCESSING (running, or waiting to be claimed again) or
    queued already: attach."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        if task.status is TaskStatus.PROCESSING or queued(task):
            return Decision(Outcome.ATTACH, task)
        task.transition("start", TaskStatus.PENDING)
        return _enqueue(task, lease, now, None, take)

    return decide


def resume(take: Take | None = None) -> Decide:
    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        task.transition("resume", TaskStatus.PENDING)
        return _enqueue(task, lease, now, None, take)

    return decide


def retry(targets: frozenset[int], take: Take | None = None) -> Decide:
    """FAILED or PARTIAL_COMPLETED -> fetch again exactly `targets` (the open failures' indexes), here or queued."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        require_transition("retry", task.status)
        if not targets:
            raise FailedPrecondition("nothing to retry: every failure is resolved or abandoned", reason="TASK_STATE")
        task.transition("retry", TaskStatus.PENDING)
        return _enqueue(task, lease, now, targets, take)

    return decide


def stop(action: str, target: TaskStatus) -> Decide:
    """pause or cancel: a running task's lease holder is asked to stop it; anything else changes state here."""
    command = Command(action)

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        require_transition(action, task.status)
        if task.status is TaskStatus.PROCESSING and lease.live(now):
            lease.command = command
            return Decision(Outcome.OWNER, task, owner=lease.owner, token=lease.token)
        was_queued = queued(task)
        task.transition(action, target)
        lease.token = lease.expires = lease.command = lease.targets = None
        return Decision(Outcome.DONE, task, was_active=was_queued)

    return decide


def delete(task: Task, lease: Lease, now: datetime) -> Decision:
    """Mark the task so that nobody claims it again before its rows go; a live lease holder must stop it first."""
    active = task.status is TaskStatus.PROCESSING or queued(task)
    lease.command = Command.DELETE
    if task.status is TaskStatus.PROCESSING and lease.live(now):
        return Decision(Outcome.OWNER, task, owner=lease.owner, was_active=True, token=lease.token)
    return Decision(Outcome.DONE, task, was_active=active)


def retry_one(owner: str, seconds: float, index: int) -> Decide:
    """RetryFailure: the receiving replica takes the lease and fetches the one part now (not queued)."""

    def decide(task: Task, lease: Lease, now: datetime) -> Decision:
        require_transition("retry", task.status)
        task.status, task.update_time, task.queued_time = TaskStatus.PROCESSING, now, None
        lease.grant(owner, now, seconds)
        lease.command, lease.targets = None, frozenset({index})
        return Decision(Outcome.CLAIMED, task, token=lease.token)

    return decide
