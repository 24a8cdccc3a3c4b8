"""Start the auth server in-process on port 0, build stubs, and read rich error statuses of grpc.aio calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import create_engine, text

from auth_server.bootstrap import start_auth_server
from auth_server.config import AuthSettings
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl_common.config import Env
from mediadl_common.server import RunningServer
from tests.support.status import RpcFailure, rpc_failure

SECRET = "test-only-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
PASSWORD = "correct horse battery"
ADMIN = {"email": "root@example.com", "username": "root", "password": "admin password 1"}
BASE_ENV = {
    "JWT_SECRET_KEY": SECRET,
    "AUTH_GRPC_ADDR": "127.0.0.1:0",
    # The lowest cost bcrypt allows keeps the suite fast; production uses 12.
    "AUTH_BCRYPT_ROUNDS": "4",
    "AUTH_SHUTDOWN_GRACE_SECONDS": "0",
}
ADMIN_ENV = {
    "AUTH_FIRST_SUPERUSER_EMAIL": ADMIN["email"],
    "AUTH_FIRST_SUPERUSER_USERNAME": ADMIN["username"],
    "AUTH_FIRST_SUPERUSER_PASSWORD": ADMIN["password"],
}


def auth_settings(database_url: str, **overrides: str) -> AuthSettings:
    return AuthSettings.from_env(Env({**BASE_ENV, "AUTH_DATABASE_URL": database_url, **overrides}))


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class AuthClient:
    """A running in-process server and a stub connected to it."""

    running: RunningServer
    settings: AuthSettings
    stub: Any  # auth_pb2_grpc.AuthServiceStub (the generated module is untyped)
    channel: grpc.aio.Channel

    async def register(self, *, email: str | None = None, username: str | None = None, **kw: str) -> auth_pb2.User:
        """Register a fresh user (unique email and username unless given)."""
        tag = uuid.uuid4().hex[:8]
        request = auth_pb2.RegisterRequest(
            email=email or f"user-{tag}@example.com",
            username=username or f"user_{tag}",
            password=kw.pop("password", PASSWORD),
            **kw,
        )
        response: auth_pb2.RegisterResponse = await self.stub.Register(request)
        return response.user

    async def login(self, email: str, password: str = PASSWORD) -> auth_pb2.LoginResponse:
        response: auth_pb2.LoginResponse = await self.stub.Login(auth_pb2.LoginRequest(email=email, password=password))
        return response

    async def new_session(self) -> tuple[auth_pb2.User, auth_pb2.LoginResponse]:
        user = await self.register()
        return user, await self.login(user.email)


@asynccontextmanager
async def running_auth_server(settings: AuthSettings, *, migrate: bool = True) -> AsyncIterator[AuthClient]:
    running = await start_auth_server(settings, migrate=migrate)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        yield AuthClient(running, settings, stub, channel)
    finally:
        await channel.close()
        await running.stop(0)


# The auth tests' names for the shared status readers.
Failure = RpcFailure
failure = rpc_failure


def execute_sql(database_url: str, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    """Run one statement directly against the database (to set up states no RPC can reach)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), dict(params or {}))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def set_active(database_url: str, user_id: str, active: bool) -> None:
    # SQLite stores the UUID as 32 hex digits, PostgreSQL natively: compare in the stored form.
    stored = user_id.replace("-", "") if database_url.startswith("sqlite") else user_id
    execute_sql(database_url, "UPDATE users SET is_active = :a WHERE id = :id", {"a": active, "id": stored})
