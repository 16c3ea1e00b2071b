"""What tracing costs, as two more rows of benchmark 2 (bench/e2e.py): the same `POST /v1/orders`
load, in the same alternation of windows, on two more stacks beside the untraced one —

- `orders_traced`: every span of the three processes exported over OTLP/gRPC, batched (the SDK's
  defaults, as in production), to a collector in this process that accepts each batch and drops it;
- `orders_sampled`: the same, keeping one trace in ten (`OTEL_TRACES_SAMPLER=
  parentbased_traceidratio`, 0.1: the production knob);

each reported as a share of the untraced `orders` row's throughput, with its CPU per order.

The collector's work (receiving, not parsing) is in this process, outside the services' CPU
figures; what the services pay — making spans, encoding and sending batches from the SDK's
thread — is inside them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import auth
from bench.e2e import orders_target
from bench.windows import Target
from tests.harness import Stack, free_port

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# The untraced stack is the benchmark's own: whatever OTEL_* the caller's environment has must
# not reach it (empty is unset).
UNTRACED_ENV = {"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}


class NullCollector:
    """An OTLP/gRPC trace endpoint that answers every Export with an empty (valid) response,
    counting batches and bytes so that the report shows the spans were sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.batches = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # raw bytes in and out
        service, method = EXPORT.lstrip("/").split("/")
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method: handler}),))
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    def _export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.batches += 1
            self.bytes += len(request)
        return b""  # ExportTraceServiceResponse with nothing rejected

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(None)


@dataclass
class Traced:
    """The traced stacks as targets of the e2e alternation, and what their collector received."""

    targets: list[Target] = field(default_factory=list)
    collector: NullCollector = field(default_factory=NullCollector)

    def summary(self) -> dict[str, Any]:
        return {
            "exporter": "OTLP/gRPC, batched (the SDK's defaults), to a collector that drops what it gets",
            "sampled": "parentbased_traceidratio 0.1",
            "batches": self.collector.batches,
            "kib": round(self.collector.bytes / 1024, 1),
        }


@contextmanager
def traced_stacks(workdir: Path) -> Iterator[Traced]:
    """Start the collector and the two traced stacks; stop them (the stacks flush their last
    batches on the way out, so the counts include them)."""
    traced = Traced()
    traced.collector.start()
    on = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{traced.collector.port}"}
    sampled = {**on, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    stacks = {
        "orders_traced": (Stack(workdir / "traced", env=on, keys=auth.KEYS), "(tracing on, every span exported)"),
        "orders_sampled": (Stack(workdir / "sampled", env=sampled, keys=auth.KEYS), "(tracing on, 1 trace in 10)"),
    }
    try:
        for name, (stack, label) in stacks.items():
            stack.start()
            traced.targets.append(orders_target(name, stack, label=label, database="sqlite"))
        yield traced
    finally:
        for stack, _ in stacks.values():
            stack.stop()
        traced.collector.stop()
