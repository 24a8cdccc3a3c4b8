"""The task state machine: every action a task can take, from which statuses, and where it leads.

Every status change of a task goes through `Task.apply` (domain/models.py), which reads this table: user
actions (start, pause, ...), the engine's claims and run ends, and the commands one replica leaves for
another are all `Action`s. Anything the table does not allow is FAILED_PRECONDITION (reason TASK_STATE).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mediadl_common.errors import FailedPrecondition


class TaskStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    PARTIAL_COMPLETED = "PARTIAL_COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def ends_stream(self) -> bool:
        """StartTask/RetryTask/WatchTask streams end after an event with one of these."""
        return self in TERMINAL_STATUSES or self is TaskStatus.PAUSED


TERMINAL_STATUSES = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
# How a run can end by itself (Action.FINISH picks one of these from what was fetched).
RUN_OUTCOMES = frozenset({TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED, TaskStatus.FAILED})


class Action(enum.StrEnum):
    """Everything that may change a task's status (and DELETE, which removes it)."""

    START = "start"  # user: join the queue (a cancelled task may start again; finished segments are kept)
    RESUME = "resume"  # user: a paused task joins the queue again
    RETRY = "retry"  # user: fetch again what the open failure records name, through the queue
    RETRY_ONE = "retry_one"  # user (RetryFailure): one failed part, fetched at once by the receiving replica
    CLAIM = "claim"  # engine: a replica takes a queued task, or one whose run elsewhere stopped
    PAUSE = "pause"  # user, or a command to the replica running it
    CANCEL = "cancel"  # user, or a command to the replica running it
    DELETE = "delete"  # user: the rows go (a command to the replica running it; no status of its own)
    FINISH = "finish"  # engine: the run ended by itself: COMPLETED, PARTIAL_COMPLETED or FAILED
    CHANGE_RESOURCE = "change_resource"  # user: a new resource_url starts the download over
    # user: a live recording's refreshed URL, followed from the next playlist poll (no status change)
    SWAP_RESOURCE = "swap_resource"

    @property
    def is_command(self) -> bool:
        """What one replica may ask the lease holder of a running task to do."""
        return self in COMMANDS

    def check(self, status: TaskStatus) -> None:
        """Raise FailedPrecondition (TASK_STATE) unless this action may start from `status`."""
        allowed = RULES[self].sources
        if status not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise FailedPrecondition(
                f"cannot {_VERBS.get(self, self.value)} a task that is {status.value} (allowed from: {names})",
                reason="TASK_STATE",
            )

    def target(self, outcome: TaskStatus | None = None) -> TaskStatus:
        """The status the action leads to; FINISH leads to the run's `outcome` (SWAP_RESOURCE: none)."""
        rule = RULES[self]
        if rule.target is not None:
            return rule.target
        if self is Action.FINISH and outcome in RUN_OUTCOMES:
            return outcome
        raise ValueError(f"{self.value} needs an outcome in {sorted(RUN_OUTCOMES)}, not {outcome}")


COMMANDS = frozenset({Action.PAUSE, Action.CANCEL, Action.DELETE})


@dataclass(frozen=True)
class Rule:
    sources: frozenset[TaskStatus]
    target: TaskStatus | None  # None: DELETE (no status) or FINISH (the run's outcome)


_ALL = frozenset(TaskStatus)
_ENDED_WITH_GAPS = frozenset({TaskStatus.FAILED, TaskStatus.PARTIAL_COMPLETED})

RULES: dict[Action, Rule] = {
    Action.START: Rule(frozenset({TaskStatus.PENDING, TaskStatus.CANCELLED}), TaskStatus.PENDING),
    Action.RESUME: Rule(frozenset({TaskStatus.PAUSED}), TaskStatus.PENDING),
    Action.RETRY: Rule(_ENDED_WITH_GAPS, TaskStatus.PENDING),
    Action.RETRY_ONE: Rule(_ENDED_WITH_GAPS, TaskStatus.PROCESSING),
    # PROCESSING: a run on another replica (or before a restart) stopped without ending the task.
    Action.CLAIM: Rule(frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING}), TaskStatus.PROCESSING),
    Action.PAUSE: Rule(frozenset({TaskStatus.PROCESSING}), TaskStatus.PAUSED),
    Action.CANCEL: Rule(
        frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.PAUSED}), TaskStatus.CANCELLED
    ),
    Action.DELETE: Rule(_ALL, None),
    Action.FINISH: Rule(frozenset({TaskStatus.PROCESSING}), None),
    # resource_url may change only while nothing is running or done.
    Action.CHANGE_RESOURCE: Rule(
        frozenset({TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.CANCELLED}), TaskStatus.PENDING
    ),
    # A live recording keeps what it recorded while its URL changes (queued, running or paused): the
    # status stays; a finished, failed or cancelled one takes CHANGE_RESOURCE (a new URL starts over).
    Action.SWAP_RESOURCE: Rule(frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.PAUSED}), None),
}

# How an action reads in "cannot ... a task that is ..." (RetryFailure is a retry to the caller).
_VERBS = {
    Action.RETRY_ONE: "retry",
    Action.CHANGE_RESOURCE: "change resource",
    Action.SWAP_RESOURCE: "swap the resource of",
}
