"""Spans and span events the engine opens: a span per download run, events per flushed batch of segments.

No-ops (and OpenTelemetry never imported) unless mediadl_common/tracing.py turned tracing on. Kept apart
from tracing.py so the engine, which must not import grpc, can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

_on = False
T = TypeVar("T")
Attributes = Mapping[str, str | int | float | bool]


def set_enabled(on: bool) -> None:
    global _on
    _on = on


def enabled() -> bool:
    return _on


def traced(fn: Callable[..., T], name: str, attributes: Attributes) -> Callable[..., T]:
    """`fn` run inside a span named `name` (call the result in the caller's context: it becomes the parent)."""

    def run(*args: Any, **kwargs: Any) -> T:
        with span(name, attributes):
            return fn(*args, **kwargs)

    return run


@contextmanager
def span(name: str, attributes: Attributes) -> Iterator[None]:
    """A span around the block, a child of the current one (a run started by StartTask joins its trace)."""
    if not _on:
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer("mediadl").start_as_current_span(name, attributes=dict(attributes)):
        yield


def event(name: str, attributes: Attributes) -> None:
    """An event on the current span (a batch of segments written, say): one span per run, not per segment."""
    if _on:
        from opentelemetry import trace

        trace.get_current_span().add_event(name, dict(attributes))
