"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (then nothing else is needed).

When on: spans go to that OTLP/gRPC endpoint in batches; each gRPC server honours a W3C `traceparent` in
the call's metadata (the official grpc instrumentation's interceptor, first in the chain, so the request
log runs inside the span); each trip to the database (one unit of work) is a span of the call that runs
it; calls to another server (download -> auth) carry the trace on; and every log line written inside a
span names `trace.id` and `span.id`. When off, nothing is installed: no interceptor, no wrapper, no cost
on the hot path. The standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_BSP_*, OTEL_EXPORTER_OTLP_*) work
as OpenTelemetry documents them.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from mediadl_common import spans
from mediadl_common.config import Env

log = logging.getLogger(__name__)
_provider: Any = None  # the SDK's TracerProvider once tracing is on


def enabled() -> bool:
    return spans.enabled()


def configure_tracing(service_name: str, env: Env) -> bool:
    """Turn tracing on for this process if OTEL_EXPORTER_OTLP_ENDPOINT is set; answer whether it is on."""
    global _provider
    endpoint = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if not endpoint or _provider is not None:
        return _provider is not None
    # Imported only when asked for: a process without tracing never loads the SDK.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    insecure = endpoint.startswith("http://")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure)))
    trace.set_tracer_provider(provider)
    _provider = provider
    spans.set_enabled(True)
    _install_log_correlation()
    log.info("tracing on: spans go to %s as service %s", endpoint, resource.attributes["service.name"])
    return True


def shutdown_tracing() -> None:
    """Send the spans still buffered (at process exit)."""
    global _provider
    if _provider is not None:
        spans.set_enabled(False)
        _provider.shutdown()
        _provider = None


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor()]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For channels to other mediadl servers: the call joins the current trace (traceparent in metadata)."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]


def _install_log_correlation() -> None:
    from opentelemetry import trace

    previous = logging.getLogRecordFactory()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = f"{context.trace_id:032x}"
            record.span_id = f"{context.span_id:016x}"
        return record

    # Keeps the mark log.install_context_stamping() looks for, so it does not wrap the factory again.
    make.stamps_mediadl_context = getattr(previous, "stamps_mediadl_context", False)  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
