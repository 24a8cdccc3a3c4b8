"""Helpers to wrap grpc.aio handlers in interceptors, and the boundary that turns errors into statuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from sqlalchemy.exc import DBAPIError, OperationalError

from mediadl_common import context as request_context
from mediadl_common.errors import DomainError
from mediadl_common.grpc_status import abort, make_status, status_for

log = logging.getLogger(__name__)

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[UnaryBehavior], UnaryBehavior],
    stream: Callable[[StreamBehavior], StreamBehavior],
) -> grpc.RpcMethodHandler:
    """Return a copy of `handler` whose unary-unary or unary-stream behaviour is wrapped.

    Client-streaming methods are not used by mediadl and pass through unchanged.
    """
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


async def _abort_for(exc: BaseException, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    if isinstance(exc, DomainError):
        log.warning("%s refused: %s (%s)", method, exc.message, exc.reason)
        await abort(context, status_for(exc))
    elif isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        # The database is down or restarting: the client may retry, so this is UNAVAILABLE, not INTERNAL.
        log.error(
            "%s: database unavailable: %s", method, type(exc.orig).__name__ if isinstance(exc, DBAPIError) else exc
        )
        await abort(
            context,
            make_status(grpc.StatusCode.UNAVAILABLE, "database unavailable, try again", reason="DATABASE_UNAVAILABLE"),
        )
    else:
        rid = request_context.request_id.get() or "-"
        log.exception("%s failed with an unexpected error", method)
        # The id lets an operator find this stack in the logs; nothing of the internals goes out.
        await abort(
            context, make_status(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})", reason="INTERNAL")
        )


class ErrorBoundaryInterceptor(grpc.aio.ServerInterceptor):
    """Turns domain errors into their statuses and anything unexpected into a clean INTERNAL.

    Handlers just raise; no servicer needs try/except. An abort() from inside the handler passes through.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await behavior(request, context)
                except (DomainError, Exception) as exc:
                    if _is_abort(exc):
                        raise
                    await _abort_for(exc, context, method)

            return wrapped

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                try:
                    async for response in behavior(request, context):
                        yield response
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    await _abort_for(exc, context, method)

            return wrapped

        return wrap_handler(handler, unary, stream)


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError from context.abort(); it must reach grpc untouched.
    return type(exc).__name__ == "AbortError" or isinstance(exc, grpc.aio.AbortError)
