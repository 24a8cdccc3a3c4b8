"""AuthService over gRPC: each method converts the request, calls one use case and converts the answer.

Errors are raised, not handled: ErrorBoundaryInterceptor turns them into statuses. The access-token
methods learn the caller from the AuthInterceptor through mediadl_common.context.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from auth_server.grpc import converters
from auth_server.services import AuthService
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl_common.auth_interceptor import bearer_token
from mediadl_common.context import current_user_id
from mediadl_common.errors import Unauthenticated
from mediadl_common.peer import TrustedProxies

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def method(name: str) -> str:
    return f"/{SERVICE_NAME}/{name}"


# Everything else needs an access token.
# ListRevocations checks its own bearer (AUTH_SERVICE_TOKEN, not a user's token).
PUBLIC_METHODS = tuple(
    method(name) for name in ("Register", "Login", "RefreshToken", "Logout", "GetJwks", "ListRevocations")
)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(self, service: AuthService, proxies: TrustedProxies | None = None) -> None:
        self._service = service
        self._proxies = proxies or TrustedProxies()

    def _client(self, context: Context) -> str:
        """The caller's address as a throttle key: the browser's, when a trusted proxy forwards it."""
        forwarded = next((v for k, v in context.invocation_metadata() or () if k == "x-forwarded-for"), None)
        return self._proxies.client_key(context.peer(), forwarded if isinstance(forwarded, str) else None)

    async def Register(self, request: auth_pb2.RegisterRequest, context: Context) -> auth_pb2.RegisterResponse:  # noqa: N802
        user = await self._service.accounts.register(
            email=request.email,
            username=request.username,
            password=request.password,
            full_name=request.full_name,
            client=self._client(context),
        )
        return auth_pb2.RegisterResponse(user=converters.user_to_proto(user))

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.LoginResponse:  # noqa: N802
        pair = await self._service.sessions.login(
            email=request.email, password=request.password, client=self._client(context)
        )
        return converters.login_response(pair)

    async def RefreshToken(  # noqa: N802
        self, request: auth_pb2.RefreshTokenRequest, context: Context
    ) -> auth_pb2.RefreshTokenResponse:
        return converters.refresh_response(await self._service.sessions.refresh(request.refresh_token))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:  # noqa: N802
        await self._service.sessions.logout(request.refresh_token)
        return auth_pb2.LogoutResponse()

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: Context) -> auth_pb2.GetMeResponse:  # noqa: N802
        user = await self._service.accounts.get_me(current_user_id())
        return auth_pb2.GetMeResponse(user=converters.user_to_proto(user))

    async def UpdateMe(self, request: auth_pb2.UpdateMeRequest, context: Context) -> auth_pb2.UpdateMeResponse:  # noqa: N802
        user = await self._service.accounts.update_me(current_user_id(), converters.profile_changes(request))
        return auth_pb2.UpdateMeResponse(user=converters.user_to_proto(user))

    async def ChangePassword(  # noqa: N802
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        await self._service.accounts.change_password(
            current_user_id(),
            current_password=request.current_password,
            new_password=request.new_password,
            client=self._client(context),
        )
        return auth_pb2.ChangePasswordResponse()

    async def GetUser(self, request: auth_pb2.GetUserRequest, context: Context) -> auth_pb2.GetUserResponse:  # noqa: N802
        user = await self._service.accounts.get_user(current_user_id(), request.user_id)
        return auth_pb2.GetUserResponse(user=converters.user_to_proto(user))

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.GetJwksResponse:  # noqa: N802
        return converters.jwks_response(self._service.get_jwks())

    async def ListUsers(self, request: auth_pb2.ListUsersRequest, context: Context) -> auth_pb2.ListUsersResponse:  # noqa: N802
        page = await self._service.admin.list_users(
            current_user_id(), size=request.page_size, token=request.page_token, query=request.query
        )
        return converters.list_users_response(page)

    async def UpdateUser(self, request: auth_pb2.UpdateUserRequest, context: Context) -> auth_pb2.UpdateUserResponse:  # noqa: N802
        user = await self._service.admin.update_user(current_user_id(), converters.user_changes(request))
        return auth_pb2.UpdateUserResponse(user=converters.user_to_proto(user))

    async def ListRevocations(  # noqa: N802
        self, request: auth_pb2.ListRevocationsRequest, context: Context
    ) -> auth_pb2.ListRevocationsResponse:
        try:
            presented = bearer_token(context.invocation_metadata())
        except Unauthenticated:
            presented = ""  # refused below like a wrong token: PERMISSION_DENIED
        self._service.admin.authorize_service(presented)
        since = converters.since_time(request)
        return converters.revocations_response(await self._service.admin.recent_revocations(since))
