"""Traces across both server processes into a real OTLP receiver, and ECS log lines that name them.

A grpcurl-style call with a W3C `traceparent` header reaches each server; each exports its spans over
OTLP/gRPC to the receiver this test runs (opentelemetry-proto's TraceService), and each writes ECS lines
(LOG_FORMAT=ecs) carrying that trace id and the call's request id.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from tests.conftest import ROOT
from tests.support.origin import Origin
from tests.support.processes import server_processes

GRPCURL = ROOT / ".venv" / "bin" / "grpcurl"

pytestmark = pytest.mark.e2e


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """What an OpenTelemetry collector does first: accept ExportTraceServiceRequests, here kept in a list."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, Any]] = []  # (service.name, trace id hex, span)

    async def Export(  # noqa: N802
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((attributes.get("service.name", ""), span.trace_id.hex(), span))
        return trace_service_pb2.ExportTraceServiceResponse()

    def of(self, trace_id: str) -> list[tuple[str, Any]]:
        return [(service, span) for service, tid, span in self.spans if tid == trace_id]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    collector = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield collector, port
    await server.stop(0)


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def until(predicate: Any, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not seen in time")


def grpcurl(address: str, headers: list[str], method: str) -> subprocess.CompletedProcess[str]:
    tool = GRPCURL if GRPCURL.exists() else Path(shutil.which("grpcurl") or "grpcurl")
    command = [str(tool), "-plaintext", *(arg for h in headers for arg in ("-H", h)), "-d", "{}", address]
    command.append(f"mediadl.download.v1.DownloadService/{method}")
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def ecs_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def test_a_trace_header_is_followed_through_both_servers_into_spans_and_log_lines(
    receiver: tuple[Receiver, int], tmp_path: Path
) -> None:
    collector, port = receiver
    env = {
        "LOG_FORMAT": "ecs",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    auth_trace, auth_parent = traceparent()
    dl_trace, dl_parent = traceparent()
    with server_processes(tmp_path, **env) as servers:
        async with grpc.aio.insecure_channel(servers.auth_addr) as auth_channel:
            auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
            register = auth_pb2.RegisterRequest(email="trace@example.com", username="tracer", password="p" * 12)
            await auth.Register(register, metadata=(("traceparent", auth_parent), ("x-request-id", "req-auth-1")))
            login = await auth.Login(auth_pb2.LoginRequest(email="trace@example.com", password="p" * 12))
            # As an operator would: grpcurl with the trace header (reflection, no proto files).
            headers = [
                f"authorization: Bearer {login.access_token}",
                f"traceparent: {dl_parent}",
                "x-request-id: req-dl-1",
            ]
            listed = await asyncio.to_thread(grpcurl, servers.download_addr, headers, "ListTasks")
            assert listed.returncode == 0, listed.stderr
            await until(lambda: collector.of(auth_trace) and len(collector.of(dl_trace)) >= 2)
        logs = dict(servers.logs)

    auth_spans, dl_spans = collector.of(auth_trace), collector.of(dl_trace)
    assert {service for service, _ in auth_spans} == {"auth_server"}
    assert {service for service, _ in dl_spans} == {"download_server"}
    assert any(span.name.endswith("AuthService/Register") for _, span in auth_spans)
    rpc = next(span for _, span in dl_spans if span.name.endswith("DownloadService/ListTasks"))
    # The database work of the call is part of the same trace, under the RPC's span.
    trips = [span for _, span in dl_spans if span.name.startswith("db ")]
    assert trips and all(span.parent_span_id == rpc.span_id for span in trips), [s.name for _, s in dl_spans]

    for name, trace_id, request_id in (
        ("auth_server", auth_trace, "req-auth-1"),
        ("download_server", dl_trace, "req-dl-1"),
    ):
        lines = ecs_lines(logs[name])
        assert lines and all({"@timestamp", "log.level", "message", "ecs.version"} <= set(line) for line in lines)
        traced = [line for line in lines if line.get("trace", {}).get("id") == trace_id]
        assert traced, f"no {name} line names trace {trace_id}"
        assert {line["http"]["request"]["id"] for line in traced} == {request_id}


async def test_a_started_download_is_one_run_span_in_the_callers_trace(
    receiver: tuple[Receiver, int], tmp_path: Path, media_fixtures: Path
) -> None:
    collector, port = receiver
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    trace_id, parent = traceparent()
    async with Origin.serving(media_fixtures, tmp_path / "origin") as origin:
        with server_processes(tmp_path, **env) as servers:
            async with (
                grpc.aio.insecure_channel(servers.auth_addr) as auth_channel,
                grpc.aio.insecure_channel(servers.download_addr) as dl_channel,
            ):
                auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
                await auth.Register(
                    auth_pb2.RegisterRequest(email="run@example.com", username="runner", password="p" * 12)
                )
                login = await auth.Login(auth_pb2.LoginRequest(email="run@example.com", password="p" * 12))
                downloads = download_pb2_grpc.DownloadServiceStub(dl_channel)
                bearer = ("authorization", f"Bearer {login.access_token}")
                created = await downloads.CreateTask(
                    pb.CreateTaskRequest(
                        video_id=str(uuid.uuid4()),
                        liveroom_id="room",
                        resource_url=origin.url("hls_ts/index.m3u8"),
                        resource_type=pb.RESOURCE_TYPE_HLS,
                    ),
                    metadata=(bearer,),
                )
                events = downloads.StartTask(
                    pb.StartTaskRequest(task_id=created.task.id), metadata=(bearer, ("traceparent", parent))
                )
                last = [reply.event async for reply in events][-1]
                assert last.status == pb.TASK_STATUS_COMPLETED
                await until(lambda: any(span.name == "download run" for _, span in collector.of(trace_id)))

    spans = {span.name: span for _, span in collector.of(trace_id)}
    run, rpc = spans["download run"], spans["/mediadl.download.v1.DownloadService/StartTask"]
    assert run.parent_span_id == rpc.span_id  # the run belongs to the call that started it
    written = [event for event in run.events if event.name == "segments written"]
    assert written and len(written) < 6  # batches of segments, not an event (or a span) per segment
    assert not any(name.startswith("GET ") for name in spans)  # no span per fetch
