"""Server interceptor that authenticates `authorization: Bearer <jwt>` and hands the user id to handlers.

Both servers use it: the download server for every DownloadService method, the auth server for the
methods that need an access token. Health, reflection and any method listed as public pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import grpc

from mediadl_common import context
from mediadl_common.errors import CREDENTIALS_MISSING
from mediadl_common.grpc_status import abort, make_status
from mediadl_common.interceptors import StreamBehavior, UnaryBehavior, wrap_handler
from mediadl_common.tokens import JwtCodec, TokenError, UnknownKeyId

log = logging.getLogger(__name__)

ALWAYS_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Validates access tokens; `protected` is a predicate over full method names ("/pkg.Service/Method")."""

    def __init__(self, codec: JwtCodec, protected: Callable[[str], bool]) -> None:
        self._codec = codec
        self._protected = protected

    @classmethod
    def for_services(
        cls, codec: JwtCodec, services: Collection[str], public_methods: Collection[str] = ()
    ) -> AuthInterceptor:
        """Protect every method of `services` (full names) except `public_methods` (full method paths)."""
        prefixes = tuple(f"/{name}/" for name in services)
        public = frozenset(public_methods)
        return cls(codec, lambda method: method.startswith(prefixes) and method not in public)

    def authenticate(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
        """Return the user id the metadata's bearer token names, or raise TokenError/_Missing."""
        values = [v for k, v in (metadata or ()) if k == "authorization"]
        if len(values) != 1:
            # Two authorization headers are ambiguous: refuse rather than guess which one counts.
            raise _Missing("no authorization metadata" if not values else "more than one authorization header")
        value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token or token != token.strip() or " " in token:
            raise _Missing("authorization is not 'Bearer <token>'")
        return self._codec.verify(token, "access").sub

    async def _authenticate_with_refresh(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
        try:
            return self.authenticate(metadata)
        except UnknownKeyId as exc:
            # Maybe the issuer rotated keys: refresh (rate-limited) and try exactly once more.
            keys = self._codec.verification_keys
            if keys is None or not await keys.refresh_for_unknown(exc.kid):
                raise
            return self.authenticate(metadata)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(ALWAYS_OPEN_PREFIXES) or not self._protected(method):
            return handler
        try:
            user_id = await self._authenticate_with_refresh(handler_call_details.invocation_metadata)
        except (TokenError, _Missing) as exc:
            reason, message = exc.reason, exc.message
            status = make_status(grpc.StatusCode.UNAUTHENTICATED, message, reason=reason)

            # Logged inside the call, where the request id is already set.
            def refuse_unary(_behavior: UnaryBehavior) -> UnaryBehavior:
                async def refused(_request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
                    log.warning("refused %s: %s (%s)", method, message, reason, extra={"reason": reason})
                    await abort(ctx, status)

                return refused

            def refuse_stream(_behavior: StreamBehavior) -> StreamBehavior:
                async def refused(_request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                    log.warning("refused %s: %s (%s)", method, message, reason, extra={"reason": reason})
                    await abort(ctx, status)
                    yield  # pragma: no cover - abort raises; this makes the function a generator

                return refused

            return wrap_handler(handler, refuse_unary, refuse_stream)

        # Each call runs in its own task, so the user id is set inside it and not reset: the request
        # log's closing line, written after the handler returns, still names the caller.
        def with_user_unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
                context.user_id.set(user_id)
                log.debug("authenticated %s", method)
                return await behavior(request, ctx)

            return run

        def with_user_stream(behavior: StreamBehavior) -> StreamBehavior:
            async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                context.user_id.set(user_id)
                log.debug("authenticated %s", method)
                async for response in behavior(request, ctx):
                    yield response

            return run

        return wrap_handler(handler, with_user_unary, with_user_stream)


class _Missing(Exception):
    reason = CREDENTIALS_MISSING

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
