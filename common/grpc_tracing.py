"""Spans for gRPC calls, on both sides, with W3C `traceparent` carried in the call's metadata.

Our own thin wrappers on the OpenTelemetry API rather than opentelemetry-instrumentation-grpc,
whose aio interceptors have open issues on exactly what this project does: a server-streaming
handler written as a coroutine that calls `context.write` (grpc.health.v1's Watch) fails under
them (opentelemetry-python-contrib#3066), and a cancelled client call does not raise
CancelledError to its caller (#3271). They would also open a span per call of every method,
where we want none for health checks and only the set-up of a watch stream.

- Server: `server_spans()` is a hook of common/grpc_handlers.py, and None with tracing off, so
  that nothing of it runs at all. Unary: one SERVER span for the call. Server streaming: one
  span for the set-up, ended when the first message goes out (or the stream ends first) — a
  watch that stays open for an hour is not an hour-long span.
- Client: an interceptor, added to a channel only when tracing is on. It makes a CLIENT span only
  inside a trace (a request's, or a reconciler action's), so background calls make no root spans;
  the span ends when the call has its status (unary) or its first answer (server streaming).

Attributes follow the RPC semantic conventions (rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code). No request field and no metadata value is recorded except the request id:
the metadata carries idempotency keys and account ids, and a message may carry a client secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from common import tracing
from common.grpc_handlers import INFRASTRUCTURE_PREFIXES, Context, Kind

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
def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _end(span: Span, code: grpc.StatusCode, *, server: bool) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK and (not server or code in _SERVER_ERRORS):
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


# -- server ------------------------------------------------------------------------------------


class ServerSpans:
    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def for_method(self, method: str, kind: Kind) -> _MethodSpans | None:
        if method.startswith(INFRASTRUCTURE_PREFIXES):
            return None
        return _MethodSpans(self.tracer, method.lstrip("/"), _attributes(method), kind is Kind.STREAM)


def server_spans() -> ServerSpans | None:
    """A span per call, as the services' outermost hook; None when tracing is off."""
    tracer = tracing.tracer()
    return None if tracer is None else ServerSpans(tracer)


class _Call:
    __slots__ = ("open", "span", "token")

    def __init__(self, span: Span, token: object) -> None:
        self.span, self.token, self.open = span, token, True


class _MethodSpans:
    __slots__ = ("attributes", "name", "stream", "tracer")

    def __init__(self, tracer: trace.Tracer, name: str, attributes: dict[str, str], stream: bool) -> None:
        self.tracer, self.name, self.attributes, self.stream = tracer, name, attributes, stream

    def start(self, context: Context) -> _Call:
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        parent = propagate.extract(carrier)
        span = self.tracer.start_span(self.name, context=parent, kind=SpanKind.SERVER, attributes=self.attributes)
        request_id = carrier.get("x-request-id")
        if request_id:
            span.set_attribute("request_id", request_id)
        if self.stream:
            span.set_attribute("rpc.span_covers", "stream set-up")
        # Current while the call runs, so that its log lines and its client calls join the trace.
        return _Call(span, otel_context.attach(trace.set_span_in_context(span, parent)))

    def first_message(self, call: _Call) -> None:
        if call.open:
            call.open = False
            _end(call.span, grpc.StatusCode.OK, server=True)

    def end(self, call: _Call, context: Context, code: grpc.StatusCode) -> None:
        if call.open:
            _end(call.span, code, server=True)
        otel_context.detach(call.token)  # type: ignore[arg-type]


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
    """The interceptors `open_channel` gives a channel: none when tracing is off."""
    tracer = tracing.tracer()
    return [] if tracer is None else [UnaryTracing(tracer), StreamTracing(tracer)]
