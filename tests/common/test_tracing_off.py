"""With no OTEL_EXPORTER_OTLP_ENDPOINT nothing of OpenTelemetry is installed: the hot path pays nothing."""

from __future__ import annotations

import logging
import sys

from mediadl_common import tracing
from mediadl_common.config import Env


def test_off_by_default_installs_nothing() -> None:
    factory = logging.getLogRecordFactory()
    assert tracing.configure_tracing("download_server", Env({})) is False
    assert tracing.configure_tracing("download_server", Env({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "})) is False
    assert not tracing.enabled()
    assert tracing.server_interceptors() == [] and tracing.client_interceptors() == []
    assert logging.getLogRecordFactory() is factory  # no trace-id stamping either
    assert "opentelemetry.sdk.trace" not in sys.modules or tracing.enabled() is False
