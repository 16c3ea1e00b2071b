"""Spans for gRPC calls, on both sides, with W3C `traceparent` carried in the call's metadata.

Our own thin wrappers on the OpenTelemetry API rather than opentelemetry-instrumentation-grpc,
whose aio interceptors have open issues on exactly what this project does: a server-streaming
handler written as a coroutine that calls `context.write` (grpc.health.v1's Watch) fails under
them (opentelemetry-python-contrib#3066), and a cancelled client call does not raise
CancelledError to its caller (#3271). They would also open a span per call of every method,
where we want none for health checks and only the set-up of a watch stream.

- Server: `trace_handler` wraps a method's handler once (as common/grpc_server.py does), so
  that with tracing off nothing is wrapped at all. Unary: one SERVER span for the call. Server
  streaming: one span for the set-up, ended when the first message goes out (or the stream ends
  first) — a watch that stays open for an hour is not an hour-long span.
- Client: an interceptor, added to a channel only when tracing is on. It makes a CLIENT span only
  inside a trace (a request's, or a reconciler action's), so background calls make no root spans;
  the span ends when the call has its status (unary) or its first answer (server streaming).

Attributes follow the RPC semantic conventions (rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code). No request field and no metadata value is recorded except the request id:
the metadata carries idempotency keys and account ids, and a message may carry a client secret.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from common import tracing
from common.interceptors import INFRASTRUCTURE_PREFIXES

# Server-side codes that are the server's failure (the RPC semantic conventions); every other
# code is the caller's business (NOT_FOUND, INVALID_ARGUMENT…) and leaves the span unset.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code(code: object) -> grpc.StatusCode:
    """What `ServicerContext.code()` said (None until a status is set: OK), as a StatusCode."""
    if code is None:
        return grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    return _BY_VALUE.get(code, grpc.StatusCode.UNKNOWN) if isinstance(code, int) else grpc.StatusCode.UNKNOWN


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _end(span: Span, code: grpc.StatusCode, *, server: bool) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK and (not server or code in _SERVER_ERRORS):
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


# -- server ------------------------------------------------------------------------------------


def trace_handler(
    handler: grpc.RpcMethodHandler[Any, Any] | None, method: str
) -> grpc.RpcMethodHandler[Any, Any] | None:
    """The handler with a span per call; the handler itself when tracing is off or the method
    is not traced. Meant to be outermost, so that the span is current in every log line."""
    tracer = tracing.tracer()
    if tracer is None or handler is None or method.startswith(INFRASTRUCTURE_PREFIXES):
        return handler
    name, attributes = method.lstrip("/"), _attributes(method)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary(tracer, handler.unary_unary, name, attributes),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        inner = handler.unary_stream
        wrapped = (
            _stream(tracer, inner, name, attributes)
            if inspect.isasyncgenfunction(inner)
            else _unary(tracer, inner, name, attributes)  # writes with context.write and returns
        )
        return grpc.unary_stream_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # client or bidirectional streaming: none in this project


def _start_server_span(
    tracer: trace.Tracer, context: grpc.aio.ServicerContext[Any, Any], name: str, attributes: dict[str, str]
) -> tuple[Span, object]:
    carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    parent = propagate.extract(carrier)
    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    request_id = carrier.get("x-request-id")
    if request_id:
        span.set_attribute("request_id", request_id)
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


def _unary(tracer: trace.Tracer, inner: Any, name: str, attributes: dict[str, str]) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        span, token = _start_server_span(tracer, context, name, attributes)
        code: grpc.StatusCode | None = None
        try:
            return await inner(request, context)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED  # the caller went away or its deadline passed
            raise
        finally:
            _end(span, code or status_code(context.code()), server=True)
            otel_context.detach(token)  # type: ignore[arg-type]

    return handle


def _stream(tracer: trace.Tracer, inner: Any, name: str, attributes: dict[str, str]) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        span, token = _start_server_span(tracer, context, name, attributes)
        span.set_attribute("rpc.span_covers", "stream set-up")
        open_ = True
        code: grpc.StatusCode | None = None
        try:
            async for response in inner(request, context):
                if open_:
                    open_ = False
                    _end(span, grpc.StatusCode.OK, server=True)
                yield response
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            if open_:
                _end(span, code or status_code(context.code()), server=True)
            otel_context.detach(token)  # type: ignore[arg-type]

    return handle


# -- client ------------------------------------------------------------------------------------


class _ClientSpans:
    """What both client interceptors share. Two classes, not one with both methods: grpc.aio
    registers an interceptor for the first kind of call it implements only (grpc/grpc#31442)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._methods: dict[bytes | str, tuple[str, dict[str, str]] | None] = {}

    def _method(self, method: bytes | str) -> tuple[str, dict[str, str]] | None:
        if method not in self._methods:
            text = method.decode() if isinstance(method, bytes) else method
            self._methods[method] = (
                None if text.startswith(INFRASTRUCTURE_PREFIXES) else (text.lstrip("/"), _attributes(text))
            )
        return self._methods[method]

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[Span | None, grpc.aio.ClientCallDetails]:
        known = self._method(details.method)
        if known is None or not trace.get_current_span().get_span_context().is_valid:
            return None, details
        name, attributes = known
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in carrier.items():
            metadata[key] = value
        return span, grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class UnaryTracing(_ClientSpans, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request)
        return await _finished(span, continuation(details, request), lambda call: call.code())


class StreamTracing(_ClientSpans, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request)
        span.set_attribute("rpc.span_covers", "stream set-up")

        async def first_answer(call: Any) -> grpc.StatusCode:
            # The server's headers come with its first message, or with the status if it fails
            # first: either way the stream is set up (or refused) by then.
            await call.initial_metadata()
            code: grpc.StatusCode = await call.code() if call.done() else grpc.StatusCode.OK
            return code

        return await _finished(span, continuation(details, request), first_answer)


async def _finished(span: Span, started: Any, outcome: Callable[[Any], Any]) -> Any:
    """Start the call, wait in the interceptor for `outcome(call)` (the caller, which awaits the
    interceptor first, waits for the same thing anyway), end the span, hand the call on."""
    call = None
    try:
        call = await started
        code = await outcome(call)
    except asyncio.CancelledError:
        # The caller was cancelled: cancel the call too (grpc would only do it when the call is
        # collected), and record it.
        if call is not None:
            call.cancel()
        _end(span, grpc.StatusCode.CANCELLED, server=False)
        raise
    except grpc.aio.AioRpcError as exc:
        _end(span, exc.code(), server=False)
        raise
    _end(span, code, server=False)
    return call


def client_interceptors() -> list[Any]:
    """What `open_channel` adds in front of its own interceptors: nothing when tracing is off."""
    tracer = tracing.tracer()
    return [] if tracer is None else [UnaryTracing(tracer), StreamTracing(tracer)]
