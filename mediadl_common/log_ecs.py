"""LOG_FORMAT=ecs: Elastic Common Schema lines (Elastic's ecs-logging) with the call's fields under ECS names."""

from __future__ import annotations

import logging
from typing import Any

import ecs_logging

from mediadl_common.log import redact

# Our `extra=` fields -> where ECS (or, where ECS has no field, our own `mediadl.*` namespace) keeps them.
# Filebeat's template and Kibana's searches (deploy/elk, docs/ops.md) use these names.
FIELD_NAMES = {
    "request_id": "http.request.id",
    "user_id": "user.id",
    "method": "mediadl.grpc.method",
    "status_code": "mediadl.grpc.code",
    "peer": "client.address",
    "messages_sent": "mediadl.grpc.messages_sent",
    "stream_end": "mediadl.grpc.stream_end",
    "task_id": "mediadl.task_id",
    "failure_id": "mediadl.failure_id",
    "trace_id": "trace.id",
    "span_id": "span.id",
}


class EcsFormatter(ecs_logging.StdlibFormatter):  # type: ignore[misc]
    """One ECS JSON document a line; secrets are masked in the message, the error and every string field."""

    def __init__(self) -> None:
        # The record's raw attributes (args, process name, ...) add nothing an operator searches by.
        super().__init__(exclude_fields=["process", "log.original"])

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        result: dict[str, Any] = super().format_to_ecs(record)
        result["message"] = redact(str(result.get("message", "")))
        for ours, ecs_name in FIELD_NAMES.items():
            value = result.pop(ours, None)
            if value is None or value == "-":
                continue
            _put(result, ecs_name, redact(value) if isinstance(value, str) else value)
        duration_ms = result.pop("duration_ms", None)
        if isinstance(duration_ms, int | float):
            _put(result, "event.duration", int(duration_ms * 1_000_000))  # ECS: nanoseconds
        error = result.get("error")
        if isinstance(error, dict):
            for key in ("message", "stack_trace"):
                if isinstance(error.get(key), str):
                    error[key] = redact(error[key])
        return result


def _put(document: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` as nested objects (ecs-logging merges dotted keys the same way)."""
    *parents, leaf = dotted.split(".")
    node = document
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    node[leaf] = value
