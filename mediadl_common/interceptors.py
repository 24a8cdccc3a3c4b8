"""Helpers to wrap grpc.aio handlers in interceptors, and the boundary that turns errors into statuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from mediadl_common import context as request_context
from mediadl_common.errors import DomainError
from mediadl_common.grpc_status import abort, make_status, status_for

log = logging.getLogger(__name__)

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]
# Says which domain error an exception from below the use cases means (a lost database connection is
# Unavailable), or None. The composition root registers them, so this module knows no driver or ORM.
ErrorTranslator = Callable[[BaseException], DomainError | None]


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


class ErrorBoundaryInterceptor(grpc.aio.ServerInterceptor):
    """Turns domain errors into their statuses (grpc_status.STATUS_CODES) and anything unexpected into a clean
    INTERNAL; `translators` first give other exceptions a domain meaning (see ErrorTranslator).

    Handlers just raise; no servicer needs try/except. An abort() from inside the handler passes through.
    """

    def __init__(self, translators: Sequence[ErrorTranslator] = ()) -> None:
        self._translators = tuple(translators)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await behavior(request, context)
                except Exception as exc:
                    await self._abort_for(exc, context, method)

            return wrapped

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                try:
                    async for response in behavior(request, context):
                        yield response
                except Exception as exc:
                    await self._abort_for(exc, context, method)

            return wrapped

        return wrap_handler(handler, unary, stream)

    async def _abort_for(self, exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        if _is_abort(exc):
            raise exc
        await abort(context, self._status_for(exc, method))

    def _status_for(self, exc: Exception, method: str) -> grpc.Status:
        if isinstance(exc, DomainError):
            log.warning("%s refused: %s (%s)", method, exc.message, exc.reason)
            return status_for(exc)
        translated = self._translate(exc)
        if translated is not None:
            # Not refused on purpose: something below the use cases failed (the database is down or restarting).
            log.error("%s: %s (%s, from %s)", method, translated.message, translated.reason, type(exc).__name__)
            return status_for(translated)
        rid = request_context.request_id.get() or "-"
        log.error("%s failed with an unexpected error", method, exc_info=exc)
        # The id lets an operator find this stack in the logs; nothing of the internals goes out.
        return make_status(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})", reason="INTERNAL")

    def _translate(self, exc: Exception) -> DomainError | None:
        for translate in self._translators:
            error = translate(exc)
            if error is not None:
                return error
        return None


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError from context.abort(); it must reach grpc untouched.
    return type(exc).__name__ == "AbortError" or isinstance(exc, grpc.aio.AbortError)
