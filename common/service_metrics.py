"""Prometheus metrics of a gRPC service (docs/operations.md#metrics), served on its own port by
prometheus-client's HTTP server (`ORDER_METRICS_PORT`, `PAYMENT_METRICS_PORT`; 0: none).

    grpc_server_handled_total{grpc_service, grpc_method, grpc_code}   calls answered
    grpc_server_handling_seconds{grpc_service, grpc_method}           unary calls' time (histogram)
    grpc_server_calls_in_flight{grpc_service, grpc_method}            unary calls running now
    grpc_server_streams_open{grpc_service, grpc_method}               server streams open now
                                                                      (WatchOrder: the watch streams)
    db_transaction_duration_seconds{kind, operation}                  common/observed_db.py

The names and labels are go-grpc-prometheus's, which dashboards know. Streams are kept out of
the latency histogram and the in-flight gauge: one watch open for an hour would swamp both.

Recorded whatever the port says, by a hook of common/grpc_handlers.py (`CallMetrics`); the port
only decides whether anybody can read them. Labels are method names and status codes
only — never a request's content, so no secret can reach a label.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from common.grpc_handlers import Context, Kind

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
    """One method's label children, resolved once: not a `labels()` lookup per call."""

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


class CallMetrics:
    def for_method(self, method: str, kind: Kind) -> _MethodMetrics:
        return _MethodMetrics(_Method(method), unary=kind is Kind.UNARY)


class _MethodMetrics:
    """A unary call is timed and counted in flight; a stream is counted open."""

    __slots__ = ("labels", "unary")

    def __init__(self, labels: _Method, *, unary: bool) -> None:
        self.labels = labels
        self.unary = unary

    def start(self, context: Context) -> float:
        if self.unary:
            self.labels.in_flight.inc()
        else:
            self.labels.streams.inc()
        return time.perf_counter()

    def first_message(self, started: float) -> None:
        return None

    def end(self, started: float, context: Context, code: grpc.StatusCode) -> None:
        if self.unary:
            self.labels.latency.observe(time.perf_counter() - started)
            self.labels.in_flight.dec()
        else:
            self.labels.streams.dec()
        self.labels.handled(code)


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
