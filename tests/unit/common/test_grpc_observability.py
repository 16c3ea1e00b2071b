"""The gRPC wrappers on a real grpc.aio server and channel in this process (`create_grpc_server`
and `open_channel`, as the services use them): spans on both sides joined by `traceparent`, the
set-up span of a stream, a cancelled call, calls left untraced, and the call metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from common import tracing
from common.errors import NotFound
from common.grpc_client import open_channel
from common.grpc_server import create_grpc_server
from common.grpc_tracing import client_interceptors, server_spans

SERVICE = "test.Echo"


@dataclass
class Echo:
    """Raw-bytes handlers (no protobuf needed to test the wrappers)."""

    seen_ids: list[tuple[str, str] | None] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def say(self, request: bytes, context: Any) -> bytes:
        self.seen_ids.append(tracing.current_ids())
        return request

    async def missing(self, request: bytes, context: Any) -> bytes:
        raise NotFound("nothing here")

    async def slow(self, request: bytes, context: Any) -> bytes:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""

    async def watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b"current"
        await asyncio.Event().wait()  # then nothing for a long while, as a quiet watch


@dataclass
class Running:
    echo: Echo
    channel: grpc.aio.Channel

    def unary(self, method: str) -> Any:
        return self.channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None)

    def stream(self, method: str) -> Any:
        return self.channel.unary_stream(f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None)


@pytest.fixture
async def running(spans: InMemorySpanExporter) -> AsyncIterator[Running]:
    """Server and channel built after the tracer is in place, as at a process's start."""
    echo = Echo()
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(echo.say),
        "Missing": grpc.unary_unary_rpc_method_handler(echo.missing),
        "Slow": grpc.unary_unary_rpc_method_handler(echo.slow),
        "Watch": grpc.unary_stream_rpc_method_handler(echo.watch),
    }

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    server, health, port = create_grpc_server([SERVICE], register, "127.0.0.1", 0)
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        yield Running(echo, channel)
    finally:
        await channel.close(None)
        await server.stop(None)


async def until(found: Callable[[], ReadableSpan | None], timeout: float = 5) -> ReadableSpan:
    """The server side ends its span a moment after the client has its answer."""
    deadline = time.monotonic() + timeout
    while (span := found()) is None:
        assert time.monotonic() < deadline, "the span never ended"
        await asyncio.sleep(0.01)
    return span


def named(spans: InMemorySpanExporter, method: str, kind: SpanKind) -> Callable[[], ReadableSpan | None]:
    name = f"{SERVICE}/{method}"
    return lambda: next((s for s in spans.get_finished_spans() if s.name == name and s.kind == kind), None)


def tracer() -> Any:
    current = tracing.tracer()
    assert current is not None
    return current


async def test_a_call_inside_a_trace_is_one_trace_on_both_sides(running: Running, spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request") as request:
        assert await running.unary("Say")(b"hi", timeout=5) == b"hi"
    client = await until(named(spans, "Say", SpanKind.CLIENT))
    server = await until(named(spans, "Say", SpanKind.SERVER))
    assert client.parent is not None
    assert client.parent.span_id == request.get_span_context().span_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id  # joined by the traceparent metadata
    assert server.context.trace_id == request.get_span_context().trace_id
    assert server.attributes is not None
    assert dict(server.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Say",
        "rpc.grpc.status_code": 0,
    }
    # The handler ran with the server span current: what its log lines carry.
    assert running.echo.seen_ids == [(format(server.context.trace_id, "032x"), format(server.context.span_id, "016x"))]


async def test_outside_a_trace_the_server_starts_one_and_the_client_adds_nothing(
    running: Running, spans: InMemorySpanExporter
) -> None:
    await running.unary("Say")(b"hi", timeout=5)
    server = await until(named(spans, "Say", SpanKind.SERVER))
    assert server.parent is None
    assert named(spans, "Say", SpanKind.CLIENT)() is None


async def test_a_refusal_is_the_callers_error_only(running: Running, spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request"), pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.unary("Missing")(b"", timeout=5)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    client = await until(named(spans, "Missing", SpanKind.CLIENT))
    server = await until(named(spans, "Missing", SpanKind.SERVER))
    assert client.status.status_code is StatusCode.ERROR
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


async def test_a_cancelled_call_ends_both_spans_cancelled(running: Running, spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request"):
        call = asyncio.ensure_future(running.unary("Slow")(b"", timeout=30))
        await asyncio.wait_for(running.echo.started.wait(), 5)
        call.cancel()  # the caller goes away (a client disconnect, a task group's end)
        with pytest.raises(asyncio.CancelledError):
            await call
    await asyncio.wait_for(running.echo.cancelled.wait(), 5)  # the server saw it too
    client = await until(named(spans, "Slow", SpanKind.CLIENT))
    server = await until(named(spans, "Slow", SpanKind.SERVER))
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


async def test_a_stream_span_covers_its_set_up(running: Running, spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request"):
        call = running.stream("Watch")(b"", timeout=30)
        assert await call.read() == b"current"
        # The stream stays open; both sides' spans have ended already.
        client = await until(named(spans, "Watch", SpanKind.CLIENT))
        server = await until(named(spans, "Watch", SpanKind.SERVER))
        assert not call.done()
        call.cancel()
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.span_covers"] == "stream set-up"
        assert span.attributes["rpc.grpc.status_code"] == 0


async def test_health_checks_are_not_traced(running: Running, spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("probe"):
        reply = await health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert [s.name for s in spans.get_finished_spans()] == ["probe"]


async def test_the_calls_are_counted_and_timed(running: Running) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"grpc_service": SERVICE, **labels}) or 0.0

    before = sample("grpc_server_handled_total", grpc_method="Missing", grpc_code="NOT_FOUND")
    timed = sample("grpc_server_handling_seconds_count", grpc_method="Missing")
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await running.unary("Missing")(b"", timeout=5)
    # The server counts a call as its handler ends, which the client may hear of first.
    for _ in range(500):
        if sample("grpc_server_handling_seconds_count", grpc_method="Missing") == timed + 3:
            break
        await asyncio.sleep(0.01)
    assert sample("grpc_server_handled_total", grpc_method="Missing", grpc_code="NOT_FOUND") == before + 3
    assert sample("grpc_server_handling_seconds_count", grpc_method="Missing") == timed + 3
    assert sample("grpc_server_calls_in_flight", grpc_method="Missing") == 0
    open_before = sample("grpc_server_streams_open", grpc_method="Watch")
    call = running.stream("Watch")(b"", timeout=30)
    assert await call.read() == b"current"
    assert sample("grpc_server_streams_open", grpc_method="Watch") == open_before + 1
    assert sample("grpc_server_handling_seconds_count", grpc_method="Watch") == 0  # streams are not timed
    call.cancel()


def test_with_tracing_off_nothing_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)
    assert server_spans() is None
    assert client_interceptors() == []
