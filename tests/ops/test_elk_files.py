"""deploy/elk and LOG_FORMAT=ecs, checked without Elasticsearch: the files parse, and every field Filebeat's
processors or the index template name is one the servers' ECS lines carry (or Filebeat itself adds)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from mediadl_common import context
from mediadl_common.log_ecs import EcsFormatter
from tests.conftest import ROOT

ELK = ROOT / "deploy" / "elk"
# Fields Filebeat puts on every event by itself (not from our lines).
ADDED_BY_FILEBEAT = {"service.name", "service.environment"}


def ecs_lines() -> list[dict[str, Any]]:
    """What the servers write: a request's line (every field the request log sets) and an error line."""
    formatter = EcsFormatter()
    token = context.request_id.set("req-7")
    user = context.user_id.set("user-7")
    try:
        call = logging.LogRecord(
            "mediadl_common.request_log", logging.INFO, "request_log.py", 1, "call", None, None, func="_end"
        )
        extras = {"method": "/m/M", "status_code": "OK", "duration_ms": 1.5, "peer": "ipv4:127.0.0.1:1"}
        extras |= {"messages_sent": 3, "stream_end": "completed", "task_id": "t", "failure_id": "f"}
        extras |= {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
        call.__dict__.update(extras, request_id="req-7", user_id="user-7")
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            failed = logging.LogRecord(
                "download_server.x", logging.ERROR, "x.py", 2, "failed", None, sys.exc_info(), func="run"
            )
        failed.__dict__.update(request_id="req-7", user_id="user-7")
        return [json.loads(formatter.format(record)) for record in (call, failed)]
    finally:
        context.request_id.reset(token)
        context.user_id.reset(user)


def flat(document: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield from flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def carried() -> set[str]:
    fields = {name for line in ecs_lines() for name in flat(line)}
    return fields | ADDED_BY_FILEBEAT


def template_fields(mapping: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, spec in mapping.items():
        if "properties" in spec:
            yield from template_fields(spec["properties"], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_an_ecs_line_is_the_document_elastic_expects() -> None:
    call, failed = ecs_lines()
    for line in (call, failed):
        assert {"@timestamp", "log.level", "message", "ecs.version"} <= set(line)
        assert line["http"]["request"]["id"] == "req-7" and line["user"]["id"] == "user-7"
    assert call["mediadl"]["grpc"] == {"method": "/m/M", "code": "OK", "messages_sent": 3, "stream_end": "completed"}
    assert call["event"]["duration"] == 1_500_000  # nanoseconds, as ECS says
    assert call["trace"]["id"] == "0af7651916cd43dd8448eb211c80319c" and call["client"]["address"] == "ipv4:127.0.0.1:1"
    assert failed["error"]["type"] == "ValueError" and "boom" in failed["error"]["message"]
    assert "duration_ms" not in call and "request_id" not in call  # moved to their ECS names, not duplicated


def test_secrets_never_reach_an_ecs_line() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, "x.py", 1, "login password=hunter2 Bearer eyJabcdefgh.x.y", None, None
    )
    record.__dict__.update(request_id="-", user_id="-", peer="https://u:secret@host/")
    line = EcsFormatter().format(record)
    assert "hunter2" not in line and "eyJabcdefgh" not in line and "u:secret" not in line
    assert "user" not in json.loads(line)  # "-" (no user) is left out, not indexed


def test_the_template_maps_only_fields_the_lines_carry() -> None:
    template = json.loads((ELK / "mediadl-template.json").read_text())
    mapped = set(template_fields(template["template"]["mappings"]["properties"]))
    assert mapped - carried() == set(), "the template maps fields no line carries"
    assert {"@timestamp", "http.request.id", "user.id", "mediadl.grpc.method", "trace.id"} <= mapped
    assert template["index_patterns"] == ["mediadl-*"]


def test_filebeat_reads_the_files_compose_writes_and_names_only_carried_fields() -> None:
    config = yaml.safe_load((ELK / "filebeat.yml").read_text())
    files = next(i for i in config["filebeat.inputs"] if i["type"] == "filestream")
    assert "/var/log/mediadl/*.log" in files["paths"]
    assert files["parsers"][0]["ndjson"]["target"] == ""  # the ECS document becomes the event itself
    assert config["setup.template.json.path"].endswith("mediadl-template.json")
    assert config["output.elasticsearch"]["index"].startswith("mediadl-")
    script = config["processors"][0]["script"]["source"]
    named = set(__import__("re").findall(r'event\.(?:Get|Put)\("([^"]+)"', script))
    assert named and named <= carried(), named - carried()

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("auth", "download", "dashboard"):
        env = services[name]["environment"]
        assert env["LOG_FILE"].startswith("/var/log/mediadl/"), name
        assert "logs:/var/log/mediadl" in services[name]["volumes"], name
    assert compose["x-common-env"]["LOG_FORMAT"] == "${LOG_FORMAT:-ecs}"
    beat = services["filebeat"]
    assert beat["profiles"] == ["elk"] and "logs:/var/log/mediadl:ro" in beat["volumes"]
    mounted = {volume.split(":")[0] for volume in beat["volumes"]}
    assert {"./deploy/elk/filebeat.yml", "./deploy/elk/mediadl-template.json"} <= mounted
    assert all((ROOT / path).is_file() for path in mounted if path.startswith("./"))


@pytest.mark.parametrize("value", ["ecs", "ECS"])
def test_log_format_ecs_is_a_setting(value: str) -> None:
    from mediadl_common.config import Env
    from mediadl_common.log import LogSettings

    assert LogSettings.from_env(Env({"LOG_FORMAT": value, "LOG_FILE": "/l/{hostname}.log"})).format == "ecs"
    import socket

    assert LogSettings.from_env(Env({"LOG_FILE": "/l/d-{hostname}.log"})).file == f"/l/d-{socket.gethostname()}.log"
