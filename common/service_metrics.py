"""Prometheus metrics of a gRPC service (CONTRACT §12), served on its own port by
prometheus-client's HTTP server (`ORDER_METRICS_PORT`, `PAYMENT_METRICS_PORT`; 0: none).

    grpc_server_handled_total{grpc_service, grpc_method, grpc_code}   calls answered
    grpc_server_handling_seconds{grpc_service, grpc_method}           unary calls' time (histogram)
    grpc_server_calls_in_flight{grpc_service, grpc_method}            unary calls running now
    grpc_server_streams_open{grpc_service, grpc_method}               server streams open now
                                                                      (WatchOrder: the watch streams)
    db_transaction_duration_seconds{kind, operation}                  common/observed_db.py

The names and labels are go-grpc-prometheus's, which dashboards know. Streams are kept out of
the latency histogram and the in-flight gauge: one watch open for an hour would swamp both.

Recorded whatever the port says (a few hundred nanoseconds a call, measured in `make bench`);
the port only decides whether anybody can read them. Labels are method names and status codes
only — never a request's content, so no secret can reach a label.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from common.grpc_tracing import status_code

_LABELS = ("grpc_service", "grpc_method")
HANDLED = Counter("grpc_server_handled_total", "gRPC calls answered, by status code", [*_LABELS, "grpc_code"])
HANDLING = Histogram(
    "grpc_server_handling_seconds",
    "Time from a unary call's start to its answer",
    _LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("grpc_server_calls_in_flight", "Unary gRPC calls being handled now", _LABELS)
STREAMS_OPEN = Gauge("grpc_server_streams_open", "Server-streaming gRPC calls open now", _LABELS)


class _Method:
    """One method's label children, resolved once (a `labels()` lookup per call costs more than
    the increment)."""

    __slots__ = ("_codes", "in_flight", "latency", "names", "streams")

    def __init__(self, method: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self.names = (service, name)
        self.latency = HANDLING.labels(service, name)
        self.in_flight = IN_FLIGHT.labels(service, name)
        self.streams = STREAMS_OPEN.labels(service, name)
        self._codes: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> None:
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = HANDLED.labels(*self.names, code.name)
        child.inc()


def meter_handler(
    handler: grpc.RpcMethodHandler[Any, Any] | None, method: str
) -> grpc.RpcMethodHandler[Any, Any] | None:
    """The handler, counting and timing each call (wrapped once per method, like the others)."""
    if handler is None:
        return None
    metered = _Method(method)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary, metered),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        inner = handler.unary_stream
        return grpc.unary_stream_rpc_method_handler(
            _stream(inner, metered) if inspect.isasyncgenfunction(inner) else _written_stream(inner, metered),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


def _outcome(context: grpc.aio.ServicerContext[Any, Any], cancelled: bool) -> grpc.StatusCode:
    return grpc.StatusCode.CANCELLED if cancelled else status_code(context.code())


def _unary(inner: Any, metered: _Method) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metered.in_flight.inc()
        started = time.perf_counter()
        cancelled = False
        try:
            return await inner(request, context)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            metered.latency.observe(time.perf_counter() - started)
            metered.in_flight.dec()
            metered.handled(_outcome(context, cancelled))

    return handle


def _stream(inner: Any, metered: _Method) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        metered.streams.inc()
        cancelled = False
        try:
            async for response in inner(request, context):
                yield response
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            metered.streams.dec()
            metered.handled(_outcome(context, cancelled))

    return handle


def _written_stream(inner: Any, metered: _Method) -> Any:
    """A streaming handler that writes with `context.write` and returns (health's Watch)."""

    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metered.streams.inc()
        cancelled = False
        try:
            await inner(request, context)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            metered.streams.dec()
            metered.handled(_outcome(context, cancelled))

    return handle


def serve_metrics(host: str, port: int, variable: str) -> int | None:
    """Serve /metrics on host:port from a thread of prometheus-client's own; port 0: nothing.
    A port that is taken stops the service at start with one line naming the variable."""
    if port == 0:
        return None
    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        raise SystemExit(f"cannot serve metrics on {host}:{port} ({variable}): {exc.strerror or exc}") from None
    return int(server.server_port)
