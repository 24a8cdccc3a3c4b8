"""Every DownloadService call needs a valid access token: the interceptor battery, unary and streaming."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.config import JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_INVALID, CREDENTIALS_MISSING
from mediadl_common.keys import SigningKey, generate_ed25519_pem, load_signing_keys, to_jwk
from tests.download.api import (
    SECRET,
    DownloadApi,
    download_settings,
    new_id,
    rpc_failure,
    running_download_server,
    status_of,
    stream_failure,
)

USER = "user-7f3c"
Metadata = tuple[tuple[str, str], ...]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": USER,
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
        "iss": "mediadl-auth",
        "aud": "mediadl",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def signed(key: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm)


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def alg_none() -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."


def rs256_looking() -> str:
    # An RS256 header over an HMAC signature: a verifier that trusted the header would pick the wrong check.
    good = signed()
    _, payload, signature = good.split(".")
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"


# (case id, metadata factory, expected ErrorInfo reason)
REFUSALS: list[tuple[str, Callable[[], Metadata], str]] = [
    ("no-metadata", lambda: (), CREDENTIALS_MISSING),
    ("empty-value", lambda: (("authorization", ""),), CREDENTIALS_MISSING),
    ("bearer-without-token", lambda: (("authorization", "Bearer"),), CREDENTIALS_MISSING),
    ("bearer-space-only", lambda: (("authorization", "Bearer "),), CREDENTIALS_MISSING),
    ("missing-bearer-word", lambda: (("authorization", signed()),), CREDENTIALS_MISSING),
    ("other-scheme", lambda: (("authorization", f"Basic {signed()}"),), CREDENTIALS_MISSING),
    ("extra-spaces", lambda: (("authorization", f"Bearer  {signed()}"),), CREDENTIALS_MISSING),
    ("two-parts-after-bearer", lambda: (("authorization", f"Bearer {signed()} extra"),), CREDENTIALS_MISSING),
    ("two-headers", lambda: (*bearer(signed()), *bearer(signed())), CREDENTIALS_MISSING),
    ("wrong-key", lambda: bearer(signed(key="another-secret-that-is-long-enough-0123456789")), CREDENTIALS_INVALID),
    ("alg-none", lambda: bearer(alg_none()), CREDENTIALS_INVALID),
    ("hs512-when-hs256", lambda: bearer(signed(algorithm="HS512")), CREDENTIALS_INVALID),
    ("rs256-header", lambda: bearer(rs256_looking()), CREDENTIALS_INVALID),
    ("expired", lambda: bearer(signed(iat=int(time.time()) - 600, exp=int(time.time()) - 60)), CREDENTIALS_EXPIRED),
    ("issued-in-future", lambda: bearer(signed(iat=int(time.time()) + 3600)), CREDENTIALS_INVALID),
    ("not-before-future", lambda: bearer(signed(nbf=int(time.time()) + 3600)), CREDENTIALS_INVALID),
    ("refresh-token", lambda: bearer(signed(type="refresh", fam="family-1")), CREDENTIALS_INVALID),
    ("missing-sub", lambda: bearer(signed(sub=None)), CREDENTIALS_INVALID),
    ("empty-sub", lambda: bearer(signed(sub="")), CREDENTIALS_INVALID),
    ("missing-type", lambda: bearer(signed(type=None)), CREDENTIALS_INVALID),
    ("wrong-issuer", lambda: bearer(signed(iss="someone-else")), CREDENTIALS_INVALID),
    ("wrong-audience", lambda: bearer(signed(aud="other-service")), CREDENTIALS_INVALID),
    ("garbage", lambda: bearer("not-a-jwt"), CREDENTIALS_INVALID),
    ("garbage-three-parts", lambda: bearer("abc.def.ghi"), CREDENTIALS_INVALID),
    ("tampered-payload", lambda: bearer(_tampered()), CREDENTIALS_INVALID),
]


def _tampered() -> str:
    header, _, signature = signed().split(".")
    return f"{header}.{_b64(claims(sub='someone-else'))}.{signature}"


@pytest.mark.parametrize(("case", "metadata", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_unary_refusals(
    sqlite_api: DownloadApi, case: str, metadata: Callable[[], Metadata], reason: str
) -> None:
    md = metadata()
    refused = await rpc_failure(sqlite_api.stub.GetTask(pb.GetTaskRequest(task_id=new_id()), metadata=md))
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason), case
    assert all(value not in refused.message for _, value in md if len(value) > 20)  # never echoes the token


@pytest.mark.parametrize(("case", "metadata", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_stream_refusals_come_before_unimplemented(
    sqlite_api: DownloadApi, case: str, metadata: Callable[[], Metadata], reason: str
) -> None:
    refused = await stream_failure(sqlite_api.stub.WatchTasks(pb.WatchTasksRequest(), metadata=metadata()))
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason), case


async def test_valid_tokens_reach_the_handlers(sqlite_api: DownloadApi) -> None:
    # The controls: the same calls with a good token get past the interceptor.
    missing = await rpc_failure(sqlite_api.stub.GetTask(pb.GetTaskRequest(task_id=new_id()), metadata=bearer(signed())))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    lowercase_scheme = (("authorization", f"bearer {signed()}"),)
    listed = await sqlite_api.stub.ListTasks(pb.ListTasksRequest(), metadata=lowercase_scheme)
    assert listed.total_size == 0
    for call in (
        sqlite_api.stub.StartTask(pb.StartTaskRequest(task_id=new_id()), metadata=bearer(signed())),
        sqlite_api.stub.RetryTask(pb.RetryTaskRequest(task_id=new_id()), metadata=bearer(signed())),
        sqlite_api.stub.WatchTask(pb.WatchTaskRequest(task_id=new_id()), metadata=bearer(signed())),
    ):
        missing_task = await stream_failure(call)
        assert (missing_task.code, missing_task.reason) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    retry = await rpc_failure(
        sqlite_api.stub.RetryFailure(pb.RetryFailureRequest(failure_id=new_id()), metadata=bearer(signed()))
    )
    assert (retry.code, retry.reason) == (grpc.StatusCode.NOT_FOUND, "FAILURE_NOT_FOUND")
    task = await sqlite_api.create_task(USER)
    watch_all = sqlite_api.stub.WatchTasks(pb.WatchTasksRequest(), metadata=bearer(signed()))
    first = await anext(aiter(watch_all))  # the stream never ends by itself: one message is proof enough
    watch_all.cancel()
    assert (first.event.task_id, first.event.status) == (task.id, pb.TASK_STATUS_PENDING)


async def test_the_caller_is_the_tokens_subject(sqlite_api: DownloadApi) -> None:
    task = await sqlite_api.create_task("user-from-token")
    assert task.user_id == "user-from-token"


async def test_health_and_reflection_need_no_token(sqlite_api: DownloadApi) -> None:
    health = health_pb2_grpc.HealthStub(sqlite_api.channel)
    for service in ("", "mediadl.download.v1.DownloadService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(sqlite_api.channel)
    services: list[str] = []
    async for response in reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    ):
        services.extend(s.name for s in response.list_services_response.service)
    assert "mediadl.download.v1.DownloadService" in services


async def test_refusal_status_is_readable_from_a_raw_error(sqlite_api: DownloadApi) -> None:
    # status_of() is what the battery relies on: check it against a plain call once.
    try:
        await sqlite_api.stub.ListTasks(pb.ListTasksRequest())
    except grpc.aio.AioRpcError as err:
        assert status_of(err).reason == CREDENTIALS_MISSING
    else:
        raise AssertionError("ListTasks without a token succeeded")


async def test_eddsa_tokens_verify_with_the_public_keys_file(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    def keypair(name: str) -> SigningKey:
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(generate_ed25519_pem())
        [key] = load_signing_keys(pem, "EdDSA")
        return key

    def publish(*keys: SigningKey) -> None:
        jwks.write_text(json.dumps({"keys": [to_jwk(k.public_key, k.kid) for k in keys]}))

    old, new, stranger = keypair("old"), keypair("new"), keypair("stranger")
    jwks = tmp_path / "jwks.json"
    publish(old)
    settings = download_settings(
        make_database_url("sqlite"),
        tmp_path / "storage",
        JWT_ALGORITHM="EdDSA",
        JWT_PUBLIC_KEYS_FILE=str(jwks),
        JWT_JWKS_MIN_REFRESH_SECONDS="0",  # the stranger's kid below already used one refresh
    )
    assert list(settings.public_keys) == [old.kid]

    def token(key: SigningKey | None) -> Metadata:
        issuer = JwtIssuer(settings.jwt, signing_key=key) if key else JwtIssuer(JwtSettings(secret_key=SECRET))
        return bearer(issuer.issue(sub=USER, type="access", ttl_seconds=60)[0])

    async with running_download_server(settings) as api:
        ok = await api.stub.ListTasks(pb.ListTasksRequest(), metadata=token(old))
        assert ok.total_size == 0
        for forged in (token(None), token(stranger)):  # HS256 with the shared secret; an unpublished key
            refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(), metadata=forged))
            assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, CREDENTIALS_INVALID)
        publish(old, new)  # rotation: the file changes, the server re-reads it on the first unknown kid
        assert (await api.stub.ListTasks(pb.ListTasksRequest(), metadata=token(new))).total_size == 0
