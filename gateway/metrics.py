"""Prometheus metrics of the gateway: HTTP routes, and the gRPC calls it makes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to the first byte of the answer",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRPC_CALLS = Counter("grpc_client_calls_total", "gRPC calls made to the services", ["method", "code"])
GRPC_LATENCY = Histogram(
    "grpc_client_call_duration_seconds",
    "Duration of unary gRPC calls made to the services",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
WATCHERS = Gauge("push_watchers", "Clients following an order", ["channel"])
WATCH_STREAMS = Gauge("push_watch_streams", "WatchOrder streams open to the order service")
# GATEWAY_RATE_LIMIT_STORAGE=redis://… (gateway/ratelimit_redis.py): what a Redis outage costs.
RATE_LIMIT_FAILED_OPEN = Counter(
    "rate_limit_failed_open", "Rate-limit checks skipped, their request let through, because Redis could not be reached"
)
