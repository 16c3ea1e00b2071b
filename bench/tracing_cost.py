"""Benchmark 4: what tracing costs. The `POST /v1/orders` load of benchmark 2 on three stacks side
by side, the same code and machine: tracing off (no OTEL_* variable: nothing is installed), on
(every span of the three processes exported over OTLP/gRPC, batched, as in production, to a
collector in this process that accepts each batch and drops it), and sampled (the same, keeping
one trace in ten: `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, the production knob). Windows
of the stacks alternate, so that a change in the machine's other load hits all alike; each figure
is the median of the windows. Reported: throughput, latency and CPU per order of each process,
and each traced stack ÷ the untraced one.

The collector's work (receiving, not parsing) is in this process, not in the services' CPU
figures; what the services pay — making spans, encoding and sending batches from the SDK's
thread — is."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from bench.config import Plan
from bench.e2e import window
from bench.procs import cpu_seconds
from bench.stats import median_fields
from tests.harness import Stack, free_port

log = logging.getLogger(__name__)

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICES = ("gateway", "order_service", "payment_service")


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

    def __enter__(self) -> NullCollector:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop(None)


def _stacks(workdir: Path, collector: NullCollector) -> dict[str, Stack]:
    # Empty is unset: whatever OTEL_* the caller's environment has does not reach the "off" stack.
    off = {"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    on = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}"}
    sampled = {**on, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    return {
        "off": Stack(workdir / "tracing-off", env=off),
        "on": Stack(workdir / "tracing-on", env=on),
        "sampled": Stack(workdir / "tracing-sampled", env=sampled),
    }


def run(plan: Plan, workdir: Path, tool: str) -> dict[str, Any]:
    with NullCollector() as collector:
        stacks = _stacks(workdir, collector)
        try:
            for stack in stacks.values():
                stack.start()
            results = _measure(plan, stacks, tool)
        finally:
            for stack in stacks.values():
                stack.stop()  # the traced one flushes its last batches on the way out
        exported = {"batches": collector.batches, "kib": round(collector.bytes / 1024, 1)}
    return {
        "exporter": "OTLP/gRPC, batched (the SDK's defaults), to a collector that drops what it gets",
        "sampled": "parentbased_traceidratio 0.1",
        "window_s": plan.e2e_window_s,
        "runs_per_figure": plan.runs,
        "results": results,
        "ratios": ratios(results),
        "exported": exported,
    }


def _measure(plan: Plan, stacks: dict[str, Stack], tool: str) -> list[dict[str, Any]]:
    results = []
    for concurrency in plan.e2e_concurrency:
        windows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in stacks}
        for index in range(plan.runs):
            for mode, stack in stacks.items():
                url = stack.url + "/v1/orders"
                log.info("tracing %s c=%d run %d", mode, concurrency, index + 1)
                if index == 0:
                    window(tool, url, concurrency, plan.e2e_warmup_s)
                procs = {name: stack.services[name].proc for name in SERVICES}
                pids = {name: proc.pid for name, proc in procs.items() if proc is not None}
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                measured = window(tool, url, concurrency, plan.e2e_window_s)
                row = measured.to_json()
                requests = max(measured.requests, 1)
                for name, pid in pids.items():
                    row[f"{name}_cpu_us"] = round((cpu_seconds(pid) - before[name]) / requests * 1e6, 1)
                row["cpu_us"] = round(sum(row[f"{name}_cpu_us"] for name in pids), 1)
                windows[mode].append(row)
        for mode, rows in windows.items():
            results.append({"tracing": mode, "concurrency": concurrency} | median_fields(rows) | {"runs": rows})
    return results


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each traced stack against the untraced one, per concurrency: throughput and CPU per order
    as ratios, and the CPU that tracing adds to one order across the three processes."""
    out = []
    for on in (r for r in results if r["tracing"] != "off"):
        off = next((r for r in results if r["tracing"] == "off" and r["concurrency"] == on["concurrency"]), None)
        if off and off.get("rps") and off.get("cpu_us"):
            out.append(
                {
                    "tracing": on["tracing"],
                    "concurrency": on["concurrency"],
                    "rps_on_vs_off": round(on["rps"] / off["rps"], 3),
                    "cpu_on_vs_off": round(on["cpu_us"] / off["cpu_us"], 3),
                    "added_cpu_us": round(on["cpu_us"] - off["cpu_us"], 1),
                    "p50_on_vs_off": round(on["p50_ms"] / off["p50_ms"], 3) if off.get("p50_ms") else None,
                }
            )
    return out
