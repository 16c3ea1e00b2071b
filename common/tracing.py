"""Traces (docs/operations.md#traces): whether this process records spans, and where they go.

Chosen at start by the OpenTelemetry SDK's own variables:

    OTEL_TRACES_EXPORTER         console, otlp, none, or a list (`console,otlp`)
    OTEL_EXPORTER_OTLP_ENDPOINT  (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) without the one above: otlp
    OTEL_SDK_DISABLED=true       nothing, whatever the others say

With none of them set, nothing is installed: no SDK tracer provider, `tracer()` is None, the gRPC
and HTTP wrappers are not even put in place (their factories hand back what they were given),
and a log line pays one global lookup. The SDK itself is imported only when it is used (the
API is light, and FastAPI imports it anyway).

Everything else the SDK reads itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER, OTEL_BSP_* (batching), OTEL_EXPORTER_OTLP_HEADERS/…_INSECURE/…_CERTIFICATE.
OTLP goes over gRPC (the Python SDK's default protocol, port 4317); another
OTEL_EXPORTER_OTLP_PROTOCOL stops the process at start with one line, rather than being ignored.

Why not the SDK's auto-configuration (opentelemetry-distro): it exports OTLP when nothing is set,
where the contract wants nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import load_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

EXPORTERS = ("console", "otlp")
# Which instrumentation made a span (its "instrumentation scope").
SCOPE = "shop"

_tracer: Tracer | None = None
_provider: TracerProvider | None = None


class TracingSettings(BaseSettings):
    """The SDK's variables that decide whether anything is exported (all optional)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    otel_sdk_disabled: str = ""
    otel_traces_exporter: str = ""
    otel_exporter_otlp_endpoint: str = ""
    otel_exporter_otlp_traces_endpoint: str = ""
    otel_exporter_otlp_protocol: str = ""
    otel_exporter_otlp_traces_protocol: str = ""

    @field_validator("otel_traces_exporter")
    @classmethod
    def _known_exporters(cls, value: str) -> str:
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in (*EXPORTERS, "none")]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: this build exports to console, otlp or none")
        return ",".join(names)

    @field_validator("otel_exporter_otlp_protocol", "otel_exporter_otlp_traces_protocol")
    @classmethod
    def _grpc_only(cls, value: str) -> str:
        if value.strip() not in ("", "grpc"):
            raise ValueError("this build sends OTLP over grpc only (leave it unset or say grpc)")
        return value.strip()

    def exporters(self) -> list[str]:
        """The exporters to install; empty: tracing is off."""
        if self.otel_sdk_disabled.strip().lower() == "true":
            return []
        if self.otel_traces_exporter:
            return [name for name in self.otel_traces_exporter.split(",") if name != "none"]
        if self.otel_exporter_otlp_endpoint.strip() or self.otel_exporter_otlp_traces_endpoint.strip():
            return ["otlp"]
        return []


def configure_tracing(service: str, settings: TracingSettings | None = None) -> bool:
    """At start, once per process: install the SDK's tracer provider with the configured
    exporters, or nothing at all. Returns whether tracing is on. A bad value ends the process
    with one line naming the variable (as every setting does)."""
    global _tracer, _provider
    chosen = (settings or load_settings(TracingSettings)).exporters()
    if not chosen:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))  # OTEL_SERVICE_NAME wins when set
    # Flushed at exit (the services return from their main on SIGTERM) and by `flush`.
    provider = TracerProvider(resource=resource)
    for name in dict.fromkeys(chosen):
        exporter: SpanExporter
        if name == "console":
            # One span per line, so that stdout stays one JSON document per line beside the logs.
            exporter = ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, TLS: from the OTEL_EXPORTER_OTLP_* variables
        # Batched in the SDK's own thread: a span's end costs the request a queue append.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer(SCOPE)
    log.info("tracing on", extra={"exporters": ",".join(dict.fromkeys(chosen))})
    return True


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def tracer() -> Tracer | None:
    """This process's tracer, or None when tracing is off (then instrument nothing)."""
    return _tracer


@contextmanager
def span(name: str, attributes: dict[str, str | Sequence[str]] | None = None) -> Iterator[None]:
    """A span of the process's own work (the reconciler's), current inside the block — the root
    of a trace when no request is behind it; nothing at all when tracing is off. An exception
    marks it failed by its type only (its message may quote what it was given)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield
        except Exception as exc:
            current.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise


def flush(timeout_s: float = 5.0) -> None:
    """Export what is still queued, now. For the gateway's shutdown: uvicorn ends the process by
    raising the signal it caught again, so the SDK's exit hook never runs there."""
    if _provider is not None:
        _provider.force_flush(round(timeout_s * 1000))


def shutdown_tracing() -> None:
    """Export what is still queued and stop (tests that configure tracing in-process)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span, in the W3C hex form, for log lines; None when
    tracing is off or no span is current."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
