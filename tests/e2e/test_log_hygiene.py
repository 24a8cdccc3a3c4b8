"""JSON logs of a whole session, read raw: parseable lines with request ids, and no secret anywhere."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from tests.support.origin import Origin
from tests.support.processes import SECRET, server_processes

pytestmark = pytest.mark.e2e
PASSWORD = "hunter2-correct-horse-battery"
SIGNATURES = ["SIGxq7d3playlist", "SIGseg0a1b2c3d4", "TOKseg9f8e7d6c5", "AMZsig00deadbeef"]
FIELDS = {"time", "level", "logger", "module", "function", "line", "message", "request_id", "user_id"}


def signed_playlist() -> bytes:
    """The hls_ts stream with every segment behind a signed URL, as CDNs hand them out."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    for i in range(6):
        lines += [
            "#EXTINF:1.0,",
            f"../hls_ts/seg{i:02d}.ts?sig={SIGNATURES[1]}&token={SIGNATURES[2]}&X-Amz-Signature={SIGNATURES[3]}",
        ]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


async def test_a_whole_session_leaves_no_secret_in_the_logs(media_fixtures: Path, tmp_path: Path) -> None:
    secrets_seen: list[str] = [PASSWORD, SECRET, *SIGNATURES]
    async with Origin.serving(media_fixtures, tmp_path / "origin") as origin:
        origin.write("signed/index.m3u8", signed_playlist())
        origin.fail("hls_ts/seg02.ts", status=503, times=1)  # a retry: the engine logs about this URL
        origin.fail("hls_ts/seg04.ts", status=404)  # a failure record: logged with its URL
        with server_processes(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG") as servers:
            async with (
                grpc.aio.insecure_channel(servers.auth_addr) as auth_channel,
                grpc.aio.insecure_channel(servers.download_addr) as dl_channel,
            ):
                auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
                downloads = download_pb2_grpc.DownloadServiceStub(dl_channel)
                await auth.Register(
                    auth_pb2.RegisterRequest(email="log@example.com", username="logs", password=PASSWORD)
                )
                with pytest.raises(grpc.aio.AioRpcError):
                    await auth.Login(auth_pb2.LoginRequest(email="log@example.com", password=PASSWORD + "-wrong"))
                secrets_seen.append(PASSWORD + "-wrong")
                login = await auth.Login(auth_pb2.LoginRequest(email="log@example.com", password=PASSWORD))
                fresh = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=login.refresh_token))
                secrets_seen += [login.access_token, login.refresh_token, fresh.access_token, fresh.refresh_token]
                # Presenting the rotated token again: theft detection, logged as a warning.
                with pytest.raises(grpc.aio.AioRpcError):
                    await auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=login.refresh_token))
                meta = (("authorization", f"Bearer {fresh.access_token}"),)
                with pytest.raises(grpc.aio.AioRpcError):
                    await downloads.ListTasks(
                        pb.ListTasksRequest(), metadata=(("authorization", "Bearer garbage.x.y"),)
                    )

                created = await downloads.CreateTask(
                    pb.CreateTaskRequest(
                        video_id=str(uuid.uuid4()),
                        liveroom_id="room-1",
                        liveroom_title="signed stream",
                        resource_url=origin.url("signed/index.m3u8") + f"?token={SIGNATURES[0]}",
                        resource_type=pb.RESOURCE_TYPE_HLS,
                    ),
                    metadata=meta,
                )
                stream = downloads.StartTask(
                    pb.StartTaskRequest(task_id=created.task.id), metadata=(*meta, ("x-request-id", "hygiene-stream-1"))
                )
                events = [reply.event async for reply in stream]
                assert events[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED and events[-1].segments_failed == 1
        raw = servers.log_text()

    for secret in secrets_seen:
        assert secret not in raw, f"a secret reached the logs: {secret[:12]}..."
    entries = [json.loads(line) for line in raw.splitlines() if line.strip()]  # every line is one JSON object
    assert all(FIELDS <= entry.keys() for entry in entries)
    stream_lines = [e for e in entries if e["request_id"] == "hygiene-stream-1"]
    end = [e for e in stream_lines if e.get("method", "").endswith("/StartTask") and "messages_sent" in e]
    assert end and end[0]["status_code"] == "OK" and end[0]["messages_sent"] == len(events)
    assert all(e["user_id"] not in ("-", "") for e in end)
    assert any(e["level"] == "WARNING" and "CREDENTIALS_INVALID" in e["message"] for e in entries)
    # The failure record and the retry are logged with the segment's URL, its signatures masked.
    failed = [e for e in entries if e["level"] == "WARNING" and "failure recorded: segment 4" in e["message"]]
    assert failed and failed[0].get("task_id") == created.task.id, "the failing segment is not logged"
    assert "seg04.ts?sig=[redacted]&token=[redacted]&X-Amz-Signature=[redacted]" in failed[0]["message"]
    assert "http_error (HTTP 404" in failed[0]["message"]
    retried = [e for e in entries if e["message"].startswith("retrying") and "seg02.ts?sig=[redacted]" in e["message"]]
    assert retried and "attempt 1 of" in retried[0]["message"]
    print("sample JSON line of a streaming call:", json.dumps(end[0]))
