"""Server interceptor that authenticates `authorization: Bearer <jwt>` and hands the user id to handlers.

Both servers use it: the download server for every DownloadService method, the auth server for the
methods that need an access token. Health, reflection and any method listed as public pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any, Protocol

import grpc

from mediadl_common import context
from mediadl_common.errors import CREDENTIALS_MISSING, Unauthenticated
from mediadl_common.grpc_status import abort, status_for
from mediadl_common.interceptors import StreamBehavior, UnaryBehavior, wrap_handler
from mediadl_common.tokens import Claims

log = logging.getLogger(__name__)

ALWAYS_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
Metadata = tuple[tuple[str, str | bytes], ...]
# What wrap_handler() applies to a unary and to a streaming method.
Wrappers = tuple[Callable[[UnaryBehavior], UnaryBehavior], Callable[[StreamBehavior], StreamBehavior]]


class Verifier(Protocol):
    """What the interceptor needs of mediadl_common.tokens.TokenVerifier: the claims of a valid access token,
    or Unauthenticated with the reason (keys, cache and key refresh are the verifier's business)."""

    async def verify(self, token: str) -> Claims: ...


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Validates access tokens; `protected` is a predicate over full method names ("/pkg.Service/Method")."""

    def __init__(self, verifier: Verifier, protected: Callable[[str], bool]) -> None:
        self._verifier = verifier
        self._protected = protected

    @classmethod
    def for_services(
        cls, verifier: Verifier, services: Collection[str], public_methods: Collection[str] = ()
    ) -> AuthInterceptor:
        """Protect every method of `services` (full names) except `public_methods` (full method paths)."""
        prefixes = tuple(f"/{name}/" for name in services)
        public = frozenset(public_methods)
        return cls(verifier, lambda method: method.startswith(prefixes) and method not in public)

    async def authenticate(self, metadata: Metadata | None) -> str:
        """Return the user id the metadata's bearer token names, or raise Unauthenticated with the reason."""
        return (await self._verifier.verify(bearer_token(metadata))).sub

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
            user_id = await self.authenticate(handler_call_details.invocation_metadata)
        except Unauthenticated as exc:
            return wrap_handler(handler, *_refusing(method, exc))
        return wrap_handler(handler, *_as_user(method, user_id))


def bearer_token(metadata: Metadata | None) -> str:
    """The token of the one `authorization: Bearer <token>` header; Unauthenticated (CREDENTIALS_MISSING) else."""
    values = [v for k, v in (metadata or ()) if k == "authorization"]
    if len(values) != 1:
        # Two authorization headers are ambiguous: refuse rather than guess which one counts.
        message = "no authorization metadata" if not values else "more than one authorization header"
        raise Unauthenticated(message, reason=CREDENTIALS_MISSING)
    value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token or token != token.strip() or " " in token:
        raise Unauthenticated("authorization is not 'Bearer <token>'", reason=CREDENTIALS_MISSING)
    return token


def _refusing(method: str, error: Unauthenticated) -> Wrappers:
    """Handler wrappers that abort the call with `error`'s status instead of running the method."""
    status = status_for(error)

    # Logged inside the call, where the request id is already set.
    def unary(_behavior: UnaryBehavior) -> UnaryBehavior:
        async def refused(_request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            _log_refusal(method, error)
            await abort(ctx, status)

        return refused

    def stream(_behavior: StreamBehavior) -> StreamBehavior:
        async def refused(_request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            _log_refusal(method, error)
            await abort(ctx, status)
            yield  # pragma: no cover - abort raises; this makes the function a generator

        return refused

    return unary, stream


def _log_refusal(method: str, error: Unauthenticated) -> None:
    log.warning("refused %s: %s (%s)", method, error.message, error.reason, extra={"reason": error.reason})


def _as_user(method: str, user_id: str) -> Wrappers:
    """Handler wrappers that run the method with `user_id` as the caller (mediadl_common.context.user_id)."""

    # Each call runs in its own task, so the user id is set inside it and not reset: the request
    # log's closing line, written after the handler returns, still names the caller.
    def unary(behavior: UnaryBehavior) -> UnaryBehavior:
        async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            context.user_id.set(user_id)
            log.debug("authenticated %s", method)
            return await behavior(request, ctx)

        return run

    def stream(behavior: StreamBehavior) -> StreamBehavior:
        async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            context.user_id.set(user_id)
            log.debug("authenticated %s", method)
            async for response in behavior(request, ctx):
                yield response

        return run

    return unary, stream
