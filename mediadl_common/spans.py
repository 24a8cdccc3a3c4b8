"""Spans and span events the engine opens: a span per download run, events per flushed batch of segments.

No-ops (and OpenTelemetry never imported) unless mediadl_common/tracing.py turned tracing on. Kept apart
from tracing.py so the engine, which must not import grpc, can use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_on = False
Attributes = Mapping[str, str | int | float | bool]


def set_enabled(on: bool) -> None:
    global _on
    _on = on


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
