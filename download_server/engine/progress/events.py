"""TaskEvents: the one place that builds a task's events and publishes them.

Progress ticks (the tracker), queue positions, stops and deletions decided without a run here (the
scheduler) and a run's final state (published by the active runs once its lease is released) all go
through it, so every event carries the same fields and reaches local watchers and, through the relay,
other replicas alike.
"""

from __future__ import annotations

from download_server.domain.lifecycle import Action
from download_server.domain.models import Task, TaskEvent
from download_server.engine.progress.broker import ProgressBroker

_STOPPED = {Action.PAUSE: "paused", Action.CANCEL: "cancelled"}


class TaskEvents:
    def __init__(self, broker: ProgressBroker) -> None:
        self.broker = broker

    def build(self, task: Task, message: str = "", *, speed: float = 0.0, eta: float = 0.0) -> TaskEvent:
        """The event of the task's state now (a copy: the task may change after)."""
        return TaskEvent.of(task, speed=speed, eta=eta, message=message)

    def publish(self, event: TaskEvent) -> None:
        self.broker.publish(event)

    def queued(self, task: Task, position: int, waiting: int, slots: int, own_slots: int = 0) -> None:
        """`own_slots`: the user runs as many tasks as they may (this many), so theirs waits for one of them."""
        if own_slots:
            message = f"queued: position {position} of {waiting}, waiting for one of your {own_slots} slots"
        else:
            message = f"queued: position {position} of {waiting}, waiting for one of {slots} slots"
        self.publish(self.build(task, message))

    def stopped(self, task: Task, action: Action) -> None:
        """PAUSE or CANCEL took effect on a task no run here held."""
        self.publish(self.build(task, _STOPPED[action]))

    def deleted(self, task: Task) -> None:
        self.publish(self.build(task).as_deleted())
