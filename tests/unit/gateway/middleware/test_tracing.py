from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import Receive, Scope, Send

from gateway.middleware.tracing import TraceRequests
from tests.unit.gateway.asgi import Echo, http_scope, run, websocket_scope

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced(app: object, exporter: InMemorySpanExporter) -> TraceRequests:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TraceRequests(app, provider.get_tracer("test"))  # type: ignore[arg-type]


class Route:
    path = "/v1/orders/{order_id}"


def routed(status: int = 200) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route()
        headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_1")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def test_a_request_is_one_server_span_named_by_its_route(exporter: InMemorySpanExporter) -> None:
    await run(traced(routed(), exporter), http_scope(path="/v1/orders/ord_1", query=b"client_secret=s3cret"))
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /v1/orders/{order_id}"
    assert span.kind == SpanKind.SERVER
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/orders/{order_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["request_id"] == "req_1"
    assert "s3cret" not in str(attributes)  # the query string is not recorded


async def test_the_clients_trace_is_continued(exporter: InMemorySpanExporter) -> None:
    await run(traced(routed(), exporter), http_scope(headers=[("traceparent", TRACEPARENT)]))
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE
    assert span.parent is not None


async def test_a_server_error_marks_the_span(exporter: InMemorySpanExporter) -> None:
    await run(traced(routed(503), exporter), http_scope())
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR


async def test_an_exception_is_recorded_by_its_type_only(exporter: InMemorySpanExporter) -> None:
    async def crash(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("a secret in the message")

    with pytest.raises(ValueError, match="secret"):
        await run(traced(crash, exporter), http_scope())
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["error.type"] == "ValueError"
    assert "a secret" not in str(span.to_json())


async def test_an_event_stream_is_traced_until_it_starts_not_while_it_lasts(exporter: InMemorySpanExporter) -> None:
    ended_before_the_stream: list[int] = []

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        ended_before_the_stream.append(len(exporter.get_finished_spans()))
        await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})

    await run(traced(stream, exporter), http_scope())
    assert ended_before_the_stream == [1]


async def test_a_websocket_span_ends_when_it_is_accepted(exporter: InMemorySpanExporter) -> None:
    await run(traced(Echo(), exporter), websocket_scope(path="/v1/orders/ord_1/ws"))
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["http.response.status_code"] == 101


async def test_probes_are_not_traced(exporter: InMemorySpanExporter) -> None:
    await run(traced(Echo(), exporter), http_scope(path="/healthz"))
    assert exporter.get_finished_spans() == ()
